"""Fire and forget: write() from synchronous code, flush by leaving the block."""

import anyio

from drainpipe import BufferedByteSendStream


class Logger:
    """Synchronous callers log; the flush task sends in the background."""

    def __init__(self, out: BufferedByteSendStream) -> None:
        self.out = out

    def log(self, message: str) -> None:  # a plain function: no await needed
        self.out.write(f"{message}\n".encode())


async def main() -> None:
    send, receive = anyio.create_memory_object_stream[bytes](100)
    async with receive:
        async with BufferedByteSendStream(send) as out:
            logger = Logger(out)
            for number in range(3):
                logger.log(f"event {number}")
            # nothing awaited yet, so the flush task has not run: leaving the
            # block flushes, and the three writes go out in one send()

        pieces = [piece async for piece in receive]

    assert pieces == [b"event 0\nevent 1\nevent 2\n"]


if __name__ == "__main__":
    anyio.run(main)
