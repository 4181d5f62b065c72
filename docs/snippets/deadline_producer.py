"""A deadline around a producer loop: it lands within a pause or two."""

import anyio

from drainpipe import BufferedByteSendStream


async def consume(receive: anyio.abc.ObjectReceiveStream[bytes]) -> None:
    async with receive:
        async for _ in receive:
            pass  # a consumer that keeps up: every pause ends quickly


async def produce(out: BufferedByteSendStream) -> None:
    with anyio.move_on_after(0.3) as scope:
        while True:
            out.write(b"x" * 100)
            await out.drain()  # or: await out.send(b"x" * 100)

    assert scope.cancelled_caught


async def main() -> None:
    send, receive = anyio.create_memory_object_stream[bytes]()
    async with anyio.create_task_group() as tg:
        tg.start_soon(consume, receive)
        async with BufferedByteSendStream(send) as out:
            with anyio.fail_after(5):  # the test's own bound
                await produce(out)


if __name__ == "__main__":
    anyio.run(main)
