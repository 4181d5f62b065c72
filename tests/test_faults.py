"""Real faults: peers that reset or stop reading over TLS, UNIX sockets and a
subprocess's stdin, and cancellation swept across every await point of every
method that waits."""

from __future__ import annotations

import hashlib
import socket
import ssl
import struct
import sys
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import trustme
from anyio import (
    BrokenResourceError,
    CancelScope,
    ClosedResourceError,
    create_task_group,
    fail_after,
    move_on_after,
    to_thread,
)
from anyio.abc import SocketAttribute, SocketStream
from anyio.lowlevel import checkpoint
from anyio.streams.tls import TLSStream

from drainpipe import BufferedByteSendStream
from drainpipe.testing import ScriptedSendStream, settle

from .test_transports import WAITERS, fill, record_outcome

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from anyio.abc import AnyByteSendStream

pytestmark = pytest.mark.anyio

SMALL_BUFFER = 16 * 1024


# -- peers that never read -----------------------------------------------------------


@dataclass
class SilentPeer:
    """The sending end of a connection whose other end never reads."""

    stream: AnyByteSendStream
    #: break the connection abruptly: a TCP RST, a closed UNIX socket with unread
    #: data, a killed reader process
    reset: Callable[[], None]


@cache
def certificate_authority() -> trustme.CA:
    return trustme.CA()


def linger_close(peer: socket.socket) -> None:
    """Close ``peer`` with a TCP RST instead of a FIN."""
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()


def shrink_send_buffer(stream: SocketStream) -> None:
    raw = stream.extra(SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)


@asynccontextmanager
async def silent_tls_peer(tmp_path: Path) -> AsyncIterator[SilentPeer]:
    """TLS over loopback TCP; the server side does its handshake in a thread, then
    never reads."""
    ca = certificate_authority()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        client = await anyio.connect_tcp("127.0.0.1", listener.getsockname()[1])
        raw_peer, _ = listener.accept()
    async with client:
        shrink_send_buffer(client)
        async with create_task_group() as tg:
            peers: list[ssl.SSLSocket] = []

            async def handshake() -> None:
                peers.append(
                    await to_thread.run_sync(
                        lambda: server_context.wrap_socket(raw_peer, server_side=True)
                    )
                )

            tg.start_soon(handshake)
            tls = await TLSStream.wrap(
                client, hostname="localhost", ssl_context=client_context
            )
        with peers[0] as peer:
            yield SilentPeer(tls, lambda: linger_close(peer))


@asynccontextmanager
async def silent_unix_peer(tmp_path: Path) -> AsyncIterator[SilentPeer]:
    """A UNIX socket in ``tmp_path`` whose accepting end never reads; closing it
    with data unread resets the connection."""
    path = tmp_path / "silent.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen()
        client = await anyio.connect_unix(path)
        peer, _ = listener.accept()
    with peer:
        async with client:
            shrink_send_buffer(client)
            yield SilentPeer(client, peer.close)


@asynccontextmanager
async def silent_process(tmp_path: Path) -> AsyncIterator[SilentPeer]:
    """The stdin of a child process that never reads it; killing the child breaks
    the pipe."""
    process = await anyio.open_process(
        [sys.executable, "-c", "import time; time.sleep(60)"]
    )

    def kill() -> None:
        with suppress(ProcessLookupError):  # uvloop's, if it has exited
            process.kill()

    try:
        assert process.stdin is not None
        yield SilentPeer(process.stdin, kill)
    finally:
        kill()
        await process.aclose()


SILENT_PEERS: dict[str, Callable[[Path], Any]] = {
    "tls": silent_tls_peer,
    "unix": silent_unix_peer,
    "subprocess": silent_process,
}

if sys.platform == "win32":  # pragma: no cover
    del SILENT_PEERS["unix"]


@pytest.mark.parametrize("method", WAITERS)
@pytest.mark.parametrize("peer_kind", SILENT_PEERS)
async def test_peer_reset_wakes_the_waiting_call_with_broken(
    peer_kind: str, method: str, tmp_path: Path
) -> None:
    outcome: list[BaseException | None] = []
    done = anyio.Event()
    async with (
        SILENT_PEERS[peer_kind](tmp_path) as peer,
        BufferedByteSendStream(peer.stream) as out,
    ):
        await fill(out)
        async with create_task_group() as tg:
            tg.start_soon(record_outcome, method, out, outcome, done)
            await settle()
            assert outcome == []
            peer.reset()
            with fail_after(1):  # the waiter sees the failure within a second
                await done.wait()
        [error] = outcome
        assert isinstance(error, BrokenResourceError)
        assert isinstance(error.__cause__, Exception)
        # Every later call reports the same cause, until the stream is closed.
        if method != "aclose":
            with pytest.raises(BrokenResourceError) as caught:
                out.write(b"after the reset")
            assert caught.value.__cause__ is error.__cause__


@pytest.mark.parametrize("peer_kind", SILENT_PEERS)
async def test_peer_reset_while_idle_is_reported_on_exit(
    peer_kind: str, tmp_path: Path
) -> None:
    async with SILENT_PEERS[peer_kind](tmp_path) as peer:
        with fail_after(5), pytest.raises(BrokenResourceError):  # noqa: PT012
            async with BufferedByteSendStream(peer.stream) as out:
                peer.reset()
                await anyio.sleep(0.05)
                for _ in range(100):
                    out.write(b"z" * 100_000)
                    await anyio.sleep(0.001)


@pytest.mark.parametrize("peer_kind", SILENT_PEERS)
async def test_peer_that_stops_reading_cannot_hang_a_bounded_close(
    peer_kind: str, tmp_path: Path
) -> None:
    async with (
        SILENT_PEERS[peer_kind](tmp_path) as peer,
        BufferedByteSendStream(peer.stream) as out,
    ):
        await fill(out)
        with fail_after(1), move_on_after(0.5) as scope:
            await out.aclose()
        assert scope.cancelled_caught
        assert out.buffered_bytes == 0
        with pytest.raises(ClosedResourceError):
            out.write(b"x")


# -- cancellation at every await point -------------------------------------------------

#: Pieces queued before the call; each is large, so each is a send() of its own.
PIECES = 6
PIECE = 20_000
SWEEP_HIGH, SWEEP_LOW = 50_000, 20_000
SENT_ITEM = b"<sent by the cancelled call>"
TAIL = b"<tail>"

SWEPT: dict[str, Callable[[BufferedByteSendStream], Awaitable[None]]] = {
    "send": lambda out: out.send(SENT_ITEM),
    "drain": lambda out: out.drain(),
    "flush": lambda out: out.flush(),
    "send_eof": lambda out: out.send_eof(),
    "aclose": lambda out: out.aclose(),
}


@dataclass
class SweepRun:
    """What one call, cancelled after a number of checkpoints, did."""

    completed: bool
    #: checkpoints this task took before cancelling (or before the call completed)
    checkpoints: int
    enqueued_item: bool
    open_after: bool
    wire: ScriptedSendStream


QUEUED = [bytes([0x30 + index]) * PIECE for index in range(PIECES)]


async def cancel_after_checkpoints(method: str, checkpoints: int | None) -> SweepRun:
    """Queue PIECES pieces (the stream is paused), start ``method``, cancel it
    after ``checkpoints`` checkpoints of this task (never, if None), check the
    stream, go on using it and leave the block normally."""
    wire = ScriptedSendStream()  # accepts every piece, after one checkpoint
    completed = False
    async with BufferedByteSendStream(
        wire, high_water=SWEEP_HIGH, low_water=SWEEP_LOW
    ) as out:
        for piece in QUEUED:
            out.write(piece)
        assert out.paused
        before = out.statistics()
        scope = CancelScope()

        async def call() -> None:
            nonlocal completed
            with scope:
                await SWEPT[method](out)
                completed = True

        taken = 0
        async with create_task_group() as tg:
            tg.start_soon(call)
            while not completed if checkpoints is None else taken < checkpoints:
                await checkpoint()
                taken += 1
            scope.cancel()

        stats = out.statistics()
        assert stats.tasks_waiting == 0, "a cancelled call left a waiter behind"
        written = stats.bytes_written - before.bytes_written
        enqueued_item = method == "send" and completed
        # A send enqueues exactly when it returns; nothing else enqueues.
        assert written == (len(SENT_ITEM) if enqueued_item else 0)
        if stats.paused:
            assert stats.buffered_bytes > stats.low_water
        if stats.buffered_bytes > stats.high_water:
            assert stats.paused

        open_after = not (
            method == "aclose" or (method == "send_eof" and wire.eof_sent)
        )
        if not open_after:
            with pytest.raises(ClosedResourceError):
                out.write(TAIL)
        else:
            assert stats.buffered_bytes == stats.bytes_written - stats.bytes_sent
            out.write(TAIL)
            await out.drain()
            await out.flush()
    assert wire.closed
    return SweepRun(completed, taken, enqueued_item, open_after, wire)


@pytest.mark.parametrize("method", SWEPT)
async def test_cancellation_at_every_await_point_leaves_a_consistent_stream(
    method: str,
) -> None:
    # The call completes when nobody cancels it...
    with fail_after(5):
        uncancelled = await cancel_after_checkpoints(method, None)
    assert uncancelled.completed
    # ...so cancel it after 0, 1, 2... checkpoints of this task until a run gets
    # through: every await point it passes through gets cancelled. How many
    # checkpoints that takes varies (trio shuffles the order in which ready tasks
    # run, and on asyncio a cancellation lands a step late), hence the margin.
    limit = 4 * uncancelled.checkpoints + 20
    runs: list[SweepRun] = []
    while not (runs and runs[-1].completed):
        assert len(runs) <= limit, f"not completed after {limit} checkpoints"
        with fail_after(5):
            run = await cancel_after_checkpoints(method, len(runs))
        runs.append(run)
        queued = b"".join(QUEUED)
        data = run.wire.data
        if method == "aclose" and not run.completed:
            # A bounded close drops what is left: a prefix arrived, nothing else.
            assert queued.startswith(data)
        else:
            expected = queued
            if run.enqueued_item:
                expected += SENT_ITEM
            if run.open_after:
                expected += TAIL
            assert data == expected, f"bytes lost after {len(runs) - 1} checkpoints"
        if method == "send_eof":
            assert run.wire.eof_sent is (not run.open_after)
    assert not runs[0].completed, "the sweep missed the call's await points"


@pytest.mark.parametrize("method", ["flush", "send_eof", "aclose"])
async def test_shielded_cleanup_after_an_outer_cancellation_still_flushes(
    method: str,
) -> None:
    # A cancellation of the code around the block must not stop the flush task:
    # the block's own cleanup, shielded, still gets its bytes out. Before, the
    # cancellation reached the flush task too and the shielded call hung.
    wire = ScriptedSendStream()
    completed = False
    with CancelScope() as outer:
        async with BufferedByteSendStream(wire) as out:
            try:
                wire.block()
                out.write(b"queued")
                await settle()  # the flush task waits in the wrapped send()
                outer.cancel()
                await anyio.sleep_forever()
            finally:
                wire.unblock()
                with CancelScope(shield=True) as shielded:
                    shielded.deadline = anyio.current_time() + 5
                    await SWEPT[method](out)
                    completed = True
    assert outer.cancelled_caught
    assert completed, f"a shielded {method}() hung after the outer cancellation"
    assert wire.data == b"queued"
    assert wire.eof_sent is (method == "send_eof")
    assert wire.closed


# -- cancellation by tiny timeouts over TCP ---------------------------------------------


@dataclass
class Reader:
    """The peer's side of a connection: everything it received, and when it
    reached the end."""

    received: list[bytes]
    finished: anyio.Event


@asynccontextmanager
async def reading_tcp_peer() -> AsyncIterator[tuple[SocketStream, Reader]]:
    """A loopback TCP stream whose peer reads everything, as fast as it can."""
    reader = Reader([], anyio.Event())

    async def read_all(stream: SocketStream) -> None:
        async with stream:
            with suppress(anyio.EndOfStream, BrokenResourceError):
                while True:
                    reader.received.append(await stream.receive())
        reader.finished.set()

    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        create_task_group() as tg,
    ):
        tg.start_soon(listener.serve, read_all)
        client = await anyio.connect_tcp(
            "127.0.0.1", listener.extra(SocketAttribute.local_port)
        )
        shrink_send_buffer(client)
        yield client, reader
        with fail_after(5):
            await reader.finished.wait()
        tg.cancel_scope.cancel()


#: Timeouts from "at the first checkpoint" to "after the whole payload is sent".
DELAYS = [0, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.02]


@pytest.mark.parametrize("method", SWEPT)
async def test_tiny_timeouts_over_tcp_lose_or_duplicate_nothing(method: str) -> None:
    payload = hashlib.sha256(method.encode()).digest() * 64_000  # 2 MB
    for delay in DELAYS:
        async with reading_tcp_peer() as (client, reader):
            completed = False
            async with BufferedByteSendStream(client, high_water=32_768) as out:
                for offset in range(0, len(payload), 40_000):
                    out.write(payload[offset : offset + 40_000])
                before = out.statistics().bytes_written
                with move_on_after(delay):
                    await SWEPT[method](out)
                    completed = True
                stats = out.statistics()
                assert stats.tasks_waiting == 0
                enqueued_item = stats.bytes_written > before
                assert enqueued_item is (method == "send" and completed)
                try:
                    out.write(TAIL)
                except ClosedResourceError:
                    # Closed, or half-closed (send_eof cancelled in the half-close
                    # itself counts: the wrapped stream was told).
                    assert method in ("aclose", "send_eof")
                    tail = b""
                else:
                    assert method != "aclose"
                    assert not (method == "send_eof" and completed)
                    tail = TAIL
        data = b"".join(reader.received)
        expected = payload + (SENT_ITEM if enqueued_item else b"") + tail
        if method == "aclose" and not completed:
            assert expected.startswith(data), f"garbled after a {delay} s timeout"
        else:
            assert data == expected, f"bytes lost after a {delay} s timeout"
