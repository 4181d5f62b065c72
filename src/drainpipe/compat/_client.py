"""Client connections: the block that owns one connection (also each connection a
server accepts), and :func:`open_connection` and :func:`open_unix_connection`."""

from __future__ import annotations

import ipaddress
import math
import socket
from contextlib import asynccontextmanager
from itertools import zip_longest
from ssl import SSLContext, create_default_context
from typing import TYPE_CHECKING, Any

import anyio
from anyio import (
    BrokenResourceError,
    Event,
    aclose_forcefully,
    create_task_group,
    fail_after,
    move_on_after,
)
from anyio.abc import SocketStream, UNIXSocketStream
from anyio.streams.tls import TLSStream

from .._checkpoints import wait
from .._core import check_send_timeout
from .._stream import BufferedByteSendStream
from ._errors import (
    DEFAULT_LIMIT,
    SSL_HANDSHAKE_TIMEOUT,
    check_limit,
    check_sock,
    check_stream_socket,
    check_unix_sock,
    connect_error,
    connection_error,
    summed_error,
)
from ._reader import StreamReader, connection_state
from ._writer import Shutdown, StreamWriter

if TYPE_CHECKING:
    import os
    from collections.abc import AsyncIterator
    from types import TracebackType

    from anyio.abc import ByteStream


class Connection:
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
        state = connection_state(self.reader)
        #: the close and half-close, for the server's close_clients()/abort_clients()
        self.shutdown = Shutdown(self._send_stream, state, self._task_group)
        self.writer = StreamWriter(self._send_stream, state, self.shutdown)

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
        shutdown = self.shutdown
        try:
            if exc_val is None:
                shutdown.close()
                await wait(shutdown.closed)
        except BaseException as exc:  # cancelled while flushing
            exc_type, exc_val, exc_tb = type(exc), exc, exc.__traceback__
            raise
        finally:
            if exc_val is not None:
                shutdown.abort()

            # Whatever is left (an EOF that can no longer be sent) is moot.
            shutdown.cancel_eof()
            self._task_group.cancel_scope.cancel()
            self._task_group.cancel_scope.shield = True
            try:
                await self._task_group.__aexit__(None, None, None)
            finally:
                # Even if a cancellation of the block was delivered to that wait:
                # the buffer's task group must be left too.
                await self._send_stream.__aexit__(exc_type, exc_val, exc_tb)


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
    timeout = SSL_HANDSHAKE_TIMEOUT if handshake_timeout is None else handshake_timeout
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
            raise connection_error(exc) from exc
        raise


async def _connect_tcp(
    host: str, port: int, local_addr: tuple[str, int] | None
) -> SocketStream:
    """AnyIO's ``connect_tcp()`` to one numeric ``host``, with asyncio's error."""
    local_host, local_port = local_addr or (None, None)
    try:
        return await anyio.connect_tcp(
            host, port, local_host=local_host, local_port=local_port
        )
    except OSError as exc:
        error = connect_error(exc)
        if error is None:
            raise
        raise error from exc


async def _connect_resolved(
    host: str,
    port: int,
    family: int,
    proto: int,
    flags: int,
    local_addr: tuple[str, int] | None,
    happy_eyeballs_delay: float | None,
) -> SocketStream:
    """Connect to the addresses that ``getaddrinfo()`` gives (for ``family``,
    ``proto`` and ``flags``, which AnyIO's ``connect_tcp()`` does not take) as
    asyncio does: each attempt starts when the one before has failed, or after
    ``happy_eyeballs_delay`` (the families then taking turns); the first connected
    wins. A failure names the address in asyncio's words, and an address of a
    family that ``local_addr`` does not have fails without an attempt."""
    addresses = _numeric_address(host, port) if not family | proto | flags else None
    if addresses is None:
        infos = await anyio.getaddrinfo(
            host, port, family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags
        )
        if not infos:
            raise OSError("getaddrinfo() returned empty list")
        addresses = list(dict.fromkeys(_sockaddr(info[4]) for info in infos))
    if happy_eyeballs_delay is not None:
        addresses = _interleaved(addresses)

    local_families = None
    if local_addr is not None:
        local_infos = await anyio.getaddrinfo(
            *local_addr,
            family=family,
            type=socket.SOCK_STREAM,
            proto=proto,
            flags=flags,
        )
        if not local_infos:
            raise OSError("getaddrinfo() returned empty list")
        local_families = {info[0] for info in local_infos}

    attempts: dict[int, OSError] = {}
    connected: list[SocketStream] = []
    # Raised as it is (not in an exception group), as from one attempt.
    unexpected: list[Exception] = []

    async def attempt(index: int, address: tuple[Any, ...], failed: Event) -> None:
        family = _family_of(address)
        if local_families is not None and family not in local_families:
            # asyncio's words, {family=} included
            attempts[index] = OSError(f"no matching local address with {family=} found")
            failed.set()
            return

        try:
            stream = await _connect_tcp(_numeric_host(address), port, local_addr)
        except OSError as exc:
            attempts[index] = _connect_call_failed(exc, address)
            failed.set()
            return
        except Exception as exc:  # noqa: BLE001 - raised below
            unexpected.append(exc)
            racing.cancel_scope.cancel()
            return

        if connected:  # another attempt won in the same iteration
            await aclose_forcefully(stream)
            return
        connected.append(stream)
        racing.cancel_scope.cancel()

    delay = math.inf if happy_eyeballs_delay is None else happy_eyeballs_delay
    try:
        async with create_task_group() as racing:
            for index, address in enumerate(addresses):
                failed = Event()
                racing.start_soon(attempt, index, address, failed)
                with move_on_after(delay):
                    await wait(failed)
    except BaseException:
        # A cancellation from outside that lands as an attempt wins: the
        # winner's stream is nobody's but this function's.
        for stream in connected:
            await aclose_forcefully(stream)
        raise

    if unexpected:
        for stream in connected:
            await aclose_forcefully(stream)
        raise unexpected[0]
    if connected:
        return connected[0]

    errors = [attempts[index] for index in sorted(attempts)]
    raise summed_error(errors) from errors[-1].__cause__


def _family_of(address: tuple[Any, ...]) -> socket.AddressFamily:
    """The family of a socket address from ``getaddrinfo()``."""
    return socket.AF_INET6 if len(address) == 4 else socket.AF_INET


def _interleaved(addresses: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``addresses`` with the families taking turns, each in its own order, as
    asyncio orders them when given ``happy_eyeballs_delay``
    (``_interleave_addrinfos()`` with ``interleave=1``)."""
    by_family: dict[socket.AddressFamily, list[tuple[Any, ...]]] = {}
    for address in addresses:
        by_family.setdefault(_family_of(address), []).append(address)
    return [
        address
        for turn in zip_longest(*by_family.values())
        for address in turn
        if address is not None
    ]


def _numeric_address(host: str, port: int) -> list[tuple[Any, ...]] | None:
    """``getaddrinfo()``'s address for a numeric ``host``, made without a thread
    as asyncio makes it (``None`` for a name, or an IPv6 address with a scope)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.version == 4:
        return [(host, port)]
    if "%" in host:
        return None
    return [(host, port, 0, 0)]


def _sockaddr(address: tuple[Any, ...]) -> tuple[Any, ...]:
    """The socket address that asyncio names, for one of ``anyio.getaddrinfo()``,
    which gives an IPv6 address as ``(host%scope_id, port)``."""
    host, port = address[:2]
    if ":" not in host:
        return (host, port)
    host, _, scope_id = host.partition("%")
    return (host, port, 0, int(scope_id or 0))


def _numeric_host(address: tuple[Any, ...]) -> str:
    """The host of a ``getaddrinfo()`` address, with its IPv6 scope if any."""
    host: str = address[0]
    if len(address) == 4 and address[3]:
        return f"{host}%{address[3]}"
    return host


def _connect_call_failed(error: OSError, address: tuple[Any, ...]) -> OSError:
    """``error`` worded as asyncio words a failed connect to ``address`` (not a
    failure to resolve ``local_addr``, which asyncio raises as it is)."""
    if error.errno is None or isinstance(error, socket.gaierror):
        return error

    worded = type(error)(error.errno, f"Connect call failed {address}")
    worded.__cause__ = error.__cause__
    return worded


@asynccontextmanager
async def open_connection(
    host: str | None = None,
    port: int | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    ssl: SSLContext | bool | None = None,
    sock: socket.socket | None = None,
    family: int = 0,
    proto: int = 0,
    flags: int = 0,
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
    :param family: the address family to connect over (default: any)
    :param proto: the protocol number for resolving ``host``
    :param flags: the ``getaddrinfo()`` flags for resolving ``host``
    :param server_hostname: the host name to check the server's certificate
        against (default: ``host``; ``""`` turns the check off)
    :param ssl_handshake_timeout: seconds to wait for the TLS handshake (default
        60)
    :param local_addr: ``(host, port)`` to bind the socket to
    :param happy_eyeballs_delay: seconds before trying the next address of a
        host name while the attempts before go on (default: try one at a time,
        as asyncio does)
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
    check_limit(limit)
    check_send_timeout(send_timeout)
    check_sock(host, port, sock)
    context, hostname = _client_tls(ssl, server_hostname, host, ssl_handshake_timeout)
    stream: SocketStream
    if sock is not None:
        check_stream_socket(sock)
        stream = await SocketStream.from_socket(sock)
    else:
        assert host is not None
        assert port is not None
        stream = await _connect_resolved(
            host, port, family, proto, flags, local_addr, happy_eyeballs_delay
        )

    connection: ByteStream = stream
    if context is not None:
        connection = await _start_tls(stream, context, hostname, ssl_handshake_timeout)

    async with Connection(connection, limit, send_timeout) as pair:
        yield pair


@asynccontextmanager
async def open_unix_connection(
    path: str | bytes | os.PathLike[str] | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
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
    check_limit(limit)
    check_send_timeout(send_timeout)
    check_unix_sock(path, sock)
    context, hostname = _client_tls(ssl, server_hostname, None, ssl_handshake_timeout)
    stream: SocketStream
    if sock is not None:
        check_stream_socket(sock, unix=True)
        stream = await UNIXSocketStream.from_socket(sock)
    else:
        assert path is not None
        stream = await anyio.connect_unix(path)

    connection: ByteStream = stream
    if context is not None:
        connection = await _start_tls(stream, context, hostname, ssl_handshake_timeout)

    async with Connection(connection, limit, send_timeout) as pair:
        yield pair
