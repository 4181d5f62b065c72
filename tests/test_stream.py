"""BufferedByteSendStream's contract, over the scripted stream and memory streams."""

from __future__ import annotations

import array
import asyncio
import sys
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import pytest
from anyio import (
    BrokenResourceError,
    ClosedResourceError,
    WouldBlock,
    create_memory_object_stream,
    create_task_group,
    fail_after,
    move_on_after,
    wait_all_tasks_blocked,
)
from anyio.streams.stapled import StapledObjectStream

import drainpipe._parking
import drainpipe._stream
from drainpipe import BufferedByteSendStream, BufferStatistics
from drainpipe._core import COMPILED
from drainpipe.testing import ScriptedSendStream, buffered_scripted_stream, settle

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from types import FrameType

    from anyio.abc import TaskStatus
    from anyio.streams.memory import MemoryObjectReceiveStream
    from typing_extensions import Buffer

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


# -- construction -------------------------------------------------------------


async def test_defaults_and_send_stream_attribute() -> None:
    wire = ScriptedSendStream()
    out = BufferedByteSendStream(wire)
    assert out.send_stream is wire
    assert (out.high_water, out.low_water) == (65536, 16384)
    assert (out.buffered_bytes, out.paused) == (0, False)


async def test_low_water_defaults_to_a_quarter_of_high_water() -> None:
    out = BufferedByteSendStream(ScriptedSendStream(), high_water=1000)
    assert out.low_water == 250


@pytest.mark.parametrize(
    ("kwargs", "exception", "match"),
    [
        ({"high_water": -5}, ValueError, "-5"),
        (
            {"high_water": 10, "low_water": 20},
            ValueError,
            "low_water=20, high_water=10",
        ),
        ({"high_water": 10, "low_water": -1}, ValueError, "low_water=-1"),
        ({"high_water": 1.0}, TypeError, "high_water must be an int, not float"),
        ({"high_water": "10"}, TypeError, "not str"),
        ({"low_water": 3.5}, TypeError, "low_water must be an int, not float"),
    ],
)
async def test_bad_water_marks_are_refused(
    kwargs: dict[str, Any], exception: type[Exception], match: str
) -> None:
    with pytest.raises(exception, match=match):
        BufferedByteSendStream(ScriptedSendStream(), **kwargs)


# -- lifecycle ------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda out: out.write(b"x"),
        lambda out: out.writelines([b"x"]),
        lambda out: out.send_nowait(b"x"),
    ],
)
async def test_sync_use_before_entering_says_to_use_async_with(call: Any) -> None:
    out = BufferedByteSendStream(ScriptedSendStream())
    with pytest.raises(RuntimeError, match="async with"):
        call(out)


@pytest.mark.parametrize("method", ["send", "drain", "flush", "send_eof"])
async def test_async_use_before_entering_says_to_use_async_with(method: str) -> None:
    out = BufferedByteSendStream(ScriptedSendStream())
    args = (b"x",) if method == "send" else ()
    with pytest.raises(RuntimeError, match="async with"):
        await getattr(out, method)(*args)


async def test_entering_twice_is_refused() -> None:
    async with buffered_scripted_stream() as (out, _):
        with pytest.raises(RuntimeError, match="entered only once"):
            await out.__aenter__()


async def test_entering_after_close_is_refused() -> None:
    out = BufferedByteSendStream(ScriptedSendStream())
    async with out:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        async with out:
            pass


async def test_aclose_before_entering_closes_the_wrapped_stream() -> None:
    wire = ScriptedSendStream()
    out = BufferedByteSendStream(wire)
    await out.aclose()
    assert wire.closed
    with pytest.raises(ClosedResourceError):
        out.write(b"x")


async def test_normal_exit_flushes_and_closes() -> None:
    wire = ScriptedSendStream()
    async with BufferedByteSendStream(wire) as out:
        out.write(b"hello ")
        out.write(b"world")
    assert wire.data == b"hello world"
    assert wire.closed


async def test_exit_by_exception_drops_buffer_and_closes_forcefully() -> None:
    wire = ScriptedSendStream()
    wire.block()
    with pytest.raises(Boom) as caught:  # noqa: PT012 - raised through the exit
        async with BufferedByteSendStream(wire) as out:
            out.write(b"never sent")
            raise Boom("body failed")
    assert type(caught.value) is Boom  # unchanged, not in an ExceptionGroup
    assert str(caught.value) == "body failed"
    assert wire.closed
    assert wire.data == b""
    assert out.buffered_bytes == 0


async def test_exit_by_cancellation_propagates_and_does_not_hang() -> None:
    wire = ScriptedSendStream()
    wire.block()  # the peer never reads
    with fail_after(5):
        with move_on_after(0.05) as scope:
            async with BufferedByteSendStream(wire, high_water=10) as out:
                await out.send(b"x" * 100)
                await out.send(b"y" * 100)  # waits forever: paused
        assert scope.cancelled_caught
    assert wire.closed


async def test_exception_in_body_is_never_wrapped_in_exception_group() -> None:
    wire = ScriptedSendStream()
    with pytest.raises(KeyError) as caught:  # noqa: PT012 - raised through the exit
        async with BufferedByteSendStream(wire) as out:
            out.write(b"x")
            await anyio.lowlevel.checkpoint()
            raise KeyError("k")
    assert type(caught.value) is KeyError
    assert caught.value.args == ("k",)


async def test_aclose_is_idempotent() -> None:
    wire = ScriptedSendStream()
    async with BufferedByteSendStream(wire) as out:
        out.write(b"a")
        await out.aclose()
        await out.aclose()
        assert wire.data == b"a"
        assert wire.closed


@pytest.mark.parametrize(
    "call",
    [
        lambda out: out.write(b"x"),
        lambda out: out.write(b""),
        lambda out: out.writelines([]),
        lambda out: out.send_nowait(b"x"),
    ],
)
async def test_sync_use_after_close_raises_closed(call: Any) -> None:
    async with buffered_scripted_stream() as (out, _):
        await out.aclose()
        with pytest.raises(ClosedResourceError):
            call(out)


@pytest.mark.parametrize("method", ["send", "drain", "flush", "send_eof"])
async def test_async_use_after_close_raises_closed(method: str) -> None:
    async with buffered_scripted_stream() as (out, _):
        await out.aclose()
        args = (b"x",) if method == "send" else ()
        with pytest.raises(ClosedResourceError):
            await getattr(out, method)(*args)


async def test_aclose_cancelled_drops_rest_and_closes_forcefully() -> None:
    async with buffered_scripted_stream() as (out, wire):
        wire.block()
        out.write(b"stuck")
        with fail_after(5), move_on_after(0.05) as scope:
            await out.aclose()
        assert scope.cancelled_caught
        assert wire.closed
        assert out.buffered_bytes == 0
        with pytest.raises(ClosedResourceError):
            out.write(b"more")


@pytest.mark.parametrize("how", ["aclose", "leaving the block"])
async def test_a_deadline_bounds_a_close_while_another_task_is_closing(
    how: str,
) -> None:
    # Another task's graceful close waits for a peer that does not read; this
    # task's close, bounded by a deadline, must end the close forcefully at the
    # deadline rather than wait with the other one.
    wire = ScriptedSendStream()
    wire.block()
    other: list[str] = []

    async def other_close(out: BufferedByteSendStream) -> None:
        try:
            await out.aclose()
        except ClosedResourceError:
            other.append("closed forcefully under it")
        else:  # pragma: no cover - the peer never reads
            other.append("returned")

    with fail_after(5):
        async with create_task_group() as tg:
            with move_on_after(0.1) as scope:
                async with BufferedByteSendStream(wire) as out:
                    out.write(b"stuck")
                    tg.start_soon(other_close, out)
                    await settle()
                    assert out.statistics().tasks_waiting == 1
                    if how == "aclose":
                        await out.aclose()
            assert scope.cancelled_caught
    assert other == ["closed forcefully under it"]
    assert wire.closed
    assert wire.data == b""


async def test_concurrent_aclose_waits_for_the_first() -> None:
    async with buffered_scripted_stream() as (out, wire):
        wire.block()
        out.write(b"data")
        finished: list[str] = []

        async def close(name: str) -> None:
            await out.aclose()
            finished.append(name)

        async with create_task_group() as tg:
            tg.start_soon(close, "first")
            await wait_all_tasks_blocked()
            tg.start_soon(close, "second")
            await wait_all_tasks_blocked()
            assert finished == []
            wire.unblock()
        assert sorted(finished) == ["first", "second"]
        assert wire.data == b"data"
        assert wire.closed


# -- write --------------------------------------------------------------------


async def test_write_never_waits_even_when_far_above_high_water() -> None:
    async with buffered_scripted_stream(high_water=10) as (out, wire):
        wire.block()
        for _ in range(1000):
            out.write(b"0123456789")
        assert out.buffered_bytes == 10_000
        assert out.paused
        wire.unblock()


def python_calls(function: Callable[..., object], *args: object) -> list[str]:
    """The names of the Python functions that run while ``function(*args)``
    runs."""
    names: list[str] = []

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            names.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        function(*args)
    finally:
        sys.setprofile(None)
    return names


def finishing_step(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutine`` one step, which must end it."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    raise AssertionError("the coroutine did not finish in one step")


#: The Python frames the hot path runs: one per call as Python; none once mypyc has
#: compiled the core (drainpipe._core.HotPath), which holds it.
def hot_frames(name: str) -> list[str]:
    return [] if COMPILED else [name]


async def test_a_write_runs_one_python_frame_or_none_compiled() -> None:
    async with buffered_scripted_stream() as (out, _):
        out.write(b"first")  # starts the flush task
        assert python_calls(out.write, b"m" * 100) == hot_frames("write")
        assert out.buffered_bytes == 105


async def test_a_send_and_a_drain_not_paused_run_one_python_frame_each() -> None:
    async with buffered_scripted_stream() as (out, _):
        out.write(b"first")  # starts the flush task
        send = out.send(b"m" * 100)
        drain = out.drain()
        for coroutine, name in ((send, "send"), (drain, "drain")):
            assert python_calls(finishing_step, coroutine) == [
                "finishing_step",
                *hot_frames(name),
            ]
        assert out.buffered_bytes == 105


async def test_lone_small_write_reaches_wrapped_stream_promptly() -> None:
    async with buffered_scripted_stream() as (out, wire):
        await wait_all_tasks_blocked()  # the flush task is idle
        out.write(b"ping")
        await wait_all_tasks_blocked()
        assert wire.pieces == [b"ping"]


async def test_write_keeps_bytes_without_copying() -> None:
    large = b"B" * (100 * 1024)
    seen: list[object] = []

    class Spy(ScriptedSendStream):
        async def send(self, item: Any) -> None:
            seen.append(item)
            await super().send(item)

    wire = Spy()
    async with BufferedByteSendStream(wire) as out:
        out.write(large)
    assert len(seen) == 1
    assert seen[0] is large


@pytest.mark.parametrize(
    "make",
    [bytearray, memoryview, lambda data: array.array("B", data)],
    ids=["bytearray", "memoryview", "array"],
)
async def test_write_snapshots_mutable_buffers(make: Any) -> None:
    source = bytearray(b"original")
    data = make(source) if make is memoryview else make(bytes(source))
    async with buffered_scripted_stream() as (out, wire):
        wire.block()
        out.write(data)
        if make is memoryview:
            source[:] = b"CHANGED!"
        else:
            data[0:8] = make(b"CHANGED!")
        wire.unblock()
    assert wire.data == b"original"


async def test_write_accepts_non_byte_item_buffers() -> None:
    data = array.array("I", [1, 2, 3])
    async with buffered_scripted_stream() as (out, wire):
        out.write(data)
    assert wire.data == data.tobytes()
    assert out.statistics().bytes_written == 12


async def test_write_accepts_non_contiguous_memoryview() -> None:
    data = memoryview(b"abcdefgh")[::2]
    async with buffered_scripted_stream() as (out, wire):
        out.write(data)
    assert wire.data == b"aceg"


@pytest.mark.parametrize(
    ("bad", "name"),
    [("text", "str"), (5, "int"), (None, "NoneType"), (1.5, "float"), ([1, 2], "list")],
)
async def test_write_refuses_non_buffers_and_stays_usable(bad: Any, name: str) -> None:
    async with buffered_scripted_stream() as (out, wire):
        with pytest.raises(TypeError, match=f"not {name}"):
            out.write(bad)
        with pytest.raises(TypeError, match=f"not {name}"):
            out.send_nowait(bad)
        with pytest.raises(TypeError, match=f"not {name}"):
            await out.send(bad)
        assert out.statistics().bytes_written == 0
        out.write(b"still fine")
    assert wire.data == b"still fine"


async def test_empty_write_is_a_no_op() -> None:
    async with buffered_scripted_stream() as (out, wire):
        out.write(b"")
        out.send_nowait(b"")
        await out.send(b"")
        await out.flush()
        assert out.statistics().bytes_written == 0
    assert wire.pieces == []


async def test_writelines_is_all_or_nothing() -> None:
    async with buffered_scripted_stream() as (out, wire):
        with pytest.raises(TypeError, match="not str"):
            out.writelines([b"good", bytearray(b"also good"), "bad"])  # type: ignore[list-item]
        assert out.buffered_bytes == 0
        items: list[bytes | bytearray | memoryview] = [
            b"a",
            b"",
            bytearray(b"b"),
            memoryview(b"c"),
        ]
        out.writelines(iter(items))
    assert wire.data == b"abc"


async def test_writelines_wakes_the_flush_task() -> None:
    async with buffered_scripted_stream() as (out, wire):
        await wait_all_tasks_blocked()
        out.writelines([b"x", b"y"])
        await wait_all_tasks_blocked()
        assert wire.data == b"xy"


# -- paused / hysteresis --------------------------------------------------------


async def test_paused_follows_hysteresis() -> None:
    async with buffered_scripted_stream(high_water=100, low_water=20) as (out, wire):
        wire.block()
        await wait_all_tasks_blocked()
        for _ in range(5):
            out.write(b"x" * 30)  # the first is taken at once by the flush task...
            await wait_all_tasks_blocked()  # ... and sits in the blocked send()
        assert out.buffered_bytes == 150
        assert out.paused
        wire.allow(1)  # the 30 in flight: 120 left, still above low
        await wait_all_tasks_blocked()
        assert out.buffered_bytes == 120
        assert out.paused
        wire.allow(1)  # the remaining 120 coalesced in one piece
        await wait_all_tasks_blocked()
        assert out.buffered_bytes == 0
        assert not out.paused
        wire.unblock()


# -- send_nowait ------------------------------------------------------------------


async def test_send_nowait_raises_would_block_when_paused() -> None:
    async with buffered_scripted_stream(high_water=10) as (out, wire):
        wire.block()
        out.send_nowait(b"x" * 11)
        assert out.paused
        with pytest.raises(WouldBlock):
            out.send_nowait(b"y")
        assert out.statistics().bytes_written == 11
        wire.unblock()
        await out.flush()
        out.send_nowait(b"z")
    assert wire.data == b"x" * 11 + b"z"


async def test_send_nowait_does_not_overtake_waiting_senders() -> None:
    async with buffered_scripted_stream(high_water=10, low_water=0) as (out, wire):
        wire.block()
        out.write(b"x" * 11)
        async with create_task_group() as tg:
            tg.start_soon(out.send, b"waiting")
            await wait_all_tasks_blocked()
            wire.allow(1)
            await wait_all_tasks_blocked()
            # The sender has been let through; the line is empty again...
            out.send_nowait(b"after")
            wire.unblock()
    assert wire.data == b"x" * 11 + b"waitingafter"


# -- send ----------------------------------------------------------------------------


async def test_send_and_drain_do_not_yield_when_not_paused() -> None:
    ran = False

    async def other() -> None:
        nonlocal ran
        ran = True

    async with buffered_scripted_stream() as (out, _):
        await wait_all_tasks_blocked()
        async with create_task_group() as tg:
            tg.start_soon(other)
            for _ in range(100):
                await out.send(b"x")
                await out.drain()
            assert not ran  # no checkpoint was taken
        assert ran


@pytest.mark.parametrize("method", ["flush", "send_eof", "aclose"])
async def test_flush_send_eof_and_aclose_always_checkpoint(method: str) -> None:
    # A checkpoint is a cancellation point: an empty flush still sees the cancel.
    async with buffered_scripted_stream() as (out, _):
        with anyio.CancelScope() as scope:
            scope.cancel()
            await getattr(out, method)()
        assert scope.cancelled_caught


async def test_send_waits_while_paused() -> None:
    async with buffered_scripted_stream(high_water=10, low_water=5) as (out, wire):
        wire.block()
        await out.send(b"x" * 11)
        assert out.paused
        done = False

        async def sender() -> None:
            nonlocal done
            await out.send(b"second")
            done = True

        async with create_task_group() as tg:
            tg.start_soon(sender)
            await wait_all_tasks_blocked()
            assert not done
            assert out.statistics().tasks_waiting == 1
            wire.unblock()
        assert done
    assert wire.data == b"x" * 11 + b"second"


async def test_cancelled_send_enqueues_nothing() -> None:
    async with buffered_scripted_stream(high_water=10) as (out, wire):
        wire.block()
        await out.send(b"x" * 11)
        with move_on_after(0.01) as scope:
            await out.send(b"cancelled")
        assert scope.cancelled_caught
        assert out.statistics().bytes_written == 11
        assert out.statistics().tasks_waiting == 0
        wire.unblock()
        await out.send(b"retried")
    assert wire.data == b"x" * 11 + b"retried"


async def test_blocked_senders_are_served_in_fifo_order() -> None:
    async with buffered_scripted_stream(high_water=10, low_water=0) as (out, wire):
        wire.block()
        out.write(b"." * 11)
        async with create_task_group() as tg:
            for index in range(5):
                tg.start_soon(out.send, b"%d" % index)
                await wait_all_tasks_blocked()
            assert out.statistics().tasks_waiting == 5
            wire.unblock()
    assert wire.data == b"." * 11 + b"01234"


async def test_cancelled_waiting_sender_passes_its_turn() -> None:
    async with buffered_scripted_stream(high_water=10, low_water=0) as (out, wire):
        wire.block()
        out.write(b"." * 11)
        async with create_task_group() as tg:

            async def cancelled_sender(
                *, task_status: TaskStatus[anyio.CancelScope]
            ) -> None:
                with anyio.CancelScope() as scope:
                    task_status.started(scope)
                    await out.send(b"X")

            tg.start_soon(out.send, b"a")
            await wait_all_tasks_blocked()
            scope = await tg.start(cancelled_sender)
            await wait_all_tasks_blocked()
            tg.start_soon(out.send, b"b")
            await wait_all_tasks_blocked()
            scope.cancel()
            await wait_all_tasks_blocked()
            wire.unblock()
    assert wire.data == b"." * 11 + b"ab"


async def test_later_send_does_not_overtake_a_woken_sender() -> None:
    async with buffered_scripted_stream(high_water=10, low_water=0) as (out, wire):
        wire.block()
        out.write(b"." * 11)
        async with create_task_group() as tg:
            tg.start_soon(out.send, b"first")
            await wait_all_tasks_blocked()
            out.set_water_marks(100)  # wakes "first", which has not run yet
            await out.send(b"second")  # must queue behind it
            wire.unblock()
    assert wire.data == b"." * 11 + b"firstsecond"


async def test_woken_sender_waits_again_if_paused_before_it_ran() -> None:
    async with buffered_scripted_stream(high_water=10, low_water=0) as (out, wire):
        wire.block()
        out.write(b"." * 11)
        async with create_task_group() as tg:
            tg.start_soon(out.send, b"S")
            await wait_all_tasks_blocked()
            out.set_water_marks(100, 50)  # resume: the sender is woken...
            out.write(b"!" * 200)  # ...but the stream is paused again first
            await wait_all_tasks_blocked()
            assert out.statistics().tasks_waiting == 1
            wire.unblock()
    assert wire.data == b"." * 11 + b"!" * 200 + b"S"


# -- drain ---------------------------------------------------------------------------


async def test_drain_waits_until_low_water() -> None:
    async with buffered_scripted_stream(high_water=10, low_water=0) as (out, wire):
        wire.block()
        await wait_all_tasks_blocked()
        out.write(b"x" * 11)
        drained = False

        async def drainer() -> None:
            nonlocal drained
            await out.drain()
            drained = True

        async with create_task_group() as tg:
            tg.start_soon(drainer)
            await wait_all_tasks_blocked()
            assert not drained
            wire.allow(1)
        assert drained
        assert out.buffered_bytes == 0


async def test_cancelled_drain_changes_nothing() -> None:
    async with buffered_scripted_stream(high_water=10) as (out, wire):
        wire.block()
        out.write(b"x" * 11)
        with move_on_after(0.01):
            await out.drain()
        assert out.statistics().tasks_waiting == 0
        wire.unblock()
        await out.drain()
    assert wire.data == b"x" * 11


# -- flush ---------------------------------------------------------------------------


async def test_flush_waits_for_bytes_written_before_the_call() -> None:
    async with buffered_scripted_stream() as (out, wire):
        wire.block()
        out.write(b"before")
        async with create_task_group() as tg:

            async def flusher() -> None:
                await out.flush()
                assert wire.data.startswith(b"before")

            tg.start_soon(flusher)
            await wait_all_tasks_blocked()
            out.write(b"after")
            wire.unblock()


async def test_cancelled_flush_keeps_the_bytes_queued() -> None:
    async with buffered_scripted_stream() as (out, wire):
        wire.block()
        out.write(b"kept")
        with move_on_after(0.01):
            await out.flush()
        assert out.buffered_bytes == 4
        wire.unblock()
        await out.flush()
        assert wire.data == b"kept"


@pytest.mark.parametrize("method", ["flush", "aclose"])
async def test_a_timeout_interrupts_a_long_flush_while_pieces_keep_going_out(
    method: str,
) -> None:
    # The wrapped stream accepts every piece after one checkpoint, so the flush
    # task makes progress on every turn of the event loop. A waiter woken on every
    # piece would be runnable whenever AnyIO's asyncio backend tries to deliver the
    # cancellation, and it would never be delivered: the call would run to the end.
    pieces = 5_000
    async with buffered_scripted_stream(high_water=0) as (out, wire):
        for index in range(pieces):
            out.write(bytes([index % 256]) * 20_000)
        with fail_after(5), move_on_after(0.01) as scope:
            await getattr(out, method)()
        assert scope.cancelled_caught
        assert len(wire.pieces) < pieces
        if method == "flush":
            out.write(b"still open")
            await out.flush()
            assert wire.data.endswith(b"still open")


async def flush_beside_a_close(closer_writes: int) -> bool:
    """Run flush() and an aclose() started in the same step, with the first piece
    in flight; check that the flush returns once that piece is out. Returns False
    if the close started first (then the flush rightly found the stream closing)."""
    outcome: list[str] = []
    async with buffered_scripted_stream() as (out, wire):
        wire.block()
        out.write(b"a" * 10)
        await settle()  # the flush task is sending the first piece

        async def flusher() -> None:
            try:
                await out.flush()
            except ClosedResourceError:
                outcome.append("closed")
            else:
                outcome.append("returned")

        async def closer() -> None:
            out.write(b"b" * closer_writes)
            await out.aclose()

        async with create_task_group() as tg:
            tg.start_soon(flusher)
            tg.start_soon(closer)
            await settle()
            if outcome == ["closed"]:
                wire.unblock()
                return False
            assert out.statistics().tasks_waiting == 2
            wire.allow(1)  # the flush's 10 bytes are out, the close's maybe not
            await settle()
            assert outcome == ["returned"]
            wire.unblock()
        assert wire.data == b"a" * 10 + b"b" * closer_writes
    return True


@pytest.mark.parametrize("closer_writes", [0, 10], ids=["same-target", "later-target"])
async def test_flush_returns_once_its_bytes_are_out_even_if_aclose_waits_too(
    closer_writes: int,
) -> None:
    # flush() takes its target, then checkpoints; an aclose() started meanwhile
    # waits for the same bytes (and, if it wrote more, for later ones). Once the
    # flush's bytes are out it must return: neither wait until the close's target
    # is reached nor raise because the close, woken by the same piece, ran first.
    for _attempt in range(50):  # trio starts the two tasks in either order
        if await flush_beside_a_close(closer_writes):
            return
    raise AssertionError("the flush never started before the close")  # pragma: no cover


async def two_flushes() -> None:
    """flush() calls with targets 10 and 20 (or 20 and 20 if trio runs the second
    task first); check that a flush for 10 returns once those bytes are out."""
    returned: list[str] = []
    targets: list[int] = []
    async with buffered_scripted_stream() as (out, wire):
        wire.block()
        out.write(b"a" * 10)
        await settle()

        async def first() -> None:
            targets.append(out.statistics().bytes_written)  # flush()'s target
            await out.flush()
            returned.append("first")

        async def second() -> None:
            out.write(b"b" * 10)
            await out.flush()
            returned.append("second")

        async with create_task_group() as tg:
            tg.start_soon(first)
            tg.start_soon(second)
            await settle()
            wire.allow(1)
            await settle()
            assert returned == (["first"] if targets == [10] else [])
            wire.unblock()


async def test_an_earlier_flush_returns_first_whichever_task_registers_first() -> None:
    # trio may let the second flush() register before the first one.
    for _attempt in range(10):
        await two_flushes()


# -- send_eof ------------------------------------------------------------------------


async def test_send_eof_flushes_then_half_closes() -> None:
    async with buffered_scripted_stream() as (out, wire):
        out.write(b"last words")
        await out.send_eof()
        assert wire.data == b"last words"
        assert wire.eof_sent
        with pytest.raises(ClosedResourceError):
            out.write(b"more")
        with pytest.raises(ClosedResourceError):
            await out.send_eof()
        await out.flush()  # nothing left to flush; still allowed
        await out.drain()
    assert wire.closed


async def test_send_eof_on_object_stream_raises_and_stream_stays_usable() -> None:
    send, receive = create_memory_object_stream[bytes](10)
    async with receive, BufferedByteSendStream(send) as out:
        with pytest.raises(NotImplementedError, match="cannot be half-closed"):
            await out.send_eof()
        out.write(b"still usable")
        await out.flush()
        assert receive.receive_nowait() == b"still usable"


async def test_send_eof_unsupported_by_wrapped_stream_keeps_stream_usable() -> None:
    # StapledObjectStream.send_eof() exists but refuses: the stream stays open.
    left_send, left_receive = create_memory_object_stream[bytes](10)
    right_send, right_receive = create_memory_object_stream[bytes](10)
    stapled = StapledObjectStream(left_send, right_receive)

    async def refuse() -> None:
        raise NotImplementedError("no half-close here")

    stapled.send_eof = refuse  # type: ignore[method-assign]
    async with left_receive, right_send, BufferedByteSendStream(stapled) as out:
        out.write(b"before")
        with pytest.raises(NotImplementedError, match="no half-close here"):
            await out.send_eof()
        out.write(b"after")
        await out.flush()
        assert left_receive.receive_nowait() == b"before"
        assert left_receive.receive_nowait() == b"after"


# -- set_water_marks / statistics / extra --------------------------------------------


async def test_set_water_marks_wakes_waiters_when_at_or_below_new_low() -> None:
    async with buffered_scripted_stream(high_water=10, low_water=0) as (out, wire):
        wire.block()
        out.write(b"x" * 20)
        async with create_task_group() as tg:
            tg.start_soon(out.drain)
            tg.start_soon(out.send, b"y")
            await wait_all_tasks_blocked()
            assert out.statistics().tasks_waiting == 2
            out.set_water_marks(100, 50)
            assert not out.paused
        assert out.statistics().bytes_written == 21
        wire.unblock()


async def test_set_water_marks_can_pause_and_validates() -> None:
    async with buffered_scripted_stream() as (out, wire):
        wire.block()
        out.write(b"x" * 100)
        out.set_water_marks(50)
        assert (out.high_water, out.low_water, out.paused) == (50, 12, True)
        with pytest.raises(ValueError, match="low_water=60"):
            out.set_water_marks(50, 60)
        wire.unblock()


async def test_statistics_reports_every_counter() -> None:
    async with buffered_scripted_stream(high_water=10, low_water=2) as (out, wire):
        out.write(b"abc")
        await out.flush()
        wire.block()
        out.write(b"x" * 20)
        await wait_all_tasks_blocked()
        stats = out.statistics()
        assert stats == BufferStatistics(
            buffered_bytes=20,
            high_water=10,
            low_water=2,
            paused=True,
            bytes_written=23,
            bytes_sent=3,
            send_calls=1,
            tasks_waiting=0,
        )
        with pytest.raises(AttributeError):
            stats.paused = False  # type: ignore[misc]
        wire.unblock()


async def test_repr_shows_state_and_buffer() -> None:
    out = BufferedByteSendStream(ScriptedSendStream())
    assert "not entered yet buffered_bytes=0" in repr(out)


async def test_extra_attributes_are_forwarded() -> None:
    send, receive = create_memory_object_stream[bytes](1)
    async with receive:
        out = BufferedByteSendStream(send)
        assert out.extra_attributes == send.extra_attributes
        await out.aclose()


# -- errors ---------------------------------------------------------------------------


async def test_failure_makes_every_later_call_raise_broken_chained_to_cause() -> None:
    async with buffered_scripted_stream() as (out, wire):
        failure = Boom("wire cut")
        wire.fail_next(failure)
        out.write(b"lost")
        await wait_all_tasks_blocked()
        assert out.buffered_bytes == 0
        calls: list[Any] = [
            lambda: out.write(b"x"),
            lambda: out.writelines([b"x"]),
            lambda: out.send_nowait(b"x"),
        ]
        for call in calls:
            with pytest.raises(BrokenResourceError) as caught:
                call()
            assert caught.value.__cause__ is failure
        for method in ("send", "drain", "flush", "send_eof"):
            args = (b"x",) if method == "send" else ()
            with pytest.raises(BrokenResourceError) as caught:
                await getattr(out, method)(*args)
            assert caught.value.__cause__ is failure
    assert wire.closed


@pytest.mark.parametrize("method", ["send", "drain", "flush", "aclose"])
async def test_failure_wakes_waiting_tasks_with_broken(method: str) -> None:
    async with buffered_scripted_stream(high_water=10) as (out, wire):
        wire.block()
        out.write(b"x" * 11)
        errors: list[BaseException] = []

        async def waiter() -> None:
            args = (b"y",) if method == "send" else ()
            try:
                await getattr(out, method)(*args)
            except BrokenResourceError as exc:
                errors.append(exc)

        with fail_after(5):
            async with create_task_group() as tg:
                tg.start_soon(waiter)
                await wait_all_tasks_blocked()
                wire.fail_next(Boom("late"))
        assert len(errors) == 1
        assert isinstance(errors[0].__cause__, Boom)


async def test_failure_callbacks_are_called_once_with_the_failure() -> None:
    called: list[tuple[str, BaseException]] = []
    async with buffered_scripted_stream() as (out, wire):
        out._on_failure(lambda exc: called.append(("before", exc)))
        failure = Boom("wire cut")
        wire.fail_next(failure)
        out.write(b"lost")
        await wait_all_tasks_blocked()
        assert called == [("before", failure)]
        out._on_failure(lambda exc: called.append(("after", exc)))
        assert called == [("before", failure), ("after", failure)]
        with pytest.raises(BrokenResourceError):
            await out.flush()
    assert called == [("before", failure), ("after", failure)]


async def test_failure_callbacks_are_not_called_after_a_close() -> None:
    called: list[BaseException] = []
    async with buffered_scripted_stream() as (out, _wire):
        out._on_failure(called.append)
        out.write(b"sent")
    out._on_failure(called.append)
    assert called == []


async def test_unreported_failure_is_raised_on_exit() -> None:
    wire = ScriptedSendStream()
    with pytest.raises(BrokenResourceError) as caught:  # noqa: PT012 - by the exit
        async with BufferedByteSendStream(wire) as out:
            wire.fail_next(Boom("nobody asked"))
            out.write(b"fire and forget")
            await wait_all_tasks_blocked()
    assert type(caught.value) is BrokenResourceError
    assert isinstance(caught.value.__cause__, Boom)
    assert wire.closed


async def test_reported_failure_makes_exit_quiet() -> None:
    wire = ScriptedSendStream()
    async with BufferedByteSendStream(wire) as out:
        wire.fail_next(Boom("reported"))
        out.write(b"x")
        with pytest.raises(BrokenResourceError):
            await out.flush()
    assert wire.closed


async def test_failure_while_closing_is_raised_by_aclose() -> None:
    wire = ScriptedSendStream()
    async with BufferedByteSendStream(wire) as out:
        wire.block()
        out.write(b"x")
        await wait_all_tasks_blocked()
        wire.fail_next(Boom("during close"))
        with pytest.raises(BrokenResourceError):
            await out.aclose()
    assert wire.closed


async def test_unreported_failure_raised_by_aclose_once() -> None:
    async with buffered_scripted_stream() as (out, wire):
        wire.fail_next(Boom("once"))
        out.write(b"x")
        await wait_all_tasks_blocked()
        with pytest.raises(BrokenResourceError):
            await out.aclose()
        await out.aclose()  # reported: quiet from now on


async def test_partial_send_failure_leaves_a_prefix() -> None:
    async with buffered_scripted_stream() as (out, wire):
        wire.fail_after(3, Boom("torn"))
        out.write(b"abcdef")
        with pytest.raises(BrokenResourceError):
            await out.flush()
    assert wire.data == b"abc"


# -- concurrency and coalescing ---------------------------------------------------


async def test_only_the_flush_task_calls_send_under_many_writers() -> None:
    # ScriptedSendStream raises BusyResourceError on concurrent sends.
    async with buffered_scripted_stream(high_water=256) as (out, wire):
        wire.delay = 0.0001

        async def writer(tag: int) -> None:
            for index in range(50):
                await out.send(b"<%d:%d>" % (tag, index))
                if index % 7 == 0:
                    await out.flush()

        async with create_task_group() as tg:
            for tag in range(20):
                tg.start_soon(writer, tag)
    data = wire.data
    for tag in range(20):
        positions = [data.index(b"<%d:%d>" % (tag, index)) for index in range(50)]
        assert positions == sorted(positions)


async def test_small_writes_are_coalesced() -> None:
    async with buffered_scripted_stream() as (out, wire):
        for index in range(10_000):
            out.write(b"%09d\n" % index)
            await out.drain()
        await out.flush()
        assert out.statistics().send_calls <= 24
    assert wire.data == b"".join(b"%09d\n" % index for index in range(10_000))


async def test_send_keeps_buffered_bytes_bounded() -> None:
    async with buffered_scripted_stream(high_water=1000) as (out, wire):
        wire.delay = 0.0001
        peak = 0
        for _ in range(500):
            await out.send(b"m" * 100)
            peak = max(peak, out.buffered_bytes)
        assert peak <= 1000 + 100


async def test_send_keeps_buffered_bytes_bounded_under_concurrent_senders() -> None:
    # Twenty tasks, messages of 1-300 bytes: every enqueue by send() happens while
    # the stream is not paused, so the peak is high_water plus the largest message.
    async with buffered_scripted_stream(high_water=1000) as (out, wire):
        wire.delay = 0.0001
        peak = 0

        async def sender(task: int) -> None:
            nonlocal peak
            for number in range(50):
                await out.send(bytes([task]) * (1 + (task * 50 + number) % 300))
                peak = max(peak, out.buffered_bytes)

        async with create_task_group() as tg:
            for task in range(20):
                tg.start_soon(sender, task)
        assert out.statistics().tasks_waiting == 0
        await out.flush()
    assert 1000 < peak <= 1000 + 300
    assert len(wire.data) == sum(
        1 + (task * 50 + number) % 300 for task in range(20) for number in range(50)
    )


@dataclass
class FlushTaskRounds:
    """How often a write had to get the flush task going: by waking it from its
    park, or by starting it (none was running)."""

    wakes: int = 0
    starts: int = 0


def count_flush_task_rounds(monkeypatch: pytest.MonkeyPatch) -> FlushTaskRounds:
    """Count the wake-ups and starts of flush tasks from now on."""
    rounds = FlushTaskRounds()
    wake = BufferedByteSendStream._wake_flush_task

    def counting_wake(self: BufferedByteSendStream) -> None:
        if self._wake_parked is None:
            rounds.starts += 1
        else:
            rounds.wakes += 1
        wake(self)

    monkeypatch.setattr(BufferedByteSendStream, "_wake_flush_task", counting_wake)
    return rounds


@pytest.mark.parametrize("method", ["send", "write+drain"])
async def test_flush_task_does_not_park_while_a_woken_producer_refills_it(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each resume leaves one message queued; on trio the flush task may send it and
    # find the queue empty before the producer it woke has run. It must let that
    # producer refill the queue instead of parking and being woken again.
    rounds = count_flush_task_rounds(monkeypatch)
    message = b"m" * 100
    async with buffered_scripted_stream(high_water=4 * len(message)) as (out, wire):
        for _ in range(200):
            if method == "send":
                await out.send(message)
            else:
                out.write(message)
                await out.drain()
        await out.flush()
        assert (rounds.starts, rounds.wakes) == (1, 0)
    assert wire.data == message * 200


async def test_a_write_soon_after_the_buffer_empties_needs_no_wake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Request/response: write, wait briefly for the reply, write again. The flush
    # task polls the event loop a few times after emptying the buffer before it
    # parks, so the next write finds it still running: no park/wake round trip,
    # which would add an event-loop iteration to every request's latency.
    rounds = count_flush_task_rounds(monkeypatch)
    # However slow this machine is, every send counts as quick (see the next test).
    monkeypatch.setattr(drainpipe._stream, "_BUSY_LOOP", float("inf"))
    async with buffered_scripted_stream() as (out, wire):
        await settle()  # no flush task yet: the first write starts one
        for number in range(100):
            out.write(b"%d," % number)
            while out.buffered_bytes:
                await anyio.lowlevel.checkpoint()
            await anyio.lowlevel.checkpoint()  # "the reply arrives"
        assert (rounds.starts, rounds.wakes) == (1, 0)
        await settle()  # idle for longer: the flush task parks
        out.write(b"end")
        await out.flush()
        assert (rounds.starts, rounds.wakes) == (1, 1)
    assert wire.data == b"".join(b"%d," % number for number in range(100)) + b"end"


async def test_the_flush_task_does_not_poll_after_a_slow_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A send that took long (here 5 ms, as when a thousand other streams keep the
    # event loop busy; uvloop may fire a timer up to 1 ms early) means polling would
    # only cost the other tasks a step each: the flush task parks at once, and
    # every write after a pause wakes it.
    rounds = count_flush_task_rounds(monkeypatch)
    async with buffered_scripted_stream() as (out, wire):
        wire.delay = 0.005
        await settle()
        for number in range(20):
            out.write(b"%d," % number)
            await out.flush()
            await anyio.lowlevel.checkpoint()
            await anyio.lowlevel.checkpoint()
        wire.delay = 0
        assert (rounds.starts, rounds.wakes) == (1, 19)
    assert wire.data == b"".join(b"%d," % number for number in range(20))


async def test_memory_object_stream_receives_coalesced_bytes() -> None:
    send, receive = create_memory_object_stream[bytes](100)
    received: list[bytes] = []

    async def reader(stream: MemoryObjectReceiveStream[bytes]) -> None:
        async with stream:
            async for item in stream:
                assert type(item) is bytes
                received.append(item)

    async with create_task_group() as tg:
        tg.start_soon(reader, receive)
        async with BufferedByteSendStream(send) as out:
            for index in range(1000):
                out.write(b"%d," % index)
            out.write(b"z" * 300_000)  # larger than a piece: must arrive as bytes
    assert (
        b"".join(received) == b"".join(b"%d," % i for i in range(1000)) + b"z" * 300_000
    )


async def test_scripted_stream_refuses_to_receive() -> None:
    with pytest.raises(NotImplementedError):
        await ScriptedSendStream().receive()


async def test_scripted_stream_send_eof_after_close_raises() -> None:
    wire = ScriptedSendStream()
    await wire.aclose()
    with pytest.raises(ClosedResourceError):
        await wire.send_eof()


async def test_graceful_exit_is_bounded_by_an_outer_cancel_scope() -> None:
    wire = ScriptedSendStream()
    wire.block()  # the flush on exit would wait forever
    with fail_after(5), move_on_after(0.05) as scope:
        async with BufferedByteSendStream(wire) as out:
            out.write(b"unsendable")
    assert scope.cancelled_caught
    assert wire.closed
    assert out.buffered_bytes == 0


async def test_send_eof_overtaken_by_aclose_raises_closed() -> None:
    async with buffered_scripted_stream() as (out, wire):
        wire.block()
        out.write(b"pending")
        async with create_task_group() as tg:

            async def half_close() -> None:
                with pytest.raises(ClosedResourceError):
                    await out.send_eof()  # flushing when aclose() begins

            tg.start_soon(half_close)
            await wait_all_tasks_blocked()
            tg.start_soon(out.aclose)
            await wait_all_tasks_blocked()
            wire.unblock()
        assert wire.data == b"pending"
        assert wire.closed
        assert not wire.eof_sent


async def test_failing_half_close_breaks_the_stream() -> None:
    failure = OSError(107, "Transport endpoint is not connected")

    class Reset(ScriptedSendStream):
        async def send_eof(self) -> None:
            raise failure

    async with BufferedByteSendStream(Reset()) as out:
        out.write(b"x")
        with pytest.raises(BrokenResourceError) as caught:
            await out.send_eof()
        assert caught.value.__cause__ is failure
        with pytest.raises(BrokenResourceError):
            out.write(b"y")


async def test_scripted_stream_fail_after_respects_block() -> None:
    async with buffered_scripted_stream() as (out, wire):
        wire.block()
        wire.fail_after(2, Boom("later"))
        out.write(b"abc")
        await wait_all_tasks_blocked()
        assert wire.waiting_sends == 1  # still held back, not failed early
        wire.allow(1)
        with pytest.raises(BrokenResourceError):
            await out.flush()
    assert wire.data == b"ab"


# -- a flush task only while there is work ---------------------------------------------


def flush_tasks() -> int:
    return sum(
        1
        for task in anyio.get_running_tasks()
        if (task.name or "").startswith("drainpipe flush")
    )


async def test_an_entered_stream_that_never_wrote_runs_no_flush_task() -> None:
    async with buffered_scripted_stream() as (out, wire):
        await settle()
        assert flush_tasks() == 0
        out.write(b"first")
        await out.flush()
        assert flush_tasks() == 1
    assert wire.data == b"first"


async def test_closing_before_the_started_flush_task_ran_does_not_hang() -> None:
    # The first write starts the flush task; leaving the block before it ran must
    # not leave it to park for ever, shielded, in the block's task group.
    wire = ScriptedSendStream()
    with fail_after(5), pytest.raises(LookupError):  # noqa: PT012
        async with BufferedByteSendStream(wire) as out:
            out.write(b"dropped")
            raise LookupError
    assert wire.data == b""
    assert wire.closed


async def test_aclose_right_after_the_first_write_sends_it() -> None:
    wire = ScriptedSendStream()
    with fail_after(5):
        async with BufferedByteSendStream(wire) as out:
            out.write(b"kept")
            await out.aclose()
    assert wire.data == b"kept"


async def test_an_idle_flush_task_ends_and_the_next_write_starts_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(drainpipe._parking, "IDLE_EXIT", 0.05)
    rounds = count_flush_task_rounds(monkeypatch)
    async with buffered_scripted_stream() as (out, wire):
        out.write(b"before ")
        await out.flush()
        await settle()
        assert flush_tasks() == 1  # parked
        await anyio.sleep(0.3)
        assert flush_tasks() == 0  # ended after its idle time
        out.write(b"after")
        await out.flush()
        assert (rounds.starts, rounds.wakes) == (2, 0)
    assert wire.data == b"before after"


@pytest.mark.parametrize("idle_exit", [0.0, 0.0005])
async def test_writes_racing_a_flush_task_that_ends_are_all_sent(
    idle_exit: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A flush task that ends as soon as (or soon after) it parks: writes keep
    # arriving as it ends, and none may be left without a flush task.
    monkeypatch.setattr(drainpipe._parking, "IDLE_EXIT", idle_exit)
    async with buffered_scripted_stream(high_water=50) as (out, wire):
        for number in range(300):
            out.write(b"%d," % number)
            for _ in range(number % 4):
                await anyio.lowlevel.checkpoint()
            if number % 7 == 0:
                await out.drain()
            if number % 50 == 0:
                await anyio.sleep(0.001)
        with fail_after(5):
            await out.flush()
    assert wire.data == b"".join(b"%d," % number for number in range(300))


class SlowRecordingStream(ScriptedSendStream):
    """Each send() sleeps a little; a send() after send_eof() is recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.delay = 0.005
        self.after_eof: list[bytes] = []

    async def send(self, item: Buffer) -> None:
        if self.eof_sent:
            self.after_eof.append(bytes(item))
        await super().send(item)


async def test_a_sender_woken_with_a_half_close_never_enqueues_after_the_eof() -> None:
    # One piece going out wakes both a waiting send() and send_eof()'s flush; trio
    # runs the two in either order. Whichever goes first, no byte may follow the
    # EOF, and a send() that returned normally had its bytes go out before it.
    for _ in range(20):
        wire = SlowRecordingStream()
        returned = False
        async with BufferedByteSendStream(wire, high_water=10, low_water=0) as out:
            out.write(b"x" * 100)

            async def sender() -> None:
                nonlocal returned
                with suppress(ClosedResourceError):
                    await out.send(b"LATE")
                    returned = True

            async with create_task_group() as tg:
                tg.start_soon(sender)
                tg.start_soon(out.send_eof)
        assert wire.after_eof == []
        assert wire.data.endswith(b"LATE") is returned


async def test_the_idle_time_counts_from_the_latest_park(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One timer serves every park on asyncio: when it fires during a park that
    # began later, it waits for that park's own idle time instead of ending it.
    monkeypatch.setattr(drainpipe._parking, "IDLE_EXIT", 0.3)
    async with buffered_scripted_stream() as (out, wire):
        out.write(b"first ")
        await out.flush()  # parks at about 0 s: its idle time would end at 0.3 s
        await anyio.sleep(0.2)
        out.write(b"second")
        await out.flush()  # parks again at about 0.2 s: ends at 0.5 s
        await anyio.sleep(0.2)
        assert flush_tasks() == 1  # 0.4 s: still parked
        await anyio.sleep(0.6)
        assert flush_tasks() == 0
    assert wire.data == b"first second"


def test_trio_in_guest_mode_on_an_asyncio_loop_parks_the_trio_way() -> None:
    # In trio's guest mode the asyncio host loop is running too; the flush task,
    # a trio task, must not park on one of its futures.
    trio = pytest.importorskip("trio")
    data: list[bytes] = []

    async def on_trio() -> None:
        wire = ScriptedSendStream()
        with fail_after(5):
            async with BufferedByteSendStream(wire) as out:
                out.write(b"hello ")
                await anyio.sleep(0.05)  # the flush task parks
                out.write(b"world")
                await out.flush()
        data.append(wire.data)

    async def host() -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        trio.lowlevel.start_guest_run(
            on_trio,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=done.set_result,
        )
        (await done).unwrap()

    asyncio.run(host())
    assert data == [b"hello world"]
