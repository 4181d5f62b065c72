"""How the flush task hands pieces to the wrapped stream, and whether a write to an
idle stream may hand its bytes over itself (``write_now()``), chosen once per stream.

* :class:`SendPerPiece`: one ``send()`` of the wrapped stream per piece; works on
  every stream.
* :class:`VectoredWrites`: batches of queued pieces written with one
  :func:`os.writev` straight to the socket under one of AnyIO's own socket
  streams, falling back to the stream's ``send()`` whenever the socket is full.
  AnyIO's streams have no vectored send, and on loopback TCP a system call costs
  about as much as the kernel copying a large message, so writing several queued
  pieces per call is what makes large messages as fast as direct sends (the
  figures are on the performance page).

The vectored path depends on private attributes of AnyIO's stream classes. It is
chosen only when every probe in :func:`socket_writer` succeeds; anything missing
or unexpected means :class:`SendPerPiece`. Each assumption has a named test in
``tests/test_anyio_contract.py``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# Names AnyIO loads lazily are looked up as ``anyio.<name>`` when a stream is
# wrapped or sends, not when drainpipe is imported (see _stream.py).
import anyio
from anyio import BrokenResourceError

from ._core import skip_written
from ._lifecycle import CLOSED

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from anyio import ResourceGuard, TypedAttributeProvider
    from anyio.abc import AnyByteSendStream

    from ._core import Chunk, SendBuffer
    from ._lifecycle import Lifecycle

#: AnyIO stream classes (module, name) that keep no bytes of their own between
#: ``send()`` calls: their ``send()`` returns once the kernel has every byte.
UNBUFFERED = frozenset(
    {
        ("anyio._backends._trio", "SocketStream"),
        ("anyio._backends._trio", "UNIXSocketStream"),
        ("anyio._backends._asyncio", "UNIXSocketStream"),
    }
)

#: AnyIO's asyncio TCP stream: its ``send()`` may leave bytes in its transport's
#: buffer (asyncio's or uvloop's), which a direct write must never overtake.
TRANSPORT = ("anyio._backends._asyncio", "SocketStream")


def _transport_of(stream: object) -> Any:
    """The asyncio transport under AnyIO's asyncio TCP stream (whose raw socket is
    the transport's own), or ``None`` unless it has every method the writer uses
    and is a plain one: bytes written under a TLS transport would skip its
    encryption."""
    transport = getattr(stream, "_transport", None)
    methods = ("is_closing", "get_write_buffer_size", "write", "get_extra_info")
    if not all(callable(getattr(transport, name, None)) for name in methods):
        return None

    assert transport is not None
    try:
        encrypted = transport.get_extra_info("sslcontext") is not None
    except Exception:  # noqa: BLE001 - anything unexpected: no fast path
        return None

    return None if encrypted else transport


def _holds_no_transport(stream: object) -> bool:
    """Whether ``stream`` has no attribute that looks like a buffer of its own."""
    try:
        names = vars(stream)
    except TypeError:  # a slotted class: cannot tell
        return False

    return not any("transport" in name or "protocol" in name for name in names)


def socket_writer(
    stream: TypedAttributeProvider,
) -> Callable[[Sequence[Chunk]], int] | None:
    """Return a function writing pieces to the socket under ``stream`` without
    waiting, or ``None`` unless every probe succeeds: ``stream`` is exactly one of
    AnyIO's own socket stream classes (a subclass may do its own thing in
    ``send()``) on a platform with :func:`os.writev`, with AnyIO's send guard, a
    stream socket, and either no buffer of its own or an asyncio transport.

    The function returns how many bytes the kernel accepted, from the first piece
    on. It returns 0, writing nothing, if the socket would block, if the stream is
    closed or closing, if the stream's transport still holds bytes of an earlier
    ``send()``, or if the transport refuses writes (during ``loop.sendfile()``, or
    after ``write_eof()``): the caller then hands the next piece to the stream's
    own ``send()``, which waits or raises as it would anyway. Only one task at a
    time may use it: the flush task, or a write to an idle stream while the flush
    task waits for work.

    :raises ~anyio.BusyResourceError: if another task is in the stream's ``send()``
        (as that ``send()`` would raise for a second one)
    :raises ~anyio.BrokenResourceError: from the :exc:`OSError` of a failed write
    """
    if not hasattr(os, "writev"):  # pragma: no cover - Windows
        return None

    kind = (type(stream).__module__, type(stream).__qualname__)
    if kind not in UNBUFFERED and kind != TRANSPORT:
        return None

    # AnyIO's own guard: a task of the user's in the stream's send() (a misuse)
    # makes the writer raise BusyResourceError, as a second send() would, instead
    # of writing into the middle of that task's bytes.
    send_guard = getattr(stream, "_send_guard", None)
    if not isinstance(send_guard, anyio.ResourceGuard):
        return None

    try:
        raw_socket = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    except Exception:  # noqa: BLE001 - anything unexpected: no fast path
        return None

    # On asyncio this is the transport's socket wrapper, not a socket.socket. The
    # stream is one of AnyIO's socket streams, so the socket module is loaded.
    import socket

    if getattr(raw_socket, "type", None) != socket.SOCK_STREAM or not callable(
        getattr(raw_socket, "fileno", None)
    ):
        return None

    transport: Any = None
    if kind in UNBUFFERED:
        if not _holds_no_transport(stream):
            return None
    else:
        transport = _transport_of(stream)
        if transport is None:
            return None

    return SocketWriter(send_guard, raw_socket, transport)


class SocketWriter:
    """The function :func:`socket_writer` returns: an object, not closures, since
    every stream over a socket holds one (a slotted object is the smaller)."""

    __slots__ = ("_raw_socket", "_send_guard", "_transport")

    def __init__(self, send_guard: ResourceGuard, raw_socket: Any, transport: Any):
        self._send_guard = send_guard
        self._raw_socket = raw_socket
        self._transport = transport

    def _busy(self) -> bool:
        """Whether the stream's transport holds bytes, is closing, or refuses
        writes."""
        transport = self._transport
        # is_closing() covers the moment between abort() and the socket's close.
        if transport.is_closing() or transport.get_write_buffer_size():
            return True

        try:
            # Runs every check of the transport's own write() and writes nothing:
            # refused during loop.sendfile() and after write_eof(), where the
            # stream's send() raises the same error.
            transport.write(b"")
        except RuntimeError:
            return True

        return False

    def __call__(self, pieces: Sequence[Chunk]) -> int:
        with self._send_guard:
            if self._transport is not None and self._busy():
                return 0

            descriptor = self._raw_socket.fileno()  # -1 once closed, never reused
            if descriptor < 0:
                return 0

            try:
                return os.writev(descriptor, pieces)
            except BlockingIOError:
                return 0
            except OSError as exc:
                raise BrokenResourceError from exc


class SendTimedOut(Exception):
    """The wrapped stream took longer than ``send_timeout`` to accept a piece."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        #: the ``send_timeout`` that passed
        self.seconds = seconds


class SendPerPiece:
    """One ``send()`` of the wrapped stream per piece.

    :meth:`take` returns the next piece (``None`` if nothing is queued);
    :meth:`transmit` sends it, within ``send_timeout`` seconds unless ``None``,
    and returns whether that ended a pause. :meth:`write_now` writes nothing: a
    ``send()`` may wait.
    """

    __slots__ = ("_lifecycle", "_send", "take")

    def __init__(
        self, send_stream: AnyByteSendStream, buffer: SendBuffer, lifecycle: Lifecycle
    ) -> None:
        self.take: Callable[[], Any] = buffer.take
        self._send: Callable[[Any], Any] = send_stream.send
        self._lifecycle = lifecycle

    async def transmit(self, piece: Chunk, send_timeout: float | None) -> bool:
        """:raises SendTimedOut: if the piece was not accepted within
        ``send_timeout`` seconds"""
        if send_timeout is None:
            await self._send(piece)
        else:
            with anyio.CancelScope(
                deadline=anyio.current_time() + send_timeout
            ) as limit:
                await self._send(piece)

            if limit.cancelled_caught:
                raise SendTimedOut(send_timeout)

        return self._lifecycle.record_sent(len(piece))

    def write_now(self, data: bytes) -> int:
        """Return 0: nothing is written without waiting, ``data`` is queued."""
        return 0


class VectoredWrites:
    """Batches of pieces written to the socket with one :func:`os.writev`; what the
    socket does not take goes through the stream's ``send()`` piece by piece.
    Bytes count as sent as soon as the socket has them.

    :meth:`take` returns the next batch (empty if nothing is queued);
    :meth:`transmit` hands it over and returns whether that ended a pause;
    :meth:`write_now` hands the socket what it takes of ``data`` at once. A
    ``send_timeout`` bounds each ``send()`` of a piece the socket did not take at
    once, so it bounds the time without progress, as for :class:`SendPerPiece`.
    """

    __slots__ = ("_lifecycle", "_per_piece", "_write_socket", "take")

    def __init__(
        self,
        write_socket: Callable[[Sequence[Chunk]], int],
        per_piece: SendPerPiece,
        buffer: SendBuffer,
        lifecycle: Lifecycle,
    ) -> None:
        self.take: Callable[[], Any] = buffer.take_batch
        self._write_socket = write_socket
        self._per_piece = per_piece
        self._lifecycle = lifecycle

    def write_now(self, data: bytes) -> int:
        """Write ``data`` to the socket without waiting; return how many bytes it
        took (0 if it would block, or the stream is busy or closing).

        :raises ~anyio.BusyResourceError: if another task is in the stream's
            ``send()``
        :raises ~anyio.BrokenResourceError: from the :exc:`OSError` of a failed
            write
        """
        return self._write_socket((data,))

    async def transmit(self, batch: list[Chunk], send_timeout: float | None) -> bool:
        """:raises SendTimedOut: if a piece was not accepted within
        ``send_timeout`` seconds"""
        write_socket = self._write_socket
        record_sent = self._lifecycle.record_sent
        resumed = False
        first = 0
        waited = False
        while first < len(batch):
            written = write_socket(batch[first:] if first else batch)
            if written:
                resumed |= record_sent(written)
                first = skip_written(batch, first, written)

            if first < len(batch):
                # The socket is full (or the stream is closing): let the stream's
                # send() wait for room, or raise.
                resumed |= await self._per_piece.transmit(batch[first], send_timeout)
                if self._lifecycle.state is CLOSED:
                    return resumed  # closed forcefully: write nothing more

                first += 1
                waited = True

        if not waited:
            await anyio.lowlevel.checkpoint()

        return resumed


def choose_transmit(
    send_stream: AnyByteSendStream,
    buffer: SendBuffer,
    lifecycle: Lifecycle,
    *,
    vectored: bool,
) -> SendPerPiece | VectoredWrites:
    """Vectored writes if ``vectored`` and :func:`socket_writer` accepts the
    stream, else one ``send()`` per piece."""
    per_piece = SendPerPiece(send_stream, buffer, lifecycle)
    write_socket = socket_writer(send_stream) if vectored else None
    if write_socket is None:
        return per_piece

    return VectoredWrites(write_socket, per_piece, buffer, lifecycle)
