"""``python -m drainpipe``: back-pressure you can watch.

On each available backend a fast producer pushes a few megabytes with
:meth:`~drainpipe.BufferedByteSendStream.send` to a deliberately slow consumer over
loopback TCP. A sampler draws ``buffered_bytes`` against the watermarks as it rides
between them; the consumer checks the SHA-256 of everything it received.
"""

from __future__ import annotations

import hashlib
import socket
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO, cast

import anyio
from anyio.abc import SocketAttribute, SocketListener

from ._stream import BufferedByteSendStream

if TYPE_CHECKING:
    from collections.abc import Iterator

HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024
MESSAGE_SIZE = 1000
TOTAL_BYTES = 12 * 1024 * 1024
#: the consumer reads this much, then sleeps for READ_PAUSE seconds
READ_SIZE = 64 * 1024
READ_PAUSE = 0.005
#: kernel socket buffers are kept small so the back-pressure shows in userspace
SOCKET_BUFFER = 32 * 1024
BAR_WIDTH = 48


@dataclass(frozen=True)
class Backend:
    name: str
    backend: str
    options: dict[str, object]


def available_backends() -> Iterator[Backend]:
    """asyncio always; asyncio+uvloop and trio when they are installed."""
    yield Backend("asyncio", "asyncio", {})
    try:
        import uvloop  # noqa: F401
    except ImportError:
        print("(uvloop is not installed: skipping asyncio+uvloop)")
    else:
        yield Backend("asyncio+uvloop", "asyncio", {"use_uvloop": True})
    try:
        import trio  # noqa: F401
    except ImportError:
        print("(trio is not installed: skipping trio; pip install 'drainpipe[trio]')")
    else:
        yield Backend("trio", "trio", {})


def messages(total: int, size: int) -> Iterator[bytes]:
    """Deterministic, non-repeating payload: each message names its own number."""
    sent = 0
    number = 0
    while sent < total:
        head = f"message {number:08d} ".encode()
        body = (head * (size // len(head) + 1))[: min(size, total - sent)]
        yield body
        sent += len(body)
        number += 1


def bar(out: BufferedByteSendStream) -> str:
    """One line: the buffer's fill against a scale of 1.5 x high_water."""
    scale = out.high_water * 3 // 2
    cells = [" "] * BAR_WIDTH
    filled = min(BAR_WIDTH, out.buffered_bytes * BAR_WIDTH // scale)
    for index in range(filled):
        cells[index] = "#"
    cells[min(BAR_WIDTH - 1, out.low_water * BAR_WIDTH // scale)] = "L"
    cells[min(BAR_WIDTH - 1, out.high_water * BAR_WIDTH // scale)] = "H"
    state = "paused" if out.paused else "      "
    return f"[{''.join(cells)}] {out.buffered_bytes // 1024:4d} KiB {state}"


async def run_one(backend: Backend, stdout: TextIO) -> bool:
    expected = hashlib.sha256()
    received = hashlib.sha256()
    received_bytes = 0
    peak = 0
    pauses = 0

    listeners = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listeners, cast("SocketListener", listeners.listeners[0]) as listener:
        port = listener.extra(SocketAttribute.local_port)
        listener.extra(SocketAttribute.raw_socket).setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER
        )

        async def consume() -> None:
            nonlocal received_bytes
            connection = await listener.accept()
            async with connection:
                while received_bytes < TOTAL_BYTES:
                    try:
                        chunk = await connection.receive(READ_SIZE)
                    except anyio.EndOfStream:
                        break
                    received.update(chunk)
                    received_bytes += len(chunk)
                    await anyio.sleep(READ_PAUSE)

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            stream = await anyio.connect_tcp("127.0.0.1", port)
            stream.extra(SocketAttribute.raw_socket).setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER
            )
            async with BufferedByteSendStream(
                stream, high_water=HIGH_WATER, low_water=LOW_WATER
            ) as out:

                async def sample() -> None:
                    while True:
                        stdout.write(f"  {backend.name:15s} {bar(out)}\n")
                        stdout.flush()
                        await anyio.sleep(0.04)

                async with anyio.create_task_group() as sampler:
                    sampler.start_soon(sample)
                    was_paused = False
                    for message in messages(TOTAL_BYTES, MESSAGE_SIZE):
                        expected.update(message)
                        await out.send(message)
                        peak = max(peak, out.buffered_bytes)
                        if out.paused and not was_paused:
                            pauses += 1
                        was_paused = out.paused
                    sampler.cancel_scope.cancel()
            # Leaving the block flushed everything and closed the connection; the
            # task group now waits for the consumer to read the rest.
        elapsed = time.perf_counter() - started

    ok = received.digest() == expected.digest()
    verdict = "OK" if ok else "MISMATCH"
    stdout.write(
        f"  {backend.name}: {TOTAL_BYTES // 1024} KiB in {elapsed:.1f} s, "
        f"paused {pauses} times, peak buffered {peak // 1024} KiB "
        f"(high_water {HIGH_WATER // 1024} KiB), "
        f"SHA-256 {received.hexdigest()[:16]}... {verdict}\n\n"
    )
    return ok


def main(stdout: TextIO = sys.stdout) -> int:
    stdout.write(
        f"drainpipe demo: {TOTAL_BYTES // 1024 // 1024} MiB in {MESSAGE_SIZE}-byte "
        f"send() calls to a consumer reading {READ_SIZE // 1024} KiB every "
        f"{READ_PAUSE * 1000:.0f} ms over loopback TCP.\n"
        f"Bar: '#' = buffered_bytes, L = low_water ({LOW_WATER // 1024} KiB), "
        f"H = high_water ({HIGH_WATER // 1024} KiB).\n\n"
    )
    results = [
        anyio.run(
            run_one,
            backend,
            stdout,
            backend=backend.backend,
            backend_options=backend.options,
        )
        for backend in available_backends()
    ]
    return 0 if all(results) else 1
