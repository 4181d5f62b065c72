"""The synchronous heart of drainpipe: byte accounting with no I/O.

:class:`SendBuffer` knows which bytes were enqueued, which piece should go to the
wrapped stream next, how many bytes the wrapped stream has accepted, and whether
the buffer is *paused* (above its high watermark, until it falls to its low
watermark). It never awaits and never touches a stream; the async shell in
``_stream.py`` asks it what to do.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate
from typing import Final

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
#: many bytes. Over loopback TCP (10,000 x 64 KiB, high_water 256 KiB, medians of 5
#: rounds against direct sends) batches of 256 KiB, 512 KiB and 1 MiB all went out
#: 1.1-1.5x as fast as direct sends, within the noise of one another, and batches
#: of one piece 0.9-1.04x; 1 MiB batches of 256 KiB pieces were no faster than
#: one piece at a time, so a batch is about one coalesced piece's worth.
MAX_BATCH: Final = MAX_PIECE

#: At most this many pieces go in one batch: POSIX's smallest allowed ``IOV_MAX``
#: (``_XOPEN_IOV_MAX``), the most buffers one ``writev()`` is sure to take. Only a
#: queue of tiny and large writes in turn reaches it before :data:`MAX_BATCH`.
MAX_BATCH_PIECES: Final = 16

#: At most this many queued chunks are looked at to build one coalesced piece.
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


def water_marks(high_water: object, low_water: object | None) -> tuple[int, int]:
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

    :param high_water: the high watermark in bytes
    :param low_water: the low watermark in bytes (default: ``high_water // 4``)
    :param slice_large: whether :meth:`take` may hand out :class:`memoryview` slices
        of a chunk larger than :data:`MAX_PIECE` (only for wrapped streams that
        accept any bytes-like object); otherwise such a chunk goes out whole

    """

    __slots__ = (
        "_chunks",
        "_gone",
        "_pause_above",
        "_slice_large",
        "bytes_sent",
        "bytes_written",
        "high_water",
        "low_water",
        "paused",
        "send_calls",
    )

    def __init__(
        self,
        high_water: int = DEFAULT_HIGH_WATER,
        low_water: int | None = None,
        *,
        slice_large: bool = False,
    ) -> None:
        self.high_water, self.low_water = water_marks(high_water, low_water)
        self._chunks: list[Chunk] = []
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
        self._chunks.append(data)
        self.bytes_written += len(data)
        if self.bytes_written > self._pause_above:
            self.paused = True

    @property
    def has_queued(self) -> bool:
        """Whether :meth:`take` would return a piece."""
        return bool(self._chunks)

    def take(self) -> Chunk | None:
        """Remove and return the next piece to hand to the wrapped stream.

        Small chunks are coalesced into one :class:`bytes` of at most
        :data:`MAX_PIECE` bytes; a chunk of :data:`LARGE_CHUNK` bytes or more is
        returned as it is, without a copy (sliced without a copy if it exceeds
        :data:`MAX_PIECE` and slicing is allowed). Returns ``None`` if nothing is
        queued. The piece keeps counting in ``buffered_bytes`` until
        :meth:`mark_sent`.
        """
        chunks = self._chunks
        if not chunks:
            return None

        first = chunks[0]
        if len(first) >= LARGE_CHUNK or len(chunks) == 1:
            if len(first) > MAX_PIECE and self._slice_large:
                view = memoryview(first)
                chunks[0] = view[MAX_PIECE:]
                return view[:MAX_PIECE]

            del chunks[0]
            return first

        # Count the leading small chunks that fit in one piece. The per-chunk work
        # runs in C (map, accumulate, bisect, join): a Python loop here cost more
        # than the write() calls that filled the queue.
        window = chunks[:_COALESCE_WINDOW]
        sizes = list(map(len, window))
        count = bisect_right(list(accumulate(sizes)), MAX_PIECE)
        if max(sizes[:count]) >= LARGE_CHUNK:
            count = next(i for i, size in enumerate(sizes) if size >= LARGE_CHUNK)

        piece = b"".join(window if count == len(window) else window[:count])
        del chunks[:count]
        return piece

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

    def mark_sent(self, size: int) -> bool:
        """Record that the wrapped stream accepted ``size`` bytes of a taken piece.

        :return: ``True`` if this ended a pause (waiters should be woken)

        """
        self.send_calls += 1
        self.bytes_sent += size
        self._gone += size
        self._pause_above += size
        if self.paused and self.bytes_written - self._gone <= self.low_water:
            self.paused = False
            return True

        return False

    def set_water_marks(self, high_water: int, low_water: int | None = None) -> bool:
        """Change the watermarks and re-evaluate the paused state.

        Paused if ``buffered_bytes > high_water``, not paused if
        ``buffered_bytes <= low_water``, else unchanged.

        :return: ``True`` if this ended a pause (waiters should be woken)

        """
        self.high_water, self.low_water = water_marks(high_water, low_water)
        self._pause_above = self._gone + self.high_water
        if self.buffered_bytes > self.high_water:
            self.paused = True
        elif self.paused and self.buffered_bytes <= self.low_water:
            self.paused = False
            return True

        return False

    def drop(self) -> int:
        """Discard every queued byte (after a failure or a forceful close).

        The pause ends, since nothing is buffered any more.

        :return: the number of bytes discarded

        """
        dropped = self.buffered_bytes
        self._chunks.clear()
        self._gone = self.bytes_written
        self._pause_above = self._gone + self.high_water
        self.paused = False
        return dropped
