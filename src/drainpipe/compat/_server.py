"""Servers: :class:`Server`, :func:`start_server` and :func:`start_unix_server`."""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
import sys
from contextlib import asynccontextmanager, suppress
from ssl import SSLContext
from typing import TYPE_CHECKING, Any

import anyio
from anyio import (
    BrokenResourceError,
    CancelScope,
    Event,
    aclose_forcefully,
    create_task_group,
    fail_after,
)
from anyio.abc import SocketAttribute, SocketListener, SocketStream
from anyio.lowlevel import checkpoint
from anyio.streams.tls import TLSStream

from .._checkpoints import wait
from .._core import check_send_timeout
from ._client import Connection
from ._errors import (
    DEFAULT_LIMIT,
    SSL_HANDSHAKE_TIMEOUT,
    check_limit,
    check_stream_socket,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
    from types import TracebackType

    from anyio.abc import ByteStream, TaskGroup
    from typing_extensions import Self

    from ._reader import StreamReader
    from ._writer import Shutdown, StreamWriter

# The name the documentation gives, whichever module logs.
_logger = logging.getLogger("drainpipe.compat")

#: Seconds before accepting again after running out of resources, as asyncio waits.
ACCEPT_RETRY_DELAY = 1.0
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class Server:
    """asyncio's ``Server``, yielded by :func:`start_server` and
    :func:`start_unix_server` (never made directly).

    Each connection's callback runs in a task of the server's block; the
    connection is closed (after a flush) when the callback returns. An exception
    from a callback is logged (``"Unhandled exception in client_connected_cb"`` on
    the ``drainpipe.compat`` logger, at ERROR level) and does not stop the server.
    Nor does a failed ``accept()``: as in asyncio, running out of file descriptors
    or memory is logged (``"socket.accept() out of system resource"``) and the
    accept retried after a second, and a client gone while queued is skipped.

    Unlike asyncio's, :meth:`serve_forever` *returns* when :meth:`close` is
    called instead of raising :exc:`asyncio.CancelledError`.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        client_connected_cb: Callable[[StreamReader, StreamWriter], Awaitable[object]],
        listeners: Sequence[SocketListener],
        *,
        backlog: int,
        limit: int,
        ssl: SSLContext | None,
        ssl_handshake_timeout: float | None,
        start_serving: bool,
        send_timeout: float | None = None,
        unix_socket: tuple[str | bytes, int] | None = None,
    ) -> None:
        self._client_connected_cb = client_connected_cb
        self._listeners = list(listeners)
        self._sockets: tuple[socket.socket, ...] | None = tuple(
            listener.extra(SocketAttribute.raw_socket) for listener in listeners
        )
        self._backlog = backlog
        self._limit = limit
        self._send_timeout = send_timeout
        self._ssl_context = ssl
        self._ssl_handshake_timeout = (
            SSL_HANDSHAKE_TIMEOUT
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
        self._shutdowns: set[Shutdown] = set()
        self._handshakes: set[CancelScope] = set()
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
        # As asyncio's: the sockets listen from here on, so that a connection
        # made before is refused rather than left in the backlog.
        if self._sockets is not None and not self._serving:
            for sock in self._sockets:
                sock.listen(self._backlog)
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
        server's block, at once; a connection accepted meanwhile is closed
        unserved, as asyncio's close() stops accepting at once); open connections
        go on. Idempotent."""
        if self._sockets is None:
            return

        self._sockets = None
        self._serving = False
        self._accept_scope.cancel()
        self._close_requested.set()

    def close_clients(self) -> None:
        """:meth:`StreamWriter.close` every open connection (and close those
        still in their TLS handshake)."""
        self._end_handshakes()
        for shutdown in list(self._shutdowns):
            shutdown.close()

    def abort_clients(self) -> None:
        """``transport.abort()`` every open connection (and close those still
        in their TLS handshake)."""
        self._end_handshakes()
        for shutdown in list(self._shutdowns):
            shutdown.abort()

    def _end_handshakes(self) -> None:
        for handshake in self._handshakes:
            handshake.cancel()

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

    @asynccontextmanager
    async def _serve_in_block(self) -> AsyncIterator[Self]:
        """Run the server in a task group for the block.

        Leaving the block normally closes the server and waits for the connections
        to end; leaving it by an exception cancels them and closes them at once. The
        tasks never raise, so the block's exception propagates unchanged.
        """
        task_group = create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        task_group.start_soon(self._accept, name=f"accept {self!r}")
        try:
            yield self
        except BaseException:
            task_group.cancel_scope.cancel()
            task_group.cancel_scope.shield = True
            await task_group.__aexit__(None, None, None)
            raise

        self.close()
        await task_group.__aexit__(None, None, None)

    def _check_idle(self) -> None:
        if not self._listening and not self._connections:
            self._idle.set()

    async def _accept(self) -> None:
        try:
            with self._accept_scope:
                await wait(self._start)
                async with create_task_group() as accepting:
                    for listener in self._listeners:
                        accepting.start_soon(self._accept_from, listener)
        finally:
            with CancelScope(shield=True):
                for listener in self._listeners:
                    await listener.aclose()
            self._remove_unix_socket()
            self._listening = False
            self._check_idle()

    async def _accept_from(self, listener: SocketListener) -> None:
        """Accept from ``listener`` until the server closes."""
        assert self._task_group is not None
        while True:
            stream = await self._accept_one(listener)
            if stream is None:
                continue
            if self._sockets is None:
                # Accepted as close() was called: asyncio's close() stops
                # accepting at once, so this connection is not served.
                await aclose_forcefully(stream)
                return
            self._task_group.start_soon(self._serve_connection, stream)

    @staticmethod
    async def _accept_one(listener: SocketListener) -> SocketStream | None:
        """One connection from ``listener``, or ``None`` after an error, which
        never ends the server (as in asyncio): out of file descriptors or memory,
        it is logged and the accept retried after a second."""
        try:
            return await listener.accept()
        except (OSError, BrokenResourceError) as exc:
            cause = exc if isinstance(exc, OSError) else exc.__cause__
            if isinstance(cause, ConnectionAbortedError):
                return None  # the client left while queued: asyncio accepts on
            if getattr(cause, "errno", None) in _OUT_OF_RESOURCES:
                _logger.error(
                    "socket.accept() out of system resource (socket %r)",
                    listener.extra(SocketAttribute.raw_socket),
                    exc_info=exc,
                )
            else:
                _logger.error("Error accepting a connection", exc_info=exc)

        await anyio.sleep(ACCEPT_RETRY_DELAY)
        return None

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
                # close_clients() and abort_clients() reach a connection in its
                # handshake too, as asyncio's reach its transport.
                handshake = CancelScope()
                self._handshakes.add(handshake)
                try:
                    with handshake, fail_after(self._ssl_handshake_timeout):
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
                finally:
                    self._handshakes.discard(handshake)
                if handshake.cancel_called:
                    await aclose_forcefully(connection)
                    return

            # The connection stays reachable by close_clients() and abort_clients()
            # until it is closed, also while the block's exit flushes.
            scope = Connection(connection, self._limit, self._send_timeout)
            self._shutdowns.add(scope.shutdown)
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
                self._shutdowns.discard(scope.shutdown)
        finally:
            self._connections -= 1
            self._check_idle()


def _server_tls(
    ssl: SSLContext | None, ssl_handshake_timeout: float | None
) -> SSLContext | None:
    if ssl is not None and not isinstance(ssl, SSLContext):
        raise TypeError("ssl argument must be an SSLContext or None")
    if ssl is None and ssl_handshake_timeout is not None:
        raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
    return ssl


#: asyncio skips an address that cannot be bound (EADDRNOTAVAIL) from Python 3.13 on.
_SKIPS_UNAVAILABLE_ADDRESSES = sys.version_info >= (3, 13)

#: asyncio words a failed bind with the whole error ("[errno 98] address already
#: in use") from Python 3.13 on, with its strerror before.
_BIND_ERROR_IN_FULL = sys.version_info >= (3, 13)


async def _bind_tcp(
    host: str | Sequence[str] | None,
    port: int | None,
    family: socket.AddressFamily,
    flags: int,
    reuse_address: bool | None,
    reuse_port: bool | None,
    keep_alive: bool | None,
) -> list[socket.socket]:
    """Bound TCP sockets for every address of every host, made as asyncio's
    ``create_server()`` makes them (IPv6 sockets are IPv6 only, so that ``""``
    and ``None`` give one socket per family); they listen once the server
    starts serving."""
    if reuse_address is None:
        reuse_address = os.name == "posix" and sys.platform != "cygwin"
    hosts: Sequence[str | None] = (
        [None]
        if host == ""
        else [host]
        if host is None or isinstance(host, str)
        else host
    )
    infos: set[tuple[Any, ...]] = set()
    for name in hosts:
        resolved = await anyio.getaddrinfo(
            name, port, family=family, type=socket.SOCK_STREAM, flags=flags
        )
        if not resolved:
            raise OSError(f"getaddrinfo({name!r}) returned empty list")
        infos.update(resolved)

    sockets: list[socket.socket] = []
    try:
        # In order (IPv4 first), where asyncio takes the set's: the same
        # sockets, made the same way on every run.
        for address_family, kind, proto, _, address in sorted(infos):
            try:
                sock = socket.socket(address_family, kind, proto)
            except OSError:
                continue  # a family or protocol that this host does not have
            sockets.append(sock)
            if reuse_address:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, True)
            if keep_alive:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
            if address_family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL and _SKIPS_UNAVAILABLE_ADDRESSES:
                    sockets.pop()  # the family is not enabled, as asyncio assumes
                    sock.close()
                    continue
                reason = str(exc) if _BIND_ERROR_IN_FULL else exc.strerror or ""
                raise OSError(
                    exc.errno,
                    f"error while attempting to bind on address {address!r}: "
                    f"{reason.lower()}",
                ) from None
        if not sockets:
            raise OSError(
                f"could not bind on any address out of {[info[4] for info in infos]!r}"
            )
    except BaseException:
        for sock in sockets:
            sock.close()
        raise

    return sockets


async def _server(
    client_connected_cb: Callable[[StreamReader, StreamWriter], Awaitable[object]],
    sockets: Sequence[socket.socket],
    **options: Any,
) -> Server:
    """A :class:`Server` on AnyIO listeners for bound ``sockets``; every socket is
    closed if making it fails (``listen()`` included)."""
    listeners: list[SocketListener] = []
    try:
        for sock in sockets:
            listeners.append(await SocketListener.from_socket(sock))  # noqa: PERF401
        return Server(client_connected_cb, listeners, **options)
    except BaseException:
        for listener in listeners:
            await aclose_forcefully(listener)
        for sock in sockets[len(listeners) :]:
            sock.close()
        raise


def _abstract(path: str | bytes) -> bool:
    """Whether ``path`` names a socket in Linux's abstract namespace (no file)."""
    return path[:1] in ("\x00", b"\x00")


def _remove_stale_socket(path: str | bytes) -> None:
    """Remove a socket file at ``path`` (any other file is kept); as asyncio, log
    an error that is not a missing file, and go on."""
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # the directory may let us create the socket only
        _logger.error("Unable to check or remove stale UNIX socket %r: %r", path, exc)


def _bind_unix(path: str | bytes | os.PathLike[str]) -> socket.socket:
    """A UNIX socket bound to ``path`` as asyncio's ``create_unix_server()``
    binds it: a stale socket file there is removed, any other file is kept."""
    path = os.fspath(path)
    if not _abstract(path):
        _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
    except BaseException as exc:
        sock.close()
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            raise OSError(
                errno.EADDRINUSE, f"Address {path!r} is already in use"
            ) from None
        raise
    return sock


@asynccontextmanager
async def start_server(
    client_connected_cb: Callable[[StreamReader, StreamWriter], Awaitable[object]],
    host: str | Sequence[str] | None = None,
    port: int | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    family: socket.AddressFamily = socket.AF_UNSPEC,
    flags: int = socket.AI_PASSIVE,
    sock: socket.socket | None = None,
    backlog: int = 100,
    ssl: SSLContext | None = None,
    reuse_address: bool | None = None,
    reuse_port: bool | None = None,
    keep_alive: bool | None = None,
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
    :param family: the address family to listen on (default: every one that
        ``host`` resolves to)
    :param flags: the ``getaddrinfo()`` flags for resolving ``host``
    :param sock: an already bound socket to listen on instead of ``host`` and
        ``port``
    :param backlog: the listen backlog
    :param ssl: an :class:`ssl.SSLContext` to serve TLS
    :param reuse_address: whether to set ``SO_REUSEADDR`` (default: on POSIX
        systems)
    :param reuse_port: whether to set ``SO_REUSEPORT``
    :param keep_alive: whether to set ``SO_KEEPALIVE``, which the connections
        inherit (asyncio has this keyword from Python 3.13 on; compat on every
        Python)
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
    check_limit(limit)
    check_send_timeout(send_timeout)
    context = _server_tls(ssl, ssl_handshake_timeout)
    if host is not None or port is not None:
        if sock is not None:
            raise ValueError("host/port and sock can not be specified at the same time")
        sockets = await _bind_tcp(
            host, port, family, flags, reuse_address, reuse_port, keep_alive
        )
    elif sock is None:
        raise ValueError("Neither host/port nor sock were specified")
    else:
        check_stream_socket(sock)
        sockets = [sock]

    server = await _server(
        client_connected_cb,
        sockets,
        backlog=backlog,
        limit=limit,
        ssl=context,
        ssl_handshake_timeout=ssl_handshake_timeout,
        start_serving=start_serving,
        send_timeout=send_timeout,
    )
    async with server._serve_in_block():
        yield server


@asynccontextmanager
async def start_unix_server(
    client_connected_cb: Callable[[StreamReader, StreamWriter], Awaitable[object]],
    path: str | bytes | os.PathLike[str] | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
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

    :param path: the socket's path, a string, bytes or path-like (an existing
        socket file there is replaced)
    :param sock: an already bound UNIX socket to listen on instead of ``path``
    :param cleanup_socket: whether closing the server removes the socket file
        (the one at ``path``, or the one ``sock`` is bound to) if it is still the
        same file, as asyncio does from Python 3.13 on

    .. versionadded:: 0.1
    """
    check_limit(limit)
    check_send_timeout(send_timeout)
    context = _server_tls(ssl, ssl_handshake_timeout)
    if path is not None:
        if sock is not None:
            raise ValueError("path and sock can not be specified at the same time")
        sock = _bind_unix(path)
    elif sock is None:
        raise ValueError("path was not specified, and no sock specified")
    else:
        check_stream_socket(sock, unix=True)

    unix_socket = None
    name = sock.getsockname()
    if cleanup_socket and name and not _abstract(name):
        with suppress(OSError):
            unix_socket = (name, os.stat(name).st_ino)

    server = await _server(
        client_connected_cb,
        [sock],
        backlog=backlog,
        limit=limit,
        ssl=context,
        ssl_handshake_timeout=ssl_handshake_timeout,
        start_serving=start_serving,
        send_timeout=send_timeout,
        unix_socket=unix_socket,
    )
    async with server._serve_in_block():
        yield server
