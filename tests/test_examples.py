"""The programs in examples/ do what their docstrings say, on every backend.

examples/ is not a package: each program is imported from its file, as
tests/test_docs_snippets.py does for the documentation's snippets.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio import fail_after, wait_all_tasks_blocked
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSListener

from drainpipe import BufferedByteSendStream

if TYPE_CHECKING:
    from types import ModuleType

    from anyio.abc import SocketStream

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"examples_{name}", EXAMPLES / f"{name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


relay = load("relay")
broadcast = load("broadcast")
subprocess_feed = load("subprocess_feed")
http_stream = load("http_stream")
tls_echo = load("tls_echo")


# -- relay.py ---------------------------------------------------------------------


def wrapped(lines: list[bytes]) -> bytes:
    return b"".join(
        b"<response>" + line.rstrip(b"\n") + b"</response>\n" for line in lines
    )


async def test_relay_wraps_every_line_and_a_slow_reader_paces_the_sender() -> None:
    with fail_after(10):
        report = await relay.main(
            10_000, high_water=16 * 1024, read_size=8192, read_pause=0.001
        )

    assert report.relay.lines == 10_000
    longest = len(wrapped(relay.make_lines(1)))
    assert report.relay.peak_buffered <= report.high_water + longest
    # Peer 1 could get ahead of peer 2 only by what the buffers on the way hold
    # (about 200 KiB of the 1.2 MB); without back-pressure it would be done first.
    assert report.peer1_lead <= 512 * 1024


async def test_relay_stops_reading_while_the_second_peer_does_not_read() -> None:
    lines = relay.make_lines(40_000)  # 4 MB: far more than every buffer on the way
    expected = wrapped(lines)
    high_water = 16 * 1024
    longest = len(wrapped(lines[:1]))
    senders: list[BufferedByteSendStream] = []
    peer1_done = anyio.Event()
    peer2_stalled = anyio.Event()
    resume = anyio.Event()
    peer2_done = anyio.Event()
    received = bytearray()

    async def peer1(stream: SocketStream) -> None:
        relay.shrink_buffers(stream)
        async with BufferedByteSendStream(stream, high_water=16 * 1024) as out:
            senders.append(out)
            for line in lines:
                await out.send(line)
        peer1_done.set()

    async def peer2(stream: SocketStream) -> None:
        relay.shrink_buffers(stream)
        async with stream:
            received.extend(await stream.receive())  # one read, then stop reading
            peer2_stalled.set()
            await resume.wait()
            async for chunk in stream:
                received.extend(chunk)
        peer2_done.set()

    peer1_listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    peer2_listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with peer1_listener, peer2_listener, anyio.create_task_group() as tg:
        tg.start_soon(peer1_listener.serve, peer1)
        tg.start_soon(peer2_listener.serve, peer2)
        from_peer1, to_peer2 = await relay.connect_both(peer1_listener, peer2_listener)
        results: list[Any] = []
        relayed = anyio.Event()
        async with (
            from_peer1,
            BufferedByteSendStream(to_peer2, high_water=high_water) as out,
        ):

            async def run_relay() -> None:
                results.append(await relay.relay(from_peer1, out))
                relayed.set()

            tg.start_soon(run_relay)
            with fail_after(5):
                await peer2_stalled.wait()
                # Everything backs up: the relay waits in drain() and peer 1 in
                # send(). (Polled: a delayed TCP ACK can still move a few bytes.)
                while not (out.paused and senders[0].statistics().tasks_waiting):
                    await wait_all_tasks_blocked()

            assert out.buffered_bytes <= high_water + longest
            assert not peer1_done.is_set()
            # The relay read only what fits in the buffers on the way.
            assert senders[0].statistics().bytes_sent < len(b"".join(lines)) // 4

            resume.set()
            with fail_after(5):
                await relayed.wait()
        # leaving the block flushed the rest and closed the connection to peer 2
        with fail_after(5):
            await peer2_done.wait()
        tg.cancel_scope.cancel()

    assert peer1_done.is_set()
    assert bytes(received) == expected
    assert results[0].lines == len(lines)
    assert results[0].peak_buffered <= high_water + longest


async def test_relay_passes_on_a_last_line_without_a_newline() -> None:
    send, receive = anyio.create_memory_object_stream[bytes](10)
    sink_send, sink_receive = anyio.create_memory_object_stream[bytes](10)
    async with send, receive, sink_receive:
        await send.send(b"first\nsec")
        await send.send(b"ond\nlast")
        await send.aclose()
        async with BufferedByteSendStream(sink_send) as out:
            result = await relay.relay(receive, out)
        output = b"".join([chunk async for chunk in sink_receive])

    assert result.lines == 3
    assert output == (
        b"<response>first</response>\n"
        b"<response>second</response>\n"
        b"<response>last</response>\n"
    )


# -- broadcast.py -----------------------------------------------------------------


async def test_broadcast_evicts_the_stalled_subscriber_and_serves_the_readers() -> None:
    high_water = 16 * 1024
    with fail_after(10):
        report = await broadcast.main(
            300, 50, high_water=high_water, socket_send_buffer=16 * 1024
        )

    assert report.evicted == 1
    assert report.delivered == [report.published, report.published]
    # The stalled subscriber got the start of the stream, then its connection was
    # closed; it took more than high_water bytes to evict it.
    assert report.published.startswith(report.stalled)
    assert len(report.stalled) < report.evicted_after < len(report.published)
    assert report.evicted_after > high_water


async def test_subscriber_that_never_reads_does_not_delay_the_others() -> None:
    broker = broadcast.Broker(high_water=16 * 1024, socket_send_buffer=16 * 1024)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, broker.handle)
        port = listener.extra(SocketAttribute.local_port)
        # A plain socket: not even the confirmation is ever read from it.
        with socket.create_connection(("127.0.0.1", port)) as never_reads:
            never_reads.sendall(b"SUBSCRIBE\n")
            readers = [await broadcast.subscribe(port) for _ in range(2)]
            async with readers[0], readers[1]:
                with fail_after(5):
                    while broker.subscribers < 3:
                        await wait_all_tasks_blocked()

                publisher = await anyio.connect_tcp("127.0.0.1", port)
                async with publisher:
                    batch = 0
                    with fail_after(5):
                        while not broker.evicted:
                            lines = b"".join(
                                b"PUBLISH %06d.%02d %s\n" % (batch, number, b"." * 80)
                                for number in range(50)
                            )
                            await publisher.send(lines)
                            messages = lines.replace(b"PUBLISH ", b"")
                            # Each batch reaches both readers before the next one
                            # is published: the stalled subscriber delays nobody.
                            for reader in readers:
                                assert (
                                    await reader.receive_exactly(len(messages))
                                    == messages
                                )
                            batch += 1

                    assert broker.subscribers == 2
                    assert broker.publish(b"after the eviction") == 2
                    for reader in readers:
                        assert await reader.receive_until(b"\n", 100) == (
                            b"after the eviction"
                        )
        tg.cancel_scope.cancel()

    assert broker.evicted == 1
    assert batch * len(messages) > broker.high_water  # not evicted early


async def test_broker_answers_an_unknown_command_with_an_error() -> None:
    broker = broadcast.Broker()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, broker.handle)
        port = listener.extra(SocketAttribute.local_port)
        async with await anyio.connect_tcp("127.0.0.1", port) as client:
            await client.send(b"HELLO\n")
            with fail_after(5):
                reply = await client.receive()
        tg.cancel_scope.cancel()

    assert reply == b"ERROR unknown command\n"
    assert broker.subscribers == 0


# -- subprocess_feed.py -----------------------------------------------------------


def digest_of_generated(size: int) -> str:
    digest = hashlib.sha256()
    for block in subprocess_feed.generate(size):
        digest.update(block)
    return digest.hexdigest()


@pytest.mark.parametrize("which", ["sha256sum", "python fallback"])
async def test_subprocess_feed_digest_matches_hashlib(
    which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if which == "sha256sum" and shutil.which("sha256sum") is None:
        pytest.skip("sha256sum is not installed")

    if which == "python fallback":
        monkeypatch.setattr(shutil, "which", lambda name: None)
        assert subprocess_feed.hash_command()[0] == sys.executable

    size = 16 * 1024 * 1024 + 12345  # not a whole number of blocks
    high_water = 256 * 1024
    with fail_after(20):
        result = await subprocess_feed.main(size, high_water=high_water)

    assert result.digest == digest_of_generated(size)
    assert result.bytes_fed == size
    assert result.waits > 0
    assert result.peak_buffered <= high_water + subprocess_feed.BLOCK_SIZE


# -- http_stream.py ---------------------------------------------------------------

BODY_SIZE = 4 * 1024 * 1024
RATE = 8 * 1024 * 1024  # bytes per second: about half a second per download


@pytest.mark.parametrize(
    "client",
    [
        pytest.param(
            "curl",
            marks=pytest.mark.skipif(
                shutil.which("curl") is None, reason="curl is not installed"
            ),
        ),
        "h11",
    ],
)
async def test_http_stream_to_a_slow_client_keeps_the_server_buffer_bounded(
    client: str,
) -> None:
    high_water = 256 * 1024
    with fail_after(20):
        report = await http_stream.main(
            BODY_SIZE,
            rate=RATE,
            high_water=high_water,
            socket_send_buffer=64 * 1024,
            use_curl=client == "curl",
        )

    assert report.download.status == 200
    assert report.download.size == BODY_SIZE
    assert (
        report.download.sha256
        == hashlib.sha256(b"".join(http_stream.generate(BODY_SIZE))).hexdigest()
    )
    # one chunk: 64 KiB of body and its framing ("10000\r\n" ... "\r\n")
    assert report.largest_write <= http_stream.CHUNK_SIZE + 16
    assert high_water < report.peak_buffered <= high_water + report.largest_write


# -- tls_echo.py ------------------------------------------------------------------


async def test_tls_echo_returns_every_byte_to_every_client() -> None:
    with fail_after(10):
        echoed = await tls_echo.main(clients=3, messages=300, size=700)

    assert echoed == [
        b"".join(tls_echo.make_messages(300, 700 + client)) for client in range(3)
    ]


async def test_tls_echo_returns_large_messages_intact() -> None:
    server_context, client_context = tls_echo.make_contexts()
    messages = [b"x" * 100, bytes(range(256)) * 4096, b"", b"y" * 300_000, b"z"]
    tcp_listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = tcp_listener.extra(SocketAttribute.local_port)
    async with (
        TLSListener(tcp_listener, server_context) as listener,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(listener.serve, tls_echo.echo)
        with fail_after(10):
            echoed = await tls_echo.echo_client(port, client_context, messages)
        tg.cancel_scope.cancel()

    assert echoed == b"".join(messages)
