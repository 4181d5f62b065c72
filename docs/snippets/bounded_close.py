"""A bounded close: a peer that stops reading cannot hang the exit."""

import anyio

from drainpipe import BufferedByteSendStream


async def main() -> None:
    # A memory stream that nobody receives from: a peer that stopped reading.
    send, receive = anyio.create_memory_object_stream[bytes]()
    with receive:
        with anyio.move_on_after(0.1) as scope:
            async with BufferedByteSendStream(send) as out:
                out.write(b"x" * 100_000)
            # the graceful exit waits for the flush... until the deadline

        assert scope.cancelled_caught
        # on cancellation the rest was dropped and the stream closed forcefully
        try:
            send.send_nowait(b"")
        except anyio.ClosedResourceError:
            pass
        else:
            raise AssertionError("the wrapped stream is still open")


if __name__ == "__main__":
    anyio.run(main)
