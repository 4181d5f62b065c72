"""How the flush task waits for the next write, and ends when idle.

A flush task parked for :data:`IDLE_EXIT` seconds ends, and the next write starts
a new one: a parked task and what it waits on are most of what an idle stream
would hold (the idle scenario of the performance page measures it). A
request/response exchange parks and wakes the flush task once per request, so the
idle timer must cost little there:

* :class:`LoopParking`, on asyncio (and uvloop): a bare future of the running
  loop, cheaper than an AnyIO event, and one loop timer serving every park;
* :class:`DeadlineParking`, elsewhere (trio): an AnyIO event, with the flush
  task's own cancel scope's deadline set for the park and lifted after.

Both have the same two steps: :meth:`prepare` starts a park and returns what a
write calls to wake it; :meth:`wait` returns ``True`` if a write woke it and
``False`` once it has been idle for :data:`IDLE_EXIT` seconds.
"""

from __future__ import annotations

import sys
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from ._lifecycle import CLOSED

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio import CancelScope, Event

    from ._lifecycle import Lifecycle

#: Seconds a flush task stays parked before it ends.
IDLE_EXIT = 1.0


def _resolve(future: Any, woken: bool) -> None:
    """Wake a flush task parked on ``future`` (a write, or its idle timer)."""
    if not future.done():
        future.set_result(woken)


class LoopParking:
    """Parking on asyncio (and uvloop): on a bare future of the running loop. One
    loop timer at a time serves every park: it is set when none is pending and,
    when it fires, ends a park that has lasted long enough or is set again for the
    park under way, so a park costs no timer of its own."""

    __slots__ = ("_future", "_loop", "_parked_at", "_timer")

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        self._future: Any = None
        self._parked_at = 0.0
        self._timer: Any = None

    def prepare(self) -> Callable[[], None]:
        loop = self._loop
        future = self._future = loop.create_future()
        self._parked_at = loop.time()
        if self._timer is None:
            self._timer = loop.call_at(self._parked_at + IDLE_EXIT, self._check)
        return partial(_resolve, future, True)

    async def wait(self) -> bool:
        try:
            return bool(await self._future)
        finally:
            self._future = None

    def _check(self) -> None:
        self._timer = None
        future = self._future
        if future is None or future.done():
            return  # not parked: the next park sets the timer again

        due = self._parked_at + IDLE_EXIT
        if self._loop.time() >= due:
            _resolve(future, False)
        else:
            self._timer = self._loop.call_at(due, self._check)

    def stop(self) -> None:
        """The flush task ends: no timer may outlive it."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class DeadlineParking:
    """Parking elsewhere (trio): on an AnyIO event, with the flush task's own
    cancel scope's deadline set to :data:`IDLE_EXIT` for the park only."""

    __slots__ = ("_event", "_lifecycle", "_scope")

    def __init__(self, scope: CancelScope, lifecycle: Lifecycle) -> None:
        self._scope = scope
        self._lifecycle = lifecycle
        self._event: Event | None = None

    def prepare(self) -> Callable[[], None]:
        event = self._event = anyio.Event()
        self._scope.deadline = anyio.current_time() + IDLE_EXIT
        return event.set

    async def wait(self) -> bool:
        assert self._event is not None
        try:
            await self._event.wait()
        except anyio.get_cancelled_exc_class():
            if self._lifecycle.state is CLOSED:
                raise  # closed: not the idle deadline

            return False

        self._scope.deadline = float("inf")
        # The deadline may have passed as the write woke it: the scope is then
        # cancelled and would cancel the next send, so end here.
        return not self._scope.cancel_called

    def stop(self) -> None:
        """Nothing outlives the flush task: its deadline is its scope's."""


def _running_asyncio_loop() -> Any:
    """The running asyncio (or uvloop) event loop, or ``None`` (trio). Neither is
    imported for this: if one is not imported, it does not run. Trio comes first:
    in guest mode on an asyncio loop that loop is running too, but trio's tasks
    cannot await its futures."""
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_run():
        return None

    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def parking_for(
    scope: CancelScope, lifecycle: Lifecycle
) -> LoopParking | DeadlineParking:
    """The parking for a flush task running in ``scope`` on the current loop."""
    loop = _running_asyncio_loop()
    if loop is None:
        return DeadlineParking(scope, lifecycle)

    return LoopParking(loop)
