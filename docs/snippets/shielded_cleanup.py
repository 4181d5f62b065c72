"""Cleanup that shields itself from a cancellation still gets its bytes out."""

import anyio

from drainpipe import BufferedByteSendStream


async def main() -> None:
    send, receive = anyio.create_memory_object_stream[bytes](10)

    async def session() -> None:
        async with BufferedByteSendStream(send) as out:
            try:
                out.write(b"hello\n")
                await anyio.sleep_forever()  # until the shutdown cancels it
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                    out.write(b"goodbye\n")
                    await out.aclose()  # flushes: the flush task still runs

    async with anyio.create_task_group() as tg:
        tg.start_soon(session)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()  # the shutdown

    with receive:
        received = b"".join([chunk async for chunk in receive])
    assert received == b"hello\ngoodbye\n", received


if __name__ == "__main__":
    anyio.run(main)
