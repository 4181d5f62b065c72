"""drain() returns only once the buffer is down to low_water."""

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from drainpipe import BufferedByteSendStream

PIECE = 16 * 1024  # written and sent one by one (pieces this large are not merged)


async def consume_slowly(receive: MemoryObjectReceiveStream[bytes]) -> None:
    async for _ in receive:
        await anyio.sleep(0.01)


async def main() -> None:
    send, receive = anyio.create_memory_object_stream[bytes]()
    async with (
        receive,
        anyio.create_task_group() as tg,
        BufferedByteSendStream(send, high_water=64 * 1024) as out,
    ):
        assert out.low_water == 16 * 1024  # the default: high_water // 4
        for _ in range(5):
            out.write(bytes(PIECE))
        assert out.paused  # 80 KiB buffered: above high_water

        tg.start_soon(consume_slowly, receive)
        await out.drain()  # not at 64 KiB, nor at 32 KiB: at 16 KiB
        assert not out.paused
        assert out.buffered_bytes <= out.low_water

        out.set_water_marks(high_water=0)  # from now on, every write pauses
        out.write(b"!")
        assert out.paused
        await out.drain()  # returns once the buffer is empty
        assert out.buffered_bytes == 0


if __name__ == "__main__":
    anyio.run(main)
