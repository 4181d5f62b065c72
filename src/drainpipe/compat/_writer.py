"""asyncio's ``StreamWriter`` and write transport over a
:class:`~drainpipe.BufferedByteSendStream`, and the close and half-close that
they schedule in the block owning the connection."""

from __future__ import annotations

import sys
from ssl import SSLError
from typing import TYPE_CHECKING, Any

from anyio import (
    BrokenResourceError,
    CancelScope,
    ClosedResourceError,
    Event,
    aclose_forcefully,
)
from anyio.abc import SocketAttribute
from anyio.lowlevel import checkpoint
from anyio.streams.tls import TLSAttribute, TLSStream

from .._checkpoints import wait
from ._errors import ragged_eof

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from anyio.abc import TaskGroup
    from typing_extensions import Buffer

    from .._stream import BufferedByteSendStream
    from ._errors import ConnectionState


def _address(get: Callable[[], Any]) -> Any:
    try:
        return get()
    except OSError:  # not connected any more
        return None


def _extra_info(stream: BufferedByteSendStream) -> dict[str, Any]:
    """asyncio's transport extra info, collected once like asyncio does.

    The addresses come from the raw socket rather than from
    ``SocketAttribute.remote_address`` because asyncio returns what
    ``getpeername()`` returns: a 4-tuple for IPv6, where AnyIO gives a 2-tuple.
    """
    info: dict[str, Any] = {}
    raw_socket = stream.extra(SocketAttribute.raw_socket, None)
    if raw_socket is not None:
        info["socket"] = raw_socket
        info["sockname"] = _address(raw_socket.getsockname)
        info["peername"] = _address(raw_socket.getpeername)

    ssl_object = stream.extra(TLSAttribute.ssl_object, None)
    if ssl_object is not None:
        info["sslcontext"] = ssl_object.context
        info["ssl_object"] = ssl_object
        info["peercert"] = stream.extra(TLSAttribute.peer_certificate)
        info["cipher"] = stream.extra(TLSAttribute.cipher)
        info["compression"] = ssl_object.compression()

    return info


def _check_bytes_like(data: object) -> None:
    try:
        memoryview(data).release()  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"data argument must be a bytes-like object, not {type(data).__name__!r}"
        ) from None


#: asyncio's writelines() joins the items with b"".join() before Python 3.12.
_JOINS_ITEMS = sys.version_info < (3, 12)


def _check_items(items: list[Any]) -> None:
    """asyncio's check of writelines() items, with its message."""
    for index, item in enumerate(items):
        try:
            memoryview(item).release()
        except TypeError:  # noqa: PERF203 - one check per item
            if not _JOINS_ITEMS:
                raise
            raise TypeError(
                f"sequence item {index}: expected a bytes-like object, "
                f"{type(item).__name__} found"
            ) from None


class Shutdown:
    """The close and half-close of one connection, run as tasks of the block that
    owns it; shared by its :class:`StreamWriter`, its :class:`WriteTransport`, the
    block and the server that accepted it.

    The close and the EOF run shielded, as asyncio's transport flushes whatever
    its callers do: a cancellation of the block does not stop them; only
    :meth:`abort` (or leaving the block by an exception) does.

    Like asyncio's transport, which force-closes itself on an error and closes
    itself over TLS when the peer's end of stream arrives, a lost connection is
    closed at once, and over TLS the peer's end of stream starts a graceful close,
    so that :meth:`StreamWriter.wait_closed` returns without :meth:`close`.
    """

    def __init__(
        self,
        send_stream: BufferedByteSendStream,
        state: ConnectionState,
        task_group: TaskGroup,
    ) -> None:
        self._send_stream = send_stream
        self._state = state
        self._task_group = task_group
        self._close_scope = CancelScope(shield=True)
        self._eof_scope = CancelScope(shield=True)
        #: whether :meth:`close` (or :meth:`abort`) was called
        self.closing = False
        #: whether :meth:`abort` was called
        self.aborted = False
        #: whether :meth:`write_eof` was called
        self.eof_scheduled = False
        #: whether writes are dropped: after an abort, or a close with nothing
        #: left to send
        self.drop_writes = False
        #: set when the close has ended, gracefully or not
        self.closed = Event()
        self._close_started = False
        state.on_lost = self._connection_lost
        if isinstance(send_stream.send_stream, TLSStream):
            state.on_eof = self.close
        # A failure that no call raised (the peer reset the connection during a
        # send of the flush task or a write to an idle socket, or send_timeout)
        # loses the connection too, as a failed write closes asyncio's transport.
        send_stream._on_failure(self._send_stream_broke)

    def _send_stream_broke(self, error: BaseException) -> None:
        broken = BrokenResourceError(f"the wrapped stream failed: {error!r}")
        broken.__cause__ = error
        self._state.lose(broken)

    def write_eof(self) -> None:
        """Schedule flush-then-half-close, unless closing or already scheduled."""
        if self.closing or self.eof_scheduled:
            return

        self.eof_scheduled = True
        self._task_group.start_soon(self._send_eof, name="drainpipe.compat send_eof")

    async def _send_eof(self) -> None:
        try:
            with self._eof_scope:
                await self._send_stream.send_eof()
        except ClosedResourceError:
            pass  # closed (or aborted) before the EOF went out
        except Exception as exc:  # noqa: BLE001 - reported by drain()/wait_closed()
            self._state.lose(exc)

    def cancel_eof(self) -> None:
        """Give up a scheduled EOF that has not gone out."""
        self._eof_scope.cancel()

    def close(self) -> None:
        """Schedule flush-then-close; idempotent."""
        if not self.closing:
            self.closing = True
            # As asyncio's transport: writes after close() still go out while
            # the close has bytes to send, and are dropped if it had none.
            self.drop_writes = self._send_stream.buffered_bytes == 0
        self._start_close()

    def _connection_lost(self) -> None:
        """Close at once, dropping the buffer, as asyncio's transport does when
        the connection is lost."""
        self._eof_scope.cancel()
        self._close_scope.cancel()
        self._start_close()

    def _start_close(self) -> None:
        if not self._close_started:
            self._close_started = True
            self._task_group.start_soon(self._close, name="drainpipe.compat close")

    def abort(self) -> None:
        """Close at once, dropping the buffer, also during a graceful close."""
        self.aborted = True
        self.drop_writes = True
        self._eof_scope.cancel()
        self._close_scope.cancel()
        self.close()

    async def _close(self) -> None:
        try:
            with self._close_scope:
                # Flushed before aclose(), which refuses writes, so that writes
                # after close() join the buffer while it still holds bytes: until
                # the buffer is empty, as a flush() waits only for the bytes
                # written before it. aclose() follows with no checkpoint between:
                # it refuses writes before its first one.
                while self._send_stream.buffered_bytes:
                    await self._send_stream.flush()
                await self._send_stream.aclose()
            if self._close_scope.cancel_called:  # aborted, maybe before aclose()
                await aclose_forcefully(self._send_stream)
        except Exception as exc:  # noqa: BLE001 - reported by wait_closed()
            if not self._peer_hung_up_on_tls(exc):
                self._state.lose(exc)
            await aclose_forcefully(self._send_stream)
        finally:
            self.closed.set()

    def _peer_hung_up_on_tls(self, exc: Exception) -> bool:
        """Whether ``exc`` is AnyIO's TLS closing handshake failing because the
        peer closed without one, which asyncio does not report: it skips the
        handshake once the peer has hung up."""
        if isinstance(exc, BrokenResourceError):
            return ragged_eof(exc)

        return isinstance(exc, SSLError) and self._state.eof_received


class StreamWriter:
    """asyncio's ``StreamWriter`` over a :class:`~drainpipe.BufferedByteSendStream`.

    Made by :func:`open_connection` and :func:`start_server` (and their UNIX
    variants), never directly: it lives in the block that owns its connection.

    What differs from asyncio, because the connection is owned by a block:

    * :meth:`close` and :meth:`write_eof` stay synchronous: they *schedule* the
      flush-then-close (or flush-then-half-close) in a task of the owning block;
      :meth:`wait_closed` waits for the close.
    * Leaving the block normally closes the connection the same way (after a
      flush, which waits for a peer that does not read); leaving it by an exception
      drops the buffer and closes at once.
    * A write after the connection was lost raises the :exc:`OSError` (asyncio
      drops it with a log message after a few).

    As in asyncio, :meth:`write` after :meth:`close` is sent while the close still
    has bytes to send, and silently dropped once it had none. On plain TCP and UNIX
    connections a small write to an idle writer goes to the socket at once, as
    asyncio's does, so a close after it has nothing left; over TLS, or where
    drainpipe's socket fast path is unavailable, the buffer holds it until the
    flush task sends it, so there compat sends a later write that asyncio drops.
    And :meth:`drain` after :meth:`close` raises ``ConnectionResetError("Connection
    lost")`` unless the buffer is above its high watermark (it then waits for the
    close to send it).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        send_stream: BufferedByteSendStream,
        state: ConnectionState,
        shutdown: Shutdown,
    ) -> None:
        #: the buffer underneath, for code that wants drainpipe's own API
        self.send_stream = send_stream
        self._state = state
        self._shutdown = shutdown
        self._can_write_eof = not isinstance(send_stream.send_stream, TLSStream)
        self._extra = _extra_info(send_stream)
        #: asyncio's write transport: buffer size and limits, and ``abort()``
        self.transport = WriteTransport(self, shutdown)

    def write(self, data: Buffer) -> None:
        """Enqueue ``data`` and return at once.

        Follow with ``await drain()`` to respect back-pressure.

        :raises RuntimeError: after :meth:`write_eof`
        :raises OSError: (such as :exc:`BrokenPipeError` or
            :exc:`ConnectionResetError`) if the connection was lost
        :raises TypeError: if ``data`` is not a bytes-like object
        """
        # asyncio checks the type before anything else.
        _check_bytes_like(data)
        self._enqueue("write", self.send_stream.write, data)

    def writelines(self, data: Iterable[Buffer]) -> None:
        """Enqueue every item of ``data`` (all or none) and return at once.

        :raises RuntimeError: after :meth:`write_eof`
        :raises OSError: if the connection was lost
        :raises TypeError: if an item is not a bytes-like object
        """
        # Before the items, as in asyncio from 3.12 on; after them before (it
        # joins them first, and a bad one raises TypeError), in _enqueue().
        if self._shutdown.eof_scheduled and not _JOINS_ITEMS:
            raise RuntimeError("Cannot call writelines() after write_eof()")

        items = list(data)
        _check_items(items)
        self._enqueue("writelines", self.send_stream.writelines, items)

    def _enqueue(self, name: str, enqueue: Callable[[Any], None], data: Any) -> None:
        """Hand ``data`` to ``enqueue`` as asyncio's writer would: refused after
        write_eof(), dropped after close() once nothing is left to send, a lost
        connection as asyncio's error."""
        if self._shutdown.eof_scheduled:
            raise RuntimeError(f"Cannot call {name}() after write_eof()")

        if self._shutdown.drop_writes:
            return

        try:
            enqueue(data)
        except BrokenResourceError as exc:
            raise self._state.lose(exc)  # noqa: B904 - lose() keeps the first cause
        except ClosedResourceError:
            pass  # the close has sent everything, or the connection was lost
        else:
            return

        lost = self._state.error
        if lost is not None:
            raise lost

    async def drain(self) -> None:
        """Return at once unless the buffer is above its high watermark; then wait
        until it falls to its low watermark.

        Cancelling it has no other effect. If the writer is closed while this
        waits, it returns. After :meth:`close`, as asyncio's: if the buffer is
        above its high watermark, waits until the close has sent it, then returns;
        otherwise raises ``ConnectionResetError("Connection lost")``.

        :raises OSError: if the connection was lost (the reader's
            :meth:`~StreamReader.exception` first, as in asyncio), or
            ``ConnectionResetError("Connection lost")`` after :meth:`close` (see
            above) or ``transport.abort()``
        """
        lost = self._state.error
        if lost is not None:
            raise lost

        shutdown = self._shutdown
        if shutdown.closing:
            await checkpoint()
            if (
                shutdown.aborted
                or shutdown.closed.is_set()
                or not self.send_stream.paused
            ):
                raise ConnectionResetError("Connection lost")

            # As asyncio's: a transport closing with its buffer above the high
            # watermark keeps its drain() waiters, and they return once the buffer
            # has gone out (or raise if the connection is lost meanwhile).
            await wait(shutdown.closed)
            if self._state.error is not None:
                raise self._state.error

            return

        try:
            await self.send_stream.drain()
        except BrokenResourceError as exc:
            raise self._state.lose(exc)  # noqa: B904 - lose() keeps the first cause
        except ClosedResourceError:
            return  # closed while waiting: asyncio wakes its waiters normally

    def can_write_eof(self) -> bool:
        """Whether :meth:`write_eof` is supported (not over TLS, as in asyncio)."""
        return self._can_write_eof

    def write_eof(self) -> None:
        """Half-close after the buffered bytes are sent; return at once.

        Like asyncio's, this is synchronous: it schedules
        :meth:`BufferedByteSendStream.send_eof()
        <drainpipe.BufferedByteSendStream.send_eof>` (flush, then the wrapped
        stream's ``send_eof()``) in the owning block, and later writes raise
        :exc:`RuntimeError`. Reading goes on. Does nothing after :meth:`close` or
        a first ``write_eof()``. A failure surfaces in :meth:`drain` and
        :meth:`wait_closed`.

        :raises NotImplementedError: over TLS (see :meth:`can_write_eof`)
        """
        if not self._can_write_eof:
            raise NotImplementedError  # asyncio's TLS transport gives no message

        self._shutdown.write_eof()

    def close(self) -> None:
        """Schedule a graceful close: flush the buffer, then close the connection
        (both directions). Returns at once; idempotent.

        The close runs in a task of the owning block; as with asyncio's transports,
        a cancellation of the block does not stop it (an abort, or leaving the
        block by an exception, does). Reads still return what was received, then
        ``b""``; writes are sent while the close has bytes to send, and dropped
        after.
        """
        self._shutdown.close()

    def is_closing(self) -> bool:
        """Whether :meth:`close` (or ``transport.abort()``) was called or the
        connection was lost."""
        return self._shutdown.closing or self._state.error is not None

    async def wait_closed(self) -> None:
        """Wait until the connection is closed: after :meth:`close`, after the
        connection was lost, or over TLS after the peer's end of stream (which
        closes it, as in asyncio).

        Cancelling it does not stop the close.

        :raises OSError: if the connection was lost, as in asyncio
        """
        await wait(self._shutdown.closed)
        if self._state.error is not None:
            raise self._state.error

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """asyncio's transport information: ``"peername"``, ``"sockname"``,
        ``"socket"`` (the raw socket), and over TLS ``"sslcontext"``,
        ``"ssl_object"``, ``"peercert"``, ``"cipher"`` and ``"compression"``.

        Collected when the connection opens, as asyncio does, so they stay
        available after the close.
        """
        return self._extra.get(name, default)


class WriteTransport:
    """asyncio's write transport as :class:`StreamWriter` users reach it through
    ``writer.transport``: every method of :class:`asyncio.WriteTransport` but
    ``get_protocol()`` and ``set_protocol()`` (there is no protocol).

    .. versionadded:: 0.1
    """

    def __init__(self, writer: StreamWriter, shutdown: Shutdown) -> None:
        self._writer = writer
        self._shutdown = shutdown
        self._send_stream = writer.send_stream

    def get_write_buffer_size(self) -> int:
        """Bytes buffered and not yet sent."""
        return self._send_stream.buffered_bytes

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The watermarks as ``(low, high)``, in asyncio's order."""
        return self._send_stream.low_water, self._send_stream.high_water

    def set_write_buffer_limits(
        self, high: int | None = None, low: int | None = None
    ) -> None:
        """Set the watermarks with asyncio's defaults: ``high`` is 64 KiB, or
        ``4 * low`` if only ``low`` is given; ``low`` is ``high // 4``.

        :raises ValueError: unless ``high >= low >= 0``
        """
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._send_stream.set_water_marks(high, low)

    def abort(self) -> None:
        """Close at once, dropping the buffer; returns at once.

        The close runs in a task of the owning block, as :meth:`StreamWriter.close`
        does, and replaces a graceful close in progress.
        """
        self._shutdown.abort()

    def write(self, data: Buffer) -> None:
        """Same as :meth:`StreamWriter.write`."""
        self._writer.write(data)

    def writelines(self, list_of_data: Iterable[Buffer]) -> None:
        """Same as :meth:`StreamWriter.writelines`."""
        self._writer.writelines(list_of_data)

    def write_eof(self) -> None:
        """Same as :meth:`StreamWriter.write_eof`."""
        self._writer.write_eof()

    def can_write_eof(self) -> bool:
        """Same as :meth:`StreamWriter.can_write_eof`."""
        return self._writer.can_write_eof()

    def close(self) -> None:
        """Same as :meth:`StreamWriter.close`."""
        self._writer.close()

    def is_closing(self) -> bool:
        """Same as :meth:`StreamWriter.is_closing`."""
        return self._writer.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Same as :meth:`StreamWriter.get_extra_info`."""
        return self._writer.get_extra_info(name, default)
