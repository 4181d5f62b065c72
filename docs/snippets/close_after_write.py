"""Close right after writing: leaving the block sends everything first."""

import anyio
import anyio.abc

from drainpipe import BufferedByteSendStream

REPORT = b"x" * 1_000_000


async def send_report(client: anyio.abc.SocketStream) -> None:
    async with BufferedByteSendStream(client) as out:
        out.write(REPORT)  # returns at once: nothing has been sent yet...
    # ...but leaving the block waited until every byte was sent, then closed


async def main() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, send_report)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with await anyio.connect_tcp("127.0.0.1", port) as tcp:
            received = b"".join([chunk async for chunk in tcp])
        tg.cancel_scope.cancel()

    assert received == REPORT


if __name__ == "__main__":
    anyio.run(main)
