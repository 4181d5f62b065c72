"""The peers of tests/test_scale.py, in a process of their own (plain asyncio, no
drainpipe), so that neither process needs more file descriptors than its limit.

``python -m tests.scale_peer PORT COUNT STALL_EVERY`` opens COUNT connections to
127.0.0.1:PORT and sends each one's index (4 bytes). Every STALL_EVERY-th
connection, with a tiny receive buffer, then never reads; every other one reads
to the end of stream. Once all readers are done it prints one JSON line, ``{index:
[sha256, bytes]}`` for each reader (``[error, -1]`` for one that failed), then keeps
the stalled connections open until its standard input closes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import struct
import sys

#: Connections being set up at once (the listener's backlog is finite).
CONNECTING = 256


async def main(port: int, count: int, stall_every: int) -> None:
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(CONNECTING)
    stalled: list[socket.socket] = []
    results: dict[int, tuple[str, int]] = {}

    async def peer(index: int) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        stall = index % stall_every == 0
        if stall:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        async with slots:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await loop.sock_sendall(sock, struct.pack("!I", index))
        if stall:
            stalled.append(sock)
            return

        digest = hashlib.sha256()
        total = 0
        try:
            while chunk := await loop.sock_recv(sock, 65536):
                digest.update(chunk)
                total += len(chunk)
        except OSError as exc:
            results[index] = (repr(exc), -1)
        else:
            results[index] = (digest.hexdigest(), total)
        finally:
            sock.close()

    await asyncio.gather(*(peer(index) for index in range(count)))
    print(json.dumps(results), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    for sock in stalled:
        sock.close()


if __name__ == "__main__":
    asyncio.run(main(*map(int, sys.argv[1:4])))
