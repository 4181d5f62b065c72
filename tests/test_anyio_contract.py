"""What the vectored fast path assumes of AnyIO's private internals, one named test
per assumption, and that the fast path fails closed when an assumption breaks.

``drainpipe._transmit.socket_writer`` writes straight to the socket under AnyIO's
own socket streams. If a new AnyIO changes one of the internals below, the test
named for it fails here, instead of the fast path writing somewhere it must not;
and the probes in ``socket_writer`` then choose one ``send()`` per piece.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio import BusyResourceError, ResourceGuard, create_task_group, move_on_after
from anyio.abc import SocketAttribute, SocketStream

from drainpipe import BufferedByteSendStream
from drainpipe._transmit import (
    TRANSPORT,
    UNBUFFERED,
    SendPerPiece,
    VectoredWrites,
    socket_writer,
)
from tests.backends import BACKENDS
from tests.test_transports import make_room, send_in_progress, silent_peer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="no os.writev, no UNIX sockets"),
]

asyncio_only = pytest.mark.parametrize(
    "anyio_backend", [param for param in BACKENDS if param.id != "trio"]
)


def kind(stream: object) -> tuple[str, str]:
    return type(stream).__module__, type(stream).__qualname__


@asynccontextmanager
async def silent_unix_peer() -> AsyncIterator[tuple[SocketStream, socket.socket]]:
    """A UNIX socket client stream and a plain socket peer that never reads."""
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "sock")
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(path)
            listener.listen()
            client = await anyio.connect_unix(path)
            peer, _ = listener.accept()
        with peer:
            async with client:
                yield client, peer


@asynccontextmanager
async def silent(transport: str) -> AsyncIterator[tuple[SocketStream, socket.socket]]:
    peer_of = silent_peer if transport == "tcp" else silent_unix_peer
    async with peer_of() as pair:
        yield pair


TRANSPORTS = ["tcp", "unix"]


# -- the assumptions -----------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_anyio_socket_streams_are_the_classes_on_the_allow_list(
    transport: str,
) -> None:
    async with silent(transport) as (client, _):
        assert kind(client) in UNBUFFERED | {TRANSPORT}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_anyio_send_guard_is_the_resource_guard_send_holds(
    transport: str,
) -> None:
    async with silent(transport) as (client, _):
        guard = client._send_guard  # type: ignore[attr-defined]
        assert isinstance(guard, ResourceGuard)
        async with send_in_progress(client, 4_000_000):
            with pytest.raises(BusyResourceError), guard:
                pass  # pragma: no cover - entering the guard raises


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_anyio_raw_socket_is_the_stream_socket_send_writes_to(
    transport: str,
) -> None:
    async with silent(transport) as (client, peer):
        raw_socket = client.extra(SocketAttribute.raw_socket)
        assert raw_socket.type == socket.SOCK_STREAM
        await client.send(b"through send()")
        os.write(raw_socket.fileno(), b" and straight to the socket")
        peer.settimeout(5)
        received = b""
        while len(received) < 41:
            received += peer.recv(100)
        assert received == b"through send() and straight to the socket"


@asyncio_only
async def test_anyio_asyncio_tcp_stream_sends_through_a_transport_on_its_socket() -> (
    None
):
    async with silent_peer() as (client, _):
        assert kind(client) == TRANSPORT
        transport: Any = client._transport  # type: ignore[attr-defined]
        raw_socket = client.extra(SocketAttribute.raw_socket)
        assert transport.get_extra_info("socket").fileno() == raw_socket.fileno()
        # get_write_buffer_size() counts what send() left in the transport
        with move_on_after(1):
            while transport.get_write_buffer_size() == 0:
                await client.send(b"t" * 65536)
        assert transport.get_write_buffer_size() > 0
        assert not transport.is_closing()
        await client.aclose()
        assert transport.is_closing()


@pytest.mark.parametrize(
    "anyio_backend",
    [param for param in BACKENDS if param.id != "asyncio+uvloop"],
)
async def test_anyio_unbuffered_streams_leave_no_bytes_behind_a_returned_send(
    anyio_backend_name: str,
) -> None:
    # Every stream on the UNBUFFERED list: trio's TCP and UNIX streams, asyncio's
    # UNIX stream. Once send() has returned, the kernel has every byte of it.
    transports = TRANSPORTS if anyio_backend_name == "trio" else ["unix"]
    for transport in transports:
        async with silent(transport) as (client, peer):
            assert kind(client) in UNBUFFERED
            assert not [name for name in vars(client) if "transport" in name]
            returned = 0
            with move_on_after(0.5):
                while True:
                    await client.send(b"u" * 8192)
                    returned += 8192
            in_kernel = 0
            peer.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                while chunk := peer.recv(1 << 20):
                    in_kernel += len(chunk)
            assert returned > 0
            assert in_kernel >= returned


# uvloop's transports have no sendfile mode of their own (loop.sendfile() falls
# back to plain writes there), so this assumption is asyncio's alone.
@pytest.mark.parametrize(
    "anyio_backend", [param for param in BACKENDS if param.id == "asyncio"]
)
async def test_asyncio_transport_write_refuses_while_sendfile_is_in_progress() -> None:
    async with silent_peer() as (client, peer):
        transport: Any = client._transport  # type: ignore[attr-defined]
        write = socket_writer(client)
        assert write is not None
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryFile() as file:
            file.write(b"f" * 4_000_000)
            file.seek(0)
            async with create_task_group() as tg:
                tg.start_soon(loop.sendfile, transport, file)
                await anyio.wait_all_tasks_blocked()
                make_room(client, peer)  # the socket would take bytes now
                with pytest.raises(RuntimeError, match="sendfile"):
                    transport.write(b"")
                with pytest.raises(RuntimeError, match="sendfile"):
                    await client.send(b"the stream's own send() refuses")
                assert write([b"into the middle of the file"]) == 0
                tg.cancel_scope.cancel()


# -- the fast path is chosen, and only when every probe succeeds ---------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_vectored_path_is_chosen_for_anyio_socket_streams(
    transport: str,
) -> None:
    async with silent(transport) as (client, _):
        assert isinstance(BufferedByteSendStream(client)._transmit, VectoredWrites)
        off = BufferedByteSendStream(client, vectored=False)
        assert isinstance(off._transmit, SendPerPiece)


def renamed(stream: Any, name: str) -> None:
    setattr(stream, f"{name}_renamed", getattr(stream, name))
    delattr(stream, name)


def raising_extra(self: object, attribute: object, *default: object) -> object:
    raise anyio.TypedAttributeLookupError(attribute)


BREAKAGES: dict[str, Callable[[Any, pytest.MonkeyPatch], None]] = {
    "send guard renamed": lambda stream, _: renamed(stream, "_send_guard"),
    "send guard not a ResourceGuard": lambda stream, _: setattr(
        stream, "_send_guard", nullcontext()
    ),
    "raw socket missing": lambda stream, monkeypatch: monkeypatch.setattr(
        type(stream), "extra", raising_extra
    ),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_changed_stream_gets_no_fast_path(
    transport: str, breakage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with silent(transport) as (client, _):
        BREAKAGES[breakage](client, monkeypatch)
        assert socket_writer(client) is None
        assert isinstance(BufferedByteSendStream(client)._transmit, SendPerPiece)
        monkeypatch.undo()


@pytest.mark.parametrize(
    "anyio_backend", [param for param in BACKENDS if param.id != "asyncio+uvloop"]
)
async def test_an_unbuffered_stream_gaining_a_transport_gets_no_fast_path(
    anyio_backend_name: str,
) -> None:
    async with silent("unix") as (client, _):
        assert socket_writer(client) is not None
        client._transport = object()  # type: ignore[attr-defined]
        assert socket_writer(client) is None


class EncryptingTransport:
    """A transport like ``real`` that says it is a TLS one (asyncio's SSL
    transports answer ``get_extra_info("sslcontext")``)."""

    def __init__(self, real: Any) -> None:
        self.is_closing = real.is_closing
        self.get_write_buffer_size = real.get_write_buffer_size
        self.write = real.write

    def get_extra_info(self, name: str, default: object = None) -> object:
        return object() if name == "sslcontext" else default


@asyncio_only
@pytest.mark.parametrize(
    "breakage",
    ["transport renamed", "transport lacks a method", "transport encrypts"],
)
async def test_a_changed_asyncio_tcp_stream_gets_no_fast_path(breakage: str) -> None:
    async with silent_peer() as (client, _):
        stream: Any = client
        real = stream._transport

        try:
            if breakage == "transport renamed":
                renamed(stream, "_transport")
            elif breakage == "transport lacks a method":
                stream._transport = object()
            else:
                stream._transport = EncryptingTransport(real)
            assert socket_writer(client) is None
        finally:
            stream._transport = real
