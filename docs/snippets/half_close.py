"""send_eof(): send a request, half-close, then read the reply."""

import hashlib

import anyio
import anyio.abc

from drainpipe import BufferedByteSendStream


async def request_digest(tcp: anyio.abc.SocketStream, data: bytes) -> bytes:
    async with BufferedByteSendStream(tcp) as out:
        out.write(data)
        await out.send_eof()  # flushes, then half-closes: the peer sees EOF
        return b"".join([chunk async for chunk in tcp])  # reading goes on


async def digest_server(stream: anyio.abc.SocketStream) -> None:
    async with stream:
        digest = hashlib.sha256()
        async for chunk in stream:  # until the client's EOF
            digest.update(chunk)
        await stream.send(digest.hexdigest().encode())


async def main() -> None:
    data = b"0123456789" * 100_000
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, digest_server)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        tcp = await anyio.connect_tcp("127.0.0.1", port)
        reply = await request_digest(tcp, data)
        tg.cancel_scope.cancel()

    assert reply == hashlib.sha256(data).hexdigest().encode()


if __name__ == "__main__":
    anyio.run(main)
