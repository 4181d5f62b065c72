"""A line-protocol server: one BufferedByteStream per connection."""

import anyio
from anyio.abc import Listener, SocketAttribute, SocketStream

from drainpipe import BufferedByteStream


async def handle(client: SocketStream) -> None:
    async with BufferedByteStream(client, send_timeout=30) as connection:
        while True:
            try:
                line = await connection.receive_until(b"\n", 65536)
            except anyio.IncompleteRead:
                return  # the client half-closed: flush the replies, then close
            except anyio.DelimiterNotFound:
                connection.write(b"ERROR line too long\n")
                return
            connection.write(line.upper() + b"\n")
            await connection.drain()  # back-pressure: stop reading while paused


async def serve(listener: Listener[SocketStream]) -> None:
    await listener.serve(handle)


async def main() -> None:
    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(serve, listener)
        port = listener.extra(SocketAttribute.local_port)
        async with await anyio.connect_tcp("127.0.0.1", port) as client:
            await client.send(b"hello\nworld\n")
            await client.send_eof()
            with anyio.fail_after(5):
                replies = b"".join([chunk async for chunk in client])
        assert replies == b"HELLO\nWORLD\n", replies
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main)
