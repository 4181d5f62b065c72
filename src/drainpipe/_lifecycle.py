"""The stream's lifecycle and its waiters, with no I/O.

Which call is allowed in which state, what each transition does to the buffer and
which waiting tasks it wakes are decided here, in one place, the way h11 keeps its
state machine apart from I/O. The async shell (``_stream.py``) creates no state of
its own: it asks :class:`Lifecycle` whether a call may go on, waits on the events
that :class:`Waiters` hands out, and reports what the wrapped stream did.

The states::

    NEW --enter--> OPEN --begin_eof--> EOF
                    |  \\<--eof_refused--/ |
                    |                      |
                    +----begin_close-------+--> CLOSING --close--> CLOSED
    any state but CLOSED --fail--> BROKEN --close--> CLOSED
    NEW --close (aclose before entering)--> CLOSED

``close`` is allowed from every state; ``fail`` after ``close`` is ignored (a
failure of the wrapped stream that drainpipe closed itself is no news).
"""

from __future__ import annotations

import enum
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Generic, NoReturn, Protocol, TypeVar

from anyio import BrokenResourceError, ClosedResourceError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._core import SendBuffer


class State(enum.Enum):
    NEW = "not entered yet"
    OPEN = "open"
    EOF = "half-closed"
    CLOSING = "closing"
    CLOSED = "closed"
    BROKEN = "broken"


# Module-level aliases keep the identity checks on hot paths to one global load.
NEW = State.NEW
OPEN = State.OPEN
EOF = State.EOF
CLOSING = State.CLOSING
CLOSED = State.CLOSED
BROKEN = State.BROKEN


class CloseAction(enum.Enum):
    """What :meth:`Lifecycle.begin_close` tells ``aclose()`` to do."""

    #: already closed: nothing to do
    NOTHING = "nothing"
    #: never entered: close the wrapped stream
    CLOSE_WRAPPED = "close the wrapped stream"
    #: another task is closing: wait for it
    WAIT_FOR_CLOSE = "wait for the other close"
    #: broken: close forcefully, then report the failure unless reported
    CLOSE_BROKEN = "close forcefully"
    #: open or half-closed: flush, then close gracefully
    FLUSH_THEN_CLOSE = "flush, then close"


class Wakeable(Protocol):
    """What :class:`Waiters` needs of an event: AnyIO's :class:`~anyio.Event`."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...


_Event = TypeVar("_Event", bound=Wakeable)


class Waiters(Generic[_Event]):
    """The tasks waiting on one stream, by what they wait for.

    * *resume* waiters (``drain()``) share one event, set when a pause ends;
    * *turn* waiters (``send()``) queue first come, first served; the head of the
      line is woken when the stream is not paused;
    * *sent* waiters (``flush()``, ``send_eof()``, ``aclose()``) each wait until
      ``bytes_sent`` reaches their target, and are woken only then;
    * *closed* waiters wait for the end of another task's close.

    :param new_event: makes the events the waiting tasks wait on
    :param on_line: called with whether any sender is in line, whenever a sender
        joins or leaves it
    """

    __slots__ = (
        "_closed",
        "_new_event",
        "_on_line",
        "_resumed",
        "sent",
        "tasks_waiting",
        "turns",
    )

    def __init__(
        self,
        new_event: Callable[[], _Event],
        on_line: Callable[[bool], object] | None = None,
    ) -> None:
        self._new_event = new_event
        self._on_line = on_line
        self._resumed: _Event | None = None
        self._closed: _Event | None = None
        #: the events of the tasks waiting in send(), in arrival order
        # Lists, not deques: an empty list is a small fraction of an empty deque,
        # and an idle stream has none of these waiters. The lines stay short.
        self.turns: list[_Event] = []
        #: (target, event) of each task waiting until bytes_sent reaches target,
        #: sorted by target
        self.sent: list[tuple[int, _Event]] = []
        #: tasks waiting in any of the above
        self.tasks_waiting = 0

    def resumed(self) -> _Event:
        """The event set when the current pause ends."""
        if self._resumed is None:
            self._resumed = self._new_event()

        return self._resumed

    def closed(self) -> _Event:
        """The event set when the stream is closed."""
        if self._closed is None:
            self._closed = self._new_event()

        return self._closed

    def queue_for_turn(self) -> _Event:
        """Queue a sender at the end of the line; return its event."""
        turn = self._new_event()
        self.turns.append(turn)
        self._line_changed()
        return turn

    def take_turn(self) -> None:
        """The head of the line has had its turn: remove it."""
        del self.turns[0]
        self._line_changed()

    def _line_changed(self) -> None:
        if self._on_line is not None:
            self._on_line(bool(self.turns))

    def requeue_at_head(self) -> _Event:
        """Give the head of the line, woken but paused again before it ran, a new
        event to wait on, keeping its place."""
        turn = self._new_event()
        self.turns[0] = turn
        return turn

    def leave_line(self, turn: _Event, paused: bool) -> None:
        """Remove a sender that gives up (cancelled or woken by a close) and, if
        its turn had come, pass it on."""
        if turn in self.turns:
            self.turns.remove(turn)
            self._line_changed()
            self.wake_next_sender(paused)

    def wake_next_sender(self, paused: bool) -> None:
        if self.turns and not paused:
            self.turns[0].set()

    def wait_sent(self, target: int) -> _Event:
        """Register a task waiting until ``bytes_sent`` reaches ``target``."""
        waiter = (target, self._new_event())
        # Not in call order: flush() takes its target before a checkpoint,
        # aclose() right away, and trio may run two flush() calls in either order.
        # bisect is imported here, not at import time: see SendBuffer._fitting().
        from bisect import insort

        insort(self.sent, waiter, key=itemgetter(0))
        return waiter[1]

    def stop_waiting_sent(self, event: _Event) -> None:
        """Forget a sent waiter that gave up before it was woken."""
        if not event.is_set():
            for index, (_, waiting) in enumerate(self.sent):
                if waiting is event:
                    del self.sent[index]
                    return

    def on_sent(self, bytes_sent: int) -> None:
        """Wake the sent waiters whose target ``bytes_sent`` has reached."""
        sent = self.sent
        reached = 0
        while reached < len(sent) and sent[reached][0] <= bytes_sent:
            sent[reached][1].set()
            reached += 1

        if reached:
            del sent[:reached]

    def on_resume(self, paused: bool) -> None:
        """Wake the resume waiters and the next sender: a pause ended."""
        if self._resumed is not None:
            self._resumed.set()
            self._resumed = None

        self.wake_next_sender(paused)

    def wake_all(self) -> None:
        """Wake every waiting task (the stream broke or closed)."""
        if self._resumed is not None:
            self._resumed.set()
            self._resumed = None

        for _, event in self.sent:
            event.set()

        self.sent.clear()

        for turn in self.turns:
            turn.set()


class Lifecycle:
    """The stream's state, the failure that broke it, and the transitions.

    :param buffer: the stream's byte accounting (dropped on a failure or close)
    :param waiters: the stream's waiting tasks (woken by transitions)
    :param name: the stream's class name, for error messages
    """

    __slots__ = (
        "_buffer",
        "_name",
        "_waiters",
        "error",
        "error_reported",
        "on_fail",
        "state",
    )

    def __init__(self, buffer: SendBuffer, waiters: Waiters[Any], name: str) -> None:
        self._buffer = buffer
        self._waiters = waiters
        self._name = name
        self.state = NEW
        buffer.set_writable(False)
        #: the failure of the wrapped stream that broke the stream, if any
        self.error: BaseException | None = None
        #: whether a call has raised :attr:`error` yet
        self.error_reported = False
        #: called once each, with :attr:`error`, when the stream breaks (for
        #: code that owns the stream and must learn of a failure that no call
        #: reported, such as one of the flush task)
        self.on_fail: list[Callable[[BaseException], object]] = []

    def __repr__(self) -> str:
        return f"<Lifecycle {self.state.value}>"

    def _become(self, state: State) -> None:
        self.state = state
        self._buffer.set_writable(state is OPEN)

    # -- checks ----------------------------------------------------------------

    def check_writable(self) -> None:
        """Allow ``write()``, ``writelines()``, ``send()``, ``send_nowait()`` and
        ``send_eof()`` only while open."""
        if self.state is not OPEN:
            self.raise_unusable()

    def check_waitable(self) -> None:
        """Allow ``drain()`` and ``flush()`` while open or half-closed."""
        if self.state is not OPEN and self.state is not EOF:
            self.raise_unusable()

    def check_not_ended(self) -> None:
        """Allow waiting for bytes to be sent (``flush()``, ``send_eof()``,
        ``aclose()``) unless the stream broke or closed."""
        if self.state is BROKEN or self.state is CLOSED:
            self.raise_unusable()

    def check_woken(self) -> None:
        """After a wait: raise if the stream broke or closed meanwhile."""
        if self.state is not OPEN and self.state is not EOF:
            self.raise_woken()

    def check_woken_writable(self) -> None:
        """After ``send()``'s wait: raise unless still open (a ``send_eof()`` may
        have half-closed it meanwhile)."""
        if self.state is not OPEN:
            self.raise_woken()

    # -- transitions -----------------------------------------------------------

    def enter(self) -> None:
        """NEW -> OPEN.

        :raises RuntimeError: in any other state
        """
        if self.state is not NEW:
            raise RuntimeError(
                f"this {self._name} is {self.state.value}; "
                f"a stream can be entered only once"
            )

        self._become(OPEN)

    def begin_close(self) -> CloseAction:
        """Start ``aclose()``: say what it must do, entering CLOSED (never
        entered) or CLOSING (open or half-closed) on the way."""
        state = self.state
        if state is CLOSED:
            return CloseAction.NOTHING

        if state is NEW:
            self._become(CLOSED)
            return CloseAction.CLOSE_WRAPPED

        if state is CLOSING:
            return CloseAction.WAIT_FOR_CLOSE

        if state is BROKEN:
            return CloseAction.CLOSE_BROKEN

        self._become(CLOSING)
        return CloseAction.FLUSH_THEN_CLOSE

    def check_still_closing(self) -> None:
        """After ``aclose()``'s flush: raise if the stream broke, or another task
        closed it, meanwhile."""
        if self.state is not CLOSING:
            self.raise_woken()

    def close(self) -> None:
        """Any state -> CLOSED: drop the buffer and wake every waiter."""
        if self.state is not BROKEN:
            self._buffer.drop()

        self._become(CLOSED)
        self._waiters.wake_all()
        self._waiters.closed().set()

    def fail(self, exc: BaseException) -> None:
        """The wrapped stream failed: -> BROKEN, dropping the buffer, waking
        every waiter and calling the :attr:`on_fail` callbacks. Ignored once
        CLOSED (drainpipe closed it underneath)."""
        if self.state is CLOSED:
            return

        self.error = exc
        self._become(BROKEN)
        self._buffer.drop()
        self._waiters.wake_all()
        callbacks, self.on_fail = self.on_fail, []
        for callback in callbacks:
            callback(exc)

    def begin_eof(self) -> None:
        """OPEN -> EOF, once ``send_eof()`` has flushed.

        :raises ~anyio.ClosedResourceError: (or :exc:`~anyio.BrokenResourceError`)
            if the stream closed or broke during the flush
        """
        self.check_writable()
        self._become(EOF)

    def eof_refused(self) -> None:
        """EOF -> OPEN: the wrapped stream cannot half-close after all."""
        if self.state is EOF:
            self._become(OPEN)

    def eof_failed(self, exc: Exception) -> bool:
        """The wrapped stream's half-close raised ``exc``: break the stream if it
        is still half-closed and return ``True`` (then raise with
        :meth:`raise_broken`); return ``False`` if it closed or broke meanwhile
        (then re-raise ``exc``)."""
        if self.state is not EOF:
            return False

        self.fail(exc)
        return True

    # -- progress --------------------------------------------------------------

    def record_sent(self, size: int) -> bool:
        """The wrapped stream accepted ``size`` more bytes of a taken piece: count
        them and wake whoever waited for them. Counts nothing once CLOSED (the
        buffer was dropped).

        :return: ``True`` if this ended a pause

        """
        if self.state is CLOSED:
            return False

        buffer = self._buffer
        resumed = buffer.mark_sent(size)
        if resumed:
            self._waiters.on_resume(buffer.paused)

        self._waiters.on_sent(buffer.bytes_sent)
        return resumed

    def set_water_marks(self, high_water: int, low_water: int | None) -> None:
        """Change the watermarks; wake the waiters if that ended a pause."""
        if self._buffer.set_water_marks(high_water, low_water):
            self._waiters.on_resume(self._buffer.paused)

    # -- errors ----------------------------------------------------------------

    def raise_broken(self) -> NoReturn:
        self.error_reported = True
        raise BrokenResourceError(
            f"the wrapped stream failed: {self.error!r}"
        ) from self.error

    def raise_woken(self) -> NoReturn:
        """Raise for a task woken because the stream broke or closed meanwhile.

        A failure during the wait is reported even if another task has closed the
        stream since (it can only have happened during the wait: no wait starts on
        a broken or closed stream).
        """
        if self.error is not None:
            self.raise_broken()

        self.raise_unusable()

    def raise_unusable(self) -> NoReturn:
        state = self.state
        if state is BROKEN:
            self.raise_broken()

        if state is NEW:
            raise RuntimeError(
                f"this {self._name} has not been started: "
                f"use it inside 'async with {self._name}(...) as stream:'"
            )

        raise ClosedResourceError
