"""drainpipe.BufferedByteStream: AnyIO's buffered receive side and drainpipe's send
side over one connection, owned by one ``async with``."""

from __future__ import annotations

import hashlib
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import pytest
from anyio import (
    BrokenResourceError,
    ClosedResourceError,
    DelimiterNotFound,
    IncompleteRead,
    WouldBlock,
    create_task_group,
    fail_after,
)
from anyio.streams.buffered import BufferedByteStream as AnyIOBufferedByteStream
from anyio.streams.stapled import StapledObjectStream

from drainpipe import BufferedByteSendStream, BufferedByteStream
from drainpipe.testing import ScriptedSendStream
from tests.test_stream import finishing_step, hot_frames, python_calls
from tests.test_transports import payload, read_all, silent_peer, tcp_pair

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def memory_pair() -> AsyncIterator[
    tuple[StapledObjectStream[bytes], StapledObjectStream[bytes]]
]:
    """Two connected in-memory ``ObjectStream[bytes]`` ends, closed afterwards."""
    a_send, b_receive = anyio.create_memory_object_stream[bytes](100)
    b_send, a_receive = anyio.create_memory_object_stream[bytes](100)
    ours = StapledObjectStream(a_send, a_receive)
    theirs = StapledObjectStream(b_send, b_receive)
    async with ours, theirs:
        yield ours, theirs


async def test_it_is_anyios_buffered_byte_stream() -> None:
    async with memory_pair() as (ours, _):
        assert isinstance(BufferedByteStream(ours), AnyIOBufferedByteStream)


async def test_its_write_send_and_drain_cost_what_the_send_sides_do() -> None:
    """The send side's hot path, run on its buffer: one Python frame each as
    Python, none compiled, and no call of the send side's own methods."""
    async with memory_pair() as (ours, theirs), BufferedByteStream(ours) as connection:
        connection.write(b"first")  # starts the flush task
        assert python_calls(connection.write, b"m" * 100) == hot_frames("write")
        send = connection.send(b"m" * 100)
        drain = connection.drain()
        for coroutine, name in ((send, "send"), (drain, "drain")):
            assert python_calls(finishing_step, coroutine) == [
                "finishing_step",
                *hot_frames(name),
            ]
        assert connection.buffered_bytes == connection.send_side.buffered_bytes == 205
        await connection.flush()
        assert await theirs.receive() == b"first" + b"m" * 200


async def test_receive_until_and_receive_exactly_come_from_anyio() -> None:
    async with (
        memory_pair() as (ours, theirs),
        BufferedByteStream(ours) as connection,
    ):
        await theirs.send(b"first line\nsecond")
        await theirs.send(b" line\n12345")
        assert await connection.receive_until(b"\n", 100) == b"first line"
        assert await connection.receive_until(b"\n", 100) == b"second line"
        assert await connection.receive_exactly(3) == b"123"
        assert await connection.receive() == b"45"
        await theirs.send(b"no newline here")
        with pytest.raises(DelimiterNotFound):
            await connection.receive_until(b"\n", 5)
        await theirs.send_eof()
        with pytest.raises(IncompleteRead):
            await connection.receive_exactly(100)


async def test_every_send_call_goes_through_the_write_behind_buffer() -> None:
    wire = ScriptedSendStream()
    wire.block()
    async with BufferedByteStream(wire, high_water=10) as connection:
        connection.write(b"write ")
        connection.writelines([b"write", b"lines "])
        assert connection.paused
        with pytest.raises(WouldBlock):
            connection.send_nowait(b"refused")
        assert connection.buffered_bytes == 17
        wire.unblock()
        await connection.drain()
        await connection.send(b"send ")
        connection.send_nowait(b"send_nowait")
        await connection.flush()
        assert connection.statistics().bytes_sent == 33
        await connection.send_eof()
    assert wire.data == b"write writelines send send_nowait"
    assert wire.eof_sent
    assert wire.closed


async def test_watermarks_and_send_timeout_are_the_send_sides() -> None:
    async with memory_pair() as (ours, _):
        connection = BufferedByteStream(ours, high_water=1000, send_timeout=5)
        assert (connection.high_water, connection.low_water) == (1000, 250)
        assert connection.send_timeout == 5.0
        connection.set_water_marks(100, 10)
        connection.send_timeout = None
        side: BufferedByteSendStream = connection.send_side
        assert (side.high_water, side.low_water, side.send_timeout) == (100, 10, None)
        with pytest.raises(ValueError, match="send_timeout"):
            BufferedByteStream(ours, send_timeout=0)


async def test_leaving_the_block_flushes_then_closes_both_sides() -> None:
    async with memory_pair() as (ours, theirs):
        async with BufferedByteStream(ours) as connection:
            connection.write(b"last words")
        assert await theirs.receive() == b"last words"
        with pytest.raises(anyio.EndOfStream):
            await theirs.receive()  # our side is closed
        with pytest.raises(ClosedResourceError):
            await connection.receive()
        with pytest.raises(ClosedResourceError):
            connection.write(b"after")


async def test_aclose_flushes_then_closes_both_sides() -> None:
    async with memory_pair() as (ours, theirs):
        async with BufferedByteStream(ours) as connection:
            connection.write(b"bye")
            await connection.aclose()
            with pytest.raises(ClosedResourceError):
                await connection.receive_exactly(1)
        assert await theirs.receive() == b"bye"


async def test_leaving_the_block_by_an_exception_drops_the_buffer() -> None:
    wire = ScriptedSendStream()
    wire.block()
    connection = BufferedByteStream(wire)
    with pytest.raises(LookupError):  # noqa: PT012
        async with connection:
            connection.write(b"dropped")
            raise LookupError
    assert wire.closed
    assert wire.data == b""
    with pytest.raises(ClosedResourceError):
        await connection.receive()


async def test_use_before_entering_says_to_use_async_with() -> None:
    async with memory_pair() as (ours, _):
        with pytest.raises(RuntimeError, match="async with"):
            BufferedByteStream(ours).write(b"x")


async def test_repr_shows_the_send_side() -> None:
    async with memory_pair() as (ours, _):
        assert "send_side=<BufferedByteSendStream not entered yet" in repr(
            BufferedByteStream(ours)
        )


async def test_a_tcp_echo_round_trip_keeps_every_byte() -> None:
    async with tcp_pair() as (client, server):

        async def echo() -> None:
            async with BufferedByteStream(server) as connection:
                while True:
                    try:
                        line = await connection.receive_until(b"\n", 1 << 20)
                    except IncompleteRead:
                        return
                    connection.write(line + b"\n")
                    await connection.drain()

        received = hashlib.sha256()
        sent = hashlib.sha256()
        async with create_task_group() as tg:
            tg.start_soon(echo)
            async with (
                BufferedByteStream(client) as connection,
                create_task_group() as reader,
            ):
                # until the end of stream: the server closes after our EOF
                reader.start_soon(read_all, connection, received)
                for index in range(200):
                    line = payload(100 + index * 37, seed=index)
                    line = line.replace(b"\n", b"") + b"\n"
                    sent.update(line)
                    await connection.send(line)
                with fail_after(10):
                    await connection.send_eof()
    assert received.hexdigest() == sent.hexdigest()


async def test_a_silent_peer_breaks_the_connection_after_send_timeout() -> None:
    async with silent_peer() as (client, _):
        with pytest.raises(BrokenResourceError) as caught:  # noqa: PT012
            async with BufferedByteStream(client, send_timeout=0.3) as connection:
                connection.write(b"s" * 4_000_000)
                with fail_after(3):
                    await connection.flush()
        assert isinstance(caught.value.__cause__, TimeoutError)


def test_every_public_method_of_the_send_side_is_offered() -> None:
    wanted: set[str] = {
        name
        for name in dir(BufferedByteSendStream)
        if not name.startswith("_") and name not in {"send_stream", "extra"}
    }
    offered = set(dir(BufferedByteStream))
    assert wanted <= offered
