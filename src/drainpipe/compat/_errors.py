"""asyncio's exceptions for AnyIO's, and what ended a connection."""

from __future__ import annotations

import socket
from ssl import SSLEOFError
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from anyio import BrokenResourceError

DEFAULT_LIMIT = 2**16  # asyncio's default StreamReader limit
SSL_HANDSHAKE_TIMEOUT = 60.0  # asyncio's default, in seconds


def check_limit(limit: int) -> None:
    if limit <= 0:
        raise ValueError("Limit cannot be <= 0")


class ConnectionState:
    """What one connection's reader and writer both know: whether the peer's end
    of stream arrived, and the error that ended the connection (the first one
    recorded).

    The connection's writer listens through :attr:`on_lost` and :attr:`on_eof`,
    as asyncio's transport closes itself when the connection is lost, and over
    TLS when the peer's end of stream arrives.
    """

    def __init__(self) -> None:
        self.eof_received = False
        self.error: OSError | None = None
        #: called once, when the first error is recorded
        self.on_lost: Callable[[], None] | None = None
        #: called when the peer's end of stream arrives
        self.on_eof: Callable[[], None] | None = None

    def lose(self, error: BaseException) -> OSError:
        """Record the connection as lost with AnyIO's ``error``, unless it was
        lost already; return the recorded exception, asyncio's for the first
        error (see :func:`connection_error`), which every later call raises as
        asyncio's reader and writer raise the reader's exception."""
        if self.error is None:
            self.error = connection_error(error)
            if self.on_lost is not None:
                self.on_lost()
        return self.error

    def end(self) -> None:
        """Record the peer's end of stream."""
        self.eof_received = True
        if self.on_eof is not None:
            self.on_eof()


def connection_error(error: BaseException) -> OSError:
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


def ragged_eof(error: BrokenResourceError) -> bool:
    """Whether ``error`` is a TLS peer closing without ``close_notify``.

    asyncio reads that as a normal end of stream (AnyIO, with
    ``standard_compatible=True``, as a broken stream), and so does this package.
    """
    return isinstance(error.__cause__, SSLEOFError)


def connect_error(error: OSError) -> OSError | None:
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

    return summed_error(attempts)


def summed_error(attempts: Sequence[OSError]) -> OSError:
    """asyncio's ``create_connection()`` error for failed ``attempts``: one error,
    or several with the same message, is raised as it is (a fresh copy);
    different ones are summed up in one :exc:`OSError`."""
    first = attempts[0]
    if all(str(attempt) == str(first) for attempt in attempts):
        return type(first)(*first.args)

    return OSError(
        "Multiple exceptions: " + ", ".join(str(attempt) for attempt in attempts)
    )


def check_stream_socket(sock: socket.socket, *, unix: bool = False) -> None:
    """asyncio's check that a given ``sock`` is a stream socket (a UNIX one for
    the UNIX functions)."""
    if sock.type != socket.SOCK_STREAM or (
        unix and sock.family != getattr(socket, "AF_UNIX", None)
    ):
        kind = "UNIX Domain Stream" if unix else "Stream"
        raise ValueError(f"A {kind} Socket was expected, got {sock!r}")


def check_unix_sock(path: object, sock: socket.socket | None) -> None:
    """asyncio's check of the ``path``/``sock`` combinations of a UNIX client."""
    if path is not None:
        if sock is not None:
            raise ValueError("path and sock can not be specified at the same time")
    elif sock is None:
        raise ValueError("no path and sock were specified")


def check_sock(host: object, port: object, sock: socket.socket | None) -> None:
    """asyncio's check of the ``host``/``port``/``sock`` combinations."""
    if sock is not None:
        if host is not None or port is not None:
            raise ValueError("host/port and sock can not be specified at the same time")
    elif host is None and port is None:
        raise ValueError("host and port was not specified and no sock specified")
