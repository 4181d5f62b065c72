"""The async shell: :class:`BufferedByteSendStream` owns a flush task and its waiters.

All byte accounting lives in :class:`drainpipe._core.SendBuffer`; this module decides
only *when* to wait, wake and close.
"""

from __future__ import annotations

import sys
from time import perf_counter
from typing import TYPE_CHECKING, Any

# AnyIO loads its names lazily: the ones used here only once a stream exists are
# looked up as ``anyio.<name>`` at run time, so ``import drainpipe`` does not load
# AnyIO's task, synchronization, socket and low-level modules (see test_demo.py).
import anyio
from anyio import BrokenResourceError, WouldBlock
from anyio.abc import ByteSendStream

from ._checkpoints import wait
from ._core import DEFAULT_HIGH_WATER, HotPath, SendBuffer, check_send_timeout
from ._lifecycle import BROKEN, CLOSED, OPEN, CloseAction, Lifecycle, Waiters
from ._parking import parking_for
from ._transmit import SendTimedOut, choose_transmit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from types import TracebackType

    from anyio import CancelScope, Event
    from anyio.abc import AnyByteSendStream, TaskGroup
    from typing_extensions import Buffer, Self

    from ._statistics import BufferStatistics

#: How many times the flush task yields to the event loop after a send that left the
#: queue empty, before it parks until the next write wakes it. What usually comes
#: next (a producer woken by a resume refilling the queue, a reply letting its
#: caller write the next request) then finds the flush task still running instead
#: of paying a park and a wake, and the event loop polls for I/O a few more times
#: before it sleeps. Where a write to an idle stream cannot go to the socket
#: itself (see _write_through), this keeps a request/response round trip
#: (``python -m drainpipe bench --scenarios latency``) close to a direct send()'s.
#: With 2, trio's random task order sometimes runs the flush task's polls before
#: the writer and it parks anyway
#: (test_a_write_soon_after_the_buffer_empties_needs_no_wake). The cost is this
#: many steps of the flush task each time the stream goes idle, and none when the
#: event loop is busy anyway (see _BUSY_LOOP).
_POLLS_BEFORE_PARKING = 3

#: Seconds. The flush task polls only after a resume or after a send that took less
#: than this, its trip through the event loop included (a send in the latency
#: scenario takes a small fraction of it). A longer one means other tasks keep the
#: loop busy: each poll would cost them a task step, and the loop is not about to
#: sleep anyway. With many streams written one message at a time, polling after
#: every send nearly doubled the cost per message on asyncio; with this limit it
#: costs next to nothing (performance page).
_BUSY_LOOP = 0.000_2


def _accepts_any_buffer(send_stream: object) -> bool:
    """Whether ``send_stream`` is a socket or TLS stream, which take any bytes-like
    object. A TLS stream exists only once ``anyio.streams.tls`` (and with it
    :mod:`ssl`) has been imported, so it is not imported here for this check."""
    if isinstance(send_stream, anyio.abc.SocketStream):
        return True

    tls = sys.modules.get("anyio.streams.tls")
    return tls is not None and isinstance(send_stream, tls.TLSStream)


def _snapshot(data: Buffer) -> bytes:
    """Copy any bytes-like object into :class:`bytes` (``bytes`` itself is kept)."""
    if type(data) is bytes:
        return data

    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(
            f"data must be a bytes-like object, not {type(data).__name__}"
        ) from None

    with view:
        return view.tobytes()


class BufferedByteSendStream(HotPath, ByteSendStream):
    """A write-behind buffer with back-pressure in front of any AnyIO byte stream.

    :meth:`write` stores bytes and returns at once; a background *flush task*
    hands them to the wrapped stream, coalescing small writes into one ``send()``
    and passing large ones through without a copy. :meth:`send` and :meth:`drain`
    wait only while the stream is *paused*: it becomes paused when an enqueue
    leaves :attr:`buffered_bytes` above :attr:`high_water`, and stops being paused
    when :attr:`buffered_bytes` falls to :attr:`low_water` or below.

    The stream must be entered with ``async with``; the block owns the flush task::

        async with BufferedByteSendStream(tcp_stream) as out:
            for message in messages:
                out.write(message)
                await out.drain()

    On AnyIO's own TCP and UNIX socket streams (exactly those classes), the flush
    task hands the kernel up to 256 KiB of queued pieces at once with one
    :func:`os.writev` on the stream's socket, since AnyIO streams have no vectored
    send, and goes through the stream's ``send()`` whenever the socket is full or
    the stream is closing; it never writes past bytes the stream itself still
    holds, nor where the stream's ``send()`` would refuse. There, a write of less
    than 16 KiB to an idle stream (nothing buffered, the flush task waiting for
    work) goes to the socket at once, as with asyncio's transports, and only what
    the socket does not take is queued: a request reaches the socket as soon as
    with a direct ``send()``. This fast path relies on AnyIO's private attributes
    and is taken only when every probe of them succeeds. On any other stream, or
    with ``vectored=False``, the flush task calls ``send()`` once per piece.

    Leaving the block normally is :meth:`aclose` (flush everything, then close the
    wrapped stream). Leaving it by an exception (cancellation included) drops the
    buffer, closes the wrapped stream forcefully and lets the exception propagate
    unchanged. Until then the flush task keeps going even if the code around the
    block is cancelled, so cleanup that shields itself (``with
    anyio.CancelScope(shield=True):``) can still :meth:`flush` or :meth:`aclose`.

    If the wrapped stream's ``send()`` (or a write to its socket) raises, the
    stream is *broken*: the buffer
    is dropped, every waiting task is woken and every later call raises
    :exc:`~anyio.BrokenResourceError` whose ``__cause__`` is the original
    exception (once the stream has been closed, :exc:`~anyio.ClosedResourceError`).
    A failure that no call has reported yet is raised by :meth:`aclose` (and so on
    leaving the block normally): nothing is lost silently.

    Any number of tasks may use one stream; the bytes of one :meth:`write` or
    :meth:`send` stay contiguous and in enqueue order, and one writer at a time
    writes to the wrapped stream: the flush task, or a write to an idle stream.
    Like every AnyIO stream it is not thread-safe:
    from another thread, call it through :func:`anyio.from_thread.run_sync` or
    :func:`anyio.from_thread.run`.

    :param send_stream: the stream to write to: any
        :class:`~anyio.abc.ByteSendStream` or ``ObjectSendStream[bytes]``
    :param high_water: the high watermark in bytes (default 64 KiB)
    :param low_water: the low watermark in bytes (default ``high_water // 4``)
    :param send_timeout: seconds the wrapped stream may take to accept a queued
        piece (at most 256 KiB) before the stream breaks, for a peer that stops
        reading; ``None`` (the default) waits for ever. On a break, the buffer is
        dropped, the wrapped stream closed forcefully and every waiter woken, and
        every later call raises :exc:`~anyio.BrokenResourceError` whose
        ``__cause__`` is a :exc:`TimeoutError`. A peer that keeps reading at more
        than 256 KiB per ``send_timeout`` never trips it.
    :param vectored: ``False`` switches the vectored fast path to AnyIO's socket
        streams off: every piece then goes through the wrapped stream's ``send()``
    :raises TypeError: if a watermark is not an :class:`int`, ``send_timeout``
        not a number, or ``vectored`` not a :class:`bool`
    :raises ValueError: unless ``high_water >= 0`` and
        ``0 <= low_water <= high_water``, or if ``send_timeout`` is not above 0
        (NaN included)

    .. versionadded:: 0.1
    """

    # Slots, not the instance dictionary (which a subclass of the compiled core would
    # otherwise allocate for every stream: the idle scenario of the performance
    # page). AnyIO's TypedAttributeProvider has no __slots__, so arbitrary
    # attributes can still be set.
    __slots__ = (
        "_flush_scope",
        "_lifecycle",
        "_send_timeout",
        "_task_group",
        "_transmit",
        "_waiters",
        "_wake_parked",
        "send_stream",
    )

    def __init__(
        self,
        send_stream: AnyByteSendStream,
        *,
        high_water: int = DEFAULT_HIGH_WATER,
        low_water: int | None = None,
        send_timeout: float | None = None,
        vectored: bool = True,
    ) -> None:
        if not isinstance(vectored, bool):
            raise TypeError(f"vectored must be a bool, not {type(vectored).__name__}")

        self._send_timeout = check_send_timeout(send_timeout)

        #: the wrapped stream
        self.send_stream = send_stream
        # Only streams known to accept any bytes-like object get memoryview slices
        # of large writes; a memory object stream would hand them to its receiver.
        self._send_buffer = buffer = SendBuffer(
            high_water,
            low_water,
            slice_large=_accepts_any_buffer(send_stream),
        )
        self._waiters: Waiters[Event] = Waiters(anyio.Event, buffer.set_senders_waiting)
        self._lifecycle = Lifecycle(buffer, self._waiters, type(self).__name__)
        self._transmit = choose_transmit(
            send_stream, buffer, self._lifecycle, vectored=vectored
        )
        self._task_group: TaskGroup | None = None
        # The running flush task's cancel scope; None while no flush task runs.
        self._flush_scope: CancelScope | None = None
        # Until the first write there is no flush task: that write starts it, and
        # it ends when idle (_parking.py). While it is idle, the buffer sends every
        # write through the checks that wake it.
        buffer.set_flush_idle(True)
        # Wakes the parked flush task; None unless it is parked.
        self._wake_parked: Callable[[], object] | None = None

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self._lifecycle.state.value} "
            f"buffered_bytes={self._send_buffer.buffered_bytes} "
            f"send_stream={self.send_stream!r}>"
        )

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._lifecycle.enter()
        try:
            task_group = anyio.create_task_group()
            await task_group.__aenter__()
        except BaseException:
            self._lifecycle.close()
            raise

        self._task_group = task_group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        assert self._task_group is not None
        try:
            if exc_val is None:
                await self.aclose()
            else:
                await self._close_forcefully()
        finally:
            # The flush task has been cancelled and never raises, so the task group
            # has nothing to wrap in an ExceptionGroup; shielding keeps an outer
            # cancellation from turning this short wait into a second exception.
            self._task_group.cancel_scope.shield = True
            await self._task_group.__aexit__(None, None, None)

    async def aclose(self) -> None:
        """Flush everything, then close the wrapped stream. Idempotent.

        If cancelled (for example by ``with anyio.move_on_after(5):``), the
        remaining bytes are dropped and the wrapped stream is closed forcefully
        before the cancellation propagates: a bounded close always ends closed.

        :raises ~anyio.BrokenResourceError: if a failure of the wrapped stream has
            not been reported by any earlier call (it is raised once)
        """
        lifecycle = self._lifecycle
        action = lifecycle.begin_close()
        if action is CloseAction.NOTHING:
            await anyio.lowlevel.checkpoint()
        elif action is CloseAction.CLOSE_WRAPPED:
            await self.send_stream.aclose()
        elif action is CloseAction.WAIT_FOR_CLOSE:
            try:
                await wait(self._waiters.closed())
            except BaseException:
                # Bounded like the close it waits for: else leaving the block would
                # wait for that close's flush, shielded, for as long as it takes.
                await self._close_forcefully()
                raise
        elif action is CloseAction.CLOSE_BROKEN:
            await self._close_forcefully()
            if not lifecycle.error_reported:
                lifecycle.raise_broken()
        else:
            try:
                await self._wait_sent(self._send_buffer.bytes_written)
                lifecycle.check_still_closing()
            except BaseException:
                await self._close_forcefully()
                raise

            self._close_now()
            await self._close_wrapped()

    async def _close_wrapped(self) -> None:
        """Close the wrapped stream gracefully, within ``send_timeout`` if set: a
        TLS stream's close waits for the peer's answer, which a peer that stopped
        reading never sends.

        :raises ~anyio.BrokenResourceError: from a :exc:`TimeoutError` if the close
            took longer (the wrapped stream is then closed forcefully)
        """
        seconds = self._send_timeout
        if seconds is None:
            await self.send_stream.aclose()
            return

        with anyio.CancelScope(deadline=anyio.current_time() + seconds) as limit:
            await self.send_stream.aclose()

        if limit.cancelled_caught:
            await anyio.aclose_forcefully(self.send_stream)
            raise BrokenResourceError(
                "the wrapped stream's close took longer than send_timeout"
            ) from TimeoutError(
                f"the wrapped stream did not close within {seconds:g} seconds "
                f"(send_timeout)"
            )

    async def _close_forcefully(self) -> None:
        """Drop the buffer, stop the flush task, wake every waiter and close the
        wrapped stream at once."""
        self._close_now()
        await anyio.aclose_forcefully(self.send_stream)

    def _close_now(self) -> None:
        """Drop the buffer, stop the flush task and wake every waiter."""
        self._lifecycle.close()
        if self._flush_scope is not None:
            self._flush_scope.cancel()

    # -- writing -----------------------------------------------------------------

    def _write_slow(self, data: Buffer) -> None:
        if type(data) is not bytes:
            self._lifecycle.check_writable()
            data = _snapshot(data)

        self._enqueue(data)

    def _enqueue(self, data: bytes) -> None:
        """Enqueue ``data`` if the stream is open and ``data`` is not empty, waking
        the flush task if it is idle (and first handing the socket what it takes
        of ``data``, if it may: :meth:`_write_through`): what ``write()`` and
        ``send()`` do when their one-frame case does not apply."""
        self._lifecycle.check_writable()
        if not data:
            return

        buffer = self._send_buffer
        if not buffer.flush_idle:
            buffer.enqueue(data)
            return

        if buffer.can_write_through(len(data)):
            data = self._write_through(data)
            if self._lifecycle.state is BROKEN:
                return

        if data:
            buffer.enqueue(data)
        # Also after a write that went through whole: the writes that follow in
        # this task step are then queued and coalesced by the flush task, not
        # written one system call each.
        self._wake_flush_task()

    def _write_through(self, data: bytes) -> bytes:
        """Hand ``data`` to the socket at once, as asyncio's transports do when
        their buffer is empty; return what it did not take, to be queued.

        Only where :meth:`SendBuffer.can_write_through` allows it, so nothing is
        overtaken and one task writes at a time. A request then reaches the
        socket in the writer's own task step, as with a direct ``send()``, not
        an event-loop iteration later in the flush task: the latency scenario of
        the performance page. A failure breaks the stream, as if the flush task
        had met it.
        """
        try:
            written = self._transmit.write_now(data)
        except Exception as exc:  # noqa: BLE001 - kept and re-raised to every caller
            self._lifecycle.fail(exc)
            return b""

        if not written:
            return data

        self._send_buffer.count_written_through(written)
        return data[written:]

    def writelines(self, data: Iterable[Buffer]) -> None:
        """Enqueue every item of ``data``, all or none; never blocks.

        Every item is validated (and mutable buffers copied) before anything is
        enqueued, so a bad item leaves the buffer as it was.

        :raises TypeError: if an item is not a bytes-like object
        :raises ValueError: if an item is a released :class:`memoryview`
        :raises ~anyio.ClosedResourceError: after :meth:`aclose` or
            :meth:`send_eof`
        :raises ~anyio.BrokenResourceError: if the wrapped stream failed
        :raises RuntimeError: if the stream has not been entered with
            ``async with``
        """
        self._lifecycle.check_writable()

        chunks = [_snapshot(item) for item in data]
        buffer = self._send_buffer
        if buffer.can_write_through(sum(map(len, chunks))):
            # As one write, which may go to the socket at once (_write_through).
            self._enqueue(b"".join(chunks))
            return

        enqueue = buffer.enqueue
        for chunk in chunks:
            if chunk:
                enqueue(chunk)

        if buffer.flush_idle and buffer.has_queued:
            self._wake_flush_task()

    def send_nowait(self, item: Buffer) -> None:
        """Enqueue ``item`` if the stream is not paused, else raise
        :exc:`~anyio.WouldBlock` and enqueue nothing.

        Like a memory object stream's ``send_nowait()`` whose capacity is
        :attr:`high_water`: the tool for broadcasters that skip or evict a slow
        peer. It also refuses while tasks are waiting in :meth:`send`, so it never
        overtakes them.

        :raises ~anyio.WouldBlock: if the stream is paused
        :raises TypeError: if ``item`` is not a bytes-like object
        :raises ValueError: if ``item`` is a released :class:`memoryview`
        :raises ~anyio.ClosedResourceError: after :meth:`aclose` or
            :meth:`send_eof`
        :raises ~anyio.BrokenResourceError: if the wrapped stream failed
        :raises RuntimeError: if the stream has not been entered with
            ``async with``
        """
        if self._lifecycle.state is not OPEN:
            self._lifecycle.raise_unusable()

        if type(item) is not bytes:
            item = _snapshot(item)

        if item:
            if self._send_buffer.paused or self._waiters.turns:
                raise WouldBlock

            self._enqueue(item)

    async def _send_slow(self, item: Buffer) -> None:
        """The checks, and the wait for its turn while paused or behind other
        senders."""
        self._lifecycle.check_writable()
        if type(item) is not bytes:
            item = _snapshot(item)

        if not item:
            return

        if self._send_buffer.paused or self._waiters.turns:
            await self._wait_for_turn()
            self._enqueue(item)
            self._waiters.wake_next_sender(self._send_buffer.paused)
        else:
            self._enqueue(item)

    async def _wait_for_turn(self) -> None:
        """Wait, in first-come order, until this sender may enqueue."""
        waiters = self._waiters
        turn = waiters.queue_for_turn()
        waiters.tasks_waiting += 1
        try:
            while True:
                await wait(turn)
                self._lifecycle.check_woken_writable()
                if not self._send_buffer.paused:
                    break

                # A write() paused the stream again before this task ran: keep the
                # place at the head of the line and wait for the next resume.
                turn = waiters.requeue_at_head()
        except BaseException:
            waiters.leave_line(turn, self._send_buffer.paused)
            raise
        finally:
            waiters.tasks_waiting -= 1

        waiters.take_turn()

    # -- waiting -----------------------------------------------------------------

    async def _wait_for_resume(self) -> None:
        self._lifecycle.check_waitable()
        if not self._send_buffer.paused:
            return

        waiters = self._waiters
        waiters.tasks_waiting += 1
        try:
            await wait(waiters.resumed())
        finally:
            waiters.tasks_waiting -= 1

        self._lifecycle.check_woken()

    async def flush(self) -> None:
        """Wait until every byte enqueued before this call has been accepted by the
        wrapped stream.

        "Accepted by the wrapped stream" is not "delivered to the peer": a socket
        stream's ``send()`` returns once the kernel has the bytes. Always yields to
        the event loop, and raises a cancellation pending when its wait ends even if
        the bytes went out first. Cancelling it has no other effect: the bytes stay
        queued.

        :raises ~anyio.ClosedResourceError: if the stream is closed, also while
            waiting
        :raises ~anyio.BrokenResourceError: if the wrapped stream failed, also
            while waiting
        :raises RuntimeError: if the stream has not been entered with
            ``async with``
        """
        self._lifecycle.check_waitable()
        target = self._send_buffer.bytes_written
        await anyio.lowlevel.checkpoint()
        await self._wait_sent(target)

    async def _wait_sent(self, target: int) -> None:
        """Wait until ``bytes_sent`` reaches ``target``."""
        lifecycle = self._lifecycle
        lifecycle.check_not_ended()
        if self._send_buffer.bytes_sent >= target:
            return

        waiters = self._waiters
        sent = waiters.wait_sent(target)
        waiters.tasks_waiting += 1
        try:
            await wait(sent)
        finally:
            waiters.tasks_waiting -= 1
            waiters.stop_waiting_sent(sent)

        if self._send_buffer.bytes_sent >= target:
            return  # even if the stream broke or closed since: these bytes are out

        lifecycle.raise_woken()

    async def send_eof(self) -> None:
        """Flush everything, then half-close the wrapped stream (its
        ``send_eof()``); later writes raise :exc:`~anyio.ClosedResourceError`.

        If cancelled while flushing, the stream stays open and nothing is lost.

        :raises NotImplementedError: if the wrapped stream cannot half-close (it has
            no ``send_eof()``, or it is a TLS stream); the stream stays usable
        :raises ~anyio.ClosedResourceError: if the stream is closed or already
            half-closed
        :raises ~anyio.BrokenResourceError: if the wrapped stream failed, also if
            its ``send_eof()`` fails (the stream is then broken)
        :raises RuntimeError: if the stream has not been entered with
            ``async with``
        """
        self._lifecycle.check_writable()

        half_close: Callable[[], Any] | None = getattr(
            self.send_stream, "send_eof", None
        )
        if half_close is None:
            raise NotImplementedError(
                f"{type(self.send_stream).__name__} has no send_eof(): "
                f"it cannot be half-closed"
            )

        await anyio.lowlevel.checkpoint()
        buffer = self._send_buffer
        while buffer.bytes_sent < buffer.bytes_written:
            await self._wait_sent(buffer.bytes_written)

        lifecycle = self._lifecycle
        lifecycle.begin_eof()
        try:
            await half_close()
        except NotImplementedError:
            lifecycle.eof_refused()
            raise
        except Exception as exc:
            # Trio's socket streams raise a raw OSError here after a peer reset.
            if not lifecycle.eof_failed(exc):
                raise

            lifecycle.raise_broken()

    # -- the flush task ----------------------------------------------------------

    async def _flush_task(self) -> None:
        take = self._transmit.take
        transmit = self._transmit.transmit
        lifecycle = self._lifecycle
        polls = 0
        # Shielded: only _close_now() stops the flush task (and its own idle
        # deadline on trio, see _parking.py). A cancellation of the code around the
        # block must leave it running, or a shielded flush() or aclose() in that
        # code's cleanup would wait for it for ever.
        with anyio.CancelScope(shield=True) as scope:
            if lifecycle.state is CLOSED:
                return  # closed between the write that started it and now

            self._flush_scope = scope
            parking = parking_for(scope, lifecycle)
            ended_idle = False
            try:
                while True:
                    piece = take()
                    if not piece:
                        if polls:
                            # See _POLLS_BEFORE_PARKING.
                            polls -= 1
                            await anyio.lowlevel.checkpoint()
                            continue

                        self._send_buffer.set_flush_idle(True)
                        self._wake_parked = parking.prepare()
                        if not await parking.wait():
                            ended_idle = True  # idle for IDLE_EXIT: see _parking.py
                            break

                        continue

                    started = perf_counter()
                    try:
                        resumed = await transmit(piece, self._send_timeout)
                    except SendTimedOut as exc:
                        await self._time_out(exc.seconds)
                        return

                    if lifecycle.state is CLOSED:
                        return  # closed forcefully while the piece was in flight

                    quick = perf_counter() - started < _BUSY_LOOP
                    polls = _POLLS_BEFORE_PARKING if resumed or quick else 0
            except Exception as exc:  # noqa: BLE001 - kept and re-raised to every caller
                lifecycle.fail(exc)
            finally:
                self._flush_scope = None
                self._wake_parked = None
                parking.stop()

        # A write that came as it ended idle found it still parked and only woke
        # it: start a new flush task for that write.
        buffer = self._send_buffer
        if ended_idle and (not buffer.flush_idle or buffer.has_queued):
            self._start_flush_task()

    async def _time_out(self, seconds: float) -> None:
        """Break the stream: the wrapped stream took more than ``seconds`` to
        accept a piece."""
        self._lifecycle.fail(
            TimeoutError(
                f"the wrapped stream accepted no piece for {seconds:g} seconds "
                f"(send_timeout)"
            )
        )
        await anyio.aclose_forcefully(self.send_stream)

    def _wake_flush_task(self) -> None:
        """Wake the parked flush task, or start one if none runs."""
        wake = self._wake_parked
        if wake is not None:
            self._wake_parked = None
            self._send_buffer.set_flush_idle(False)
            wake()
        else:
            self._start_flush_task()

    def _start_flush_task(self) -> None:
        self._send_buffer.set_flush_idle(False)
        assert self._task_group is not None
        self._task_group.start_soon(self._flush_task, name=f"drainpipe flush {self!r}")

    # -- introspection -----------------------------------------------------------

    @property
    def high_water(self) -> int:
        """The high watermark in bytes."""
        return self._send_buffer.high_water

    @property
    def low_water(self) -> int:
        """The low watermark in bytes."""
        return self._send_buffer.low_water

    @property
    def buffered_bytes(self) -> int:
        """Bytes accepted by ``write()``/``send()`` but not yet accepted by the
        wrapped stream (a piece in flight still counts)."""
        return self._send_buffer.buffered_bytes

    @property
    def paused(self) -> bool:
        """Whether the buffer went above :attr:`high_water` and has not yet come
        down to :attr:`low_water`: :meth:`drain` waits while it is, and so does
        :meth:`send` (which also waits behind other tasks waiting in :meth:`send`)."""
        return self._send_buffer.paused

    @property
    def send_timeout(self) -> float | None:
        """Seconds the wrapped stream may take to accept a piece before the stream
        breaks (``None``: no limit). Settable at run time; a new value applies from
        the next piece."""
        return self._send_timeout

    @send_timeout.setter
    def send_timeout(self, send_timeout: float | None) -> None:
        self._send_timeout = check_send_timeout(send_timeout)

    def set_water_marks(self, high_water: int, low_water: int | None = None) -> None:
        """Change the watermarks at run time (``low_water`` defaults to
        ``high_water // 4``).

        Afterwards the stream is paused if :attr:`buffered_bytes` is above
        ``high_water``, not paused (waking the waiters) if it is at or below
        ``low_water``, and otherwise unchanged.

        :raises TypeError: if a watermark is not an :class:`int`
        :raises ValueError: unless ``high_water >= 0`` and
            ``0 <= low_water <= high_water``
        """
        self._lifecycle.set_water_marks(high_water, low_water)

    def statistics(self) -> BufferStatistics:
        """Return a snapshot of the buffer's counters and state."""
        # Imported on first use: dataclasses is not loaded by ``import drainpipe``
        # (the benchmark's import scenario).
        from ._statistics import BufferStatistics

        buffer = self._send_buffer
        return BufferStatistics(
            buffered_bytes=buffer.buffered_bytes,
            high_water=buffer.high_water,
            low_water=buffer.low_water,
            paused=buffer.paused,
            bytes_written=buffer.bytes_written,
            bytes_sent=buffer.bytes_sent,
            send_calls=buffer.send_calls,
            tasks_waiting=self._waiters.tasks_waiting,
        )

    def _on_failure(self, callback: Callable[[BaseException], object]) -> None:
        """Internal: call ``callback`` once, with the wrapped stream's failure, when
        the stream breaks (at once if it is broken already).

        For code that owns the stream and must learn of a failure that no call of
        its own reported, such as one the flush task met (``drainpipe.compat``
        closes the connection then, as asyncio's transport does). ``callback``
        runs synchronously, in the task that saw the failure, and must not raise.
        Not called after a close.
        """
        lifecycle = self._lifecycle
        if lifecycle.state is BROKEN:
            assert lifecycle.error is not None
            callback(lifecycle.error)
        elif lifecycle.state is not CLOSED:
            lifecycle.on_fail.append(callback)

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.send_stream.extra_attributes
