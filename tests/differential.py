"""Differential testing of drainpipe.compat against asyncio's own streams.

A scenario is an ``async def scenario(api) -> result`` written once against
:class:`Api`. It runs twice: on :class:`AsyncioApi`, asyncio's real streams on a
fresh standard event loop (a ``SelectorEventLoop``, whatever the test's backend),
and on :class:`CompatApi`, ``drainpipe.compat`` under the backend being tested. The
two results must be equal. A result records return values, and exceptions as
their type with the attributes asyncio code inspects (``partial``, ``expected``,
``consumed``, ``errno``, the message), so that equal results mean that the same
``except`` clauses run the same way.
"""

from __future__ import annotations

import asyncio
import errno as errno_names
import re
import socket
import tempfile
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import TYPE_CHECKING, Any

import anyio

from drainpipe import compat

if TYPE_CHECKING:
    from collections.abc import (
        AsyncIterator,
        Awaitable,
        Callable,
        Coroutine,
        Iterator,
        Sequence,
    )
    from contextlib import AbstractContextManager as ContextManager

    from anyio.streams.memory import MemoryObjectReceiveStream

#: Seconds either side may take for one example.
SCENARIO_TIMEOUT = 30.0


def describe(exc: BaseException) -> tuple[Any, ...]:
    """An exception as the fields that asyncio code inspects."""
    if isinstance(exc, asyncio.IncompleteReadError):
        return ("IncompleteReadError", exc.partial, exc.expected)
    if isinstance(exc, asyncio.LimitOverrunError):
        return ("LimitOverrunError", exc.consumed, str(exc))
    if isinstance(exc, OSError) and exc.errno is not None:
        return (
            type(exc).__name__,
            errno_names.errorcode.get(exc.errno, exc.errno),
            message(exc),
        )
    return (type(exc).__name__, message(exc))


def message(exc: BaseException) -> str:
    """``str(exc)`` without what differs by run: a socket's repr (its file
    descriptor and port) and port numbers in addresses."""
    text = re.sub(r"<socket\.socket [^>]*>", "<socket>", str(exc))
    text = re.sub(re.escape(tempfile.gettempdir()) + r"/[^/'\"]+", "<tmp>", text)
    return re.sub(r"(\(['\"][^'\"]*['\"], )\d+", r"\1PORT", text)


async def outcome(awaitable: Awaitable[Any]) -> tuple[Any, ...]:
    """``("ok", result)`` or ``("raised", *describe(exc))``."""
    try:
        return ("ok", await awaitable)
    except Exception as exc:  # noqa: BLE001 - the exception is the result
        return ("raised", *describe(exc))


def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    """:func:`outcome` for a synchronous call."""
    try:
        return ("ok", function(*args, **kwargs))
    except Exception as exc:  # noqa: BLE001 - the exception is the result
        return ("raised", *describe(exc))


class Api:
    """What a scenario may use; the two implementations differ only in whose
    streams they open."""

    name: str
    #: the write transport's documented interface
    write_transport_type: type

    def fed_reader(self, chunks: Sequence[bytes], limit: int) -> Any:
        """A reader that receives ``chunks``, one each time a read waits for
        data, then the end of stream."""
        raise NotImplementedError

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        """``open_connection()``: an async context manager of ``(reader,
        writer)``, closed at its exit."""
        raise NotImplementedError

    def connect_unix(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def serve(self, handler: Any, *args: Any, **kwargs: Any) -> Any:
        """``start_server()``: an async context manager of the server, closed
        at its exit."""
        raise NotImplementedError

    def serve_unix(self, handler: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def event(self) -> Any:
        raise NotImplementedError

    @asynccontextmanager
    async def connected_to(self, handler: Any) -> AsyncIterator[tuple[Any, Any]]:
        """A ``(reader, writer)`` pair connected to a server on 127.0.0.1 that runs
        ``handler`` for the connection."""
        async with (
            self.serve(handler, "127.0.0.1", 0) as server,
            self.connect("127.0.0.1", port_of(server)) as pair,
        ):
            yield pair

    async def sleep(self, seconds: float) -> None:
        raise NotImplementedError

    def resolving(self, name: str, hosts: Sequence[str]) -> ContextManager[None]:
        """A context in which ``name`` resolves to the numeric ``hosts``, for the
        connections of this side (its event loop's resolver patched)."""
        raise NotImplementedError


def resolved(
    name: str, hosts: Sequence[str], host: Any, port: Any, *, anyio_form: bool = False
) -> list[Any] | None:
    """``getaddrinfo()``'s answer for ``host`` if it is ``name``, else ``None``;
    in AnyIO's form, an IPv6 address is ``(host, port)``, as
    ``anyio.getaddrinfo()`` gives it."""
    if host != name:
        return None

    infos = []
    for ip in hosts:
        family, address = (
            (socket.AF_INET, (ip, int(port)))
            if ":" not in ip
            else (socket.AF_INET6, (ip, int(port)))
            if anyio_form
            else (socket.AF_INET6, (ip, int(port), 0, 0))
        )
        infos.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address))
    return infos


class AsyncioApi(Api):
    name = "asyncio"
    write_transport_type = asyncio.WriteTransport

    def fed_reader(self, chunks: Sequence[bytes], limit: int) -> Any:
        return _FedReader(chunks, limit)

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        return _closed_at_exit(asyncio.open_connection(*args, **kwargs))

    def connect_unix(self, *args: Any, **kwargs: Any) -> Any:
        return _closed_at_exit(asyncio.open_unix_connection(*args, **kwargs))

    @asynccontextmanager
    async def serve(
        self, handler: Any, *args: Any, **kwargs: Any
    ) -> AsyncIterator[Any]:
        server = await asyncio.start_server(handler, *args, **kwargs)
        async with server:
            yield server

    @asynccontextmanager
    async def serve_unix(
        self, handler: Any, *args: Any, **kwargs: Any
    ) -> AsyncIterator[Any]:
        server = await asyncio.start_unix_server(handler, *args, **kwargs)
        async with server:
            yield server

    def event(self) -> Any:
        return asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    @contextmanager
    def resolving(self, name: str, hosts: Sequence[str]) -> Iterator[None]:
        real = socket.getaddrinfo

        def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            return resolved(name, hosts, host, port) or real(
                host, port, *args, **kwargs
            )

        socket.getaddrinfo = fake  # asyncio's resolver looks it up at each call
        try:
            yield
        finally:
            socket.getaddrinfo = real


@asynccontextmanager
async def _closed_at_exit(
    opening: Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]],
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """asyncio's pair, closed at the exit as compat's block closes its own."""
    reader, writer = await opening
    try:
        yield reader, writer
    finally:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()


class _FedReader(asyncio.StreamReader):
    """asyncio's own reader, fed the next chunk whenever a read waits for data:
    the order in which drainpipe's reader pulls chunks from its stream."""

    def __init__(self, chunks: Sequence[bytes], limit: int) -> None:
        super().__init__(limit=limit)
        self._chunks = list(chunks)

    async def _wait_for_data(self, func_name: str) -> None:
        if self._chunks:
            self.feed_data(self._chunks.pop(0))
        else:
            self.feed_eof()
        await asyncio.sleep(0)


class CompatApi(Api):
    name = "compat"
    write_transport_type = compat.WriteTransport

    def __init__(self) -> None:
        self._receive_streams: list[MemoryObjectReceiveStream[bytes]] = []

    def fed_reader(self, chunks: Sequence[bytes], limit: int) -> Any:
        send, receive = anyio.create_memory_object_stream[bytes](len(chunks) + 1)
        self._receive_streams.append(receive)
        for chunk in chunks:
            send.send_nowait(chunk)
        send.close()
        return compat.StreamReader(receive, limit=limit)

    def close(self) -> None:
        """Close the fed readers' streams."""
        for receive in self._receive_streams:
            receive.close()

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        return compat.open_connection(*args, **kwargs)

    def connect_unix(self, *args: Any, **kwargs: Any) -> Any:
        return compat.open_unix_connection(*args, **kwargs)

    def serve(self, handler: Any, *args: Any, **kwargs: Any) -> Any:
        return compat.start_server(handler, *args, **kwargs)

    def serve_unix(self, handler: Any, *args: Any, **kwargs: Any) -> Any:
        return compat.start_unix_server(handler, *args, **kwargs)

    def event(self) -> Any:
        return anyio.Event()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    @contextmanager
    def resolving(self, name: str, hosts: Sequence[str]) -> Iterator[None]:
        # compat resolves through anyio.getaddrinfo() on every backend (uvloop's
        # resolver does not call socket.getaddrinfo()).
        real = anyio.getaddrinfo

        async def fake(host: Any, port: Any, **kwargs: Any) -> Any:
            return resolved(name, hosts, host, port, anyio_form=True) or await real(
                host, port, **kwargs
            )

        anyio.getaddrinfo = fake
        try:
            yield
        finally:
            anyio.getaddrinfo = real


def run_on_asyncio(scenario: Callable[[Api], Coroutine[Any, Any, Any]]) -> Any:
    """The scenario's result on asyncio's streams, on a fresh standard loop."""

    async def bounded() -> Any:
        return await asyncio.wait_for(scenario(AsyncioApi()), SCENARIO_TIMEOUT)

    loop = asyncio.SelectorEventLoop()
    try:
        return loop.run_until_complete(bounded())
    finally:
        loop.close()


def run_on_compat(
    scenario: Callable[[Api], Coroutine[Any, Any, Any]],
    anyio_backend: tuple[str, dict[str, Any]],
) -> Any:
    """The scenario's result on drainpipe.compat, on the test's backend."""
    backend, options = anyio_backend

    async def bounded() -> Any:
        api = CompatApi()
        try:
            with anyio.fail_after(SCENARIO_TIMEOUT):
                return await scenario(api)
        finally:
            api.close()

    return anyio.run(bounded, backend=backend, backend_options=options)


def port_of(server: Any) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port
