"""asyncio's streams API on AnyIO: a porting layer for code written against
:func:`asyncio.open_connection` and :func:`asyncio.start_server`.

The classes keep asyncio's names, methods and exceptions
(:exc:`asyncio.IncompleteReadError`, :exc:`asyncio.LimitOverrunError`,
:exc:`ConnectionResetError`, …) so that existing ``except`` clauses keep working,
on asyncio and on trio. What changes is ownership: every connection and every
server lives in an ``async with`` block that owns its background work and closes
it on the way out::

    async with compat.open_connection("127.0.0.1", 8888) as (reader, writer):
        writer.write(b"ping\\n")
        await writer.drain()
        print(await reader.readline())

The writer is a :class:`~drainpipe.BufferedByteSendStream` underneath
(:attr:`StreamWriter.send_stream`); the reader pulls from the AnyIO stream only
when a read needs more bytes. ``docs/porting.md`` maps every method.

.. versionadded:: 0.1
"""

from __future__ import annotations

import logging
import math
import os
import socket
from asyncio import IncompleteReadError, LimitOverrunError
from contextlib import asynccontextmanager, suppress
from ssl import SSLContext, SSLEOFError, SSLError, create_default_context
from typing import TYPE_CHECKING, Any

import anyio
from anyio import (
    BrokenResourceError,
    CancelScope,
    ClosedResourceError,
    EndOfStream,
    Event,
    aclose_forcefully,
    create_task_group,
    fail_after,
)
from anyio.abc import SocketAttribute, SocketListener, SocketStream, UNIXSocketStream
from anyio.lowlevel import checkpoint
from anyio.streams.stapled import MultiListener
from anyio.streams.tls import TLSAttribute, TLSStream

from ._checkpoints import wait
from ._core import check_send_timeout
from ._stream import BufferedByteSendStream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
    from types import TracebackType

    from anyio.abc import AnyByteReceiveStream, ByteStream, TaskGroup
    from typing_extensions import Buffer, Self

__all__ = [
    "Server",
    "StreamReader",
    "StreamWriter",
    "WriteTransport",
    "open_connection",
    "open_unix_connection",
    "start_server",
    "start_unix_server",
]

_DEFAULT_LIMIT = 2**16  # asyncio's default StreamReader limit
_SSL_HANDSHAKE_TIMEOUT = 60.0  # asyncio's default, in seconds

_logger = logging.getLogger(__name__)


def _check_limit(limit: int) -> None:
    if limit <= 0:
        raise ValueError("Limit cannot be <= 0")


def _connection_error(error: BaseException) -> OSError:
    """The exception asyncio raises for a connection lost with ``error``.

    asyncio hands the application the :exc:`OSError` that the socket raised; AnyIO
    wraps it in :exc:`~anyio.BrokenResourceError`. A fresh copy of the first
    :exc:`ConnectionError` in the cause chain is returned (the original stays where
    AnyIO put it), else ``ConnectionResetError("Connection lost")``, with
    ``__cause__`` set to ``error``.
    """
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, ConnectionError):
        cause = cause.__cause__

    lost = (
        ConnectionResetError("Connection lost")
        if cause is None
        else type(cause)(*cause.args)
    )
    lost.__cause__ = error
    return lost


def _ragged_eof(error: BrokenResourceError) -> bool:
    """Whether ``error`` is a TLS peer closing without ``close_notify``.

    asyncio reads that as a normal end of stream (AnyIO, with
    ``standard_compatible=True``, as a broken stream), and so does this module.
    """
    return isinstance(error.__cause__, SSLEOFError)


def _connect_error(error: OSError) -> OSError | None:
    """asyncio's exception for AnyIO's "All connection attempts failed", or
    ``None`` if ``error`` is not that one (a DNS failure is raised as it is)."""
    cause = error.__cause__
    attempts = (
        [cause]
        if isinstance(cause, OSError)
        else [
            exc for exc in getattr(cause, "exceptions", ()) if isinstance(exc, OSError)
        ]
    )
    if not attempts:
        return None

    # asyncio's create_connection(): one error, or several with the same message,
    # is raised as it is; different ones are summed up in one OSError.
    first = attempts[0]
    if all(str(attempt) == str(first) for attempt in attempts):
        return type(first)(*first.args)

    return OSError(
        "Multiple exceptions: " + ", ".join(str(attempt) for attempt in attempts)
    )


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


# -- reading ---------------------------------------------------------------------


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
        self, receive_stream: AnyByteReceiveStream, *, limit: int = _DEFAULT_LIMIT
    ) -> None:
        _check_limit(limit)
        #: the wrapped stream
        self.receive_stream = receive_stream
        self._limit = limit
        self._buffer = bytearray()
        self._eof = False
        self._exception: OSError | None = None
        self._waiting = False

    def exception(self) -> OSError | None:
        """The error that ended the connection, if any (asyncio's
        ``StreamReader.exception()``): set by a failed read, and by a failed write
        or close of the connection's :class:`StreamWriter`."""
        return self._exception

    def _set_exception(self, exc: OSError) -> None:
        if self._exception is None:
            self._exception = exc

    def at_eof(self) -> bool:
        """Whether the end of stream was reached and the buffer is empty."""
        return self._eof and not self._buffer

    async def _wait_for_data(self, func_name: str) -> None:
        if self._waiting:
            raise RuntimeError(
                f"{func_name}() called while another coroutine is "
                f"already waiting for incoming data"
            )

        self._waiting = True
        try:
            data = await self.receive_stream.receive()
        except (EndOfStream, ClosedResourceError):
            self._eof = True
        except BrokenResourceError as exc:
            if _ragged_eof(exc):
                self._eof = True
                return

            lost = _connection_error(exc)
            self._set_exception(lost)
            raise lost from exc
        else:
            self._buffer += data
        finally:
            self._waiting = False

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes; with ``n < 0``, read until the end of stream.

        Waits only if the buffer is empty, then returns what is buffered (at most
        ``n`` bytes). Returns ``b""`` at the end of stream or if ``n == 0``.

        :raises OSError: if the connection was lost (:meth:`exception`)
        :raises RuntimeError: if another task is waiting for data
        """
        if self._exception is not None:
            raise self._exception

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

        if not self._buffer and not self._eof:
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

        if self._exception is not None:
            raise self._exception

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
            if self._eof:
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

        if self._exception is not None:
            raise self._exception

        while len(self._buffer) < n:
            if self._eof:
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


# -- writing ---------------------------------------------------------------------


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

    As in asyncio, :meth:`write` after :meth:`close` is silently dropped, and
    :meth:`drain` after :meth:`close` raises ``ConnectionResetError("Connection
    lost")``.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        send_stream: BufferedByteSendStream,
        reader: StreamReader,
        task_group: TaskGroup,
    ) -> None:
        #: the buffer underneath, for code that wants drainpipe's own API
        self.send_stream = send_stream
        self._reader = reader
        self._task_group = task_group
        self._closing = False
        self._eof = False
        # Shielded, as asyncio's transport flushes whatever its callers do: a
        # cancellation of the block does not stop a scheduled close or EOF; only an
        # abort (or leaving the block by an exception) does.
        self._close_scope = CancelScope(shield=True)
        self._eof_scope = CancelScope(shield=True)
        self._closed = Event()
        self._can_write_eof = not isinstance(send_stream.send_stream, TLSStream)
        self._extra = _extra_info(send_stream)
        #: asyncio's write transport: buffer size and limits, and ``abort()``
        self.transport = WriteTransport(self)

    def _lost(self, error: BaseException) -> OSError:
        lost = _connection_error(error)
        self._reader._set_exception(lost)
        return lost

    def write(self, data: Buffer) -> None:
        """Enqueue ``data`` and return at once.

        Follow with ``await drain()`` to respect back-pressure.

        :raises RuntimeError: after :meth:`write_eof`
        :raises OSError: (such as :exc:`BrokenPipeError` or
            :exc:`ConnectionResetError`) if the connection was lost
        :raises TypeError: if ``data`` is not a bytes-like object
        """
        self._enqueue("write", self.send_stream.write, data)

    def writelines(self, data: Iterable[Buffer]) -> None:
        """Enqueue every item of ``data`` (all or none) and return at once.

        :raises RuntimeError: after :meth:`write_eof`
        :raises OSError: if the connection was lost
        :raises TypeError: if an item is not a bytes-like object
        """
        self._enqueue("writelines", self.send_stream.writelines, data)

    def _enqueue(self, name: str, enqueue: Callable[[Any], None], data: Any) -> None:
        """Hand ``data`` to ``enqueue`` as asyncio's writer would: refused after
        write_eof(), dropped after close(), a lost connection as asyncio's error."""
        if self._eof:
            raise RuntimeError(f"Cannot call {name}() after write_eof()")

        if self._closing:
            return

        try:
            enqueue(data)
        except BrokenResourceError as exc:
            raise self._lost(exc) from exc

    async def drain(self) -> None:
        """Return at once unless the buffer is above its high watermark; then wait
        until it falls to its low watermark.

        Cancelling it has no other effect. If the writer is closed while this
        waits, it returns.

        :raises OSError: if the connection was lost (the reader's
            :meth:`~StreamReader.exception` first, as in asyncio), or
            ``ConnectionResetError("Connection lost")`` after :meth:`close`
        """
        lost = self._reader.exception()
        if lost is not None:
            raise lost

        if self._closing:
            await checkpoint()
            raise ConnectionResetError("Connection lost")

        try:
            await self.send_stream.drain()
        except BrokenResourceError as exc:
            raise self._lost(exc) from exc
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
            raise NotImplementedError("TLS streams cannot be half-closed")

        if self._closing or self._eof:
            return

        self._eof = True
        self._task_group.start_soon(self._send_eof, name=f"send_eof {self!r}")

    async def _send_eof(self) -> None:
        try:
            with self._eof_scope:
                await self.send_stream.send_eof()
        except ClosedResourceError:
            pass  # closed (or aborted) before the EOF went out
        except Exception as exc:  # noqa: BLE001 - reported by drain()/wait_closed()
            self._lost(exc)

    def close(self) -> None:
        """Schedule a graceful close: flush the buffer, then close the connection
        (both directions). Returns at once; idempotent.

        The close runs in a task of the owning block; as with asyncio's transports,
        a cancellation of the block does not stop it (an abort, or leaving the
        block by an exception, does). Reads still return what was received, then
        ``b""``; writes are dropped.
        """
        if not self._closing:
            self._closing = True
            self._task_group.start_soon(self._close, name=f"close {self!r}")

    def _abort(self) -> None:
        self._eof_scope.cancel()
        self._close_scope.cancel()
        self.close()

    async def _close(self) -> None:
        try:
            with self._close_scope:
                await self.send_stream.aclose()
        except Exception as exc:  # noqa: BLE001 - reported by wait_closed()
            if not self._peer_hung_up_on_tls(exc):
                self._lost(exc)
        finally:
            self._closed.set()

    def _peer_hung_up_on_tls(self, exc: Exception) -> bool:
        """Whether ``exc`` is AnyIO's TLS closing handshake failing because the
        peer closed without one, which asyncio does not report: it skips the
        handshake once the peer has hung up."""
        if isinstance(exc, BrokenResourceError):
            return _ragged_eof(exc)

        return isinstance(exc, SSLError) and self._reader._eof

    def is_closing(self) -> bool:
        """Whether :meth:`close` (or ``transport.abort()``) was called or the
        connection was lost."""
        return self._closing or self._reader.exception() is not None

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (after :meth:`close`).

        Cancelling it does not stop the close.

        :raises OSError: if the connection was lost, as in asyncio
        """
        await wait(self._closed)
        exc = self._reader.exception()
        if exc is not None:
            raise exc

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """asyncio's transport information: ``"peername"``, ``"sockname"``,
        ``"socket"`` (the raw socket), and over TLS ``"sslcontext"``,
        ``"ssl_object"``, ``"peercert"``, ``"cipher"`` and ``"compression"``.

        Collected when the connection opens, as asyncio does, so they stay
        available after the close.
        """
        return self._extra.get(name, default)


class WriteTransport:
    """The part of asyncio's write transport that :class:`StreamWriter` users
    reach through ``writer.transport``.

    .. versionadded:: 0.1
    """

    def __init__(self, writer: StreamWriter) -> None:
        self._writer = writer
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
        self._writer._abort()

    def close(self) -> None:
        """Same as :meth:`StreamWriter.close`."""
        self._writer.close()

    def is_closing(self) -> bool:
        """Same as :meth:`StreamWriter.is_closing`."""
        return self._writer.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Same as :meth:`StreamWriter.get_extra_info`."""
        return self._writer.get_extra_info(name, default)


class _Connection:
    """Owns one connection: its writer's buffer and its close and EOF tasks.

    The task group's tasks never raise, so an exception from the block reaches
    the caller unchanged instead of inside an exception group.
    """

    def __init__(
        self, stream: ByteStream, limit: int, send_timeout: float | None
    ) -> None:
        self._send_stream = BufferedByteSendStream(stream, send_timeout=send_timeout)
        self._task_group = create_task_group()
        self.reader = StreamReader(stream, limit=limit)
        self.writer = StreamWriter(self._send_stream, self.reader, self._task_group)

    async def __aenter__(self) -> tuple[StreamReader, StreamWriter]:
        await self._send_stream.__aenter__()
        await self._task_group.__aenter__()
        return self.reader, self.writer

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        writer = self.writer
        try:
            if exc_val is None:
                writer.close()
                await wait(writer._closed)
        except BaseException as exc:  # cancelled while flushing
            exc_type, exc_val, exc_tb = type(exc), exc, exc.__traceback__
            raise
        finally:
            if exc_val is not None:
                writer._abort()

            # Whatever is left (an EOF that can no longer be sent) is moot.
            writer._eof_scope.cancel()
            self._task_group.cancel_scope.cancel()
            self._task_group.cancel_scope.shield = True
            try:
                await self._task_group.__aexit__(None, None, None)
            finally:
                # Even if a cancellation of the block was delivered to that wait:
                # the buffer's task group must be left too.
                await self._send_stream.__aexit__(exc_type, exc_val, exc_tb)


# -- clients ---------------------------------------------------------------------


def _client_tls(
    ssl: SSLContext | bool | None,
    server_hostname: str | None,
    host: str | None,
    ssl_handshake_timeout: float | None,
) -> tuple[SSLContext | None, str | None]:
    """The client's SSL context and the host name to check, validated like
    asyncio's ``create_connection()``."""
    if not ssl:
        if server_hostname is not None:
            raise ValueError("server_hostname is only meaningful with ssl")
        if ssl_handshake_timeout is not None:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        return None, None

    if server_hostname is None:
        if not host:
            raise ValueError(
                "You must set server_hostname when using ssl without a host"
            )
        server_hostname = host

    context = ssl if isinstance(ssl, SSLContext) else create_default_context()
    # An empty server_hostname turns host name checking off, as in asyncio.
    return context, server_hostname or None


async def _start_tls(
    stream: SocketStream,
    context: SSLContext,
    hostname: str | None,
    handshake_timeout: float | None,
) -> TLSStream:
    timeout = _SSL_HANDSHAKE_TIMEOUT if handshake_timeout is None else handshake_timeout
    try:
        with fail_after(timeout):
            return await TLSStream.wrap(
                stream, server_side=False, hostname=hostname, ssl_context=context
            )
    except BaseException as exc:
        await aclose_forcefully(stream)
        if isinstance(exc, TimeoutError):
            raise ConnectionAbortedError(
                f"SSL handshake is taking longer than {timeout} seconds: "
                f"aborting the connection"
            ) from exc
        if isinstance(exc, BrokenResourceError):
            raise _connection_error(exc) from exc
        raise


def _check_sock(host: object, port: object, sock: socket.socket | None) -> None:
    if sock is not None:
        if host is not None or port is not None:
            raise ValueError("host/port and sock can not be specified at the same time")
    elif host is None and port is None:
        raise ValueError("host and port was not specified and no sock specified")


@asynccontextmanager
async def open_connection(
    host: str | None = None,
    port: int | None = None,
    *,
    limit: int = _DEFAULT_LIMIT,
    ssl: SSLContext | bool | None = None,
    sock: socket.socket | None = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    local_addr: tuple[str, int] | None = None,
    happy_eyeballs_delay: float | None = None,
    send_timeout: float | None = None,
) -> AsyncIterator[tuple[StreamReader, StreamWriter]]:
    """Connect over TCP and yield a ``(reader, writer)`` pair for the block.

    The ported form of ``reader, writer = await asyncio.open_connection(...)``:
    ``async with open_connection(...) as (reader, writer):``. Leaving the block
    closes the connection (see :class:`StreamWriter`).

    :param host: the host to connect to
    :param port: the port to connect to
    :param limit: the reader's line limit (see :class:`StreamReader`)
    :param ssl: ``True`` or an :class:`ssl.SSLContext` to connect over TLS
        (``True`` uses :func:`ssl.create_default_context`)
    :param sock: an already connected socket to use instead of ``host`` and
        ``port``; the connection takes it over
    :param server_hostname: the host name to check the server's certificate
        against (default: ``host``; ``""`` turns the check off)
    :param ssl_handshake_timeout: seconds to wait for the TLS handshake (default
        60)
    :param local_addr: ``(host, port)`` to bind the socket to
    :param happy_eyeballs_delay: seconds before trying the next address of a
        host name (default: try one at a time, as asyncio does)
    :param send_timeout: a drainpipe extension, not in asyncio: seconds the
        connection may take to accept a queued piece before it is broken, for a
        peer that stops reading (see
        :class:`~drainpipe.BufferedByteSendStream`); writes and
        :meth:`StreamWriter.drain` then raise :exc:`ConnectionResetError`.
        ``None`` (the default) waits for ever, as asyncio does.
    :raises OSError: if the connection fails, as asyncio raises it (for example
        :exc:`ConnectionRefusedError`), chained to AnyIO's error
    :raises ConnectionAbortedError: if the TLS handshake times out
    :raises ssl.SSLError: if the TLS handshake fails
    :raises ValueError: for the argument combinations asyncio rejects

    .. versionadded:: 0.1
    """
    _check_limit(limit)
    check_send_timeout(send_timeout)
    _check_sock(host, port, sock)
    context, hostname = _client_tls(ssl, server_hostname, host, ssl_handshake_timeout)
    stream: SocketStream
    if sock is not None:
        stream = await SocketStream.from_socket(sock)
    else:
        assert host is not None
        assert port is not None
        local_host, local_port = local_addr or (None, None)
        try:
            stream = await anyio.connect_tcp(
                host,
                port,
                local_host=local_host,
                local_port=local_port,
                happy_eyeballs_delay=(
                    math.inf if happy_eyeballs_delay is None else happy_eyeballs_delay
                ),
            )
        except OSError as exc:
            error = _connect_error(exc)
            if error is None:
                raise
            raise error from exc

    connection: ByteStream = stream
    if context is not None:
        connection = await _start_tls(stream, context, hostname, ssl_handshake_timeout)

    async with _Connection(connection, limit, send_timeout) as pair:
        yield pair


@asynccontextmanager
async def open_unix_connection(
    path: str | bytes | os.PathLike[str] | None = None,
    *,
    limit: int = _DEFAULT_LIMIT,
    ssl: SSLContext | bool | None = None,
    sock: socket.socket | None = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    send_timeout: float | None = None,
) -> AsyncIterator[tuple[StreamReader, StreamWriter]]:
    """Connect to a UNIX socket and yield a ``(reader, writer)`` pair for the
    block; :func:`open_connection` for UNIX sockets.

    :param path: the socket's path
    :param sock: an already connected UNIX socket to use instead of ``path``
    :param ssl: as for :func:`open_connection`; ``server_hostname`` is then
        required
    :raises OSError: if the connection fails (such as :exc:`FileNotFoundError`)

    .. versionadded:: 0.1
    """
    _check_limit(limit)
    check_send_timeout(send_timeout)
    _check_sock(path, None, sock)
    context, hostname = _client_tls(ssl, server_hostname, None, ssl_handshake_timeout)
    stream: SocketStream
    if sock is not None:
        stream = await UNIXSocketStream.from_socket(sock)
    else:
        assert path is not None
        stream = await anyio.connect_unix(path)

    connection: ByteStream = stream
    if context is not None:
        connection = await _start_tls(stream, context, hostname, ssl_handshake_timeout)

    async with _Connection(connection, limit, send_timeout) as pair:
        yield pair


# -- servers ---------------------------------------------------------------------


class Server:
    """asyncio's ``Server``, yielded by :func:`start_server` and
    :func:`start_unix_server` (never made directly).

    Each connection's callback runs in a task of the server's block; the
    connection is closed (after a flush) when the callback returns. An exception
    from a callback is logged (``"Unhandled exception in client_connected_cb"`` on
    the ``drainpipe.compat`` logger, at ERROR level) and does not stop the server.

    Unlike asyncio's, :meth:`serve_forever` *returns* when :meth:`close` is
    called instead of raising :exc:`asyncio.CancelledError`.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        client_connected_cb: Callable[[StreamReader, StreamWriter], Awaitable[object]],
        listeners: Sequence[SocketListener],
        *,
        limit: int,
        ssl: SSLContext | None,
        ssl_handshake_timeout: float | None,
        start_serving: bool,
        send_timeout: float | None = None,
        unix_socket: tuple[str, int] | None = None,
    ) -> None:
        self._client_connected_cb = client_connected_cb
        self._listeners = list(listeners)
        self._sockets: tuple[socket.socket, ...] | None = tuple(
            listener.extra(SocketAttribute.raw_socket) for listener in listeners
        )
        self._limit = limit
        self._send_timeout = send_timeout
        self._ssl_context = ssl
        self._ssl_handshake_timeout = (
            _SSL_HANDSHAKE_TIMEOUT
            if ssl_handshake_timeout is None
            else ssl_handshake_timeout
        )
        self._unix_socket = unix_socket
        self._serving = False
        self._start = Event()
        self._accept_scope = CancelScope()
        self._close_requested = Event()
        self._serving_forever = False
        self._listening = True
        self._connections = 0
        self._writers: set[StreamWriter] = set()
        self._idle = Event()
        self._task_group: TaskGroup | None = None
        if start_serving:
            self._start_serving()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} sockets={self.sockets!r}>"

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets; ``()`` once closed."""
        return self._sockets or ()

    def is_serving(self) -> bool:
        """Whether the server accepts connections."""
        return self._serving

    def _start_serving(self) -> None:
        if self._sockets is not None and not self._serving:
            self._serving = True
            self._start.set()

    async def start_serving(self) -> None:
        """Start accepting connections (for ``start_serving=False``)."""
        self._start_serving()
        await checkpoint()

    async def serve_forever(self) -> None:
        """Accept connections until :meth:`close` is called, then return.

        If cancelled, closes the server (as asyncio does) and propagates the
        cancellation.

        :raises RuntimeError: if the server is closed, or another task is already
            in ``serve_forever()``
        """
        if self._serving_forever:
            raise RuntimeError(
                f"server {self!r} is already being awaited on serve_forever()"
            )
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")

        self._start_serving()
        self._serving_forever = True
        try:
            await wait(self._close_requested)
        except BaseException:
            self.close()
            raise
        finally:
            self._serving_forever = False

    def close(self) -> None:
        """Stop accepting and close the listening sockets (in a task of the
        server's block, at once); open connections go on. Idempotent."""
        if self._sockets is None:
            return

        self._sockets = None
        self._serving = False
        self._accept_scope.cancel()
        self._close_requested.set()

    def close_clients(self) -> None:
        """:meth:`StreamWriter.close` every open connection."""
        for writer in list(self._writers):
            writer.close()

    def abort_clients(self) -> None:
        """``transport.abort()`` every open connection."""
        for writer in list(self._writers):
            writer._abort()

    async def wait_closed(self) -> None:
        """Wait until the server is closed and every connection has ended."""
        await wait(self._idle)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()
        await self.wait_closed()

    def _check_idle(self) -> None:
        if not self._listening and not self._connections:
            self._idle.set()

    async def _accept(self) -> None:
        assert self._task_group is not None
        try:
            with self._accept_scope:
                await wait(self._start)
                await MultiListener(self._listeners).serve(
                    self._serve_connection, self._task_group
                )
        finally:
            with CancelScope(shield=True):
                for listener in self._listeners:
                    await listener.aclose()
            self._remove_unix_socket()
            self._listening = False
            self._check_idle()

    def _remove_unix_socket(self) -> None:
        # Like asyncio 3.13: only if the file is still the socket we created.
        if self._unix_socket is not None:
            path, inode = self._unix_socket
            with suppress(OSError):
                if os.stat(path).st_ino == inode:
                    os.unlink(path)

    async def _serve_connection(self, stream: SocketStream) -> None:
        self._connections += 1
        try:
            connection: ByteStream = stream
            if self._ssl_context is not None:
                try:
                    with fail_after(self._ssl_handshake_timeout):
                        connection = await TLSStream.wrap(
                            stream, server_side=True, ssl_context=self._ssl_context
                        )
                except BaseException as exc:
                    await aclose_forcefully(stream)
                    if not isinstance(exc, Exception):
                        raise
                    # asyncio logs a failed handshake only in debug mode.
                    _logger.debug("SSL handshake failed", exc_info=exc)
                    return

            # The writer stays reachable by close_clients() and abort_clients()
            # until its connection is closed, also while the block's exit flushes.
            scope = _Connection(connection, self._limit, self._send_timeout)
            self._writers.add(scope.writer)
            try:
                async with scope as (reader, writer):
                    try:
                        await self._client_connected_cb(reader, writer)
                    except Exception as exc:  # one client must not stop the server
                        _logger.error(
                            "Unhandled exception in client_connected_cb (peer %r)",
                            writer.get_extra_info("peername"),
                            exc_info=exc,
                        )
            finally:
                self._writers.discard(scope.writer)
        finally:
            self._connections -= 1
            self._check_idle()


@asynccontextmanager
async def _serving(server: Server) -> AsyncIterator[Server]:
    """Run ``server`` in a task group for the block.

    Leaving the block normally closes the server and waits for the connections
    to end; leaving it by an exception cancels them and closes them at once. The
    tasks never raise, so the block's exception propagates unchanged.
    """
    task_group = create_task_group()
    await task_group.__aenter__()
    server._task_group = task_group
    task_group.start_soon(server._accept, name=f"accept {server!r}")
    try:
        yield server
    except BaseException:
        task_group.cancel_scope.cancel()
        task_group.cancel_scope.shield = True
        await task_group.__aexit__(None, None, None)
        raise

    server.close()
    await task_group.__aexit__(None, None, None)


def _server_tls(
    ssl: SSLContext | None, ssl_handshake_timeout: float | None
) -> SSLContext | None:
    if ssl is not None and not isinstance(ssl, SSLContext):
        raise TypeError(f"ssl argument must be an SSLContext or None, got {ssl!r}")
    if ssl is None and ssl_handshake_timeout is not None:
        raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
    return ssl


async def _tcp_listeners(
    hosts: Sequence[str | None],
    port: int | None,
    family: socket.AddressFamily,
    backlog: int,
    reuse_port: bool | None,
) -> list[SocketListener]:
    listeners: list[SocketListener] = []
    try:
        for host in hosts:
            multi = await anyio.create_tcp_listener(
                local_host=host,
                local_port=port or 0,
                family=family,  # type: ignore[arg-type]
                backlog=backlog,
                reuse_port=bool(reuse_port),
            )
            listeners.extend(multi.listeners)  # type: ignore[arg-type]
    except BaseException:
        for listener in listeners:
            await aclose_forcefully(listener)
        raise

    return listeners


@asynccontextmanager
async def start_server(
    client_connected_cb: Callable[[StreamReader, StreamWriter], Awaitable[object]],
    host: str | Sequence[str] | None = None,
    port: int | None = None,
    *,
    limit: int = _DEFAULT_LIMIT,
    family: socket.AddressFamily = socket.AF_UNSPEC,
    sock: socket.socket | None = None,
    backlog: int = 100,
    ssl: SSLContext | None = None,
    reuse_port: bool | None = None,
    ssl_handshake_timeout: float | None = None,
    start_serving: bool = True,
    send_timeout: float | None = None,
) -> AsyncIterator[Server]:
    """Listen on TCP and yield the :class:`Server` for the block; each connection
    runs ``await client_connected_cb(reader, writer)`` in a task of the block.

    The ported form of ``server = await asyncio.start_server(...)``:
    ``async with start_server(...) as server:``. Leaving the block normally
    closes the server and waits for the open connections to end (as asyncio's
    ``async with server:`` does); leaving it by an exception (cancellation
    included) cancels them.

    :param client_connected_cb: ``async def handle(reader, writer)``; when it
        returns, its connection is flushed and closed
    :param host: the interface(s) to listen on (default, or ``""``: all)
    :param port: the port (default: any free port; see :attr:`Server.sockets`)
    :param limit: the readers' line limit (see :class:`StreamReader`)
    :param family: the address family when ``host`` is omitted
    :param sock: an already bound socket to listen on instead of ``host`` and
        ``port``
    :param backlog: the listen backlog
    :param ssl: an :class:`ssl.SSLContext` to serve TLS
    :param reuse_port: whether to set ``SO_REUSEPORT``
    :param ssl_handshake_timeout: seconds to wait for a client's TLS handshake
        (default 60); a failed handshake closes that connection only
    :param start_serving: whether to accept at once, or only from
        :meth:`Server.start_serving` or :meth:`Server.serve_forever` on
    :param send_timeout: a drainpipe extension, as for :func:`open_connection`:
        each connection is broken when it takes longer than this many seconds to
        accept a queued piece
    :raises OSError: if listening fails
    :raises ValueError: for the argument combinations asyncio rejects

    .. versionadded:: 0.1
    """
    _check_limit(limit)
    check_send_timeout(send_timeout)
    context = _server_tls(ssl, ssl_handshake_timeout)
    if sock is not None:
        _check_sock(host, port, sock)
        sock.listen(backlog)
        listeners = [await SocketListener.from_socket(sock)]
    else:
        # As asyncio: "" (like None) means every interface.
        hosts: Sequence[str | None] = (
            [host or None] if host is None or isinstance(host, str) else list(host)
        )
        listeners = await _tcp_listeners(hosts, port, family, backlog, reuse_port)

    server = Server(
        client_connected_cb,
        listeners,
        limit=limit,
        ssl=context,
        ssl_handshake_timeout=ssl_handshake_timeout,
        start_serving=start_serving,
        send_timeout=send_timeout,
    )
    async with _serving(server):
        yield server


@asynccontextmanager
async def start_unix_server(
    client_connected_cb: Callable[[StreamReader, StreamWriter], Awaitable[object]],
    path: str | os.PathLike[str] | None = None,
    *,
    limit: int = _DEFAULT_LIMIT,
    sock: socket.socket | None = None,
    backlog: int = 100,
    ssl: SSLContext | None = None,
    ssl_handshake_timeout: float | None = None,
    start_serving: bool = True,
    cleanup_socket: bool = True,
    send_timeout: float | None = None,
) -> AsyncIterator[Server]:
    """Listen on a UNIX socket and yield the :class:`Server` for the block;
    :func:`start_server` for UNIX sockets.

    :param path: the socket's path (an existing socket file there is replaced)
    :param sock: an already bound UNIX socket to listen on instead of ``path``
    :param cleanup_socket: whether closing the server removes the socket file
        it created (if it is still the same file), as in Python 3.13

    .. versionadded:: 0.1
    """
    _check_limit(limit)
    check_send_timeout(send_timeout)
    context = _server_tls(ssl, ssl_handshake_timeout)
    _check_sock(path, None, sock)
    listener: SocketListener
    if sock is not None:
        sock.listen(backlog)
        listener = await SocketListener.from_socket(sock)
    else:
        assert path is not None
        listener = await anyio.create_unix_listener(path, backlog=backlog)

    unix_socket = None
    if cleanup_socket and path is not None:
        with suppress(OSError):
            unix_socket = (os.fspath(path), os.stat(path).st_ino)

    server = Server(
        client_connected_cb,
        [listener],
        limit=limit,
        ssl=context,
        ssl_handshake_timeout=ssl_handshake_timeout,
        start_serving=start_serving,
        send_timeout=send_timeout,
        unix_socket=unix_socket,
    )
    async with _serving(server):
        yield server
