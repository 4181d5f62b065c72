"""Stateful property tests: random sequences of operations, checked after every step.

Two machines:

* ``test_random_operations_keep_the_contract`` drives a
  :class:`~drainpipe.BufferedByteSendStream` over a scripted wrapped stream with a
  list of operations drawn by Hypothesis, on every backend. Each example runs in its
  own event loop (``anyio.run``); operations that may wait run in background tasks,
  and after every operation the loop is settled (every task blocked) and the
  contract is checked against a model that knows only what was enqueued, in which
  order, and what the wrapped stream has done.
* ``TestSendBuffer`` is a :class:`~hypothesis.stateful.RuleBasedStateMachine` over the
  synchronous :class:`~drainpipe._core.SendBuffer` alone: no event loop.
"""

from __future__ import annotations

import enum
import sys
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio import (
    BrokenResourceError,
    CancelScope,
    ClosedResourceError,
    WouldBlock,
    create_task_group,
    fail_after,
)
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import drainpipe._parking
from drainpipe import BufferedByteSendStream
from drainpipe._core import (
    DEFAULT_HIGH_WATER,
    LARGE_CHUNK,
    MAX_BATCH,
    MAX_BATCH_PIECES,
    MAX_PIECE,
    SendBuffer,
)
from drainpipe.testing import ScriptedSendStream, settle

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import TaskGroup
    from typing_extensions import Buffer

#: Examples per backend for the stream machine: about two seconds per backend.
STREAM_EXAMPLES = 500
MIN_OPERATIONS = 12
MAX_OPERATIONS = 50


class Boom(Exception):
    """The injected failure of the wrapped stream."""


# -- the operations ------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    size: int


@dataclass(frozen=True)
class WriteLines:
    sizes: tuple[int, ...]
    #: index of an item replaced by a str, which must make the call enqueue nothing
    bad_at: int | None


@dataclass(frozen=True)
class Send:
    size: int


@dataclass(frozen=True)
class SendNowait:
    size: int


@dataclass(frozen=True)
class Drain:
    pass


@dataclass(frozen=True)
class Flush:
    pass


@dataclass(frozen=True)
class SendEof:
    pass


@dataclass(frozen=True)
class SetWaterMarks:
    high: int
    low: int | None


@dataclass(frozen=True)
class CancelWaiter:
    #: which waiting task, modulo their number
    pick: int


@dataclass(frozen=True)
class Allow:
    sends: int


@dataclass(frozen=True)
class Block:
    pass


@dataclass(frozen=True)
class Unblock:
    pass


@dataclass(frozen=True)
class Fail:
    #: bytes the wrapped stream still accepts first (None: its next send() fails)
    after: int | None
    #: fail the wrapped stream's send_eof() instead
    in_send_eof: bool = False


@dataclass(frozen=True)
class Close:
    pass


@dataclass(frozen=True)
class CancelClose:
    pass


@dataclass(frozen=True)
class NoSettle:
    """The next operation, if synchronous, is followed by the one after it before
    any other task runs (a woken sender has not taken its turn yet...)."""


Operation = (
    Write
    | WriteLines
    | Send
    | SendNowait
    | Drain
    | Flush
    | SendEof
    | SetWaterMarks
    | CancelWaiter
    | Allow
    | Block
    | Unblock
    | Fail
    | Close
    | CancelClose
    | NoSettle
)

sizes = st.integers(0, 40)
#: (weight, strategy): writes and the wrapped stream's progress are common, the
#: operations that end a stream's life are rare enough to leave room before them.
WEIGHTED_OPERATIONS: list[tuple[int, st.SearchStrategy[Operation]]] = [
    (6, st.builds(Write, sizes)),
    (6, st.builds(Send, sizes)),
    (
        2,
        st.builds(
            WriteLines,
            st.lists(sizes, max_size=4).map(tuple),
            st.none() | st.integers(0, 3),
        ),
    ),
    (2, st.builds(SendNowait, sizes)),
    (4, st.builds(Allow, st.integers(1, 3))),
    (1, st.just(Block())),
    (1, st.just(Unblock())),
    (2, st.just(Drain())),
    (2, st.just(Flush())),
    (2, st.builds(CancelWaiter, st.integers(0, 7))),
    (
        2,
        st.builds(SetWaterMarks, st.integers(0, 200), st.none() | st.integers(0, 200)),
    ),
    (2, st.just(NoSettle())),
    (1, st.just(SendEof())),
    (
        1,
        st.builds(
            Fail,
            st.none() | st.integers(0, 60),
            st.sampled_from([False, False, False, True]),
        ),
    ),
    (1, st.just(Close())),
    (1, st.just(CancelClose())),
]
operations: st.SearchStrategy[Operation] = st.sampled_from(
    [strategy for weight, strategy in WEIGHTED_OPERATIONS for _ in range(weight)]
).flatmap(lambda strategy: strategy)


#: Operations that do not wait: only these may be followed at once by the next.
SYNCHRONOUS = (
    Write,
    WriteLines,
    SendNowait,
    SetWaterMarks,
    Allow,
    Block,
    Unblock,
    Fail,
    NoSettle,
)


# -- the model -----------------------------------------------------------------------


class State(enum.Enum):
    OPEN = "open"
    EOF = "half-closed"
    CLOSING = "closing"
    CLOSED = "closed"
    BROKEN = "broken"


class RecordingStream(ScriptedSendStream):
    """A scripted stream that records what its ``send()`` raised and whose
    ``send_eof()`` can be made to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.raised: list[BaseException] = []
        self.eof_failure: BaseException | None = None

    async def send(self, item: Buffer) -> None:
        try:
            await super().send(item)
        except BaseException as exc:
            self.raised.append(exc)
            raise

    async def send_eof(self) -> None:
        if self.eof_failure is not None:
            self.raised.append(self.eof_failure)
            raise self.eof_failure
        await super().send_eof()


@dataclass(eq=False)
class Waiter:
    """A call that may wait, running in its own task and cancel scope."""

    kind: type[Operation]
    scope: CancelScope = field(default_factory=CancelScope)
    data: bytes = b""
    #: for a send: its place among all sends; for a flush: bytes_written at the call
    number: int = 0
    #: for a close: whether it is the one that closes (not one waiting for it)
    leads: bool = False
    done: bool = False
    cancelled: bool = False
    error: Exception | None = None
    #: bytes_sent when a flush returned
    sent_at_return: int = -1
    #: whether the model has checked its error
    error_seen: bool = False


@dataclass
class Model:
    out: BufferedByteSendStream
    wire: RecordingStream
    task_group: TaskGroup
    enqueued: list[bytes] = field(default_factory=list)
    state: State = State.OPEN
    failure: Boom | None = None
    failure_seen: bool = False
    reported: bool = False
    dropped: bool = False
    waiters: list[Waiter] = field(default_factory=list)
    sends: int = 0
    sends_completed: list[int] = field(default_factory=list)
    payloads: int = 0
    settle_next: bool = True
    paused_before: bool = False
    written_before: int = 0
    sent_before: int = 0

    # -- helpers -----------------------------------------------------------------

    def payload(self, size: int) -> bytes:
        """Bytes that differ from the previous write's, so order errors show."""
        self.payloads += 1
        return bytes([0x41 + self.payloads % 26]) * size

    def pending(self, *kinds: type[Operation]) -> list[Waiter]:
        return [
            w for w in self.waiters if not w.done and (not kinds or w.kind in kinds)
        ]

    def expected_error(self) -> type[Exception] | None:
        """What a call that needs an open stream raises in the current state."""
        if self.state is State.OPEN:
            return None
        if self.state is State.BROKEN:
            return BrokenResourceError
        return ClosedResourceError

    def check_error(self, exc: BaseException) -> None:
        if isinstance(exc, BrokenResourceError):
            assert self.failure is not None
            assert exc.__cause__ is self.failure
            self.reported = True

    def expect(self, error: type[Exception] | None, call: Callable[[], Any]) -> bool:
        """Run a synchronous call; return whether it succeeded as expected."""
        if error is None:
            call()
            return True
        with pytest.raises(error) as caught:
            call()
        self.check_error(caught.value)
        return False

    async def expect_async(
        self, error: type[Exception], call: Callable[[], Awaitable[None]]
    ) -> None:
        with pytest.raises(error) as caught:
            await call()
        self.check_error(caught.value)

    def spawn(self, waiter: Waiter, call: Callable[[], Awaitable[None]]) -> None:
        async def run() -> None:
            with waiter.scope:
                try:
                    await call()
                except (BrokenResourceError, ClosedResourceError) as exc:
                    waiter.error = exc
                else:
                    # No checkpoint since the call returned: this is enqueue order.
                    if waiter.kind is Send:
                        self.enqueued.append(waiter.data)
                        self.sends_completed.append(waiter.number)
                    elif waiter.kind is Flush:
                        waiter.sent_at_return = self.out.statistics().bytes_sent
            waiter.cancelled = waiter.scope.cancelled_caught
            waiter.done = True

        self.waiters.append(waiter)
        self.task_group.start_soon(run)

    # -- the operations ------------------------------------------------------------

    async def apply(self, op: Operation) -> None:
        out, wire = self.out, self.wire
        stats = out.statistics()
        self.paused_before = stats.paused
        self.written_before = stats.bytes_written
        self.sent_before = stats.bytes_sent
        match op:
            case Write(size):
                data = self.payload(size)
                if self.expect(self.expected_error(), lambda: out.write(data)) and data:
                    self.enqueued.append(data)
            case WriteLines(sizes, bad_at):
                items: list[Any] = [self.payload(size) for size in sizes]
                error = self.expected_error()
                if bad_at is not None and bad_at < len(items):
                    items[bad_at] = "not bytes"
                    error = error or TypeError
                if self.expect(error, lambda: out.writelines(items)):
                    self.enqueued.extend(item for item in items if item)
            case SendNowait(size):
                data = self.payload(size)
                error = self.expected_error()
                if error is None and data and (stats.paused or self.pending(Send)):
                    error = WouldBlock
                if self.expect(error, lambda: out.send_nowait(data)) and data:
                    self.enqueued.append(data)
            case Send(size):
                data = self.payload(size)
                if (error := self.expected_error()) is not None:
                    await self.expect_async(error, lambda: out.send(data))
                elif data:
                    self.sends += 1
                    waiter = Waiter(Send, data=data, number=self.sends)
                    # Not paused and nobody in line: must not wait at all.
                    waiter.leads = not stats.paused and not self.pending(Send)
                    self.spawn(waiter, lambda: out.send(data))
            case Drain():
                if self.state in (State.OPEN, State.EOF) and not stats.paused:
                    await out.drain()  # returns at once: this would hang otherwise
                elif self.state is State.OPEN:
                    self.spawn(Waiter(Drain), out.drain)
                else:
                    await self.expect_async(
                        self.expected_error() or Exception, out.drain
                    )
            case Flush():
                if self.state in (State.OPEN, State.EOF):
                    self.spawn(Waiter(Flush, number=stats.bytes_written), out.flush)
                else:
                    await self.expect_async(
                        self.expected_error() or Exception, out.flush
                    )
            case SendEof():
                if (error := self.expected_error()) is not None:
                    await self.expect_async(error, out.send_eof)
                else:
                    self.spawn(Waiter(SendEof), out.send_eof)
            case SetWaterMarks(high, low):
                self.set_water_marks(high, low)
            case CancelWaiter(pick):
                await settle()  # a woken task cannot always be cancelled any more
                waiting = self.pending(Send, Drain, Flush, SendEof)
                if waiting:
                    waiter = waiting[pick % len(waiting)]
                    waiter.scope.cancel()
                    await settle()
                    assert waiter.done
                    assert waiter.cancelled, "a blocked call ignored its cancellation"
                    event(f"cancelled a waiting {waiter.kind.__name__}")
            case Allow(sends):
                wire.allow(sends)
            case Block():
                wire.block()
            case Unblock():
                wire.unblock()
            case Fail(after, in_send_eof):
                if self.failure is None:
                    self.failure = Boom(f"injected: {op}")
                    if in_send_eof:
                        wire.eof_failure = self.failure
                    elif after is None:
                        wire.fail_next(self.failure)
                    else:
                        wire.fail_after(after, self.failure)
            case Close():
                leads = self.state in (State.OPEN, State.EOF)
                if leads:
                    self.state = State.CLOSING
                self.spawn(Waiter(Close, leads=leads), out.aclose)
            case CancelClose():
                await settle()
                closing = self.pending(Close)
                for waiter in closing:
                    waiter.scope.cancel()
                if closing:
                    await settle()
                    lead = next(w for w in closing if w.leads)
                    assert lead.cancelled, "a closing aclose() ignored its cancellation"
                    assert wire.closed
                    self.dropped = True
                    event("aclose() cancelled")

            case NoSettle():
                self.settle_next = False
                return

        settled = self.settle_next or not isinstance(op, SYNCHRONOUS)
        self.settle_next = True
        if settled:
            await settle()
        self.refresh()
        self.check(op, settled=settled)

    def set_water_marks(self, high: int, low: int | None) -> None:
        out = self.out
        before = out.statistics()
        if low is not None and low > high:
            with pytest.raises(ValueError, match="low_water"):
                out.set_water_marks(high, low)
            after = out.statistics()
            assert (after.high_water, after.low_water, after.paused) == (
                before.high_water,
                before.low_water,
                before.paused,
            )
            return

        out.set_water_marks(high, low)
        expected_low = high // 4 if low is None else low
        assert (out.high_water, out.low_water) == (high, expected_low)
        if before.buffered_bytes > high:
            assert out.paused
        elif before.buffered_bytes <= expected_low:
            assert not out.paused
        else:
            assert out.paused == before.paused

    # -- bookkeeping and invariants --------------------------------------------------

    def refresh(self) -> None:
        """Bring the model's state up to date with the tasks that finished."""
        for waiter in self.waiters:
            if waiter.done and waiter.error is not None and not waiter.error_seen:
                waiter.error_seen = True
                event(f"{waiter.kind.__name__} woken by {type(waiter.error).__name__}")
                self.check_error(waiter.error)
        if any(w.kind is Close and w.done for w in self.waiters):
            self.state = State.CLOSED
        if self.state is State.OPEN and any(
            w.kind is SendEof and w.done and not w.cancelled and w.error is None
            for w in self.waiters
        ):
            self.state = State.EOF
        if self.failure is not None and self.failure in self.wire.raised:
            assert self.state is not State.CLOSING, (
                "aclose() still waits after a failure"
            )
            if not self.failure_seen:
                closing = any(w.kind is Close and w.leads for w in self.waiters)
                event("failure while closing" if closing else "failure while open")
            if not self.failure_seen and self.state in (State.OPEN, State.EOF):
                self.state = State.BROKEN
            self.failure_seen = True
            self.dropped = True

    def check(self, op: Operation, *, settled: bool) -> None:
        out, wire = self.out, self.wire
        stats = out.statistics()
        expected = b"".join(self.enqueued)
        data = wire.data

        # The wrapped stream got a prefix of the enqueued bytes, in enqueue order;
        # every write's bytes are contiguous in it.
        assert expected.startswith(data), f"wire diverged after {op}"
        assert stats.bytes_written == len(expected), "an enqueue was lost or partial"
        if self.dropped:
            assert stats.buffered_bytes == 0
        else:
            assert stats.bytes_sent == len(data)
            assert stats.send_calls == len(wire.pieces)
            assert stats.buffered_bytes == stats.bytes_written - stats.bytes_sent

        # Hysteresis, as a state ...
        if stats.paused:
            assert stats.buffered_bytes > stats.low_water
        if stats.buffered_bytes > stats.high_water:
            assert stats.paused
        # ... and as transitions with the right causes.
        if stats.paused and not self.paused_before:
            assert stats.bytes_written > self.written_before or isinstance(
                op, SetWaterMarks
            ), f"paused without an enqueue: {op}"
        if self.paused_before and not stats.paused:
            assert (
                stats.bytes_sent > self.sent_before
                or isinstance(op, SetWaterMarks)
                or self.dropped
            ), f"resumed without progress: {op}"

        # Senders are served first come, first served.
        assert self.sends_completed == sorted(self.sends_completed)
        if not settled:
            return

        # A send that found the stream not paused and nobody waiting did not wait.
        for waiter in self.waiters:
            if waiter.kind is Send and waiter.leads:
                assert waiter.done, "a send waited although the stream was not paused"
            if waiter.kind is Flush and waiter.sent_at_return >= 0:
                assert waiter.sent_at_return >= waiter.number

        # Who may still be waiting, and why.
        pending = self.pending()
        if self.state in (State.CLOSED, State.BROKEN):
            assert not pending, f"tasks left blocked on a {self.state.value} stream"
        if self.pending(Send, Drain):
            assert stats.paused
        for waiter in self.pending(Flush):
            assert stats.bytes_sent < waiter.number
        if self.pending(SendEof, Close):
            assert stats.bytes_sent < stats.bytes_written
        counted = self.pending(Send, Drain, Flush, SendEof) + [
            w for w in self.pending(Close) if w.leads
        ]
        assert stats.tasks_waiting == len(counted)


async def run_operations(
    operations: list[Operation], high_water: int, low_water: int | None
) -> None:
    wire = RecordingStream()
    wire.block()
    out = BufferedByteSendStream(wire, high_water=high_water, low_water=low_water)
    model: Model | None = None
    body_done = False
    exit_error: BrokenResourceError | None = None
    with fail_after(10):
        try:
            async with out:
                async with create_task_group() as tg:
                    model = Model(out, wire, tg)
                    await settle()
                    for op in operations:
                        await model.apply(op)
                    event(f"ended {model.state.value}")
                    if model.pending():
                        event("ended with tasks waiting")
                    # The wrapped stream now accepts everything: nobody may stay
                    # blocked.
                    wire.unblock()
                    await settle()
                    model.refresh()
                    model.check(Unblock(), settled=True)
                    assert not model.pending(), "tasks still blocked after unblocking"
                body_done = True
        except BrokenResourceError as exc:
            if not body_done:
                raise
            exit_error = exc

    assert model is not None
    fired = model.failure is not None and model.failure in wire.raised
    if exit_error is not None:
        # Raised on leaving the block: only a failure nobody had reported.
        assert exit_error.__cause__ is model.failure
        assert not model.reported
        event("unreported failure raised on exit")
    else:
        assert model.reported or not fired, "a failure was never reported"
    assert wire.closed
    assert out.statistics().tasks_waiting == 0
    if not model.dropped and not fired:
        assert wire.data == b"".join(model.enqueued), "bytes lost on a graceful close"


@st.composite
def water_marks(draw: st.DrawFn) -> tuple[int, int | None]:
    high = draw(st.integers(0, 64))
    return high, draw(st.none() | st.integers(0, high))


@settings(
    max_examples=STREAM_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    operations=st.lists(operations, min_size=MIN_OPERATIONS, max_size=MAX_OPERATIONS),
    marks=water_marks(),
    # Whether the flush task ends whenever it parks (its idle time is 0), so that
    # writes keep starting new ones; else it ends after an idle second.
    idle_exit_now=st.booleans(),
)
# Interleavings too rare to count on drawing: a send_nowait() or a write() between a
# resume and the woken sender's turn.
@example(
    operations=[Write(11), Send(5), NoSettle(), SetWaterMarks(100, 50), SendNowait(3)],
    marks=(10, 0),
    idle_exit_now=False,
)
@example(
    operations=[Write(11), Send(5), NoSettle(), SetWaterMarks(100, 50), Write(200)],
    marks=(10, 0),
    idle_exit_now=False,
)
def test_random_operations_keep_the_contract(
    anyio_backend: tuple[str, dict[str, Any]],
    operations: list[Operation],
    marks: tuple[int, int | None],
    idle_exit_now: bool,
) -> None:
    backend, options = anyio_backend
    if idle_exit_now:
        event("the flush task ends whenever it parks")
    with pytest.MonkeyPatch.context() as monkeypatch:
        if idle_exit_now:
            monkeypatch.setattr(drainpipe._parking, "IDLE_EXIT", 0.0)
        anyio.run(
            run_operations, operations, *marks, backend=backend, backend_options=options
        )


# -- the synchronous core ----------------------------------------------------------------


class SendBufferMachine(RuleBasedStateMachine):
    """SendBuffer against a model that counts bytes the plain way.

    Pieces are taken and marked sent in order, as the flush task does, but more than
    one may be in flight.
    """

    def __init__(self) -> None:
        super().__init__()
        self.buffer = SendBuffer()
        self.slice_large = False
        self.chunks: list[bytes] = []
        #: stream offsets where a chunk starts, and the end of the last one
        self.boundaries: list[int] = [0]
        self.in_flight: deque[int] = deque()
        self.taken_up_to = 0
        self.marked = 0
        self.dropped = 0
        self.paused = False
        self.high = DEFAULT_HIGH_WATER
        self.low = DEFAULT_HIGH_WATER // 4
        self.writable = True
        self.flush_idle = False
        self.senders_waiting = False

    @property
    def written(self) -> int:
        return self.boundaries[-1]

    @property
    def buffered(self) -> int:
        return self.written - self.marked - self.dropped

    def stream(self, start: int, end: int) -> bytes:
        """The enqueued bytes from ``start`` to ``end``."""
        first = bisect_right(self.boundaries, start) - 1
        last = bisect_right(self.boundaries, end - 1)
        joined = b"".join(self.chunks[first:last])
        offset = self.boundaries[first]
        return joined[start - offset : end - offset]

    @initialize(
        high=st.integers(0, 2 * MAX_PIECE),
        low_fraction=st.none() | st.floats(0, 1),
        slice_large=st.booleans(),
    )
    def create(self, high: int, low_fraction: float | None, slice_large: bool) -> None:
        low = None if low_fraction is None else int(high * low_fraction)
        self.buffer = SendBuffer(high, low, slice_large=slice_large)
        self.high, self.low = high, high // 4 if low is None else low
        self.slice_large = slice_large

    @rule(
        size=st.one_of(
            st.integers(1, 200),
            st.integers(LARGE_CHUNK - 2, LARGE_CHUNK + 2),
            st.integers(MAX_PIECE - 2, MAX_PIECE + 2),
            st.integers(MAX_PIECE * 2, MAX_PIECE * 3),
        )
    )
    def enqueue(self, size: int) -> None:
        data = bytes([len(self.chunks) % 251]) * size
        self.buffer.enqueue(data)
        self.record_enqueued(data)

    @rule(size=st.integers(1, LARGE_CHUNK + 2), by_send=st.booleans())
    def append_like_the_shell(self, size: int, by_send: bool) -> None:
        """The shell's one-frame write() or send(): append and count without
        enqueue() while the limit allows, else enqueue()."""
        buffer = self.buffer
        data = bytes([len(self.chunks) % 251]) * size
        limit = buffer.limit if by_send else buffer.write_limit
        if size < LARGE_CHUNK and buffer.bytes_written + size <= limit:
            buffer.chunks.append(data)
            buffer.bytes_written += size
        elif by_send and (self.paused or self.senders_waiting):
            return  # send() would wait for its turn
        else:
            buffer.enqueue(data)
        self.record_enqueued(data)

    def record_enqueued(self, data: bytes) -> None:
        size = len(data)
        self.chunks.append(data)
        self.boundaries.append(self.written + size)
        if self.buffered > self.high:
            self.paused = True

    @rule()
    def take(self) -> None:
        piece = self.buffer.take()
        if self.taken_up_to == self.written:
            assert piece is None
            return
        assert piece is not None
        start, end = self.taken_up_to, self.taken_up_to + len(piece)
        assert len(piece) > 0
        assert bytes(piece) == self.stream(start, end), "out of order or corrupted"
        self.check_no_copy_and_no_split(piece, start)
        self.taken_up_to = end
        self.in_flight.append(len(piece))

    @rule()
    def take_batch(self) -> None:
        batch = self.buffer.take_batch()
        if self.taken_up_to == self.written:
            assert batch == []
            return
        assert batch
        start = self.taken_up_to
        for piece in batch:
            end = start + len(piece)
            assert len(piece) > 0
            assert bytes(piece) == self.stream(start, end), "out of order or corrupted"
            self.check_no_copy_and_no_split(piece, start)
            start = end
        size = start - self.taken_up_to
        # It grows until it holds MAX_BATCH bytes or MAX_BATCH_PIECES pieces, or
        # nothing is left to take.
        assert size - len(batch[-1]) < MAX_BATCH
        assert len(batch) <= MAX_BATCH_PIECES
        assert (
            size >= MAX_BATCH or len(batch) == MAX_BATCH_PIECES or start == self.written
        )
        self.taken_up_to = start
        self.in_flight.append(size)  # marked sent at once, like the flush task does

    def check_no_copy_and_no_split(self, piece: bytes | memoryview, start: int) -> None:
        end = start + len(piece)
        index = bisect_right(self.boundaries, start) - 1
        chunk = self.chunks[index] if self.boundaries[index] == start else None
        if chunk is not None and len(chunk) >= LARGE_CHUNK:
            # A large chunk is never copied: handed out whole, or sliced in place.
            if isinstance(piece, memoryview):
                assert self.slice_large
                assert piece.obj is chunk
                assert len(piece) == MAX_PIECE < len(chunk)
            else:
                assert piece is chunk
                assert len(chunk) <= MAX_PIECE or not self.slice_large
            return
        if isinstance(piece, memoryview):
            # The rest of a sliced large chunk, still not copied.
            assert self.slice_large
            assert chunk is None
            assert piece.obj is self.chunks[index]
            assert len(piece) <= MAX_PIECE
            return
        # Small chunks coalesced: never beyond a piece, never splitting a chunk...
        assert len(piece) <= MAX_PIECE
        assert end in self.boundaries
        # ...and as many as fit (the next one is large or would not fit).
        following = bisect_right(self.boundaries, end) - 1
        if chunk is not None and following < len(self.chunks):
            size = len(self.chunks[following])
            assert size >= LARGE_CHUNK or len(piece) + size > MAX_PIECE

    @precondition(lambda self: self.in_flight)
    @rule()
    def mark_sent(self) -> None:
        size = self.in_flight.popleft()
        self.marked += size
        ended = self.paused and self.buffered <= self.low
        if ended:
            self.paused = False
        assert self.buffer.mark_sent(size) is ended

    @rule(
        high=st.integers(0, 2 * MAX_PIECE),
        low=st.none() | st.integers(0, 2 * MAX_PIECE),
    )
    def set_water_marks(self, high: int, low: int | None) -> None:
        expected_low = high // 4 if low is None else low
        if expected_low > high:
            with pytest.raises(ValueError, match="low_water"):
                self.buffer.set_water_marks(high, low)
            return
        self.high, self.low = high, expected_low
        ended = False
        if self.buffered > high:
            self.paused = True
        elif self.paused and self.buffered <= expected_low:
            self.paused = False
            ended = True
        assert self.buffer.set_water_marks(high, low) is ended

    @rule(writable=st.booleans())
    def set_writable(self, writable: bool) -> None:
        self.writable = writable
        self.buffer.set_writable(writable)

    @rule(waiting=st.booleans())
    def set_senders_waiting(self, waiting: bool) -> None:
        self.senders_waiting = waiting
        self.buffer.set_senders_waiting(waiting)

    @rule(idle=st.booleans())
    def set_flush_idle(self, idle: bool) -> None:
        self.flush_idle = idle
        self.buffer.set_flush_idle(idle)

    @rule()
    def drop(self) -> None:
        assert self.buffer.drop() == self.buffered
        self.dropped += self.buffered
        self.taken_up_to = self.written
        self.in_flight.clear()
        self.paused = False

    @invariant()
    def counters_match_the_model(self) -> None:
        buffer = self.buffer
        assert buffer.bytes_written == self.written
        assert buffer.bytes_sent == self.marked
        assert buffer.buffered_bytes == self.buffered
        assert buffer.buffered_bytes == (
            buffer.bytes_written - buffer.bytes_sent - self.dropped
        )
        assert (buffer.high_water, buffer.low_water) == (self.high, self.low)

    @invariant()
    def paused_follows_hysteresis(self) -> None:
        assert self.buffer.paused is self.paused

    @invariant()
    def the_limits_let_through_only_appends_that_need_nothing_more(self) -> None:
        # A send() may append while it leaves the buffer at or below high_water and
        # the stream is open, not paused, with its flush task awake and no sender
        # waiting; a write() also while paused (enqueue() would change nothing
        # more) or with senders waiting.
        no_room = -1 if not self.writable or self.flush_idle else None
        below_high = self.marked + self.dropped + self.high
        buffer = self.buffer
        if no_room is not None:
            assert (buffer.limit, buffer.write_limit) == (no_room, no_room)
        elif self.paused:
            assert (buffer.limit, buffer.write_limit) == (-1, sys.maxsize)
        elif self.senders_waiting:
            assert (buffer.limit, buffer.write_limit) == (-1, below_high)
        else:
            assert (buffer.limit, buffer.write_limit) == (below_high, below_high)

    @invariant()
    def has_queued_when_bytes_wait_to_be_taken(self) -> None:
        assert self.buffer.has_queued is (self.taken_up_to < self.written)


SendBufferMachine.TestCase.settings = settings(
    max_examples=500, stateful_step_count=40, deadline=None
)
TestSendBuffer = SendBufferMachine.TestCase
