"""Test your own protocol code against a wrapped stream you steer."""

import anyio
import pytest

from drainpipe import BufferedByteSendStream
from drainpipe.testing import ScriptedSendStream, buffered_scripted_stream, settle


async def send_records(out: BufferedByteSendStream, count: int) -> None:
    """The code under test: length-prefixed records, with back-pressure."""
    for number in range(count):
        record = b"record %d" % number
        await out.send(len(record).to_bytes(2, "big") + record)


async def test_a_stalled_peer_holds_the_producer_back() -> None:
    async with buffered_scripted_stream(high_water=100) as (out, wire):
        wire.block()  # the peer stops reading: every send() waits
        async with anyio.create_task_group() as tg:
            tg.start_soon(send_records, out, 1000)
            await settle()  # the producer is now waiting in send()
            assert out.paused
            assert out.statistics().tasks_waiting == 1
            assert out.buffered_bytes <= 100 + 12  # high_water + one record
            wire.unblock()  # the peer reads again: the producer finishes
    assert wire.data.count(b"record") == 1000


async def test_a_reset_reaches_the_producer() -> None:
    wire = ScriptedSendStream()
    wire.fail_after(50, ConnectionResetError("peer reset"))
    with pytest.raises(anyio.BrokenResourceError) as caught:
        async with BufferedByteSendStream(wire, high_water=100) as out:
            await send_records(out, 1000)
    assert isinstance(caught.value.__cause__, ConnectionResetError)
    assert len(wire.data) == 50  # what the peer got before the reset


async def main() -> None:
    await test_a_stalled_peer_holds_the_producer_back()
    await test_a_reset_reaches_the_producer()


if __name__ == "__main__":
    anyio.run(main)
