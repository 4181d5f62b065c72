import anyio
import anyio.abc

from drainpipe import BufferedByteSendStream


async def serve_lines(client: anyio.abc.SocketStream) -> None:
    async with BufferedByteSendStream(client) as out:
        for number in range(10_000):
            out.write(b"line %d\n" % number)  # stores the bytes: never waits
            await out.drain()  # waits only while paused: above 64 KiB, until 16 KiB
    # leaving the block sent every byte, then closed the connection


async def main() -> None:
    """Serve on a loopback port, read everything as a client, check it."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve_lines)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with await anyio.connect_tcp("127.0.0.1", port) as tcp:
            received = b"".join([chunk async for chunk in tcp])
        tg.cancel_scope.cancel()

    assert received == b"".join(b"line %d\n" % number for number in range(10_000))


if __name__ == "__main__":
    anyio.run(main)
