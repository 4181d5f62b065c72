"""The synchronous heart of drainpipe: byte accounting with no I/O.

:class:`SendBuffer` knows which bytes were enqueued, which piece should go to the
wrapped stream next, how many bytes the wrapped stream has accepted, and whether
the buffer is *paused* (above its high watermark, until it falls to its low
watermark). It never awaits and never touches a stream; the async shell in
``_stream.py`` asks it what to do.
"""

from __future__ import annotations

import sys
from collections import deque
from itertools import accumulate, repeat
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    # Read by mypyc when it compiles this module: see HotPath.
    from mypy_extensions import mypyc_attr
    from typing_extensions import Buffer


def mypyc_attr(*attrs: str, **kwattrs: object) -> Any:  # type: ignore[no-redef]
    """At run time, compiled or not, a no-op: mypyc reads the decorator from the
    import above when it compiles this module, and drainpipe does not need
    mypy_extensions at run time."""
    return lambda cls: cls


#: Default high watermark, in bytes (asyncio's transports use the same).
DEFAULT_HIGH_WATER: Final = 64 * 1024

#: Largest piece handed to the wrapped stream in one ``send()`` call.
#:
#: Bounded pieces put an upper limit on the bytes in flight in one call (a loss
#: under them is reported by that call) and let the producer enqueue the next
#: piece while this one is in the wrapped stream.
MAX_PIECE: Final = 256 * 1024

#: Chunks at least this large are sent on their own instead of being copied into a
#: coalesced piece.
LARGE_CHUNK: Final = 16 * 1024

#: :meth:`SendBuffer.take_batch` stops adding pieces to a batch once it holds this
#: many bytes: about one coalesced piece's worth. Over loopback TCP, larger batches
#: went out no faster than batches of this size, and batches of one piece slower
#: (the large-messages scenario of the performance page).
MAX_BATCH: Final = MAX_PIECE

#: At most this many pieces go in one batch: POSIX's smallest allowed ``IOV_MAX``
#: (``_XOPEN_IOV_MAX``), the most buffers one ``writev()`` is sure to take. Only a
#: queue of tiny and large writes in turn reaches it before :data:`MAX_BATCH`.
MAX_BATCH_PIECES: Final = 16

#: At most this many queued chunks are coalesced into one piece.
_COALESCE_WINDOW: Final = 8192

Chunk = bytes | memoryview


def _check_water_marks(high_water: object, low_water: object) -> tuple[int, int]:
    for name, value in (("high_water", high_water), ("low_water", low_water)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    assert isinstance(high_water, int)
    assert isinstance(low_water, int)
    if high_water < 0:
        raise ValueError(f"high_water must be >= 0, got {high_water}")
    if not 0 <= low_water <= high_water:
        raise ValueError(
            f"low_water must satisfy 0 <= low_water <= high_water, "
            f"got low_water={low_water}, high_water={high_water}"
        )
    return high_water, low_water


def water_marks(high_water: object, low_water: object) -> tuple[int, int]:
    """Validate a pair of watermarks; ``low_water=None`` means ``high_water // 4``.

    :raises TypeError: if either is not an :class:`int` (``bool`` included)
    :raises ValueError: unless ``high_water >= 0`` and
        ``0 <= low_water <= high_water``

    """
    if low_water is None:
        if not isinstance(high_water, int) or isinstance(high_water, bool):
            raise TypeError(
                f"high_water must be an int, not {type(high_water).__name__}"
            )
        low_water = high_water // 4
    return _check_water_marks(high_water, low_water)


def check_send_timeout(send_timeout: object) -> float | None:
    """Validate a ``send_timeout`` (seconds above 0, or ``None``)."""
    if send_timeout is None:
        return None

    if not isinstance(send_timeout, (int, float)) or isinstance(send_timeout, bool):
        raise TypeError(
            f"send_timeout must be a number of seconds or None, "
            f"not {type(send_timeout).__name__}"
        )

    if not send_timeout > 0:  # NaN included
        raise ValueError(f"send_timeout must be > 0 seconds, got {send_timeout!r}")

    return float(send_timeout)


def skip_written(batch: list[Chunk], first: int, written: int) -> int:
    """Account for ``written`` bytes of ``batch[first:]`` having gone out: return
    the index of the first piece not wholly written (``len(batch)`` if none), and
    replace that piece by its unwritten rest (a :class:`memoryview` slice, not a
    copy) if it went out in part."""
    while written:
        length = len(batch[first])
        if written < length:
            batch[first] = memoryview(batch[first])[written:]
            return first

        written -= length
        first += 1

    return first


class SendBuffer:
    """Byte accounting for one write-behind buffer.

    ``buffered_bytes`` counts bytes enqueued but not yet marked sent; a piece
    returned by :meth:`take` still counts until :meth:`mark_sent` is called for it.

    The buffer becomes *paused* when an enqueue leaves ``buffered_bytes`` above
    ``high_water``, and stops being paused only when ``buffered_bytes`` falls to
    ``low_water`` or below (hysteresis, like asyncio's transports).

    :class:`HotPath`'s ``write()`` and ``send()`` run in one frame each, so their
    common case does not call :meth:`enqueue`: while ``bytes_written + len(data)``
    stays at or below :attr:`write_limit` (``write()``) or :attr:`limit`
    (``send()``), they append ``data`` to :attr:`chunks` and set
    ``bytes_written`` themselves. That is all :meth:`enqueue` would do there. Both
    are ``-1`` (no write fits) while the stream is not writable
    (:meth:`set_writable`) and while the flush task is idle and must be woken
    (:meth:`set_flush_idle`). Otherwise :attr:`limit` is the most bytes an
    enqueue can leave written without pausing, and ``-1`` while paused or while
    tasks wait in ``send()`` for their turn (a ``send()`` then waits too);
    :attr:`write_limit` is the same but unbounded while paused (a ``write()``
    then has nothing more to do) and ignores the line of senders.

    :param high_water: the high watermark in bytes
    :param low_water: the low watermark in bytes (default: ``high_water // 4``)
    :param slice_large: whether :meth:`take` may hand out :class:`memoryview` slices
        of a chunk larger than :data:`MAX_PIECE` (only for wrapped streams that
        accept any bytes-like object); otherwise such a chunk goes out whole

    """

    __slots__ = (
        "_deleted",
        "_gone",
        "_head",
        "_large",
        "_pause_above",
        "_senders_waiting",
        "_slice_large",
        "_taken",
        "_writable",
        "bytes_sent",
        "bytes_written",
        "chunks",
        "flush_idle",
        "high_water",
        "limit",
        "low_water",
        "paused",
        "send_calls",
        "write_limit",
    )

    def __init__(
        self,
        high_water: object = DEFAULT_HIGH_WATER,
        low_water: object = None,
        *,
        slice_large: bool = False,
    ) -> None:
        self.high_water, self.low_water = water_marks(high_water, low_water)
        #: the queued chunks, oldest first (see the class docstring)
        self.chunks: list[Chunk] = []
        # chunks[:_head] have been taken. They are deleted from the list only once
        # they are at least as many as the chunks after them, so that deleting
        # from the head costs O(1) per chunk however long the queue is.
        self._head = 0
        # Chunks deleted from the list so far: chunks[i] is the chunk enqueued
        # (_deleted + i)-th.
        self._deleted = 0
        # Bytes of chunks taken (or dropped), the parts of chunks sliced included.
        self._taken = 0
        # (enqueue index, bytes_written before it) of each queued chunk of
        # LARGE_CHUNK bytes or more, oldest first: take() knows where the run of
        # small chunks it may coalesce ends, and how many bytes it holds, without
        # measuring every chunk. Only enqueue() adds large chunks (the shell's
        # one-frame case takes small ones only). None until the first one: an idle
        # stream holds no list for it.
        self._large: deque[tuple[int, int]] | None = None
        self._slice_large = slice_large
        self.bytes_written = 0
        self.bytes_sent = 0
        self.send_calls = 0
        self.paused = False
        # Bytes that have left the buffer, sent or dropped. Keeping the pause
        # threshold as an absolute count of bytes written saves the hot path one
        # counter: enqueue() compares bytes_written with _pause_above only.
        self._gone = 0
        self._pause_above = self.high_water
        self._writable = True
        self._senders_waiting = False
        #: whether the flush task is idle: the next enqueue must wake it
        self.flush_idle = False
        #: the most ``bytes_written`` a ``send()`` may reach by appending to
        #: :attr:`chunks` without :meth:`enqueue` (``-1``: none may)
        self.limit = self._pause_above
        #: the same for a ``write()``
        self.write_limit = self._pause_above

    def _set_limit(self) -> None:
        if not self._writable or self.flush_idle:
            self.limit = self.write_limit = -1
        elif self.paused:
            self.limit = -1
            self.write_limit = sys.maxsize
        elif self._senders_waiting:
            self.limit = -1
            self.write_limit = self._pause_above
        else:
            self.limit = self.write_limit = self._pause_above

    def set_writable(self, writable: bool) -> None:
        """Say whether the stream accepts writes; while it does not, every write
        goes through the shell's checks (:attr:`limit` is ``-1``)."""
        self._writable = writable
        self._set_limit()

    def set_senders_waiting(self, waiting: bool) -> None:
        """Say whether tasks wait in ``send()`` for their turn: while they do, a
        ``send()`` joins the line (:attr:`limit` is ``-1``)."""
        self._senders_waiting = waiting
        self._set_limit()

    def set_flush_idle(self, idle: bool) -> None:
        """Say whether the flush task is idle (parked, or not running): while it
        is, every write goes through the shell, which wakes it."""
        self.flush_idle = idle
        self._set_limit()

    def __repr__(self) -> str:
        return (
            f"<SendBuffer buffered_bytes={self.buffered_bytes} "
            f"high_water={self.high_water} low_water={self.low_water} "
            f"paused={self.paused}>"
        )

    @property
    def buffered_bytes(self) -> int:
        """Bytes enqueued and not yet marked sent (nor dropped)."""
        return self.bytes_written - self._gone

    def enqueue(self, data: bytes) -> None:
        """Append non-empty ``data`` to the queue (the caller checks emptiness)."""
        size = len(data)
        if size >= LARGE_CHUNK:
            if self._large is None:
                self._large = deque()
            self._large.append((self._deleted + len(self.chunks), self.bytes_written))
        self.chunks.append(data)
        self.bytes_written += size
        if self.bytes_written > self._pause_above and not self.paused:
            self.paused = True
            self._set_limit()

    @property
    def has_queued(self) -> bool:
        """Whether :meth:`take` would return a piece."""
        return len(self.chunks) > self._head

    def _pop_large(self) -> None:
        """Forget the first large chunk's record: O(1), however many are queued
        behind it, and the deque goes when it empties (an idle stream holds none)."""
        assert self._large is not None
        self._large.popleft()
        if not self._large:
            self._large = None

    def take(self) -> Chunk | None:
        """Remove and return the next piece to hand to the wrapped stream.

        Small chunks are coalesced into one :class:`bytes` of at most
        :data:`MAX_PIECE` bytes; a chunk of :data:`LARGE_CHUNK` bytes or more is
        returned as it is, without a copy (sliced without a copy if it exceeds
        :data:`MAX_PIECE` and slicing is allowed). Returns ``None`` if nothing is
        queued. The piece keeps counting in ``buffered_bytes`` until
        :meth:`mark_sent`.
        """
        chunks = self.chunks
        head = self._head
        queued = len(chunks) - head
        if not queued:
            return None

        first = chunks[head]
        if len(first) >= LARGE_CHUNK or queued == 1:
            if len(first) > MAX_PIECE and self._slice_large:
                view = memoryview(first)
                chunks[head] = rest = view[MAX_PIECE:]
                self._taken += MAX_PIECE
                if len(rest) < LARGE_CHUNK:
                    self._pop_large()  # the rest is coalesced like a small chunk
                return view[:MAX_PIECE]

            if len(first) >= LARGE_CHUNK:
                self._pop_large()
            self._forget(1, len(first))
            return first

        # The run of small chunks up to the next large one (or the end).
        if self._large:
            index, start = self._large[0]
            end = index - self._deleted
            run_bytes = start - self._taken
        else:
            end = len(chunks)
            run_bytes = self.bytes_written - self._taken
        count = end - head
        if count <= _COALESCE_WINDOW and run_bytes <= MAX_PIECE:
            size = run_bytes  # the whole run: no chunk needs measuring
        else:
            count, size = self._fitting(head, count, run_bytes)

        piece = b"".join(
            chunks if count == len(chunks) else chunks[head : head + count]
        )
        self._forget(count, size)
        return piece

    def _fitting(self, head: int, run: int, run_bytes: int) -> tuple[int, int]:
        """How many of the ``run`` small chunks (``run_bytes`` bytes) from
        ``chunks[head]`` on go into one piece, and its size: as many as fit in
        :data:`MAX_PIECE` bytes, at most :data:`_COALESCE_WINDOW`.

        The per-chunk work runs in C (map, accumulate, bisect): a Python loop here
        cost more than the write() calls that filled the queue. Chunks are measured
        in segments, the first as long as the run's mean chunk size says will fit,
        then doubling, so that a piece costs the same per chunk however long the
        queue behind it is.
        """
        # Imported here, once per piece at most, not when drainpipe is imported:
        # loading a C extension module counts against the import budget (see the
        # benchmark's import scenario).
        from bisect import bisect_right

        chunks = self.chunks
        most = min(run, _COALESCE_WINDOW)
        step = min(most, MAX_PIECE * run // run_bytes + 1)
        count = size = 0
        while True:
            start = head + count
            sizes = map(len, chunks[start : start + step])
            ends = list(accumulate(sizes, initial=size))
            fit = bisect_right(ends, MAX_PIECE, 1) - 1
            count += fit
            size = ends[fit]
            if fit < step or count == most:
                return count, size

            step = min(2 * step, most - count)

    def _forget(self, count: int, size: int) -> None:
        """The next ``count`` chunks, ``size`` bytes, have been taken."""
        self._taken += size
        head = self._head + count
        chunks = self.chunks
        if head == len(chunks) or head >= len(chunks) - head:
            self._deleted += head
            del chunks[:head]
            head = 0
        else:
            # Until the list is compacted, it must not keep them alive.
            chunks[self._head : head] = repeat(b"", count)

        self._head = head

    def take_batch(self) -> list[Chunk]:
        """Remove and return the next pieces, as :meth:`take` would return them one
        by one, for one vectored write: pieces are added until the batch holds
        :data:`MAX_BATCH` bytes or :data:`MAX_BATCH_PIECES` pieces, or the queue is
        empty. Returns an empty list if nothing is queued. The pieces keep counting
        in ``buffered_bytes`` until :meth:`mark_sent`.
        """
        batch: list[Chunk] = []
        size = 0
        while size < MAX_BATCH and len(batch) < MAX_BATCH_PIECES:
            piece = self.take()
            if piece is None:
                break

            batch.append(piece)
            size += len(piece)

        return batch

    def can_write_through(self, size: int) -> bool:
        """Whether ``size`` bytes may go to the wrapped stream without being queued
        (:meth:`count_written_through`): the flush task is idle and nothing is
        buffered, so they overtake no byte and meet no other writer, and they are
        fewer than :data:`LARGE_CHUNK`, so that what the wrapped stream does not
        take is a small copy to queue."""
        return (
            self.flush_idle and size < LARGE_CHUNK and self.bytes_written == self._gone
        )

    def count_written_through(self, size: int) -> None:
        """Record that the wrapped stream accepted ``size`` bytes that were never
        queued (see :meth:`can_write_through`): written and sent at once, so
        ``buffered_bytes`` does not change and no pause starts or ends."""
        self.bytes_written += size
        self._taken += size
        self.mark_sent(size)

    def mark_sent(self, size: int) -> bool:
        """Record that the wrapped stream accepted ``size`` bytes of a taken piece.

        :return: ``True`` if this ended a pause (waiters should be woken)

        """
        self.send_calls += 1
        self.bytes_sent += size
        self._gone += size
        self._pause_above += size
        if self.paused:
            if self.bytes_written - self._gone <= self.low_water:
                self.paused = False
                self._set_limit()
                return True
        elif self.write_limit >= 0:
            self.write_limit = self._pause_above
            if self.limit >= 0:
                self.limit = self._pause_above

        return False

    def set_water_marks(self, high_water: object, low_water: object = None) -> bool:
        """Change the watermarks and re-evaluate the paused state (checked as for
        the constructor: the arguments are typed ``object`` so that a compiled
        build reports a bad one as :func:`water_marks` does, not as mypyc would).

        Paused if ``buffered_bytes > high_water``, not paused if
        ``buffered_bytes <= low_water``, else unchanged.

        :return: ``True`` if this ended a pause (waiters should be woken)

        """
        self.high_water, self.low_water = water_marks(high_water, low_water)
        self._pause_above = self._gone + self.high_water
        resumed = False
        if self.buffered_bytes > self.high_water:
            self.paused = True
        elif self.paused and self.buffered_bytes <= self.low_water:
            self.paused = False
            resumed = True

        self._set_limit()
        return resumed

    def drop(self) -> int:
        """Discard every queued byte (after a failure or a forceful close).

        The pause ends, since nothing is buffered any more.

        :return: the number of bytes discarded

        """
        dropped = self.buffered_bytes
        self._deleted += len(self.chunks)
        self.chunks.clear()
        self._large = None
        self._head = 0
        self._taken = self.bytes_written
        self._gone = self.bytes_written
        self._pause_above = self._gone + self.high_water
        self.paused = False
        self._set_limit()
        return dropped


#: Whether this module runs compiled by mypyc (see :class:`HotPath`) rather than as
#: Python source: a compiled function has no Python code object.
COMPILED: Final = not hasattr(check_send_timeout, "__code__")


@mypyc_attr(allow_interpreted_subclasses=True)
class HotPath:
    """The calls a producer makes once per message: ``write()``, ``send()`` and a
    ``drain()`` that has nothing to wait for.

    :class:`~drainpipe.BufferedByteSendStream` inherits them. Their common case is
    pure accounting (append to :attr:`SendBuffer.chunks` and count, or see that
    :attr:`SendBuffer.limit` allows going on), so it lives here, in the core, where
    a compiled build runs it as machine code; as Python each runs in one frame.
    Everything else (checks, waits, waking the flush task) is the subclass's:
    :meth:`_write_slow`, :meth:`_send_slow` and :meth:`_wait_for_resume`.
    """

    __slots__ = ("_send_buffer",)

    _send_buffer: SendBuffer

    def write(self, data: Buffer) -> None:
        """Enqueue ``data`` and return at once; never blocks, never waits.

        ``bytes`` is kept without a copy; mutable buffers (:class:`bytearray`,
        :class:`memoryview`, :class:`array.array`, …) are copied at call time.
        Empty data is a no-op. Call :meth:`drain` now and then to respect
        back-pressure, or use :meth:`send`.

        :raises TypeError: if ``data`` is not a bytes-like object (nothing is
            enqueued)
        :raises ValueError: if ``data`` is a released :class:`memoryview`
            (nothing is enqueued)
        :raises ~anyio.ClosedResourceError: after :meth:`aclose` or
            :meth:`send_eof`
        :raises ~anyio.BrokenResourceError: if the wrapped stream failed
        :raises RuntimeError: if the stream has not been entered with
            ``async with``
        """
        # The common case: see SendBuffer.write_limit.
        if type(data) is bytes:
            buffer = self._send_buffer
            size = len(data)
            written = buffer.bytes_written + size
            if 0 < size < LARGE_CHUNK and written <= buffer.write_limit:
                buffer.chunks.append(data)
                buffer.bytes_written = written
                return

        self._write_slow(data)

    async def send(self, item: Buffer) -> None:
        """Wait while the stream is paused, then enqueue ``item``.

        Returns without yielding to the event loop when the stream is not paused.
        Waiting senders are served first come, first served, and a later
        :meth:`send` never overtakes a waiting one.

        If cancelled while waiting, nothing was enqueued: retrying is safe. If it
        waited, a cancellation pending when the wait ends is raised (enqueueing
        nothing, and passing the turn on), even if its turn came first.

        :raises TypeError: if ``item`` is not a bytes-like object
        :raises ValueError: if ``item`` is a released :class:`memoryview`
        :raises ~anyio.ClosedResourceError: after :meth:`aclose` or
            :meth:`send_eof`, also when it happens while waiting
        :raises ~anyio.BrokenResourceError: if the wrapped stream failed, also
            while waiting
        :raises RuntimeError: if the stream has not been entered with
            ``async with``
        """
        # The common case: see SendBuffer.limit.
        if type(item) is bytes:
            buffer = self._send_buffer
            size = len(item)
            written = buffer.bytes_written + size
            if 0 < size < LARGE_CHUNK and written <= buffer.limit:
                buffer.chunks.append(item)
                buffer.bytes_written = written
                return

        await self._send_slow(item)

    async def drain(self) -> None:
        """Return at once if the stream is not paused; otherwise wait until the
        buffer falls to :attr:`low_water`.

        Like asyncio's ``StreamWriter.drain()``, this does not yield to the event
        loop when the stream is not paused. If it waited, a cancellation pending
        when the wait ends is raised, even if the stream resumed first. Cancelling
        it has no other effect.

        :raises ~anyio.ClosedResourceError: if the stream is closed, also while
            waiting
        :raises ~anyio.BrokenResourceError: if the wrapped stream failed, also
            while waiting
        :raises RuntimeError: if the stream has not been entered with
            ``async with``
        """
        # Paused, or not open: see SendBuffer.limit.
        if self._send_buffer.limit < 0:
            await self._wait_for_resume()

    def _write_slow(self, data: Buffer) -> None:
        """``write()`` when its common case does not apply."""
        raise NotImplementedError

    async def _send_slow(self, item: Buffer) -> None:
        """``send()`` when its common case does not apply."""
        raise NotImplementedError

    async def _wait_for_resume(self) -> None:
        """``drain()`` when the buffer's limit says it may have to wait."""
        raise NotImplementedError
