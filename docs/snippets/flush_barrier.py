"""flush() as a barrier: the wrapped stream has accepted every byte so far."""

import anyio

from drainpipe import BufferedByteSendStream


async def send_batch(out: BufferedByteSendStream, records: list[bytes]) -> int:
    """Send a batch and return how many bytes the transport has taken so far."""
    out.writelines(records)
    await out.flush()  # every byte written so far is in the wrapped stream
    return out.statistics().bytes_sent


async def main() -> None:
    send, receive = anyio.create_memory_object_stream[bytes](100)
    async with receive, BufferedByteSendStream(send) as out:
        sent = await send_batch(out, [b"a" * 10, b"b" * 20])
        assert sent == 30
        assert out.buffered_bytes == 0
        sent = await send_batch(out, [b"c" * 30])
        assert sent == 60
        # accepted by the wrapped stream is not the same as received by the peer:
        # here the pieces wait in the memory stream's buffer, unread
        assert receive.statistics().current_buffer_used == 2


if __name__ == "__main__":
    anyio.run(main)
