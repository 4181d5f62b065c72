"""Leaving the block by an exception drops the buffer and closes at once."""

import anyio

from drainpipe import BufferedByteSendStream


class ProtocolError(Exception):
    pass


async def main() -> None:
    send, receive = anyio.create_memory_object_stream[bytes](100)
    async with receive:
        try:
            async with BufferedByteSendStream(send) as out:
                out.write(b"half a mess")
                raise ProtocolError("bad input")
        except ProtocolError:  # the exception itself, not an ExceptionGroup
            pass

        # the buffered bytes were dropped and the wrapped stream closed
        assert [piece async for piece in receive] == []


if __name__ == "__main__":
    anyio.run(main)
