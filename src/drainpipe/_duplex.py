"""One object per connection: AnyIO's buffered receive side and drainpipe's
write-behind send side over the same byte stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

from anyio.streams.buffered import BufferedByteStream as AnyIOBufferedByteStream

from ._core import DEFAULT_HIGH_WATER, HotPath
from ._stream import BufferedByteSendStream

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from anyio.abc import AnyByteStream
    from typing_extensions import Buffer, Self

    from ._statistics import BufferStatistics


class BufferedByteStream(HotPath, AnyIOBufferedByteStream):
    """A byte stream buffered both ways: AnyIO's
    :class:`~anyio.streams.buffered.BufferedByteStream` for receiving
    (``receive()``, ``receive_exactly()``, ``receive_until()``), a
    :class:`BufferedByteSendStream` for sending.

    Code that takes AnyIO's buffered stream accepts this one once it has been
    entered (sending before ``async with`` raises :exc:`RuntimeError`, as
    :class:`BufferedByteSendStream` does). The send side offers
    everything :class:`BufferedByteSendStream` does (:meth:`write`,
    :meth:`writelines`, :meth:`send`, :meth:`send_nowait`, :meth:`drain`,
    :meth:`flush`, :meth:`send_eof`, :meth:`statistics`, :attr:`send_timeout`,
    the watermarks) with the same contract, cancellation included. One ``async
    with`` block owns both sides: leaving it normally flushes, then closes the
    wrapped stream; leaving it by an exception drops the buffer and closes the
    wrapped stream forcefully. Serving one client of a line protocol::

        async def shout(connection: BufferedByteStream) -> None:
            while True:
                try:
                    line = await connection.receive_until(b"\\n", 65536)
                except anyio.IncompleteRead:
                    return  # the client half-closed
                connection.write(line.upper() + b"\\n")
                await connection.drain()

        async with BufferedByteStream(client) as connection:
            await shout(connection)

    :param stream: the connection to wrap: any :class:`~anyio.abc.ByteStream` (or
        ``ObjectStream[bytes]``)
    :param high_water: the send side's high watermark in bytes (default 64 KiB)
    :param low_water: the send side's low watermark (default ``high_water // 4``)
    :param send_timeout: see :class:`BufferedByteSendStream`
    :param vectored: see :class:`BufferedByteSendStream`
    :raises TypeError: for a bad watermark, ``send_timeout`` or ``vectored``, as
        :class:`BufferedByteSendStream` does
    :raises ValueError: likewise

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        stream: AnyByteStream,
        *,
        high_water: int = DEFAULT_HIGH_WATER,
        low_water: int | None = None,
        send_timeout: float | None = None,
        vectored: bool = True,
    ) -> None:
        super().__init__(stream)
        #: the send side, for code that wants it on its own
        self.send_side = BufferedByteSendStream(
            stream,
            high_water=high_water,
            low_water=low_water,
            send_timeout=send_timeout,
            vectored=vectored,
        )
        # write(), send() and drain() are the core's HotPath, run on the send side's
        # buffer: their common case costs what it costs on the send side itself.
        # Anything else goes to the send side's own calls.
        self._send_buffer = self.send_side._send_buffer

    def __repr__(self) -> str:
        return f"<{type(self).__name__} send_side={self.send_side!r}>"

    async def __aenter__(self) -> Self:
        await self.send_side.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        try:
            await self.send_side.__aexit__(exc_type, exc_val, exc_tb)
        finally:
            self._closed = True

    async def aclose(self) -> None:
        """Flush the send side, then close the wrapped stream (both directions);
        as :meth:`BufferedByteSendStream.aclose`, bounded by a cancel scope.
        Receiving afterwards raises :exc:`~anyio.ClosedResourceError`."""
        try:
            await self.send_side.aclose()
        finally:
            self._closed = True

    # -- sending: BufferedByteSendStream's contract ------------------------------

    def _write_slow(self, data: Buffer) -> None:
        self.send_side.write(data)

    def writelines(self, data: Iterable[Buffer]) -> None:
        """:meth:`BufferedByteSendStream.writelines`: enqueue all or none."""
        self.send_side.writelines(data)

    def send_nowait(self, item: Buffer) -> None:
        """:meth:`BufferedByteSendStream.send_nowait`: enqueue unless paused."""
        self.send_side.send_nowait(item)

    async def _send_slow(self, item: Buffer) -> None:
        await self.send_side.send(item)

    async def _wait_for_resume(self) -> None:
        await self.send_side.drain()

    async def flush(self) -> None:
        """:meth:`BufferedByteSendStream.flush`: wait until every byte written
        so far was accepted by the wrapped stream."""
        await self.send_side.flush()

    async def send_eof(self) -> None:
        """:meth:`BufferedByteSendStream.send_eof`: flush, then half-close;
        receiving goes on."""
        await self.send_side.send_eof()

    def statistics(self) -> BufferStatistics:
        """The send side's :meth:`BufferedByteSendStream.statistics`."""
        return self.send_side.statistics()

    def set_water_marks(self, high_water: int, low_water: int | None = None) -> None:
        """:meth:`BufferedByteSendStream.set_water_marks`."""
        self.send_side.set_water_marks(high_water, low_water)

    @property
    def high_water(self) -> int:
        """The send side's high watermark in bytes."""
        return self.send_side.high_water

    @property
    def low_water(self) -> int:
        """The send side's low watermark in bytes."""
        return self.send_side.low_water

    @property
    def buffered_bytes(self) -> int:
        """Bytes written and not yet accepted by the wrapped stream."""
        return self.send_side.buffered_bytes

    @property
    def paused(self) -> bool:
        """Whether the send side is paused (see
        :attr:`BufferedByteSendStream.paused`)."""
        return self.send_side.paused

    @property
    def send_timeout(self) -> float | None:
        """:attr:`BufferedByteSendStream.send_timeout`, settable."""
        return self.send_side.send_timeout

    @send_timeout.setter
    def send_timeout(self, send_timeout: float | None) -> None:
        self.send_side.send_timeout = send_timeout
