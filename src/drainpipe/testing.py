"""Test doubles for code that writes through a :class:`~drainpipe.BufferedByteSendStream`.

:class:`ScriptedSendStream` is a wrapped stream you can steer from a test: it records
every piece its ``send()`` accepts and can be told to hold sends back, to let a
given number through, to accept slowly, or to fail. :func:`buffered_scripted_stream`
builds a :class:`~drainpipe.BufferedByteSendStream` over one::

    async with buffered_scripted_stream(high_water=1024) as (out, wire):
        wire.block()
        out.write(b"x" * 2000)
        assert out.paused
        wire.unblock()
        await out.flush()
        assert wire.data == b"x" * 2000

.. versionadded:: 0.1
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from anyio import (
    BusyResourceError,
    ClosedResourceError,
    Event,
    sleep,
    wait_all_tasks_blocked,
)
from anyio.abc import ByteStream
from anyio.lowlevel import checkpoint

from ._stream import BufferedByteSendStream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from typing_extensions import Buffer

__all__ = ["ScriptedSendStream", "buffered_scripted_stream", "settle"]


class ScriptedSendStream(ByteStream):
    """A byte stream whose ``send()`` does what the test says.

    By default every ``send()`` checkpoints and then accepts its piece. Pieces are
    recorded in :attr:`pieces`, in order, as :class:`bytes`. Receiving is not
    supported (:meth:`receive` raises :exc:`NotImplementedError`); the class is a
    full :class:`~anyio.abc.ByteStream` only so that it can be half-closed.

    Concurrent ``send()`` calls raise :exc:`~anyio.BusyResourceError`, like real
    AnyIO streams.
    """

    def __init__(self) -> None:
        #: every piece accepted by :meth:`send`, in order
        self.pieces: list[bytes] = []
        #: whether :meth:`aclose` was called
        self.closed = False
        #: whether :meth:`send_eof` was called
        self.eof_sent = False
        #: seconds each :meth:`send` sleeps before accepting its piece
        self.delay = 0.0
        self._credit: int | None = None
        self._credit_changed = Event()
        self._failure: BaseException | None = None
        self._fail_after: int | None = None
        self._sending = False
        #: number of :meth:`send` calls currently waiting for credit
        self.waiting_sends = 0

    @property
    def data(self) -> bytes:
        """Everything accepted so far, joined."""
        return b"".join(self.pieces)

    def block(self) -> None:
        """Make :meth:`send` wait until :meth:`allow` or :meth:`unblock`."""
        self._credit = 0

    def allow(self, sends: int = 1) -> None:
        """Let ``sends`` more :meth:`send` calls through, then block again."""
        self._credit = (self._credit or 0) + sends
        self._notify()

    def unblock(self) -> None:
        """Let every :meth:`send` through from now on."""
        self._credit = None
        self._notify()

    def fail_next(self, exc: BaseException) -> None:
        """Make the next :meth:`send` raise ``exc`` (accepting nothing)."""
        self._failure = exc
        self._notify()

    def fail_after(self, size: int, exc: BaseException) -> None:
        """Accept ``size`` more bytes, then raise ``exc`` from the :meth:`send` that
        would go beyond them (recording the part of its piece that fitted)."""
        self._fail_after = len(self.data) + size
        self._failure = exc

    def _failure_due(self) -> bool:
        """Whether the next send fails at once (fail_next), even while blocked."""
        return self._failure is not None and self._fail_after is None

    def _notify(self) -> None:
        self._credit_changed.set()
        self._credit_changed = Event()

    async def send(self, item: Buffer) -> None:
        if self._sending:
            raise BusyResourceError("sending to")

        self._sending = True
        try:
            await checkpoint()
            while self._credit == 0 and not self._failure_due() and not self.closed:
                self.waiting_sends += 1
                try:
                    await self._credit_changed.wait()
                finally:
                    self.waiting_sends -= 1

            if self.closed:
                raise ClosedResourceError

            if self.delay:
                await sleep(self.delay)

            piece = bytes(item)
            if self._failure is not None:
                if self._fail_after is None:
                    failure, self._failure = self._failure, None
                    raise failure

                room = self._fail_after - len(self.data)
                if len(piece) > room:
                    if room:
                        self.pieces.append(piece[:room])
                    failure, self._failure = self._failure, None
                    self._fail_after = None
                    raise failure

            if self._credit:
                self._credit -= 1
            self.pieces.append(piece)
        finally:
            self._sending = False

    async def send_eof(self) -> None:
        if self.closed:
            raise ClosedResourceError

        self.eof_sent = True
        await checkpoint()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        raise NotImplementedError("ScriptedSendStream does not receive")

    async def aclose(self) -> None:
        self.closed = True
        self._notify()
        await checkpoint()


@asynccontextmanager
async def buffered_scripted_stream(
    *, high_water: int = 64 * 1024, low_water: int | None = None
) -> AsyncIterator[tuple[BufferedByteSendStream, ScriptedSendStream]]:
    """Enter a :class:`~drainpipe.BufferedByteSendStream` over a new
    :class:`ScriptedSendStream` and yield both."""
    wire = ScriptedSendStream()
    async with BufferedByteSendStream(
        wire, high_water=high_water, low_water=low_water
    ) as out:
        yield out, wire


async def settle() -> None:
    """Return once every other task of the event loop is blocked.

    Like :func:`anyio.wait_all_tasks_blocked`, but prompt on asyncio: that one sleeps
    0.1 s whenever it finds a task still runnable, which makes a test that settles
    after every step of a chain of wake-ups (a flush task waking a sender that
    wakes the next one...) take seconds. On trio it is
    :func:`anyio.wait_all_tasks_blocked`::

        async with buffered_scripted_stream(high_water=10) as (out, wire):
            wire.block()
            out.write(b"x" * 11)
            async with anyio.create_task_group() as tg:
                tg.start_soon(out.send, b"waits")
                await settle()
                assert out.statistics().tasks_waiting == 1
                wire.unblock()

    A task sleeping on a timer counts as blocked, so keep
    :attr:`ScriptedSendStream.delay` at zero when settling; a task that keeps
    running without ever blocking makes it wait for ever.

    .. versionadded:: 0.1
    """
    try:
        this_task = asyncio.current_task()
    except RuntimeError:  # not asyncio: trio's own wait is exact and prompt
        this_task = None

    if this_task is None:
        await wait_all_tasks_blocked()
        return

    while True:
        await checkpoint()
        for task in asyncio.all_tasks():
            # The same test as anyio's: a task is blocked while it waits on a
            # future that is not done yet.
            waiter = getattr(task, "_fut_waiter", None)
            if task is not this_task and (waiter is None or waiter.done()):
                break
        else:
            return
