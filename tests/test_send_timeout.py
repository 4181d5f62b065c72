"""send_timeout: a peer that stops reading breaks the stream instead of pinning its
buffer and flush task for ever; a peer that keeps reading never trips it."""

from __future__ import annotations

import hashlib
import math
import socket
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio import BrokenResourceError, create_task_group, current_time, fail_after
from anyio.abc import UNIXSocketStream

from drainpipe import BufferedByteSendStream, compat
from drainpipe.testing import ScriptedSendStream, settle
from tests.test_transports import (
    payload,
    shrink_buffers,
    silent_peer,
    tcp_pair,
    tls_pair,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import trustme

pytestmark = pytest.mark.anyio

TIMEOUT = 0.3
#: How late a break may come after ``TIMEOUT`` on a busy machine.
SLACK = 2.0
#: The earliest a break may come: ``TIMEOUT`` less one nanosecond, since the
#: deadline is a float sum (``now + TIMEOUT``) and ``(t + 0.3) - t`` can come out a
#: few hundred femtoseconds below 0.3 (seen with uvloop's millisecond clock values).
EARLIEST = TIMEOUT - 1e-9


def assert_timed_out(caught: pytest.ExceptionInfo[BrokenResourceError]) -> None:
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert "send_timeout" in str(caught.value.__cause__)


# -- the setting -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "exception", "match"),
    [
        (0, ValueError, "must be > 0 seconds, got 0"),
        (-1.5, ValueError, "got -1.5"),
        (math.nan, ValueError, "got nan"),
        ("1", TypeError, "not str"),
        (True, TypeError, "not bool"),
        ([1], TypeError, "not list"),
    ],
)
async def test_bad_send_timeouts_are_refused(
    bad: Any, exception: type[Exception], match: str
) -> None:
    with pytest.raises(exception, match=match):
        BufferedByteSendStream(ScriptedSendStream(), send_timeout=bad)
    out = BufferedByteSendStream(ScriptedSendStream(), send_timeout=2)
    with pytest.raises(exception, match=match):
        out.send_timeout = bad
    assert out.send_timeout == 2.0


async def test_send_timeout_defaults_to_none_and_can_be_changed() -> None:
    out = BufferedByteSendStream(ScriptedSendStream())
    assert out.send_timeout is None
    out.send_timeout = 1
    assert out.send_timeout == 1.0
    out.send_timeout = math.inf
    assert out.send_timeout == math.inf
    out.send_timeout = None
    assert out.send_timeout is None


# -- over a scripted stream ------------------------------------------------------------


async def test_a_stalled_wrapped_stream_breaks_the_stream() -> None:
    wire = ScriptedSendStream()
    wire.block()
    with pytest.raises(BrokenResourceError) as caught:  # noqa: PT012
        async with BufferedByteSendStream(wire, send_timeout=TIMEOUT) as out:
            out.write(b"x" * 1000)
            started = current_time()
            with fail_after(TIMEOUT + SLACK):
                await out.flush()
    assert current_time() - started >= EARLIEST
    assert_timed_out(caught)
    assert wire.closed
    assert out.buffered_bytes == 0


async def test_a_timeout_wakes_every_waiter() -> None:
    wire = ScriptedSendStream()
    wire.block()
    async with BufferedByteSendStream(wire, high_water=10, send_timeout=TIMEOUT) as out:
        out.write(b"x" * 100)
        failures: list[BaseException] = []

        async def wait_in(method: str) -> None:
            try:
                if method == "send":
                    await out.send(b"y")
                else:
                    await getattr(out, method)()
            except BrokenResourceError as exc:
                failures.append(exc)

        with fail_after(TIMEOUT + SLACK):
            async with create_task_group() as tg:
                for method in ("drain", "send", "flush", "send_eof"):
                    tg.start_soon(wait_in, method)
        assert len(failures) == 4
        assert all(isinstance(exc.__cause__, TimeoutError) for exc in failures)


async def test_a_wrapped_stream_that_keeps_accepting_never_trips_it() -> None:
    wire = ScriptedSendStream()
    wire.delay = TIMEOUT / 5  # each piece takes a while, none too long
    async with BufferedByteSendStream(
        wire, high_water=100, send_timeout=TIMEOUT
    ) as out:
        for index in range(20):
            await out.send(b"%03d" % index * 50)
    assert wire.data == b"".join(b"%03d" % index * 50 for index in range(20))


async def test_a_new_send_timeout_applies_from_the_next_piece() -> None:
    wire = ScriptedSendStream()
    async with BufferedByteSendStream(wire) as out:
        await out.send(b"before")
        await out.flush()
        out.send_timeout = TIMEOUT
        wire.block()
        out.write(b"after")
        with pytest.raises(BrokenResourceError) as caught, fail_after(TIMEOUT + SLACK):
            await out.flush()
        assert_timed_out(caught)
    assert wire.data == b"before"


async def test_an_idle_stream_never_times_out() -> None:
    wire = ScriptedSendStream()
    async with BufferedByteSendStream(wire, send_timeout=0.05) as out:
        await anyio.sleep(0.2)
        await out.send(b"still open")
    assert wire.data == b"still open"


# -- over real TCP ------------------------------------------------------------------


@pytest.mark.parametrize("vectored", [True, False], ids=["vectored", "per-piece"])
async def test_a_silent_peer_breaks_the_stream_within_about_send_timeout(
    vectored: bool,
) -> None:
    async with silent_peer() as (client, _):
        with pytest.raises(BrokenResourceError) as caught:  # noqa: PT012
            async with BufferedByteSendStream(
                client, send_timeout=TIMEOUT, vectored=vectored
            ) as out:
                out.write(b"s" * 4_000_000)
                started = current_time()
                with fail_after(TIMEOUT + SLACK):
                    await out.flush()
        elapsed = current_time() - started
        assert EARLIEST <= elapsed < TIMEOUT + SLACK
        assert_timed_out(caught)
        with pytest.raises(anyio.ClosedResourceError):
            await client.send(b"closed forcefully")


@pytest.mark.parametrize("vectored", [True, False], ids=["vectored", "per-piece"])
async def test_closing_under_a_silent_peer_ends_by_itself_and_reports_the_loss(
    vectored: bool,
) -> None:
    async with silent_peer() as (client, _):
        with fail_after(TIMEOUT + SLACK), pytest.raises(BrokenResourceError) as caught:
            async with BufferedByteSendStream(
                client, send_timeout=TIMEOUT, vectored=vectored
            ) as out:
                out.write(b"s" * 4_000_000)
        assert_timed_out(caught)


@pytest.mark.parametrize("vectored", [True, False], ids=["vectored", "per-piece"])
async def test_a_slow_reader_never_trips_it_and_gets_every_byte(vectored: bool) -> None:
    # The reader takes 8 KiB every 4 ms (at most 2 MB/s): far more than 256 KiB,
    # the largest piece, per send_timeout.
    sent = hashlib.sha256()
    received = hashlib.sha256()
    async with tcp_pair() as (client, server):

        async def read_slowly() -> None:
            while True:
                try:
                    received.update(await server.receive(8192))
                except anyio.EndOfStream:
                    return
                await anyio.sleep(0.004)

        async with create_task_group() as tg:
            tg.start_soon(read_slowly)
            async with BufferedByteSendStream(
                client, send_timeout=TIMEOUT, vectored=vectored
            ) as out:
                for index in range(24):
                    data = payload(65536, seed=index)
                    sent.update(data)
                    out.write(data)
                    await out.drain()
                await out.send_eof()
    assert received.hexdigest() == sent.hexdigest()


@pytest.mark.parametrize("vectored", [True, False], ids=["vectored", "per-piece"])
async def test_a_peer_that_stops_reading_after_a_while_breaks_the_stream(
    vectored: bool,
) -> None:
    async with tcp_pair() as (client, server):
        shrink_buffers(client)
        shrink_buffers(server)  # so that the kernel cannot absorb the rest
        stopped = anyio.Event()
        received = bytearray()

        async def read_then_stop() -> None:
            while len(received) < 500_000:
                received.extend(await server.receive(65536))
            stopped.set()

        data = payload(8_000_000)
        async with create_task_group() as tg:
            tg.start_soon(read_then_stop)
            with pytest.raises(BrokenResourceError) as caught:  # noqa: PT012
                async with BufferedByteSendStream(
                    client, send_timeout=TIMEOUT, vectored=vectored
                ) as out:
                    out.write(data)
                    await stopped.wait()
                    await settle()
                    stalled = current_time()
                    with fail_after(TIMEOUT * 2 + SLACK):
                        await out.flush()
        assert current_time() - stalled < TIMEOUT * 2 + SLACK
        assert_timed_out(caught)
        assert data.startswith(received)


# -- drainpipe.compat --------------------------------------------------------------


async def ignore(reader: compat.StreamReader, writer: compat.StreamWriter) -> None:
    pass  # pragma: no cover - never connected


@pytest.mark.parametrize("bad", [0, "1"])
async def test_compat_refuses_a_bad_send_timeout_before_connecting(bad: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        async with compat.open_connection("127.0.0.1", 1, send_timeout=bad):
            pass  # pragma: no cover - refused before connecting
    with pytest.raises((ValueError, TypeError)):
        async with compat.start_server(ignore, "127.0.0.1", 0, send_timeout=bad):
            pass  # pragma: no cover - refused before listening


@asynccontextmanager
async def writer_to_a_silent_server() -> AsyncIterator[compat.StreamWriter]:
    """A writer with ``send_timeout`` to a server that never reads, given 8 MB
    to send; bounded by ``send_timeout``."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        port = listener.getsockname()[1]
        async with compat.open_connection("127.0.0.1", port, send_timeout=TIMEOUT) as (
            _,
            writer,
        ):
            peer, _ = listener.accept()
            with peer, fail_after(TIMEOUT + SLACK):
                writer.write(b"c" * 8_000_000)
                yield writer


async def test_compat_client_to_a_silent_server_breaks_after_send_timeout() -> None:
    async with writer_to_a_silent_server() as writer:
        with pytest.raises(ConnectionResetError) as caught:
            await writer.drain()
        assert isinstance(caught.value.__cause__, BrokenResourceError)
        assert isinstance(caught.value.__cause__.__cause__, TimeoutError)


async def test_compat_wait_closed_after_a_send_timeout_raises_without_close() -> None:
    # As asyncio's transport, force-closed by the error: nobody calls close().
    async with writer_to_a_silent_server() as writer:
        with pytest.raises(ConnectionResetError) as drained:
            await writer.drain()
        with pytest.raises(ConnectionResetError) as closed:
            await writer.wait_closed()
        assert closed.value is drained.value


async def test_compat_server_breaks_a_client_that_stops_reading() -> None:
    outcome: list[BaseException] = []
    broken = anyio.Event()

    async def flood(reader: compat.StreamReader, writer: compat.StreamWriter) -> None:
        try:
            while True:
                writer.write(b"f" * 65536)
                await writer.drain()
        except ConnectionResetError as exc:
            outcome.append(exc)
            broken.set()

    async with compat.start_server(
        flood, "127.0.0.1", 0, send_timeout=TIMEOUT
    ) as server:
        port = server.sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as silent_client:
            silent_client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            with fail_after(TIMEOUT + SLACK):
                await broken.wait()
    assert isinstance(outcome[0].__cause__, BrokenResourceError)
    assert isinstance(outcome[0].__cause__.__cause__, TimeoutError)


# -- what counts as no progress -------------------------------------------------------


async def test_a_reader_keeping_pace_with_one_piece_per_send_timeout_never_trips_it(
    anyio_backend_name: str,
) -> None:
    # 0.8 MB/s takes a 256 KiB piece in 0.33 s, within the 0.5 s send_timeout; the
    # 511 KiB of a vectored batch of two pieces would take 0.64 s. Each piece the
    # socket does not take at once gets its own send_timeout.
    rate = 800_000
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ours.setblocking(False)
    data = payload(255 * 1024, seed=1) + payload(512 * 1024, seed=2)
    received = bytearray()

    def read_at_rate() -> None:
        theirs.settimeout(10)
        started = time.monotonic()
        while len(received) < len(data):
            delay = started + len(received) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            chunk = theirs.recv(8192)
            if not chunk:
                return
            received.extend(chunk)

    stream = await UNIXSocketStream.from_socket(ours)
    with theirs:
        async with create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, read_at_rate)
            async with BufferedByteSendStream(
                stream, send_timeout=0.5, high_water=1 << 22
            ) as out:
                out.write(data[: 255 * 1024])
                out.write(data[255 * 1024 :])
                await out.flush()
    assert received == data


async def test_a_busy_event_loop_after_everything_was_sent_is_no_timeout() -> None:
    # The socket took every byte; then the event loop is busy for longer than
    # send_timeout before the flush task runs again. Nothing was waiting for the
    # wrapped stream, so the stream must not break.
    for _ in range(10):
        ours, theirs = socket.socketpair()
        with theirs:
            ours.setblocking(False)
            stream = await UNIXSocketStream.from_socket(ours)
            async with BufferedByteSendStream(stream, send_timeout=0.02) as out:
                out.write(b"hello")
                await anyio.lowlevel.checkpoint()
                time.sleep(0.05)  # a busy event loop  # noqa: ASYNC251
                await anyio.sleep(0.005)
                out.write(b"!")
            assert theirs.recv(100) == b"hello!"


async def test_closing_tls_under_a_silent_peer_is_bounded_by_send_timeout(
    ca: trustme.CA,
) -> None:
    # A TLS close waits for the peer's close_notify, which a peer that stopped
    # reading never sends: send_timeout bounds it too.
    async with tls_pair(ca) as (client, _server):
        started = current_time()
        with fail_after(TIMEOUT + SLACK), pytest.raises(BrokenResourceError) as caught:
            async with BufferedByteSendStream(client, send_timeout=TIMEOUT) as out:
                out.write(b"fits in the kernel's buffers")
        assert current_time() - started >= EARLIEST
        assert isinstance(caught.value.__cause__, TimeoutError)
