"""The synchronous core, driven directly: no event loop, no I/O."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from drainpipe._core import (
    LARGE_CHUNK,
    MAX_BATCH,
    MAX_BATCH_PIECES,
    MAX_PIECE,
    SendBuffer,
    skip_written,
    water_marks,
)


def drain_all(buffer: SendBuffer) -> list[bytes]:
    """Take and mark sent every piece; return them as bytes."""
    pieces = []
    while (piece := buffer.take()) is not None:
        buffer.mark_sent(len(piece))
        pieces.append(bytes(piece))
    return pieces


def test_defaults_match_asyncio() -> None:
    buffer = SendBuffer()
    assert (buffer.high_water, buffer.low_water) == (65536, 16384)


@pytest.mark.parametrize(
    ("high", "low", "message"),
    [
        (-1, None, "high_water must be >= 0, got -1"),
        (10, 11, "low_water=11, high_water=10"),
        (10, -1, "low_water=-1, high_water=10"),
    ],
)
def test_bad_water_marks_raise_value_error_naming_them(
    high: int, low: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SendBuffer(high, low)


@pytest.mark.parametrize(
    ("high", "low"), [(1.5, None), ("10", None), (10, 2.0), (True, None), (10, False)]
)
def test_non_integer_water_marks_raise_type_error(high: object, low: object) -> None:
    with pytest.raises(TypeError, match="must be an int"):
        water_marks(high, low)


def test_zero_water_marks_are_allowed() -> None:
    buffer = SendBuffer(0, 0)
    buffer.enqueue(b"x")
    assert buffer.paused
    buffer.mark_sent(len(buffer.take() or b""))
    assert not buffer.paused


def test_pause_only_above_high_water() -> None:
    buffer = SendBuffer(10, 2)
    buffer.enqueue(b"x" * 10)
    assert not buffer.paused
    buffer.enqueue(b"y")
    assert buffer.paused


def test_pause_ends_only_at_low_water() -> None:
    buffer = SendBuffer(10, 4)
    for _ in range(6):
        buffer.enqueue(b"zz")
    assert buffer.paused
    piece = buffer.take()
    assert piece == b"z" * 12
    # A piece in flight still counts, so nothing has changed yet.
    assert buffer.buffered_bytes == 12
    assert buffer.paused
    buffer.enqueue(b"tail!")
    assert buffer.mark_sent(12) is False  # 5 left: below high, above low
    assert buffer.paused
    assert buffer.take() == b"tail!"
    assert buffer.mark_sent(5) is True  # reported once, when the pause ends
    assert not buffer.paused


def test_counters_track_written_and_sent() -> None:
    buffer = SendBuffer()
    buffer.enqueue(b"abc")
    buffer.enqueue(b"de")
    assert (buffer.bytes_written, buffer.bytes_sent, buffer.buffered_bytes) == (5, 0, 5)
    assert drain_all(buffer) == [b"abcde"]
    assert (buffer.bytes_written, buffer.bytes_sent, buffer.buffered_bytes) == (5, 5, 0)
    assert buffer.send_calls == 1


def test_take_on_empty_queue_returns_none() -> None:
    buffer = SendBuffer()
    assert buffer.take() is None
    assert not buffer.has_queued


def test_small_chunks_are_coalesced_up_to_max_piece() -> None:
    buffer = SendBuffer(10 * MAX_PIECE)
    chunk = b"m" * 100
    count = 3 * MAX_PIECE // 100
    for _ in range(count):
        buffer.enqueue(chunk)
    pieces = drain_all(buffer)
    assert all(len(piece) <= MAX_PIECE for piece in pieces)
    assert len(pieces) == 3 or len(pieces) == 4
    assert b"".join(pieces) == chunk * count


def test_large_chunk_is_passed_through_without_copy() -> None:
    buffer = SendBuffer()
    large = b"L" * LARGE_CHUNK
    buffer.enqueue(b"small")
    buffer.enqueue(large)
    buffer.enqueue(b"tail")
    assert buffer.take() == b"small"
    assert buffer.take() is large
    assert buffer.take() == b"tail"


def test_huge_chunk_is_sliced_without_copy_when_allowed() -> None:
    buffer = SendBuffer(slice_large=True)
    huge = bytes(range(256)) * (MAX_PIECE * 2 // 256 + 10)
    buffer.enqueue(huge)
    first = buffer.take()
    assert isinstance(first, memoryview)
    assert first.obj is huge
    assert len(first) == MAX_PIECE
    buffer.mark_sent(len(first))
    rest = drain_all(buffer)
    assert bytes(first) + b"".join(rest) == huge
    assert all(len(piece) <= MAX_PIECE for piece in rest)


def test_a_batch_holds_the_pieces_take_would_return_up_to_max_batch() -> None:
    sizes = [65536] * 5 + [100] * 3 + [LARGE_CHUNK, 7, MAX_PIECE * 2, 1]
    chunks = [bytes([n]) * size for n, size in enumerate(sizes)]
    one_by_one = SendBuffer(slice_large=True)
    batched = SendBuffer(slice_large=True)
    for chunk in chunks:
        one_by_one.enqueue(chunk)
        batched.enqueue(chunk)
    batches = []
    while batch := batched.take_batch():
        batches.append(batch)
    assert batched.take_batch() == []
    # the same pieces, the same objects (nothing copied for a batch)
    pieces = drain_all(one_by_one)
    assert [bytes(piece) for batch in batches for piece in batch] == [
        bytes(piece) for piece in pieces
    ]
    assert batches[0][0] is chunks[0]
    for batch in batches:
        # a batch stops growing as soon as it holds MAX_BATCH bytes
        assert sum(map(len, batch[:-1])) < MAX_BATCH
    assert [len(batch) for batch in batches] == [4, 5, 1, 1]


def test_a_batch_holds_at_most_max_batch_pieces() -> None:
    buffer = SendBuffer()
    for _ in range(MAX_BATCH_PIECES):  # tiny and large in turn: 2 pieces each
        buffer.enqueue(b"t")
        buffer.enqueue(b"L" * LARGE_CHUNK)
    assert len(buffer.take_batch()) == MAX_BATCH_PIECES
    assert len(buffer.take_batch()) == MAX_BATCH_PIECES


def test_skip_written_trims_the_piece_written_in_part_without_a_copy() -> None:
    pieces: list[bytes | memoryview] = [b"aaaa", b"bbbb", b"cccc"]
    tail = pieces[1]
    assert skip_written(pieces, 0, 6) == 1
    assert isinstance(pieces[1], memoryview)
    assert pieces[1].obj is tail
    assert bytes(pieces[1]) == b"bb"
    assert skip_written(pieces, 1, 2) == 2  # exactly the rest: nothing trimmed
    assert pieces[2] == b"cccc"
    assert skip_written(pieces, 2, 4) == 3


def test_huge_chunk_goes_whole_when_slicing_is_not_allowed() -> None:
    buffer = SendBuffer()
    huge = b"h" * (MAX_PIECE + 1)
    buffer.enqueue(huge)
    assert buffer.take() is huge


def test_order_is_kept_across_coalesced_and_large_pieces() -> None:
    buffer = SendBuffer(slice_large=True)
    chunks = [
        bytes([n % 256]) * size for n, size in enumerate([5, 70_000, 3, 9, 600_000, 1])
    ]
    for chunk in chunks:
        buffer.enqueue(chunk)
    assert b"".join(drain_all(buffer)) == b"".join(chunks)


def test_set_water_marks_pauses_when_above_new_high() -> None:
    buffer = SendBuffer(100)
    buffer.enqueue(b"x" * 50)
    assert buffer.set_water_marks(40, 10) is False
    assert buffer.paused


def test_set_water_marks_resumes_when_at_or_below_new_low() -> None:
    buffer = SendBuffer(10, 2)
    buffer.enqueue(b"x" * 20)
    assert buffer.set_water_marks(100, 20) is True
    assert not buffer.paused


def test_set_water_marks_between_marks_leaves_state_unchanged() -> None:
    buffer = SendBuffer(10, 2)
    buffer.enqueue(b"x" * 20)
    assert buffer.set_water_marks(30, 10) is False
    assert buffer.paused
    unpaused = SendBuffer(100, 2)
    unpaused.enqueue(b"x" * 20)
    assert unpaused.set_water_marks(30, 10) is False
    assert not unpaused.paused


def test_set_water_marks_validates_before_changing() -> None:
    buffer = SendBuffer(10, 2)
    with pytest.raises(ValueError, match="low_water=20, high_water=10"):
        buffer.set_water_marks(10, 20)
    assert (buffer.high_water, buffer.low_water) == (10, 2)


def test_drop_discards_everything_and_ends_the_pause() -> None:
    buffer = SendBuffer(1)
    buffer.enqueue(b"abc")
    assert buffer.drop() == 3
    assert (buffer.buffered_bytes, buffer.paused, buffer.take()) == (0, False, None)


def test_repr_names_the_state() -> None:
    assert "buffered_bytes=0 high_water=65536 low_water=16384 paused=False" in repr(
        SendBuffer()
    )


def test_coalescing_looks_at_a_bounded_window_of_chunks() -> None:
    buffer = SendBuffer(1 << 20)
    for _ in range(10_000):
        buffer.enqueue(b".")
    first = buffer.take()
    assert first is not None
    assert len(first) == 8192  # one window of one-byte chunks
    buffer.mark_sent(len(first))
    assert drain_all(buffer) == [b"." * (10_000 - 8192)]


class Measured(bytes):
    """A chunk that counts how often anything asks for its length."""

    lengths_asked = 0

    def __len__(self) -> int:
        Measured.lengths_asked += 1
        return super().__len__()


class Shifting(list[bytes | memoryview]):
    """A queue that counts the chunks moved by deleting from its head."""

    moved = 0

    def __delitem__(self, index: Any) -> None:
        if isinstance(index, slice) and index.stop is not None:
            Shifting.moved += max(0, len(self) - index.stop)
        super().__delitem__(index)


@pytest.mark.parametrize("queued", [1_000, 100_000])
def test_coalescing_measures_each_chunk_about_once_however_long_the_queue(
    queued: int,
) -> None:
    buffer = SendBuffer(1 << 40)
    for _ in range(queued):
        buffer.enqueue(Measured(b"m" * 100))
    Measured.lengths_asked = 0
    pieces = drain_all(buffer)
    assert b"".join(pieces) == b"m" * 100 * queued
    # each chunk measured once at most, plus one looked at beyond each piece
    assert Measured.lengths_asked <= queued + len(pieces)


def test_a_run_of_small_chunks_that_fits_one_piece_is_joined_unmeasured() -> None:
    buffer = SendBuffer()
    for _ in range(600):
        buffer.enqueue(Measured(b"m" * 100))
    buffer.enqueue(Measured(b"L" * LARGE_CHUNK))
    buffer.enqueue(Measured(b"t"))
    Measured.lengths_asked = 0
    assert buffer.take() == b"m" * 60_000
    # the first chunk, to see it is small; then the bytes queued are known
    assert Measured.lengths_asked == 1
    assert drain_all(buffer) == [b"L" * LARGE_CHUNK, b"t"]


def test_only_small_data_with_nothing_buffered_may_write_through() -> None:
    buffer = SendBuffer()
    assert not buffer.can_write_through(1)  # the flush task may be writing
    buffer.set_flush_idle(True)
    assert buffer.can_write_through(LARGE_CHUNK - 1)
    assert not buffer.can_write_through(LARGE_CHUNK)
    buffer.enqueue(b"queued")
    assert not buffer.can_write_through(1)  # it would overtake them
    piece = buffer.take()
    assert piece is not None
    assert not buffer.can_write_through(1)  # nor a piece in flight
    buffer.mark_sent(len(piece))
    assert buffer.can_write_through(1)
    buffer.enqueue(b"dropped")
    buffer.drop()
    assert buffer.can_write_through(1)


def test_bytes_written_through_count_as_written_and_sent_at_once() -> None:
    buffer = SendBuffer(0, 0)
    buffer.count_written_through(MAX_PIECE)
    assert (buffer.bytes_written, buffer.bytes_sent) == (MAX_PIECE, MAX_PIECE)
    assert (buffer.buffered_bytes, buffer.send_calls, buffer.paused) == (0, 1, False)
    # What is queued next is accounted for as if nothing had been written before:
    # paused by its first byte, and its run of small chunks known to fit one piece.
    buffer.enqueue(Measured(b"ab"))
    assert buffer.paused
    buffer.enqueue(Measured(b"cd"))
    Measured.lengths_asked = 0
    assert buffer.take() == b"abcd"
    assert Measured.lengths_asked == 1
    buffer.mark_sent(4)
    assert (buffer.bytes_written, buffer.buffered_bytes) == (MAX_PIECE + 4, 0)
    assert not buffer.paused


@pytest.mark.parametrize("queued", [10_000, 200_000])
def test_taking_moves_no_chunk_more_than_once_however_long_the_queue(
    queued: int,
) -> None:
    buffer = SendBuffer(1 << 40)
    buffer.chunks = Shifting()
    Shifting.moved = 0
    for _ in range(queued):
        buffer.enqueue(b"m" * 100)
    pieces = drain_all(buffer)
    assert len(b"".join(pieces)) == 100 * queued
    assert Shifting.moved <= queued


def greedy_pieces(sizes: list[int]) -> list[int]:
    """The piece sizes take() must return for chunks of ``sizes``, all small:
    each piece as many chunks as fit in MAX_PIECE bytes, at most 8,192."""
    pieces: list[int] = []
    size = count = 0
    for chunk in sizes:
        if size + chunk > MAX_PIECE or count == 8192:
            pieces.append(size)
            size = count = 0
        size += chunk
        count += 1
    return [*pieces, size] if count else pieces


@pytest.mark.parametrize(
    "sizes",
    [
        [1] * 100 + [15_000] * 100,  # the mean says few fit at first: doubling
        [15_000] * 40 + [1] * 20_000,  # the mean says many fit at first
        [(n * 7_919) % 16_000 + 1 for n in range(5_000)],
    ],
    ids=["tiny-then-big", "big-then-tiny", "mixed"],
)
def test_coalescing_fills_every_piece_whatever_the_mix_of_sizes(
    sizes: list[int],
) -> None:
    buffer = SendBuffer(1 << 40)
    for index, size in enumerate(sizes):
        buffer.enqueue(bytes([index % 251]) * size)
    pieces = drain_all(buffer)
    assert [len(piece) for piece in pieces] == greedy_pieces(sizes)
    assert b"".join(pieces) == b"".join(
        bytes([index % 251]) * size for index, size in enumerate(sizes)
    )


def references(items: list[bytes]) -> list[int]:
    """How many references each of ``items`` has (outside an assert, whose
    rewriting by pytest would hold one more)."""
    return [sys.getrefcount(item) for item in items]


def test_taken_chunks_are_not_kept_alive_by_the_queue() -> None:
    buffer = SendBuffer(1 << 40)
    chunks = [bytes([n]) * 10_000 for n in range(100)]  # four pieces' worth
    alone = references(chunks)
    for chunk in chunks:
        buffer.enqueue(chunk)
    del chunk
    first = buffer.take()
    assert first is not None
    taken = len(first) // 10_000
    assert 0 < taken < 50
    now = references(chunks)
    assert now[:taken] == alone[:taken]
    assert now[taken:] == [count + 1 for count in alone[taken:]]  # still queued
    large = [b"L" * LARGE_CHUNK]
    alone = references(large)
    buffer.enqueue(large[0])
    while buffer.take() is not large[0]:
        pass
    now = references(large)
    assert now == alone


@pytest.mark.parametrize("queued", [10, 10_000])
def test_large_chunks_are_forgotten_from_the_front_without_shifting_the_rest(
    queued: int,
) -> None:
    # take() forgets the first large chunk's record each time it hands one out: a
    # list would shift every record behind it (quadratic in a long backlog of
    # large writes), so the records are a deque, popped from the left.
    from collections import deque

    buffer = SendBuffer(1 << 40)
    for number in range(queued):
        buffer.enqueue(b"%d" % number + b"." * LARGE_CHUNK)
        buffer.enqueue(b"small")
    assert type(buffer._large) is deque
    taken = drain_all(buffer)
    assert b"".join(taken) == b"".join(
        b"%d" % number + b"." * LARGE_CHUNK + b"small" for number in range(queued)
    )
    # and an emptied deque goes, as idle streams hold none
    assert buffer._large is None
