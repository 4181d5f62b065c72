"""asyncio's ``StreamReader`` over any AnyIO byte receive stream."""

from __future__ import annotations

from asyncio import IncompleteReadError, LimitOverrunError
from typing import TYPE_CHECKING

from anyio import BrokenResourceError, ClosedResourceError, EndOfStream

from ._errors import DEFAULT_LIMIT, ConnectionState, check_limit, ragged_eof

if TYPE_CHECKING:
    from anyio.abc import AnyByteReceiveStream
    from typing_extensions import Self


class StreamReader:
    """asyncio's ``StreamReader`` over any AnyIO byte receive stream.

    Reads pull from ``receive_stream`` only when the internal buffer cannot
    satisfy them, so the buffer never holds more than one received chunk beyond
    what a read asked for (asyncio instead pauses the transport when its buffer
    exceeds ``2 * limit``). ``limit`` bounds a line: :meth:`readuntil` raises
    :exc:`asyncio.LimitOverrunError` and :meth:`readline` raises :exc:`ValueError`
    when the separator is not found within ``limit`` bytes.

    A lost connection is raised as asyncio raises it, as an :exc:`OSError` such as
    :exc:`ConnectionResetError` chained to AnyIO's
    :exc:`~anyio.BrokenResourceError`, by this read and by every later one (see
    :meth:`exception`). A stream closed under a read ends it like an end of stream,
    and so does a TLS peer that closes without ``close_notify``, as in asyncio.

    Only one task may wait for data at a time, as in asyncio: a second one raises
    :exc:`RuntimeError`. Every read may be cancelled: bytes already received stay
    in the buffer for the next read.

    :param receive_stream: the stream to read from (a socket, TLS or subprocess
        stream, a memory object stream of :class:`bytes`, …)
    :param limit: the line limit in bytes
    :raises ValueError: if ``limit <= 0``

    .. versionadded:: 0.1
    """

    def __init__(
        self, receive_stream: AnyByteReceiveStream, *, limit: int = DEFAULT_LIMIT
    ) -> None:
        check_limit(limit)
        #: the wrapped stream
        self.receive_stream = receive_stream
        self._limit = limit
        self._buffer = bytearray()
        self._state = ConnectionState()
        self._waiting = False

    def exception(self) -> OSError | None:
        """The error that ended the connection, if any (asyncio's
        ``StreamReader.exception()``): set by a failed read, and by a failed write
        or close of the connection's :class:`StreamWriter`."""
        return self._state.error

    def at_eof(self) -> bool:
        """Whether the end of stream was reached and the buffer is empty."""
        return self._state.eof_received and not self._buffer

    async def _wait_for_data(self, func_name: str) -> None:
        if self._waiting:
            raise RuntimeError(
                f"{func_name}() called while another coroutine is "
                f"already waiting for incoming data"
            )

        self._waiting = True
        try:
            data = await self.receive_stream.receive()
        except EndOfStream:
            self._state.end()
            return
        except ClosedResourceError:
            # Closed on this side: an end of stream, unless it closed because the
            # connection was lost (its writer met the loss; raised below, out of
            # this handler, so that the shared error keeps its cause and context).
            if self._state.error is None:
                self._state.eof_received = True
                return
        except BrokenResourceError as exc:
            if ragged_eof(exc):
                self._state.end()
                return

            raise self._state.lose(exc)  # noqa: B904 - lose() keeps the first cause
        else:
            self._buffer += data
            return
        finally:
            self._waiting = False

        if self._state.error is not None:  # closed because the connection was lost
            raise self._state.error

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes; with ``n < 0``, read until the end of stream.

        Waits only if the buffer is empty, then returns what is buffered (at most
        ``n`` bytes). Returns ``b""`` at the end of stream or if ``n == 0``.

        :raises OSError: if the connection was lost (:meth:`exception`)
        :raises RuntimeError: if another task is waiting for data
        """
        if self._state.error is not None:
            raise self._state.error

        if n == 0:
            return b""

        if n < 0:
            blocks = []
            while True:
                block = await self.read(self._limit)
                if not block:
                    break
                blocks.append(block)
            return b"".join(blocks)

        if not self._buffer and not self._state.eof_received:
            await self._wait_for_data("read")

        data = bytes(memoryview(self._buffer)[:n])
        del self._buffer[:n]
        return data

    async def readline(self) -> bytes:
        """Read one line, ending with ``b"\\n"``.

        At the end of stream, returns the incomplete last line (``b""`` if there
        is none).

        :raises ValueError: if the line exceeds the limit; the line is dropped
            if complete, otherwise the buffer is cleared
        :raises OSError: if the connection was lost (:meth:`exception`)
        :raises RuntimeError: if another task is waiting for data
        """
        separator = b"\n"
        try:
            return await self.readuntil(separator)
        except IncompleteReadError as exc:
            return exc.partial
        except LimitOverrunError as exc:
            if self._buffer.startswith(separator, exc.consumed):
                del self._buffer[: exc.consumed + len(separator)]
            else:
                self._buffer.clear()
            raise ValueError(exc.args[0]) from None

    async def readuntil(self, separator: bytes | tuple[bytes, ...] = b"\n") -> bytes:
        """Read until ``separator`` (or, given a tuple, the one ending first) and
        return the data including it.

        :raises asyncio.IncompleteReadError: at the end of stream before the
            separator; ``partial`` holds what was buffered, and the buffer is
            cleared
        :raises asyncio.LimitOverrunError: if no separator is found within the
            limit, or the data before it is longer than the limit; the data stays
            in the buffer
        :raises ValueError: if a separator is empty, or the tuple is
        :raises OSError: if the connection was lost (:meth:`exception`)
        :raises RuntimeError: if another task is waiting for data
        """
        separators = (
            sorted(separator, key=len) if isinstance(separator, tuple) else [separator]
        )
        if not separators:
            raise ValueError("Separator should contain at least one element")

        min_seplen = len(separators[0])
        max_seplen = len(separators[-1])
        if min_seplen == 0:
            raise ValueError("Separator should be at least one-byte string")

        if self._state.error is not None:
            raise self._state.error

        # Everything before ``offset`` is known not to contain a separator.
        offset = 0
        while True:
            buflen = len(self._buffer)
            if buflen - offset >= min_seplen:
                match_start = match_end = -1
                for candidate in separators:
                    start = self._buffer.find(candidate, offset)
                    if start != -1:
                        end = start + len(candidate)
                        if match_end == -1 or end < match_end:
                            match_start, match_end = start, end
                if match_end != -1:
                    break

                offset = max(0, buflen + 1 - max_seplen)
                if offset > self._limit:
                    raise LimitOverrunError(
                        "Separator is not found, and chunk exceed the limit", offset
                    )

            # A final chunk may complete the separator, so EOF is checked only
            # after searching the buffer.
            if self._state.eof_received:
                chunk = bytes(self._buffer)
                self._buffer.clear()
                raise IncompleteReadError(chunk, None)

            await self._wait_for_data("readuntil")

        if match_start > self._limit:
            raise LimitOverrunError(
                "Separator is found, but chunk is longer than limit", match_start
            )

        chunk = bytes(self._buffer[:match_end])
        del self._buffer[:match_end]
        return chunk

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes.

        :raises asyncio.IncompleteReadError: at the end of stream before ``n``
            bytes; ``partial`` holds what was buffered, and the buffer is cleared
        :raises ValueError: if ``n < 0``
        :raises OSError: if the connection was lost (:meth:`exception`)
        :raises RuntimeError: if another task is waiting for data
        """
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")

        if self._state.error is not None:
            raise self._state.error

        while len(self._buffer) < n:
            if self._state.eof_received:
                incomplete = bytes(self._buffer)
                self._buffer.clear()
                raise IncompleteReadError(incomplete, n)

            await self._wait_for_data("readexactly")

        data = bytes(memoryview(self._buffer)[:n])
        del self._buffer[:n]
        return data

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line


def connection_state(reader: StreamReader) -> ConnectionState:
    """The state that ``reader`` shares with its connection's writer."""
    return reader._state
