"""BufferedByteSendStream over real transports: TCP, UNIX sockets, TLS, a
subprocess's stdin, including a peer that resets the connection."""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import socket
import ssl
import struct
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio import (
    BrokenResourceError,
    create_task_group,
    fail_after,
    move_on_after,
    wait_all_tasks_blocked,
)
from anyio.abc import ByteStream, SocketAttribute, SocketStream
from anyio.lowlevel import checkpoint
from anyio.streams.tls import TLSAttribute, TLSStream

import drainpipe._parking
from drainpipe import BufferedByteSendStream
from drainpipe._core import LARGE_CHUNK
from drainpipe._transmit import choose_transmit, socket_writer
from drainpipe.testing import settle
from tests.backends import BACKENDS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
    from pathlib import Path

    import trustme
    from typing_extensions import Buffer

pytestmark = pytest.mark.anyio


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test of a whole stream runs with the vectored fast path on and off;
    # those marked fast_path are about the fast path itself.
    if metafunc.definition.get_closest_marker("fast_path") is None:
        metafunc.parametrize("transmit", ["vectored", "per-piece"], indirect=True)


@pytest.fixture(autouse=True)
def transmit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``per-piece``: streams are made as with ``vectored=False``."""
    mode: str = getattr(request, "param", "vectored")
    if mode == "per-piece":

        def per_piece(*args: Any, vectored: bool) -> Any:
            return choose_transmit(*args, vectored=False)

        monkeypatch.setattr("drainpipe._stream.choose_transmit", per_piece)
    return mode


SMALL_BUFFER = 16 * 1024


def shrink_buffers(stream: SocketStream) -> None:
    raw = stream.extra(SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)


def reset(peer: socket.socket) -> None:
    """Close ``peer`` with a TCP RST instead of a FIN."""
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()


@asynccontextmanager
async def silent_peer() -> AsyncIterator[tuple[SocketStream, socket.socket]]:
    """A loopback TCP client stream and a plain socket peer that never reads.

    (A peer that is an AnyIO stream on asyncio reads into userspace even when
    nobody calls receive(), so it would never apply back-pressure.)
    """
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        port = listener.getsockname()[1]
        client = await anyio.connect_tcp("127.0.0.1", port)
        peer, _ = listener.accept()
    with peer:
        async with client:
            shrink_buffers(client)
            yield client, peer


@asynccontextmanager
async def tcp_pair() -> AsyncIterator[tuple[SocketStream, SocketStream]]:
    """A connected (client, server-side) pair of loopback TCP streams."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener:
        port = listener.extra(SocketAttribute.local_port)
        accepted: list[SocketStream] = []
        arrived = anyio.Event()

        async def accept(stream: SocketStream) -> None:
            accepted.append(stream)
            arrived.set()

        async with create_task_group() as tg:
            tg.start_soon(listener.serve, accept, tg)
            client = await anyio.connect_tcp("127.0.0.1", port)
            await arrived.wait()
            tg.cancel_scope.cancel()
    async with client, accepted[0] as server:
        yield client, server


async def read_all(stream: ByteStream, digest: hashlib._Hash) -> int:
    total = 0
    while True:
        try:
            chunk = await stream.receive()
        except anyio.EndOfStream:
            return total
        digest.update(chunk)
        total += len(chunk)


def payload(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(b"%d" % seed).digest() * 2048
    return (block * (size // len(block) + 1))[:size]


async def send_mixed_and_check(out: BufferedByteSendStream, peer: ByteStream) -> None:
    """Send mixed sizes with every call; the peer's SHA-256 must match."""
    sent = hashlib.sha256()
    received = hashlib.sha256()
    sizes = [1, 100, 5000, 70_000, 3, 300_000, 17, 1_000_000, 42]
    async with create_task_group() as tg:

        async def consume() -> None:
            await read_all(peer, received)

        tg.start_soon(consume)
        async with out:
            for round_ in range(3):
                for index, size in enumerate(sizes):
                    data = payload(size, seed=round_ * 100 + index)
                    sent.update(data)
                    if index % 3 == 0:
                        out.write(data)
                        await out.drain()
                    elif index % 3 == 1:
                        await out.send(data)
                    else:
                        out.writelines([data[:1], bytearray(data[1:])])
                await out.flush()
            await out.send_eof()
    assert received.hexdigest() == sent.hexdigest()


async def test_tcp_delivers_every_byte_in_order() -> None:
    async with tcp_pair() as (client, server):
        await send_mixed_and_check(BufferedByteSendStream(client), server)


async def test_tcp_extra_attributes_are_forwarded() -> None:
    async with tcp_pair() as (client, server), BufferedByteSendStream(client) as out:
        assert out.extra(SocketAttribute.remote_address) == server.extra(
            SocketAttribute.local_address
        )


@pytest.mark.skipif(sys.platform == "win32", reason="no UNIX sockets")
async def test_unix_socket_delivers_every_byte(tmp_path: Path) -> None:
    path = tmp_path / "sock"
    async with await anyio.create_unix_listener(path) as listener:
        async with create_task_group() as tg:
            accepted: list[SocketStream] = []

            async def accept() -> None:
                accepted.append(await listener.accept())

            tg.start_soon(accept)
            client = await anyio.connect_unix(path)
        async with accepted[0] as server:
            await send_mixed_and_check(BufferedByteSendStream(client), server)


@asynccontextmanager
async def tls_pair(ca: trustme.CA) -> AsyncIterator[tuple[TLSStream, TLSStream]]:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with tcp_pair() as (client, server):
        async with create_task_group() as tg:
            wrapped: list[TLSStream] = []

            async def wrap_server() -> None:
                wrapped.append(
                    await TLSStream.wrap(
                        server, server_side=True, ssl_context=server_context
                    )
                )

            tg.start_soon(wrap_server)
            tls_client = await TLSStream.wrap(
                client, hostname="localhost", ssl_context=client_context
            )
        yield tls_client, wrapped[0]


async def test_tls_delivers_every_byte(ca: trustme.CA) -> None:
    async with tls_pair(ca) as (client, server):
        sent = hashlib.sha256()
        received = hashlib.sha256()

        async def consume() -> None:
            # Closing answers the client's close_notify, which its aclose() awaits.
            async with server:
                await read_all(server, received)

        async with create_task_group() as tg:
            tg.start_soon(consume)
            async with BufferedByteSendStream(client) as out:
                assert out.extra(TLSAttribute.server_side) is False
                for index in range(2000):
                    data = payload(100 + index % 7, seed=index)
                    sent.update(data)
                    out.write(data)
                    await out.drain()
                big = payload(600_000, seed=9)
                sent.update(big)
                await out.send(big)
                with pytest.raises(NotImplementedError):
                    await out.send_eof()  # TLS cannot half-close...
                out.write(b"!")  # ...and the stream stays usable
                sent.update(b"!")
        assert received.hexdigest() == sent.hexdigest()


async def test_subprocess_stdin_receives_every_byte() -> None:
    script = (
        "import hashlib, sys; h = hashlib.sha256()\n"
        "for block in iter(lambda: sys.stdin.buffer.read(65536), b''): h.update(block)\n"
        "print(h.hexdigest())"
    )
    expected = hashlib.sha256()
    async with await anyio.open_process([sys.executable, "-c", script]) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        async with BufferedByteSendStream(process.stdin) as out:
            for index in range(200):
                data = payload(10_000 + index, seed=index)
                expected.update(data)
                await out.send(data)
        output = b""
        async for chunk in process.stdout:
            output += chunk
        assert await process.wait() == 0
    assert output.decode().strip() == expected.hexdigest()


async def test_subprocess_exiting_early_breaks_the_stream() -> None:
    async with await anyio.open_process(
        [sys.executable, "-c", "import sys; sys.stdin.buffer.read(10)"]
    ) as process:
        assert process.stdin is not None
        # The block's exit raises the failure if no call inside reported it.
        with fail_after(10), pytest.raises(BrokenResourceError):  # noqa: PT012
            async with BufferedByteSendStream(process.stdin) as out:
                await out.send(b"0123456789")
                await out.flush()
                await process.wait()
                for _ in range(1000):
                    await out.send(b"x" * 65536)
                await out.flush()


# -- a peer that resets the connection ---------------------------------------


async def fill(out: BufferedByteSendStream) -> None:
    """Write until the stream is paused with the kernel buffers full."""
    block = b"r" * 65536
    for _ in range(200):
        out.write(block)
        if out.paused:
            await settle()
            if out.buffered_bytes > out.high_water:
                return
    raise AssertionError("the stream never stayed paused")  # pragma: no cover


WAITERS: dict[str, Callable[[BufferedByteSendStream], Awaitable[None]]] = {
    "drain": lambda out: out.drain(),
    "send": lambda out: out.send(b"more"),
    "flush": lambda out: out.flush(),
    "aclose": lambda out: out.aclose(),
}


async def record_outcome(
    method: str,
    out: BufferedByteSendStream,
    outcome: list[BaseException | None],
    done: anyio.Event,
) -> None:
    """Call WAITERS[method]; record the BrokenResourceError it raised, or None."""
    try:
        await WAITERS[method](out)
    except BrokenResourceError as exc:
        outcome.append(exc)
    else:
        outcome.append(None)
    done.set()


@pytest.mark.parametrize("method", WAITERS)
async def test_peer_reset_while_waiting_raises_broken(method: str) -> None:
    outcome: list[BaseException | None] = []
    done = anyio.Event()
    async with silent_peer() as (client, peer), BufferedByteSendStream(client) as out:
        await fill(out)
        async with create_task_group() as tg:
            tg.start_soon(record_outcome, method, out, outcome, done)
            await wait_all_tasks_blocked()
            assert outcome == []
            reset(peer)
            with fail_after(1):  # the waiter sees the failure within a second
                await done.wait()
    assert isinstance(outcome[0], BrokenResourceError)


async def test_peer_reset_wakes_every_waiter_at_once() -> None:
    outcome: list[BaseException | None] = []
    done = {method: anyio.Event() for method in WAITERS}
    async with silent_peer() as (client, peer), BufferedByteSendStream(client) as out:
        await fill(out)
        async with create_task_group() as tg:
            for method in WAITERS:  # drain, send, flush, then aclose: all waiting
                tg.start_soon(record_outcome, method, out, outcome, done[method])
                await wait_all_tasks_blocked()
            assert out.statistics().tasks_waiting == len(WAITERS)
            assert outcome == []
            reset(peer)
            with fail_after(1):
                for event in done.values():
                    await event.wait()
    assert len(outcome) == len(WAITERS)
    assert all(isinstance(error, BrokenResourceError) for error in outcome)
    causes = {id(error.__cause__) for error in outcome if error is not None}
    assert len(causes) == 1  # one failure, reported to each


@pytest.mark.parametrize("method", ["flush", "aclose"])
async def test_peer_reset_under_the_last_piece_is_not_lost(method: str) -> None:
    # One piece, larger than both kernel buffers: the wrapped stream's send() is
    # still waiting for room when the peer resets, and nothing else is queued
    # after it. AnyIO 4.0-4.15's asyncio SocketStream.send() returned normally
    # here, so flush() and aclose() reported success for dropped bytes; drainpipe
    # requires AnyIO 4.16 for this.
    outcome: list[BaseException | None] = []
    async with silent_peer() as (client, peer), BufferedByteSendStream(client) as out:
        out.write(b"L" * 200_000)
        async with create_task_group() as tg:
            tg.start_soon(record_outcome, method, out, outcome, anyio.Event())
            await wait_all_tasks_blocked()
            # the piece is in flight: the socket took only part of it
            assert out.statistics().bytes_sent < 200_000
            assert outcome == []
            reset(peer)
    [error] = outcome
    assert isinstance(error, BrokenResourceError), f"{method}() hid the loss"


async def test_peer_reset_while_idle_is_reported_on_exit() -> None:
    async with silent_peer() as (client, peer):
        with fail_after(5), pytest.raises(BrokenResourceError):  # noqa: PT012
            async with BufferedByteSendStream(client) as out:
                reset(peer)
                await anyio.sleep(0.05)
                for _ in range(100):
                    out.write(b"z" * 100_000)
                    await anyio.sleep(0.001)


async def test_peer_that_stops_reading_cannot_hang_a_bounded_close() -> None:
    async with silent_peer() as (client, _peer):
        with fail_after(1):
            async with BufferedByteSendStream(client) as out:
                for _ in range(100):
                    out.write(b"s" * 65536)
                with move_on_after(0.5) as scope:
                    await out.aclose()
                assert scope.cancelled_caught
            assert out.buffered_bytes == 0
            with pytest.raises(anyio.ClosedResourceError):
                out.write(b"x")


async def test_send_eof_after_peer_reset_never_raises_a_raw_os_error(
    anyio_backend_name: str,
) -> None:
    # Trio's shutdown() raises OSError(ENOTCONN) after a reset: the stream breaks.
    # AnyIO's asyncio backend ignores the error, so there send_eof() returns.
    async with silent_peer() as (client, peer):
        reset(peer)
        await anyio.sleep(0.1)
        async with BufferedByteSendStream(client) as out:
            if anyio_backend_name == "trio":
                with pytest.raises(BrokenResourceError) as caught:
                    await out.send_eof()
                assert isinstance(caught.value.__cause__, OSError)
            else:
                await out.send_eof()


# -- vectored writes to AnyIO's own socket streams -----------------------------


@pytest.fixture
def writev_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Record every os.writev() call made from now on: the sizes of its pieces,
    then the number of bytes it wrote (-1 if it raised)."""
    calls: list[list[int]] = []
    real_writev = os.writev

    def writev(descriptor: int, pieces: Sequence[Buffer]) -> int:
        calls.append([len(memoryview(piece)) for piece in pieces])
        try:
            written = real_writev(descriptor, pieces)
        except OSError:
            calls[-1].append(-1)
            raise
        calls[-1].append(written)
        return written

    monkeypatch.setattr(os, "writev", writev)
    return calls


@pytest.mark.fast_path
async def test_queued_large_pieces_reach_the_socket_in_batches(
    writev_calls: list[list[int]],
) -> None:
    async with tcp_pair() as (client, server):
        received = hashlib.sha256()
        async with create_task_group() as tg:
            tg.start_soon(read_all, server, received)
            async with BufferedByteSendStream(client, high_water=1 << 20) as out:
                blocks = [payload(65536, seed=index) for index in range(8)]
                for block in blocks:
                    out.write(block)
                await out.flush()
                # MAX_BATCH is 256 KiB: two batches of four, whatever the kernel
                # took per call
                assert out.statistics().send_calls == 2
                await out.send_eof()
    assert writev_calls[0][:-1] == [65536] * 4
    assert received.hexdigest() == hashlib.sha256(b"".join(blocks)).hexdigest()


@pytest.mark.fast_path
async def test_a_full_socket_keeps_every_byte_in_order(
    writev_calls: list[list[int]],
) -> None:
    # Small kernel buffers and a slow reader: most batches are written in part,
    # and the rest goes through the stream's send() while the socket is full.
    async with tcp_pair() as (client, server):
        shrink_buffers(client)
        sent = hashlib.sha256()
        received = hashlib.sha256()

        async def consume() -> None:
            while True:
                try:
                    received.update(await server.receive(4096))
                except anyio.EndOfStream:
                    return
                await checkpoint()

        async with create_task_group() as tg:
            tg.start_soon(consume)
            async with BufferedByteSendStream(client, high_water=300_000) as out:
                for index in range(60):
                    data = payload(20_000 + 7_919 * index % 90_000, seed=index)
                    sent.update(data)
                    await out.send(data)
                await out.send_eof()
    assert received.hexdigest() == sent.hexdigest()
    assert any(len(sizes) > 2 for *sizes, _ in writev_calls)  # batches...
    # ...written in part (what is left then goes through send())
    assert any(0 < written < sum(sizes) for *sizes, written in writev_calls)


@pytest.mark.fast_path
async def test_closing_the_wrapped_stream_underneath_breaks_the_stream(
    writev_calls: list[list[int]],
) -> None:
    async with tcp_pair() as (client, _server):
        with pytest.raises(BrokenResourceError) as caught:  # noqa: PT012
            async with BufferedByteSendStream(client) as out:
                await client.aclose()
                out.write(b"c" * 100_000)
                await out.flush()
    assert isinstance(caught.value.__cause__, anyio.ClosedResourceError)
    assert writev_calls == []  # nothing written to a closed (or reused) descriptor


@pytest.mark.fast_path
async def test_a_subclass_of_an_anyio_socket_stream_keeps_its_own_send(
    writev_calls: list[list[int]],
) -> None:
    sizes: list[int] = []
    async with tcp_pair() as (client, server):
        stream_class = type(client)

        class Counting(stream_class):  # type: ignore[misc, valid-type]
            async def send(self, item: bytes) -> None:
                sizes.append(len(item))
                await super().send(item)

        client.__class__ = Counting
        received = hashlib.sha256()
        async with create_task_group() as tg:
            tg.start_soon(read_all, server, received)
            async with BufferedByteSendStream(client) as out:
                for index in range(4):
                    await out.send(payload(65536, seed=index))
                await out.send_eof()
    assert sizes == [65536] * 4
    assert writev_calls == []


def receive_available(peer: socket.socket) -> bytes:
    """What has reached ``peer``, read without letting the event loop run."""
    peer.setblocking(False)
    received = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := peer.recv(1 << 20):
            received += chunk
    return received


def make_room(client: SocketStream, peer: socket.socket) -> None:
    """Read everything that reached ``peer`` without letting the event loop run,
    then wait until ``client``'s socket is writable."""
    receive_available(peer)
    raw_socket = client.extra(SocketAttribute.raw_socket)
    assert select.select([], [raw_socket], [], 5)[1]


@pytest.mark.fast_path
@pytest.mark.parametrize(
    "anyio_backend", [param for param in BACKENDS if param.id != "trio"]
)
async def test_a_direct_write_never_overtakes_bytes_the_transport_holds() -> None:
    # AnyIO's asyncio send() returns only once its transport's buffer is empty, so
    # this cannot happen through drainpipe; the writer checks it all the same.
    async with silent_peer() as (client, peer):
        write = socket_writer(client)
        assert write is not None
        transport = client._transport  # type: ignore[attr-defined]
        while transport.get_write_buffer_size() == 0:
            transport.write(b"t" * 65536)
        # The transport still holds its bytes: only the writer's check stops it.
        make_room(client, peer)
        assert transport.get_write_buffer_size() > 0
        assert write([b"overtaking"]) == 0


@pytest.mark.fast_path
async def test_bytes_the_socket_took_count_as_sent_while_the_rest_waits(
    writev_calls: list[list[int]],
) -> None:
    async with silent_peer() as (client, peer):
        with pytest.raises(BrokenResourceError):  # noqa: PT012
            async with BufferedByteSendStream(client, high_water=1 << 22) as out:
                out.write(b"a" * 20_000)
                out.write(b"b" * 2_000_000)
                await wait_all_tasks_blocked()  # the rest waits in send()
                [*_, written] = writev_calls[0]
                assert written >= 20_000
                sent = out.statistics().bytes_sent
                assert sent == written
                assert out.buffered_bytes == 2_020_000 - written
                reset(peer)
                with fail_after(5):
                    await out.flush()
        # what the kernel took stays counted as sent
        assert out.statistics().bytes_sent == sent


@asynccontextmanager
async def send_in_progress(
    client: SocketStream, size: int = 300_000
) -> AsyncIterator[None]:
    """Keep another task in ``client.send()`` of ``size`` bytes (its peer must not
    read) meanwhile."""

    async def occupy() -> None:
        with contextlib.suppress(anyio.ClosedResourceError):
            await client.send(b"U" * size)

    async with create_task_group() as tg:
        tg.start_soon(occupy)
        await wait_all_tasks_blocked()
        yield
        tg.cancel_scope.cancel()


@pytest.mark.fast_path
async def test_a_send_in_progress_on_the_wrapped_stream_is_detected() -> None:
    # Using the wrapped stream directly is a misuse; AnyIO detects two concurrent
    # send() calls, and a direct write to the socket must not hide that.
    async with silent_peer() as (client, _peer), send_in_progress(client):
        with pytest.raises(BrokenResourceError) as caught:  # noqa: PT012
            async with BufferedByteSendStream(client) as out:
                out.write(b"D" * 1000)
                with fail_after(5):
                    await out.flush()
    assert isinstance(caught.value.__cause__, anyio.BusyResourceError)


@pytest.mark.fast_path
async def test_the_socket_writer_refuses_while_a_send_is_in_progress() -> None:
    async with silent_peer() as (client, peer), send_in_progress(client):
        write = socket_writer(client)
        assert write is not None
        make_room(client, peer)  # the socket would take bytes now
        with pytest.raises(anyio.BusyResourceError):
            write([b"into the middle of U"])


# -- a write to an idle stream goes through at once ----------------------------


#: The calls that enqueue one message; send() returns an awaitable.
WRITES_THROUGH: dict[str, Callable[[BufferedByteSendStream, bytes], Any]] = {
    "write": lambda out, data: out.write(data),
    "send": lambda out, data: out.send(data),
    "send_nowait": lambda out, data: out.send_nowait(data),
    "writelines": lambda out, data: out.writelines([data[:3], bytearray(data[3:])]),
}


@pytest.mark.fast_path
@pytest.mark.parametrize("method", WRITES_THROUGH)
async def test_a_write_to_an_idle_stream_reaches_the_socket_at_once(
    method: str, writev_calls: list[list[int]]
) -> None:
    async with silent_peer() as (client, peer), BufferedByteSendStream(client) as out:
        # No flush task has run: the call itself hands the bytes to the socket.
        sent = WRITES_THROUGH[method](out, b"request")
        if sent is not None:
            await sent
        assert writev_calls == [[7, 7]]
        statistics = out.statistics()
        assert (statistics.buffered_bytes, statistics.bytes_sent) == (0, 7)
        assert statistics.send_calls == 1
        assert receive_available(peer) == b"request"


@pytest.mark.fast_path
async def test_writes_that_follow_in_the_same_step_are_coalesced(
    writev_calls: list[list[int]],
) -> None:
    async with silent_peer() as (client, peer), BufferedByteSendStream(client) as out:
        for number in range(100):
            out.write(b"%03d," % number)
        assert out.buffered_bytes == 99 * 4  # queued for the flush task
        await out.flush()
        assert [sizes for *sizes, _written in writev_calls] == [[4], [99 * 4]]
        assert out.statistics().send_calls == 2
        expected = b"".join(b"%03d," % number for number in range(100))
        assert receive_available(peer) == expected


@pytest.mark.fast_path
async def test_each_write_after_the_flush_task_parks_goes_through(
    writev_calls: list[list[int]],
) -> None:
    async with silent_peer() as (client, peer), BufferedByteSendStream(client) as out:
        for number in range(5):
            out.write(b"request %d;" % number)
            assert out.buffered_bytes == 0
            await settle()  # "the reply arrives": the flush task has parked
        assert len(writev_calls) == 5
        expected = b"".join(b"request %d;" % number for number in range(5))
        assert receive_available(peer) == expected


@pytest.mark.fast_path
@pytest.mark.parametrize("idle_exit", [0.0, 0.0005])
async def test_writes_racing_a_flush_task_that_ends_keep_their_order(
    idle_exit: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flush task ends as soon as (or soon after) it parks, so writes to the
    # socket at once and writes queued for a new flush task keep meeting it
    # ending (tests/test_stream.py has the same without a socket).
    monkeypatch.setattr(drainpipe._parking, "IDLE_EXIT", idle_exit)
    async with silent_peer() as (client, peer), BufferedByteSendStream(client) as out:
        for number in range(300):
            if number % 3:
                out.write(b"%d," % number)
            else:
                await out.send(b"%d," % number)
            for _ in range(number % 4):
                await checkpoint()
            if number % 50 == 0:
                await anyio.sleep(0.001)
        with fail_after(5):
            await out.flush()
        expected = b"".join(b"%d," % number for number in range(300))
        assert receive_available(peer) == expected


@pytest.mark.fast_path
async def test_what_the_socket_does_not_take_at_once_is_queued_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_writev = os.writev

    def take_five_bytes(descriptor: int, pieces: Sequence[Buffer]) -> int:
        monkeypatch.setattr(os, "writev", real_writev)  # only this once
        return real_writev(descriptor, [memoryview(pieces[0])[:5]])

    async with silent_peer() as (client, peer), BufferedByteSendStream(client) as out:
        monkeypatch.setattr(os, "writev", take_five_bytes)
        out.write(b"0123456789")
        statistics = out.statistics()
        assert (statistics.bytes_sent, statistics.buffered_bytes) == (5, 5)
        out.write(b"abc")
        await out.flush()
        assert receive_available(peer) == b"0123456789abc"


@pytest.mark.fast_path
async def test_a_failed_write_through_breaks_the_stream_and_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reset = ConnectionResetError(104, "Connection reset by peer")

    def fail(descriptor: int, pieces: Sequence[Buffer]) -> int:
        raise reset

    async with silent_peer() as (client, _peer):
        with pytest.raises(BrokenResourceError) as caught:  # noqa: PT012
            async with BufferedByteSendStream(client) as out:
                monkeypatch.setattr(os, "writev", fail)
                out.write(b"lost")  # accepted; the failure comes as for the flush task
                assert out.buffered_bytes == 0  # dropped: the stream is broken
                assert repr(out).startswith("<BufferedByteSendStream broken ")
                monkeypatch.undo()
    # nothing lost silently: leaving the block reports it, with its cause
    cause = caught.value.__cause__
    assert isinstance(cause, BrokenResourceError)
    assert cause.__cause__ is reset


@pytest.mark.fast_path
async def test_a_large_write_waits_for_the_flush_task(
    writev_calls: list[list[int]],
) -> None:
    async with silent_peer() as (client, peer), BufferedByteSendStream(client) as out:
        out.write(b"L" * LARGE_CHUNK)
        assert (out.buffered_bytes, writev_calls) == (LARGE_CHUNK, [])
        make_room(client, peer)


@pytest.mark.fast_path
async def test_without_the_fast_path_a_write_waits_for_the_flush_task() -> None:
    async with (
        silent_peer() as (client, _peer),
        BufferedByteSendStream(client, vectored=False) as out,
    ):
        out.write(b"q")
        assert out.buffered_bytes == 1
