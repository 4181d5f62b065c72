"""Every public entry point against bad input and use in the wrong state.

Each call raises the documented exception (or works); none enqueues part of its
data or stops the flush task: the stream goes on delivering afterwards.
"""

from __future__ import annotations

import inspect
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
from anyio import (
    BrokenResourceError,
    ClosedResourceError,
    create_memory_object_stream,
    create_task_group,
    fail_after,
)

from drainpipe import BufferedByteSendStream
from drainpipe.testing import ScriptedSendStream, buffered_scripted_stream, settle

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from typing_extensions import Buffer

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


def enqueue_by_write(out: BufferedByteSendStream, data: Any) -> None:
    out.write(data)


def enqueue_by_writelines(out: BufferedByteSendStream, data: Any) -> None:
    out.writelines([b"good", data])  # the good item must not be enqueued alone


async def enqueue_by_send(out: BufferedByteSendStream, data: Any) -> None:
    await out.send(data)


def enqueue_by_send_nowait(out: BufferedByteSendStream, data: Any) -> None:
    out.send_nowait(data)


ENQUEUERS: dict[str, Callable[[BufferedByteSendStream, Any], Any]] = {
    "write": enqueue_by_write,
    "writelines": enqueue_by_writelines,
    "send": enqueue_by_send,
    "send_nowait": enqueue_by_send_nowait,
}


async def enqueue(method: str, out: BufferedByteSendStream, data: Any) -> None:
    result = ENQUEUERS[method](out, data)
    if inspect.isawaitable(result):
        await result


async def still_delivers(out: BufferedByteSendStream, wire: ScriptedSendStream) -> None:
    """The flush task is alive: a later write reaches the wrapped stream."""
    with fail_after(5):
        await out.flush()
        before = wire.data
        out.write(b"still alive")
        await out.flush()
    assert wire.data == before + b"still alive"


# -- data that is not bytes-like --------------------------------------------------------

NOT_BUFFERS = [
    pytest.param("text", "str", id="str"),
    pytest.param(5, "int", id="int"),
    pytest.param(None, "NoneType", id="None"),
    pytest.param(1.5, "float", id="float"),
    pytest.param([1, 2], "list", id="list"),
    pytest.param(True, "bool", id="bool"),
    pytest.param(object(), "object", id="object"),
]


@pytest.mark.parametrize(("data", "type_name"), NOT_BUFFERS)
@pytest.mark.parametrize("method", ENQUEUERS)
async def test_non_buffer_data_raises_type_error_and_enqueues_nothing(
    method: str, data: object, type_name: str
) -> None:
    async with buffered_scripted_stream() as (out, wire):
        with pytest.raises(TypeError, match=f"not {type_name}$"):
            await enqueue(method, out, data)
        assert out.statistics().bytes_written == 0
        await still_delivers(out, wire)


@pytest.mark.parametrize(("data", "type_name"), NOT_BUFFERS)
async def test_send_refuses_bad_data_at_once_even_when_paused(
    data: object, type_name: str
) -> None:
    async with buffered_scripted_stream(high_water=10) as (out, wire):
        wire.block()
        out.write(b"p" * 11)
        assert out.paused
        with fail_after(1), pytest.raises(TypeError, match=f"not {type_name}$"):
            await out.send(data)  # type: ignore[arg-type]
        assert out.statistics().tasks_waiting == 0
        wire.unblock()
        await still_delivers(out, wire)


def failing_iterable() -> Iterator[bytes]:
    yield b"first"
    raise Boom("the iterable failed")


@pytest.mark.parametrize(
    ("items", "exception", "match"),
    [
        pytest.param(5, TypeError, "not iterable", id="int"),
        pytest.param(None, TypeError, "not iterable", id="None"),
        pytest.param(1.5, TypeError, "not iterable", id="float"),
        pytest.param("text", TypeError, "not str", id="str"),
        pytest.param(b"bytes", TypeError, "not int", id="bytes"),
        pytest.param([b"a", [1]], TypeError, "not list", id="list-in-list"),
        pytest.param(failing_iterable, Boom, "the iterable failed", id="failing"),
    ],
)
async def test_writelines_refuses_non_iterables_and_enqueues_nothing(
    items: Any, exception: type[Exception], match: str
) -> None:
    if callable(items):
        items = items()
    async with buffered_scripted_stream() as (out, wire):
        with pytest.raises(exception, match=match):
            out.writelines(items)
        assert out.statistics().bytes_written == 0
        await still_delivers(out, wire)


@pytest.mark.parametrize("method", ENQUEUERS)
async def test_non_contiguous_memoryview_is_copied_and_arrives_whole(
    method: str,
) -> None:
    source = bytearray(b"a-c-e-g-")
    async with buffered_scripted_stream() as (out, wire):
        wire.block()
        await enqueue(method, out, memoryview(source)[::2])
        source[:] = b"ZZZZZZZZ"  # the bytes were taken at call time
        wire.unblock()
        await out.flush()
    prefix = b"good" if method == "writelines" else b""
    assert wire.data == prefix + b"aceg"


@pytest.mark.parametrize("method", ENQUEUERS)
async def test_released_memoryview_raises_value_error_and_enqueues_nothing(
    method: str,
) -> None:
    view = memoryview(bytearray(b"gone"))
    view.release()
    async with buffered_scripted_stream() as (out, wire):
        with pytest.raises(ValueError, match="released memoryview"):
            await enqueue(method, out, view)
        assert out.statistics().bytes_written == 0
        await still_delivers(out, wire)


# -- one 200 MB write ---------------------------------------------------------------------

HUGE = 200 * 1024 * 1024


@pytest.fixture
def huge() -> Iterator[bytes]:
    # calloc'ed: the pages are never touched, since nothing may copy them.
    data = bytes(HUGE)
    yield data
    del data


@pytest.mark.parametrize("method", ENQUEUERS)
async def test_200_mb_write_reaches_a_memory_stream_whole_and_uncopied(
    method: str, huge: bytes
) -> None:
    send, receive = create_memory_object_stream[bytes](10)
    async with receive:
        async with BufferedByteSendStream(send, high_water=1024) as out:
            await enqueue(method, out, huge)
            assert out.statistics().bytes_written == HUGE + 4 * (method == "writelines")
            assert out.paused
        received = [
            receive.receive_nowait() for _ in range(1 + (method == "writelines"))
        ]
    assert received[-1] is huge


@pytest.mark.parametrize("method", ENQUEUERS)
async def test_200_mb_write_reaches_the_scripted_stream_whole_and_uncopied(
    method: str, huge: bytes
) -> None:
    async with buffered_scripted_stream(high_water=1024) as (out, wire):
        await enqueue(method, out, huge)
        await out.flush()
    assert wire.pieces[-1] is huge


# -- water marks ------------------------------------------------------------------------

BAD_WATER_MARKS = [
    pytest.param(-1, None, ValueError, "high_water must be >= 0", id="negative-high"),
    pytest.param(10, -1, ValueError, "low_water=-1", id="negative-low"),
    pytest.param(10, 11, ValueError, "low_water=11, high_water=10", id="inverted"),
    pytest.param(1.5, None, TypeError, "high_water must be an int", id="float-high"),
    pytest.param(10, 2.0, TypeError, "low_water must be an int", id="float-low"),
    pytest.param("10", None, TypeError, "not str", id="str-high"),
    pytest.param(10, "2", TypeError, "not str", id="str-low"),
    pytest.param(None, None, TypeError, "not NoneType", id="None-high"),
    pytest.param(True, None, TypeError, "not bool", id="bool-high"),
    pytest.param(10, False, TypeError, "not bool", id="bool-low"),
    pytest.param(float("inf"), None, TypeError, "not float", id="infinite-high"),
]


@pytest.mark.parametrize(("high", "low", "exception", "match"), BAD_WATER_MARKS)
async def test_bad_water_marks_are_refused_by_the_constructor(
    high: Any, low: Any, exception: type[Exception], match: str
) -> None:
    with pytest.raises(exception, match=match):
        BufferedByteSendStream(ScriptedSendStream(), high_water=high, low_water=low)


@pytest.mark.parametrize("vectored", [1, None, "no"])
async def test_vectored_must_be_a_bool(vectored: Any) -> None:
    with pytest.raises(TypeError, match="vectored must be a bool"):
        BufferedByteSendStream(ScriptedSendStream(), vectored=vectored)


@pytest.mark.parametrize(("high", "low", "exception", "match"), BAD_WATER_MARKS)
async def test_bad_water_marks_are_refused_at_run_time_and_change_nothing(
    high: Any, low: Any, exception: type[Exception], match: str
) -> None:
    async with buffered_scripted_stream(high_water=100, low_water=20) as (out, wire):
        wire.block()
        out.write(b"w" * 150)
        before = out.statistics()
        with pytest.raises(exception, match=match):
            out.set_water_marks(high, low)
        assert out.statistics() == before
        wire.unblock()
        await still_delivers(out, wire)


@pytest.mark.parametrize(
    ("high", "low"), [(0, None), (0, 0), (5, 5), (2**62, None)], ids=str
)
async def test_extreme_valid_water_marks_work(high: int, low: int | None) -> None:
    async with buffered_scripted_stream(high_water=high, low_water=low) as (out, wire):
        wire.block()
        out.write(b"e" * 10)
        assert out.paused is (high < 10)
        wire.unblock()
        await out.drain()
        assert not out.paused
        await still_delivers(out, wire)


# -- the wrong state ----------------------------------------------------------------------

FAILURE = Boom("the wrapped stream failed")


@asynccontextmanager
async def stream_in(
    state: str,
) -> AsyncIterator[tuple[BufferedByteSendStream, ScriptedSendStream]]:
    """A stream in ``state``; for "broken", the failure is not reported yet."""
    wire = ScriptedSendStream()
    out = BufferedByteSendStream(wire)
    if state == "new":
        yield out, wire
        await out.aclose()
        return
    if state == "exited":
        async with out:
            pass
        yield out, wire
        return

    if state == "closing":
        # Another task's aclose() waits for a piece the wrapped stream holds; once
        # every task waits (the call under test too, if it waits), it goes through.
        async def let_the_close_finish() -> None:
            await settle()
            wire.unblock()

        async with out, create_task_group() as tasks:
            wire.block()
            out.write(b"queued")
            tasks.start_soon(out.aclose)
            await settle()
            tasks.start_soon(let_the_close_finish)
            yield out, wire
        return

    body_done = False
    try:
        async with out:
            if state == "half-closed":
                await out.send_eof()
            elif state == "closed":
                await out.aclose()
            elif state == "broken":
                wire.fail_next(FAILURE)
                out.write(b"lost")
                await settle()
            yield out, wire
            body_done = True
    except BrokenResourceError:
        # The block's exit reports the failure if the call under test did not.
        if not (state == "broken" and body_done):
            raise


async def reenter(out: BufferedByteSendStream) -> None:
    await out.__aenter__()
    await out.__aexit__(None, None, None)


CALLS: dict[str, Callable[[BufferedByteSendStream], Any]] = {
    "write": lambda out: out.write(b"x"),
    "writelines": lambda out: out.writelines([b"x", b"y"]),
    "send_nowait": lambda out: out.send_nowait(b"x"),
    "send": lambda out: out.send(b"x"),
    "drain": lambda out: out.drain(),
    "flush": lambda out: out.flush(),
    "send_eof": lambda out: out.send_eof(),
    "aclose": lambda out: out.aclose(),
    "set_water_marks": lambda out: out.set_water_marks(1000, 10),
    "statistics": lambda out: out.statistics(),
    "async with": reenter,
}

Outcome = type[Exception] | None
STATES = ["new", "open", "half-closed", "closing", "closed", "exited", "broken"]
ENQUEUE_ROW: tuple[Outcome, ...] = (
    RuntimeError,
    None,
    ClosedResourceError,
    ClosedResourceError,
    ClosedResourceError,
    ClosedResourceError,
    BrokenResourceError,
)
WAIT_ROW: tuple[Outcome, ...] = (
    RuntimeError,
    None,
    None,
    ClosedResourceError,
    ClosedResourceError,
    ClosedResourceError,
    BrokenResourceError,
)
ALWAYS_WORKS: tuple[Outcome, ...] = (None,) * len(STATES)

#: What each call does in each state (columns in the order of STATES).
EXPECTED: dict[str, tuple[Outcome, ...]] = {
    "write": ENQUEUE_ROW,
    "writelines": ENQUEUE_ROW,
    "send_nowait": ENQUEUE_ROW,
    "send": ENQUEUE_ROW,
    "drain": WAIT_ROW,
    "flush": WAIT_ROW,
    "send_eof": ENQUEUE_ROW,  # a second half-close is refused like a write
    # Closing is idempotent (while another task closes, it waits for that close);
    # on a broken stream it reports the unreported failure.
    "aclose": (None, None, None, None, None, None, BrokenResourceError),
    "set_water_marks": ALWAYS_WORKS,
    "statistics": ALWAYS_WORKS,
    "async with": (None, *(RuntimeError,) * (len(STATES) - 1)),
}
MESSAGES: dict[type[Exception], str] = {
    RuntimeError: "async with|entered only once|closed"
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("call", CALLS)
async def test_every_call_in_every_state_does_what_the_contract_says(
    call: str, state: str
) -> None:
    expected = EXPECTED[call][STATES.index(state)]
    async with stream_in(state) as (out, wire):
        before = out.statistics().bytes_written
        if expected is None:
            result = CALLS[call](out)
            if inspect.isawaitable(result):
                await result
            return

        with pytest.raises(expected, match=MESSAGES.get(expected)) as caught:  # noqa: PT012 - sync or async
            result = CALLS[call](out)
            if inspect.isawaitable(result):
                await result
        if expected is BrokenResourceError:
            assert caught.value.__cause__ is FAILURE
        assert out.statistics().bytes_written == before, "a refused call enqueued"
        if state == "open":
            await still_delivers(out, wire)


async def test_use_before_entering_says_to_use_async_with() -> None:
    out = BufferedByteSendStream(ScriptedSendStream())
    with pytest.raises(RuntimeError, match="inside 'async with BufferedByteSendStream"):
        out.write(b"x")


async def test_writing_from_inside_the_wrapped_streams_send_is_queued_behind_it() -> (
    None
):
    class EchoingStream(ScriptedSendStream):
        """Writes back through the buffer while its own send() runs."""

        out: BufferedByteSendStream | None = None

        async def send(self, item: Buffer) -> None:
            await super().send(item)
            if self.out is not None and bytes(item) == b"ping":
                self.out.write(b"pong")

    wire = EchoingStream()
    async with BufferedByteSendStream(wire) as out:
        wire.out = out
        out.write(b"ping")
        await settle()
        await out.flush()
    assert wire.pieces == [b"ping", b"pong"]


async def test_entering_a_stream_closed_before_entering_is_refused() -> None:
    wire = ScriptedSendStream()
    out = BufferedByteSendStream(wire)
    await out.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await out.__aenter__()
    assert wire.closed


async def test_two_tasks_entering_the_same_stream_one_is_refused() -> None:
    out = BufferedByteSendStream(ScriptedSendStream())
    refused: list[RuntimeError] = []

    async def enter() -> None:
        try:
            async with out:
                await settle()
        except RuntimeError as exc:
            refused.append(exc)

    async with create_task_group() as tg:
        tg.start_soon(enter)
        tg.start_soon(enter)
    assert len(refused) == 1
