"""The lifecycle and its waiters, without an event loop: which call is allowed in
which state, and which waiting tasks each transition wakes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from anyio import BrokenResourceError, ClosedResourceError

from drainpipe._core import SendBuffer
from drainpipe._lifecycle import CloseAction, Lifecycle, State, Waiters

if TYPE_CHECKING:
    from collections.abc import Callable


class FakeEvent:
    """A synchronous stand-in for anyio.Event."""

    def __init__(self) -> None:
        self.was_set = False

    def set(self) -> None:
        self.was_set = True

    def is_set(self) -> bool:
        return self.was_set


class Boom(Exception):
    pass


def make(high_water: int = 10) -> tuple[Lifecycle, Waiters[FakeEvent], SendBuffer]:
    buffer = SendBuffer(high_water)
    waiters: Waiters[FakeEvent] = Waiters(FakeEvent)
    return Lifecycle(buffer, waiters, "Stream"), waiters, buffer


def in_state(state: State) -> Lifecycle:
    """A lifecycle brought to ``state`` by its own transitions."""
    lifecycle, _, _ = make()
    return bring_to(state, lifecycle)


def bring_to(state: State, lifecycle: Lifecycle) -> Lifecycle:
    """``lifecycle``, new, brought to ``state`` by its own transitions."""
    if state is State.NEW:
        return lifecycle

    lifecycle.enter()
    if state is State.EOF:
        lifecycle.begin_eof()
    elif state is State.CLOSING:
        lifecycle.begin_close()
    elif state is State.CLOSED:
        lifecycle.close()
    elif state is State.BROKEN:
        lifecycle.fail(Boom())
    assert lifecycle.state is state
    return lifecycle


WHILE_OPEN: dict[State, type[BaseException] | None] = {
    State.NEW: RuntimeError,
    State.OPEN: None,
    State.EOF: ClosedResourceError,
    State.CLOSING: ClosedResourceError,
    State.CLOSED: ClosedResourceError,
    State.BROKEN: BrokenResourceError,
}

WHILE_OPEN_OR_HALF_CLOSED: dict[State, type[BaseException] | None] = {
    State.NEW: RuntimeError,
    State.OPEN: None,
    State.EOF: None,
    State.CLOSING: ClosedResourceError,
    State.CLOSED: ClosedResourceError,
    State.BROKEN: BrokenResourceError,
}

#: What each check raises in each state (None: allowed).
ALLOWED: dict[str, dict[State, type[BaseException] | None]] = {
    "check_writable": WHILE_OPEN,
    "check_waitable": WHILE_OPEN_OR_HALF_CLOSED,
    "check_woken": WHILE_OPEN_OR_HALF_CLOSED,
    "check_woken_writable": WHILE_OPEN,
    "check_not_ended": {
        State.NEW: None,
        State.OPEN: None,
        State.EOF: None,
        State.CLOSING: None,
        State.CLOSED: ClosedResourceError,
        State.BROKEN: BrokenResourceError,
    },
}


@pytest.mark.parametrize("state", list(State), ids=lambda state: state.name)
@pytest.mark.parametrize("check", list(ALLOWED))
def test_which_call_is_allowed_in_which_state(check: str, state: State) -> None:
    lifecycle = in_state(state)
    expected = ALLOWED[check][state]
    if expected is None:
        getattr(lifecycle, check)()
    else:
        with pytest.raises(expected):
            getattr(lifecycle, check)()


def test_using_a_stream_never_entered_says_to_use_async_with() -> None:
    with pytest.raises(RuntimeError, match=r"async with Stream\(\.\.\.\)"):
        in_state(State.NEW).check_writable()


@pytest.mark.parametrize(
    "state", [state for state in State if state is not State.NEW], ids=str
)
def test_a_stream_is_entered_only_once(state: State) -> None:
    with pytest.raises(RuntimeError, match=f"is {state.value}; .* entered only once"):
        in_state(state).enter()


@pytest.mark.parametrize(
    ("state", "action", "after"),
    [
        (State.NEW, CloseAction.CLOSE_WRAPPED, State.CLOSED),
        (State.OPEN, CloseAction.FLUSH_THEN_CLOSE, State.CLOSING),
        (State.EOF, CloseAction.FLUSH_THEN_CLOSE, State.CLOSING),
        (State.CLOSING, CloseAction.WAIT_FOR_CLOSE, State.CLOSING),
        (State.BROKEN, CloseAction.CLOSE_BROKEN, State.BROKEN),
        (State.CLOSED, CloseAction.NOTHING, State.CLOSED),
    ],
    ids=lambda value: getattr(value, "name", str(value)),
)
def test_what_aclose_does_in_each_state(
    state: State, action: CloseAction, after: State
) -> None:
    lifecycle = in_state(state)
    assert lifecycle.begin_close() is action
    assert lifecycle.state is after


def test_a_broken_stream_reports_its_failure_chained_and_once_marked() -> None:
    lifecycle = in_state(State.BROKEN)
    assert not lifecycle.error_reported
    with pytest.raises(BrokenResourceError) as caught:
        lifecycle.check_writable()
    assert isinstance(caught.value.__cause__, Boom)
    assert lifecycle.error_reported


def test_a_failure_after_close_is_ignored() -> None:
    lifecycle = in_state(State.CLOSED)
    lifecycle.fail(Boom())
    assert lifecycle.state is State.CLOSED
    assert lifecycle.error is None


def test_a_failure_calls_the_failure_callbacks_once() -> None:
    lifecycle = in_state(State.OPEN)
    called: list[BaseException] = []
    lifecycle.on_fail.append(called.append)
    failure = Boom()
    lifecycle.fail(failure)
    assert called == [failure]
    assert lifecycle.on_fail == []


def test_a_failure_during_a_wait_is_reported_even_after_a_close() -> None:
    lifecycle = in_state(State.BROKEN)
    lifecycle.close()
    with pytest.raises(BrokenResourceError):
        lifecycle.check_woken()
    with pytest.raises(ClosedResourceError):
        lifecycle.check_writable()  # a call starting now: closed is closed


def test_aclose_finds_the_stream_broken_or_closed_after_its_flush() -> None:
    lifecycle = in_state(State.CLOSING)
    lifecycle.check_still_closing()
    lifecycle.close()
    with pytest.raises(ClosedResourceError):
        lifecycle.check_still_closing()


def test_a_refused_half_close_reopens_the_stream() -> None:
    lifecycle = in_state(State.EOF)
    lifecycle.eof_refused()
    assert lifecycle.state is State.OPEN


def test_a_refused_half_close_after_a_close_leaves_it_closed() -> None:
    lifecycle = in_state(State.EOF)
    lifecycle.close()
    lifecycle.eof_refused()
    assert lifecycle.state is State.CLOSED


def test_a_failed_half_close_breaks_the_stream() -> None:
    lifecycle = in_state(State.EOF)
    assert lifecycle.eof_failed(Boom())
    assert lifecycle.state is State.BROKEN


def test_a_failed_half_close_after_a_close_is_re_raised_as_it_is() -> None:
    lifecycle = in_state(State.EOF)
    lifecycle.close()
    assert not lifecycle.eof_failed(Boom())
    assert lifecycle.state is State.CLOSED


# -- which waiters a transition wakes -------------------------------------------


def every_kind_of_waiter(
    waiters: Waiters[FakeEvent],
) -> dict[str, FakeEvent]:
    return {
        "resume": waiters.resumed(),
        "first turn": waiters.queue_for_turn(),
        "second turn": waiters.queue_for_turn(),
        "sent 5": waiters.wait_sent(5),
        "sent 50": waiters.wait_sent(50),
        "closed": waiters.closed(),
    }


def woken(events: dict[str, FakeEvent]) -> set[str]:
    return {name for name, event in events.items() if event.was_set}


@pytest.mark.parametrize(
    ("transition", "expected"),
    [
        (
            lambda lifecycle: lifecycle.close(),
            {"resume", "first turn", "second turn", "sent 5", "sent 50", "closed"},
        ),
        (
            lambda lifecycle: lifecycle.fail(Boom()),
            {"resume", "first turn", "second turn", "sent 5", "sent 50"},
        ),
        # 20 bytes queued at high_water 10, low_water 2: 5 sent is still paused
        (lambda lifecycle: lifecycle.record_sent(5), {"sent 5"}),
        # 18 sent ends the pause: the resume waiters and the head of the line
        (
            lambda lifecycle: lifecycle.record_sent(18),
            {"sent 5", "resume", "first turn"},
        ),
        (
            lambda lifecycle: lifecycle.set_water_marks(100, 50),
            {"resume", "first turn"},
        ),
        (lambda lifecycle: lifecycle.set_water_marks(10, 2), set()),
    ],
    ids=["close", "fail", "sent-still-paused", "sent-resume", "resume", "no-resume"],
)
def test_which_waiters_each_transition_wakes(
    transition: Callable[[Lifecycle], object], expected: set[str]
) -> None:
    lifecycle, waiters, buffer = make(high_water=10)
    lifecycle.enter()
    buffer.enqueue(b"x" * 20)
    assert buffer.take() == b"x" * 20
    events = every_kind_of_waiter(waiters)
    transition(lifecycle)
    assert woken(events) == expected


def test_close_drops_the_buffer_and_a_failure_drops_it_too() -> None:
    for transition in (Lifecycle.close, lambda lifecycle: lifecycle.fail(Boom())):
        lifecycle, _, buffer = make()
        lifecycle.enter()
        buffer.enqueue(b"x" * 20)
        transition(lifecycle)
        assert (buffer.buffered_bytes, buffer.has_queued, buffer.paused) == (
            0,
            False,
            False,
        )


def test_nothing_counts_as_sent_once_closed() -> None:
    lifecycle, _, buffer = make()
    lifecycle.enter()
    buffer.enqueue(b"x" * 5)
    buffer.take()
    lifecycle.close()
    assert lifecycle.record_sent(5) is False
    assert buffer.bytes_sent == 0


def test_a_sender_giving_up_at_the_head_passes_its_turn_on() -> None:
    _, waiters, _ = make()
    first = waiters.queue_for_turn()
    second = waiters.queue_for_turn()
    waiters.wake_next_sender(paused=False)
    assert (first.was_set, second.was_set) == (True, False)
    waiters.leave_line(first, paused=False)
    assert second.was_set
    assert list(waiters.turns) == [second]


def test_a_sender_giving_up_while_paused_wakes_nobody() -> None:
    _, waiters, _ = make()
    first = waiters.queue_for_turn()
    second = waiters.queue_for_turn()
    waiters.leave_line(first, paused=True)
    assert not second.was_set
    waiters.leave_line(first, paused=False)  # already gone: nothing happens
    assert not second.was_set


def test_a_woken_sender_paused_again_keeps_its_place() -> None:
    _, waiters, _ = make()
    first = waiters.queue_for_turn()
    second = waiters.queue_for_turn()
    renewed = waiters.requeue_at_head()
    assert list(waiters.turns) == [renewed, second]
    assert renewed is not first


def test_sent_waiters_are_woken_in_target_order_whatever_the_order_they_came() -> None:
    _, waiters, _ = make()
    late = waiters.wait_sent(30)
    early = waiters.wait_sent(10)
    waiters.on_sent(10)
    assert (early.was_set, late.was_set) == (True, False)
    waiters.on_sent(30)
    assert late.was_set


def test_a_sent_waiter_that_gives_up_is_forgotten() -> None:
    _, waiters, _ = make()
    gone = waiters.wait_sent(10)
    kept = waiters.wait_sent(10)
    waiters.stop_waiting_sent(gone)
    assert [event for _, event in waiters.sent] == [kept]
    waiters.on_sent(10)
    waiters.stop_waiting_sent(kept)  # woken: already gone, nothing happens
    assert not gone.was_set


def test_the_resume_event_is_shared_until_a_pause_ends() -> None:
    _, waiters, _ = make()
    first = waiters.resumed()
    assert waiters.resumed() is first
    waiters.on_resume(paused=False)
    assert first.was_set
    assert waiters.resumed() is not first


def test_every_change_of_the_line_of_senders_is_reported() -> None:
    reports: list[bool] = []
    waiters: Waiters[FakeEvent] = Waiters(FakeEvent, reports.append)
    first = waiters.queue_for_turn()
    second = waiters.queue_for_turn()
    waiters.take_turn()  # the first one's turn
    waiters.leave_line(first, paused=False)  # already out of the line: no change
    waiters.leave_line(second, paused=False)
    assert reports == [True, True, True, False]
    assert waiters.turns == []


@pytest.mark.parametrize("state", list(State))
def test_only_an_open_stream_lets_sends_and_writes_skip_the_checks(
    state: State,
) -> None:
    lifecycle, _, buffer = make()
    bring_to(state, lifecycle)
    expected = buffer.high_water if state is State.OPEN else -1
    assert (buffer.limit, buffer.write_limit) == (expected, expected)
