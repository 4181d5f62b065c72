"""drainpipe.compat: asyncio's streams API on every backend, with asyncio's
exceptions."""

from __future__ import annotations

import asyncio
import errno
import gc
import importlib.util
import logging
import os
import re
import socket
import ssl
import struct
import sys
import time
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio import (
    BrokenResourceError,
    CancelScope,
    create_task_group,
    fail_after,
    move_on_after,
    wait_all_tasks_blocked,
)
from anyio.abc import SocketAttribute, SocketListener, SocketStream
from anyio.streams.tls import TLSStream

from drainpipe import compat
from tests.network import free_port, has_ipv6

if TYPE_CHECKING:
    from collections.abc import (
        AsyncIterator,
        Awaitable,
        Callable,
        Coroutine,
        Iterator,
    )
    from types import ModuleType

    import trustme
    from anyio.streams.memory import MemoryObjectSendStream

pytestmark = pytest.mark.anyio

needs_unix = pytest.mark.skipif(sys.platform == "win32", reason="no UNIX sockets")
needs_ipv6 = pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback")

SMALL_BUFFER = 16 * 1024

# -- the asyncio documentation's echo pair ---------------------------------------
#
# docs/porting_echo.py: tcp_echo_client() and handle_echo()/main() from the
# "Streams" page of the asyncio documentation, ported by the steps in
# docs/porting.md, which shows that very file.


def load_echo_pair() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "docs" / "porting_echo.py"
    spec = importlib.util.spec_from_file_location("porting_echo", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


echo_pair = load_echo_pair()
tcp_echo_client: Callable[[str, int], Awaitable[None]] = echo_pair.tcp_echo_client
handle_echo: Callable[[compat.StreamReader, compat.StreamWriter], Awaitable[None]] = (
    echo_pair.handle_echo
)
main: Callable[[int], Coroutine[Any, Any, None]] = echo_pair.main


async def test_asyncio_docs_echo_pair_runs(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    output = ""
    async with create_task_group() as tg:
        tg.start_soon(main, port)
        with fail_after(10):
            while "Serving on" not in output:  # printed once listening
                await anyio.sleep(0.01)
                output += capsys.readouterr().out
            await tcp_echo_client("Hello World!", port)
        tg.cancel_scope.cancel()

    lines = (output + capsys.readouterr().out).splitlines()
    assert lines[0] == f"Serving on ('127.0.0.1', {port})"
    assert "Received: 'Hello World!'" in lines
    assert any(
        line.startswith("Received 'Hello World!' from ('127.0.0.1', ") for line in lines
    )
    assert lines.count("Close the connection") == 2


# -- helpers ---------------------------------------------------------------------


@asynccontextmanager
async def serving(
    handler: Callable[[compat.StreamReader, compat.StreamWriter], Awaitable[None]],
    **kwargs: object,
) -> AsyncIterator[int]:
    """A compat server on 127.0.0.1; yields its port."""
    async with compat.start_server(handler, "127.0.0.1", 0, **kwargs) as server:  # type: ignore[arg-type]
        yield server.sockets[0].getsockname()[1]


async def echo_until_eof(
    reader: compat.StreamReader, writer: compat.StreamWriter
) -> None:
    writer.write(await reader.read())


def shrink_buffers(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)


@asynccontextmanager
async def raw_peer(
    **kwargs: object,
) -> AsyncIterator[tuple[compat.StreamReader, compat.StreamWriter, socket.socket]]:
    """A compat client connected to a plain blocking socket that reads only when
    the test says so."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        port = listener.getsockname()[1]
        async with compat.open_connection("127.0.0.1", port, **kwargs) as (  # type: ignore[arg-type]
            reader,
            writer,
        ):
            shrink_buffers(writer.get_extra_info("socket"))
            peer, _ = listener.accept()
            peer.settimeout(10)
            with peer:
                yield reader, writer, peer


def receive_until_eof(peer: socket.socket) -> bytes:
    chunks = []
    while chunk := peer.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def reset(peer: socket.socket) -> None:
    """Close ``peer`` with a TCP RST instead of a FIN."""
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()


async def fill(writer: compat.StreamWriter) -> None:
    """Write until the buffer stays above its high watermark (the peer does not
    read)."""
    block = b"r" * 65536
    for _ in range(200):
        writer.write(block)
        if writer.send_stream.paused:
            await wait_all_tasks_blocked()
            if writer.transport.get_write_buffer_size() > 65536:
                return
    raise AssertionError("the writer never stayed paused")  # pragma: no cover


@contextmanager
def fed_reader(
    *chunks: bytes, eof: bool = True, limit: int = 2**16
) -> Iterator[tuple[compat.StreamReader, MemoryObjectSendStream[bytes]]]:
    """A StreamReader over a memory stream holding ``chunks`` (then EOF)."""
    send, receive = anyio.create_memory_object_stream[bytes](len(chunks) + 10)
    with send, receive:
        for chunk in chunks:
            send.send_nowait(chunk)
        if eof:
            send.close()
        yield compat.StreamReader(receive, limit=limit), send


# -- StreamReader ----------------------------------------------------------------


async def test_read_returns_at_most_n_buffered_bytes() -> None:
    with fed_reader(b"hello", b"world") as (reader, _):
        assert await reader.read(3) == b"hel"
        assert await reader.read(100) == b"lo"


async def test_read_all_reads_until_eof() -> None:
    with fed_reader(b"a" * 100_000, b"b" * 100_000, limit=1000) as (reader, _):
        assert await reader.read() == b"a" * 100_000 + b"b" * 100_000


async def test_read_zero_returns_empty_without_waiting() -> None:
    with fed_reader(eof=False) as (reader, _), fail_after(1):
        assert await reader.read(0) == b""


async def test_read_at_eof_returns_empty() -> None:
    with fed_reader(b"x") as (reader, _):
        assert await reader.read(10) == b"x"
        assert await reader.read(10) == b""


async def test_readline_returns_line_with_newline() -> None:
    with fed_reader(b"one\ntw", b"o\nthree") as (reader, _):
        assert await reader.readline() == b"one\n"
        assert await reader.readline() == b"two\n"


async def test_readline_returns_partial_last_line_at_eof() -> None:
    with fed_reader(b"one\nlast") as (reader, _):
        await reader.readline()
        assert await reader.readline() == b"last"
        assert await reader.readline() == b""


async def test_readline_over_limit_drops_the_line_and_raises_value_error() -> None:
    with fed_reader(b"x" * 20 + b"\nnext\n", limit=10) as (reader, _):
        with pytest.raises(ValueError, match="chunk is longer than limit"):
            await reader.readline()
        assert await reader.readline() == b"next\n"


async def test_readline_over_limit_without_newline_clears_the_buffer() -> None:
    with fed_reader(b"x" * 30, eof=False, limit=10) as (reader, send):
        with pytest.raises(ValueError, match="Separator is not found"):
            await reader.readline()
        send.send_nowait(b"y\n")
        assert await reader.readline() == b"y\n"


async def test_readuntil_returns_data_including_a_split_separator() -> None:
    with fed_reader(b"head\r", b"\nbody") as (reader, _):
        assert await reader.readuntil(b"\r\n") == b"head\r\n"
        assert await reader.read() == b"body"


async def test_readuntil_tuple_returns_the_shortest_match() -> None:
    with fed_reader(b"a;b||c") as (reader, _):
        assert await reader.readuntil((b"||", b";")) == b"a;"
        assert await reader.readuntil((b";", b"||")) == b"b||"


async def test_readuntil_at_eof_raises_incomplete_read_error() -> None:
    with fed_reader(b"no separator") as (reader, _):
        with pytest.raises(asyncio.IncompleteReadError) as caught:
            await reader.readuntil(b"\n")
        assert caught.value.partial == b"no separator"
        assert caught.value.expected is None
        assert reader.at_eof()


async def test_readuntil_beyond_limit_raises_limit_overrun_and_keeps_data() -> None:
    with fed_reader(b"x" * 30, b"\n", limit=10) as (reader, _):
        with pytest.raises(asyncio.LimitOverrunError) as caught:
            await reader.readuntil(b"\n")
        assert caught.value.consumed > 10
        assert await reader.read(100) == b"x" * 30


async def test_readuntil_separator_beyond_limit_reports_its_offset() -> None:
    with fed_reader(b"x" * 12 + b"\n", limit=10) as (reader, _):
        with pytest.raises(asyncio.LimitOverrunError) as caught:
            await reader.readuntil(b"\n")
        assert caught.value.consumed == 12


@pytest.mark.parametrize("separator", [b"", (), (b"\n", b"")])
async def test_readuntil_rejects_empty_separators(
    separator: bytes | tuple[bytes, ...],
) -> None:
    with (
        fed_reader(b"data\n") as (reader, _),
        pytest.raises(ValueError, match="Separator should"),
    ):
        await reader.readuntil(separator)


async def test_readexactly_joins_chunks() -> None:
    with fed_reader(b"ab", b"cd", b"ef") as (reader, _):
        assert await reader.readexactly(5) == b"abcde"
        assert await reader.readexactly(1) == b"f"


async def test_readexactly_at_eof_raises_incomplete_read_error() -> None:
    with fed_reader(b"abc") as (reader, _):
        with pytest.raises(asyncio.IncompleteReadError) as caught:
            await reader.readexactly(5)
        assert caught.value.partial == b"abc"
        assert caught.value.expected == 5


async def test_readexactly_negative_raises_value_error() -> None:
    with (
        fed_reader(b"abc") as (reader, _),
        pytest.raises(ValueError, match="less than zero"),
    ):
        await reader.readexactly(-1)


async def test_readexactly_zero_returns_empty_without_waiting() -> None:
    with fed_reader(eof=False) as (reader, _), fail_after(1):
        assert await reader.readexactly(0) == b""


async def test_at_eof_only_once_the_buffer_is_consumed() -> None:
    with fed_reader(b"ab") as (reader, _):
        assert not reader.at_eof()
        await reader.read(1)
        assert not reader.at_eof()
        await reader.read(1)
        await reader.read(1)
        assert reader.at_eof()


async def test_async_iteration_yields_lines_until_eof() -> None:
    with fed_reader(b"a\nb", b"\nc") as (reader, _):
        assert [line async for line in reader] == [b"a\n", b"b\n", b"c"]


async def test_second_waiting_read_raises_runtime_error() -> None:
    with fed_reader(eof=False) as (reader, _):
        async with create_task_group() as tg:
            tg.start_soon(reader.read, 10)
            await wait_all_tasks_blocked()
            with pytest.raises(RuntimeError, match="already waiting"):
                await reader.readline()
            tg.cancel_scope.cancel()


async def test_cancelled_read_keeps_received_bytes() -> None:
    with fed_reader(b"12345", eof=False) as (reader, send):
        with move_on_after(0.05) as scope:
            await reader.readexactly(10)
        assert scope.cancelled_caught
        send.send_nowait(b"67890")
        assert await reader.readexactly(10) == b"1234567890"


async def test_reader_limit_must_be_positive() -> None:
    send, receive = anyio.create_memory_object_stream[bytes]()
    with send, receive, pytest.raises(ValueError, match="Limit cannot be <= 0"):
        compat.StreamReader(receive, limit=0)


async def test_reset_connection_raises_connection_reset_error_from_reads() -> None:
    async with raw_peer() as (reader, _writer, peer):
        reset(peer)
        with pytest.raises(ConnectionResetError) as caught:
            await reader.read(10)
        assert isinstance(caught.value.__cause__, BrokenResourceError)
        with pytest.raises(ConnectionResetError):
            await reader.readline()
        with pytest.raises(ConnectionResetError):
            await reader.readexactly(1)
        assert reader.exception() is caught.value


async def test_reader_exception_is_none_on_a_healthy_connection() -> None:
    async with raw_peer() as (reader, _writer, peer):
        peer.sendall(b"hi")
        assert await reader.read(2) == b"hi"
        assert reader.exception() is None


async def test_incomplete_read_over_a_connection_is_asyncio_incomplete_read_error() -> (
    None
):
    async with raw_peer() as (reader, _writer, peer):
        peer.sendall(b"abc")
        peer.shutdown(socket.SHUT_WR)
        with pytest.raises(asyncio.IncompleteReadError):
            await reader.readexactly(4)


async def test_closing_the_writer_under_a_read_ends_it_like_eof() -> None:
    async with raw_peer() as (reader, writer, _peer):
        results: list[bytes] = []

        async def read() -> None:
            results.append(await reader.read(100))

        async with create_task_group() as tg:
            tg.start_soon(read)
            await wait_all_tasks_blocked()
            writer.close()
        assert results == [b""]


async def test_open_connection_limit_bounds_readline() -> None:
    async with raw_peer(limit=8) as (reader, _writer, peer):
        peer.sendall(b"0123456789abcdef\nok\n")
        with pytest.raises(ValueError, match="longer than limit"):
            await reader.readline()
        assert await reader.readline() == b"ok\n"


# -- StreamWriter ----------------------------------------------------------------


async def test_write_and_drain_deliver_bytes() -> None:
    async with raw_peer() as (_reader, writer, peer):
        writer.write(b"hello ")
        writer.write(bytearray(b"world"))
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        assert receive_until_eof(peer) == b"hello world"


async def test_writelines_delivers_items_in_order() -> None:
    async with raw_peer() as (_reader, writer, peer):
        writer.writelines([b"a", memoryview(b"bc"), b"d"])
        writer.close()
        await writer.wait_closed()
        assert receive_until_eof(peer) == b"abcd"


async def test_drain_waits_while_the_peer_does_not_read() -> None:
    async with raw_peer() as (_reader, writer, peer):
        await fill(writer)
        with move_on_after(0.1) as scope:
            await writer.drain()
        assert scope.cancelled_caught

        received = 0
        async with create_task_group() as tg:

            async def consume() -> None:
                nonlocal received
                received = len(await anyio.to_thread.run_sync(receive_until_eof, peer))

            tg.start_soon(consume)
            with fail_after(10):
                await writer.drain()
            assert writer.transport.get_write_buffer_size() <= 16 * 1024
            writer.close()
        assert received > 65536


async def test_drain_raises_the_error_the_reader_saw() -> None:
    async with raw_peer() as (reader, writer, peer):
        reset(peer)
        with pytest.raises(ConnectionResetError) as caught:
            await reader.read(1)
        with pytest.raises(ConnectionResetError) as drained:
            await writer.drain()
        assert drained.value is caught.value


async def test_drain_after_close_raises_connection_reset_error() -> None:
    async with raw_peer() as (_reader, writer, _peer):
        writer.close()
        with pytest.raises(ConnectionResetError, match="Connection lost"):
            await writer.drain()


async def test_drain_after_close_waits_for_a_buffer_above_the_high_watermark() -> None:
    # As asyncio's: it returns once the close has sent the buffer (issue 14).
    received: list[bytes] = []

    async def receive() -> None:
        received.append(await anyio.to_thread.run_sync(receive_until_eof, peer))

    async with raw_peer() as (_reader, writer, peer), create_task_group() as tg:
        await fill(writer)
        written = writer.send_stream.statistics().bytes_written
        writer.close()
        tg.start_soon(receive)
        with fail_after(10):
            await writer.drain()
        assert writer.send_stream.statistics().bytes_sent == written
        await writer.wait_closed()
    assert len(received[0]) == written


async def test_drain_after_close_raises_if_the_connection_is_lost_meanwhile() -> None:
    async with raw_peer() as (reader, writer, peer):
        await fill(writer)
        writer.close()
        async with create_task_group() as tg:

            async def reset_soon() -> None:
                await wait_all_tasks_blocked()
                reset(peer)

            tg.start_soon(reset_soon)
            with fail_after(10), pytest.raises(ConnectionError):
                await writer.drain()
        assert isinstance(reader.exception(), ConnectionError)


async def test_drain_returns_when_the_writer_is_aborted_while_it_waits() -> None:
    async with raw_peer() as (_reader, writer, _peer):
        await fill(writer)
        async with create_task_group() as tg:
            tg.start_soon(writer.drain)
            await wait_all_tasks_blocked()
            writer.transport.abort()
            with fail_after(5):
                await writer.wait_closed()


async def test_write_after_close_with_nothing_buffered_is_dropped() -> None:
    async with raw_peer() as (_reader, writer, peer):
        writer.write(b"sent")
        await writer.send_stream.flush()
        writer.close()
        writer.write(b"dropped")
        writer.writelines([b"dropped too"])
        await writer.wait_closed()
        assert receive_until_eof(peer) == b"sent"


async def test_write_after_close_is_sent_while_bytes_are_buffered() -> None:
    # As asyncio's transport, which appends to a non-empty buffer after close().
    async with raw_peer() as (_reader, writer, peer):
        writer.write(b"sent, ")  # to the socket at once, as asyncio's transport does
        writer.write(b"queued")  # after it in the same step: buffered
        assert writer.transport.get_write_buffer_size() == 6
        writer.close()
        writer.write(b" and")
        writer.writelines([b" more"])
        await writer.wait_closed()
        assert receive_until_eof(peer) == b"sent, queued and more"


async def test_write_after_close_is_sent_while_later_bytes_are_left() -> None:
    first, second = b"a" * 1024 * 1024, b"b" * 1024 * 1024

    def receive_exactly(peer: socket.socket, size: int) -> bytes:
        received = bytearray()
        while len(received) < size:
            received += peer.recv(min(65536, size - len(received)))
        return bytes(received)

    async with raw_peer() as (_reader, writer, peer):
        writer.write(first)
        writer.close()
        await wait_all_tasks_blocked()  # the close flushes the first bytes
        writer.write(second)  # during that flush
        # Past the first bytes (and the pieces sent with their end): the close's
        # flush of them has returned, and it still has second ones to send.
        received = await anyio.to_thread.run_sync(
            receive_exactly, peer, len(first) + len(second) // 2
        )
        await wait_all_tasks_blocked()
        assert writer.transport.get_write_buffer_size() > 0
        writer.write(b"tail")
        received += await anyio.to_thread.run_sync(receive_until_eof, peer)
        with fail_after(5):
            await writer.wait_closed()
    assert received == first + second + b"tail"


async def test_write_after_close_once_everything_was_sent_is_dropped() -> None:
    async with raw_peer() as (_reader, writer, peer):
        writer.write(b"queued")
        writer.close()
        await writer.wait_closed()
        writer.write(b"dropped")
        assert receive_until_eof(peer) == b"queued"


async def test_lost_connection_raises_from_drain() -> None:
    async with raw_peer() as (_reader, writer, peer):
        await fill(writer)
        reset(peer)
        with (
            fail_after(5),
            pytest.raises((ConnectionResetError, BrokenPipeError)) as caught,
        ):
            await writer.drain()
        assert isinstance(caught.value.__cause__, BrokenResourceError)


async def test_lost_connection_raises_from_later_writes() -> None:
    async with raw_peer() as (_reader, writer, peer):
        await fill(writer)
        reset(peer)
        with fail_after(5), pytest.raises(ConnectionError):
            await writer.drain()
        with pytest.raises((ConnectionResetError, BrokenPipeError)) as caught:
            writer.write(b"more")
        assert isinstance(caught.value.__cause__, BrokenResourceError)
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            writer.writelines([b"more"])


async def test_lost_connection_makes_reads_raise_it() -> None:
    async with raw_peer() as (reader, writer, peer):
        await fill(writer)
        reset(peer)
        with fail_after(5), pytest.raises(ConnectionError) as caught:
            await writer.drain()
        with pytest.raises(ConnectionError) as read_error:
            await reader.read(1)
        assert read_error.value is caught.value


async def test_is_closing_after_close() -> None:
    async with raw_peer() as (_reader, writer, _peer):
        assert not writer.is_closing()
        writer.close()
        assert writer.is_closing()


async def test_is_closing_after_the_connection_is_lost() -> None:
    async with raw_peer() as (reader, writer, peer):
        reset(peer)
        with pytest.raises(ConnectionResetError):
            await reader.read(1)
        assert writer.is_closing()


async def test_wait_closed_waits_for_the_flush() -> None:
    async with raw_peer() as (_reader, writer, peer):
        await fill(writer)
        writer.close()
        with move_on_after(0.1) as scope:
            await writer.wait_closed()
        assert scope.cancelled_caught

        async with create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, receive_until_eof, peer)
            with fail_after(10):
                await writer.wait_closed()
        assert writer.transport.get_write_buffer_size() == 0


@pytest.mark.parametrize("ending", ["close", "write_eof"])
async def test_shielded_cleanup_after_an_outer_cancellation_flushes(
    ending: str,
) -> None:
    # As with asyncio, a close or an EOF scheduled by cleanup code that shields
    # itself from a cancellation of the block still sends the buffer first. Before,
    # the cancellation reached the close and EOF tasks, which dropped the buffer,
    # and wait_closed() reported nothing.
    payload = b"bye" * 100_000
    received: list[bytes] = []
    completed = False

    def accept_and_read(listener: socket.socket) -> None:
        peer, _ = listener.accept()
        with peer:
            peer.settimeout(10)
            time.sleep(0.1)  # the payload does not fit in the socket buffers
            received.append(receive_until_eof(peer))
            if ending == "write_eof":
                peer.sendall(b"%d" % len(received[0]))

    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        listener.settimeout(10)
        port = listener.getsockname()[1]
        async with create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, accept_and_read, listener)
            with CancelScope() as outer:
                async with compat.open_connection("127.0.0.1", port) as (
                    reader,
                    writer,
                ):
                    shrink_buffers(writer.get_extra_info("socket"))
                    try:
                        outer.cancel()
                        await anyio.sleep_forever()
                    finally:
                        with CancelScope(shield=True), move_on_after(10):
                            writer.write(payload)
                            if ending == "close":
                                writer.close()
                                await writer.wait_closed()
                            else:
                                writer.write_eof()
                                assert await reader.read() == b"%d" % len(payload)
                            completed = True
            assert outer.cancelled_caught
    # Checked out here: a timeout inside the block would be replaced by the
    # outer cancellation on the way out, and the forced close still sends a FIN.
    assert completed, f"the cleanup's {ending} did not complete"
    assert received == [payload]


async def test_wait_closed_raises_when_the_connection_was_lost() -> None:
    async with raw_peer() as (_reader, writer, peer):
        await fill(writer)
        reset(peer)
        writer.close()
        with fail_after(5), pytest.raises((ConnectionResetError, BrokenPipeError)):
            await writer.wait_closed()


async def test_a_reset_met_only_by_the_flush_task_closes_the_writer() -> None:
    async with raw_peer() as (reader, writer, peer):
        await fill(writer)
        reset(peer)
        # Neither drain() nor a read: only the flush task meets the reset.
        with fail_after(5), pytest.raises((ConnectionResetError, BrokenPipeError)):
            await writer.wait_closed()
        assert writer.is_closing()
        assert isinstance(reader.exception(), ConnectionError)
        with pytest.raises(ConnectionError) as caught:
            await reader.read()
        assert caught.value is reader.exception()


async def test_a_send_timeout_closes_the_writer_and_reads_raise() -> None:
    read: list[BaseException | bytes] = []

    async def read_during_the_loss(reader: compat.StreamReader) -> None:
        try:
            read.append(await reader.read())
        except ConnectionError as exc:
            read.append(exc)

    async with (
        raw_peer(send_timeout=0.2) as (reader, writer, _peer),
        create_task_group() as tg,
    ):
        tg.start_soon(read_during_the_loss, reader)
        writer.write(b"x" * 16 * 1024 * 1024)  # the peer never reads: times out
        with fail_after(5), pytest.raises(ConnectionResetError, match="lost"):
            await writer.wait_closed()
        assert writer.is_closing()
        lost = reader.exception()
        assert isinstance(lost, ConnectionResetError)
        assert isinstance(lost.__cause__, BrokenResourceError)
        assert isinstance(lost.__cause__.__cause__, TimeoutError)
        with fail_after(5):
            await wait_all_tasks_blocked()
    # The read waiting when the connection closed reports the loss, not an EOF.
    assert read == [lost]


async def test_write_eof_half_closes_after_the_buffer_and_reading_goes_on() -> None:
    async def count(reader: compat.StreamReader, writer: compat.StreamWriter) -> None:
        writer.write(b"%d" % len(await reader.read()))

    async with (
        serving(count) as port,
        compat.open_connection("127.0.0.1", port) as (
            reader,
            writer,
        ),
    ):
        assert writer.can_write_eof()
        writer.write(b"x" * 300_000)
        writer.write_eof()
        with fail_after(10):
            assert await reader.read() == b"300000"


async def test_write_after_write_eof_raises_runtime_error() -> None:
    async with raw_peer() as (_reader, writer, _peer):
        writer.write_eof()
        with pytest.raises(RuntimeError, match=r"write\(\) after write_eof"):
            writer.write(b"x")
        with pytest.raises(RuntimeError, match=r"writelines\(\) after write_eof"):
            writer.writelines([b"x"])


async def test_writelines_after_write_eof_checks_the_items_first_before_3_12() -> None:
    async with raw_peer() as (_reader, writer, _peer):
        writer.write_eof()
        if sys.version_info < (3, 12):  # asyncio joins the items first
            expected, message = TypeError, r"sequence item 1: .* int found"
        else:
            expected, message = RuntimeError, r"writelines\(\) after write_eof"
        with pytest.raises(expected, match=message):
            writer.writelines([b"x", 1])  # type: ignore[list-item]


async def test_write_eof_twice_is_harmless() -> None:
    async with raw_peer() as (reader, writer, peer):
        writer.write(b"data")
        writer.write_eof()
        writer.write_eof()
        assert await anyio.to_thread.run_sync(receive_until_eof, peer) == b"data"
        peer.sendall(b"reading goes on")
        assert await reader.read(100) == b"reading goes on"


async def test_write_eof_that_cannot_flush_reports_the_lost_connection() -> None:
    async with raw_peer() as (reader, writer, peer):
        await fill(writer)
        reset(peer)
        writer.write_eof()
        with fail_after(5):
            # Only the EOF task can record the failure: no other call is made.
            while reader.exception() is None:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        assert writer.is_closing()
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            await writer.drain()


async def test_write_eof_then_abort_closes_without_error() -> None:
    async with raw_peer() as (_reader, writer, peer):
        writer.write(b"data")
        writer.write_eof()
        writer.transport.abort()
        with fail_after(5):
            await writer.wait_closed()
        assert len(receive_until_eof(peer)) <= 4


async def test_get_extra_info_peername_and_sockname() -> None:
    async with raw_peer() as (_reader, writer, peer):
        assert writer.get_extra_info("peername") == peer.getsockname()
        assert writer.get_extra_info("sockname") == peer.getpeername()


async def test_get_extra_info_socket_is_the_connected_socket() -> None:
    async with raw_peer() as (_reader, writer, peer):
        raw = writer.get_extra_info("socket")
        assert raw.getpeername() == peer.getsockname()


async def test_get_extra_info_returns_the_default_for_unknown_names() -> None:
    async with raw_peer() as (_reader, writer, _peer):
        marker = object()
        assert writer.get_extra_info("peercert", marker) is marker
        assert writer.get_extra_info("no such thing") is None


async def test_get_extra_info_survives_the_close() -> None:
    async with raw_peer() as (_reader, writer, peer):
        writer.close()
        await writer.wait_closed()
        assert writer.get_extra_info("peername") == peer.getsockname()


# -- the write transport ---------------------------------------------------------


async def test_transport_write_buffer_size_counts_unsent_bytes() -> None:
    async with raw_peer() as (_reader, writer, _peer):
        assert writer.transport.get_write_buffer_size() == 0
        await fill(writer)
        assert writer.transport.get_write_buffer_size() > 65536


async def test_transport_write_buffer_limits_default_like_asyncio() -> None:
    async with raw_peer() as (_reader, writer, _peer):
        assert writer.transport.get_write_buffer_limits() == (16384, 65536)


@pytest.mark.parametrize(
    ("high", "low", "expected"),
    [
        (None, None, (16384, 65536)),
        (1000, None, (250, 1000)),
        (None, 100, (100, 400)),
        (10, 10, (10, 10)),
    ],
)
async def test_transport_set_write_buffer_limits_defaults_like_asyncio(
    high: int | None, low: int | None, expected: tuple[int, int]
) -> None:
    async with raw_peer() as (_reader, writer, _peer):
        writer.transport.set_write_buffer_limits(high=high, low=low)
        assert writer.transport.get_write_buffer_limits() == expected


async def test_transport_set_write_buffer_limits_rejects_low_above_high() -> None:
    async with raw_peer() as (_reader, writer, _peer):
        with pytest.raises(ValueError, match=r"high \(10\) must be >= low \(20\)"):
            writer.transport.set_write_buffer_limits(high=10, low=20)


async def test_transport_set_write_buffer_limits_pauses_above_high() -> None:
    async with raw_peer() as (_reader, writer, _peer):
        await fill(writer)
        size = writer.transport.get_write_buffer_size()
        writer.transport.set_write_buffer_limits(high=size * 4)
        with fail_after(1):
            await writer.drain()  # no longer paused: the buffer is below low
        writer.transport.set_write_buffer_limits(high=1, low=0)
        with move_on_after(0.1) as scope:
            await writer.drain()
        assert scope.cancelled_caught


async def test_transport_abort_drops_the_buffer_and_closes() -> None:
    async with raw_peer() as (_reader, writer, peer):
        writer.write(b"a" * 4_000_000)
        writer.transport.abort()
        with fail_after(5):
            await writer.wait_closed()
        assert writer.transport.get_write_buffer_size() == 0
        assert len(receive_until_eof(peer)) < 4_000_000


async def test_transport_abort_replaces_a_stuck_graceful_close() -> None:
    async with raw_peer() as (_reader, writer, _peer):
        await fill(writer)
        writer.close()
        await wait_all_tasks_blocked()
        writer.transport.abort()
        with fail_after(5):
            await writer.wait_closed()


async def test_transport_close_closes_the_writer() -> None:
    async with raw_peer() as (_reader, writer, peer):
        writer.write(b"bye")
        writer.transport.close()
        assert writer.transport.is_closing()
        await writer.wait_closed()
        assert receive_until_eof(peer) == b"bye"


async def test_transport_get_extra_info_matches_the_writer() -> None:
    async with raw_peer() as (_reader, writer, peer):
        assert writer.transport.get_extra_info("peername") == peer.getsockname()
        assert writer.transport.get_extra_info("nothing", 7) == 7


# -- the connection block --------------------------------------------------------


async def test_leaving_open_connection_block_normally_sends_everything() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        async with compat.open_connection("127.0.0.1", port) as (_reader, writer):
            peer, _ = listener.accept()
            writer.write(b"q" * 500_000)
        with peer:
            peer.settimeout(10)
            assert receive_until_eof(peer) == b"q" * 500_000


async def test_exception_in_the_block_propagates_unchanged() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        error = KeyError("boom")
        with pytest.raises(KeyError) as caught:  # noqa: PT012
            async with compat.open_connection("127.0.0.1", port) as (_reader, writer):
                peer, _ = listener.accept()
                writer.write(b"dropped" * 1_000_000)
                raise error
        assert caught.value is error
        with peer:
            peer.settimeout(10)
            assert len(receive_until_eof(peer)) < 7_000_000


async def test_cancelling_the_flush_on_exit_closes_at_once() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        port = listener.getsockname()[1]
        with fail_after(5), move_on_after(0.2) as scope:
            async with compat.open_connection("127.0.0.1", port) as (_reader, writer):
                peer, _ = listener.accept()
                writer.write(b"s" * 10_000_000)
        assert scope.cancelled_caught
        assert writer.is_closing()
        peer.close()


# -- open_connection and open_unix_connection ------------------------------------


async def test_refused_connection_raises_connection_refused_error() -> None:
    port = free_port()
    with pytest.raises(ConnectionRefusedError) as caught:
        async with compat.open_connection("127.0.0.1", port):
            pass  # pragma: no cover
    assert isinstance(caught.value.__cause__, OSError)


async def test_open_connection_binds_local_addr() -> None:
    local_port = free_port()
    async with raw_peer(local_addr=("127.0.0.1", local_port)) as (_reader, writer, _):
        assert writer.get_extra_info("sockname") == ("127.0.0.1", local_port)


@contextmanager
def unanswered_and_served(port: int) -> Iterator[socket.socket]:
    """127.0.0.1:``port`` with a full backlog, where a connect waits unanswered,
    and a listener on 127.0.0.2:``port``, which is yielded."""
    with socket.socket() as full, socket.socket() as served:
        full.bind(("127.0.0.1", port))
        full.listen(0)
        queued = []
        try:
            for _ in range(2):  # fills the backlog of 0 (Linux takes one more)
                client = socket.socket()
                queued.append(client)
                client.setblocking(False)
                client.connect_ex(full.getsockname())
            served.bind(("127.0.0.2", port))
            served.listen()
            yield served
        finally:
            for client in queued:
                client.close()


@pytest.mark.skipif(sys.platform != "linux", reason="127.0.0.2 and full backlogs")
async def test_open_connection_tries_the_next_address_after_happy_eyeballs_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()

    async def two_addresses(host: str, port: int, **kwargs: Any) -> Any:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in ("127.0.0.1", "127.0.0.2")
        ]

    monkeypatch.setattr(anyio, "getaddrinfo", two_addresses)
    with unanswered_and_served(port) as served, fail_after(5):
        async with compat.open_connection(
            "race.test", port, happy_eyeballs_delay=0.1
        ) as (_, writer):
            assert writer.get_extra_info("peername") == ("127.0.0.2", port)
            served.accept()[0].close()


async def test_open_connection_over_a_connected_socket() -> None:
    async with serving(echo_until_eof) as port:
        sock = socket.create_connection(("127.0.0.1", port))
        async with compat.open_connection(sock=sock) as (reader, writer):
            writer.write(b"ping")
            writer.write_eof()
            assert await reader.read() == b"ping"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"server_hostname": "x"},
            "server_hostname is only meaningful with ssl",
            id="server_hostname-without-ssl",
        ),
        pytest.param(
            {"ssl_handshake_timeout": 1},
            "ssl_handshake_timeout is only meaningful with ssl",
            id="timeout-without-ssl",
        ),
        pytest.param({"limit": 0}, "Limit cannot be <= 0", id="limit-zero"),
        pytest.param(
            {"sock": "SOCK"},
            "host/port and sock can not be specified at the same time",
            id="host-and-sock",
        ),
        pytest.param(
            {"host": None, "port": None},
            "host and port was not specified and no sock specified",
            id="no-address",
        ),
        pytest.param(
            {"host": None, "port": None, "sock": "SOCK", "ssl": True},
            "You must set server_hostname when using ssl without a host",
            id="ssl-on-sock-without-server_hostname",
        ),
    ],
)
async def test_open_connection_rejects_what_asyncio_rejects(
    kwargs: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"host": "127.0.0.1", "port": 1, **kwargs}
    with socket.socket() as sock:
        if arguments.get("sock") == "SOCK":
            arguments["sock"] = sock
        with pytest.raises(ValueError, match=re.escape(message)):
            async with compat.open_connection(**arguments):  # type: ignore[arg-type]
                pass  # pragma: no cover


@needs_unix
async def test_open_unix_connection_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sock"
    async with (
        compat.start_unix_server(echo_until_eof, path),
        compat.open_unix_connection(path) as (reader, writer),
    ):
        writer.write(b"over unix")
        writer.write_eof()
        assert await reader.read() == b"over unix"


@needs_unix
async def test_open_unix_connection_to_a_missing_path_raises_file_not_found(
    tmp_path: Path,
) -> None:
    with pytest.raises(FileNotFoundError):
        async with compat.open_unix_connection(tmp_path / "missing"):
            pass  # pragma: no cover


@needs_unix
async def test_open_unix_connection_over_a_connected_socket(tmp_path: Path) -> None:
    path = tmp_path / "sock"
    async with compat.start_unix_server(echo_until_eof, path):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(os.fspath(path))
        async with compat.open_unix_connection(sock=sock) as (reader, writer):
            writer.write(b"ping")
            writer.write_eof()
            assert await reader.read() == b"ping"


# -- TLS -------------------------------------------------------------------------


@pytest.fixture
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    return context


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_tls_round_trip(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async with (
        serving(handle_echo, ssl=server_context) as port,
        compat.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost"
        ) as (reader, writer),
    ):
        writer.write(b"secret")
        await writer.drain()
        assert await reader.read(100) == b"secret"
        writer.close()
        await writer.wait_closed()


async def test_tls_checks_the_certificate_against_the_host_by_default(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async with serving(handle_echo, ssl=server_context) as port:
        with pytest.raises(ssl.SSLCertVerificationError):
            async with compat.open_connection("127.0.0.1", port, ssl=client_context):
                pass  # pragma: no cover


async def test_tls_ssl_true_uses_the_default_trust_store(
    server_context: ssl.SSLContext,
) -> None:
    async with serving(handle_echo, ssl=server_context) as port:
        with pytest.raises(ssl.SSLCertVerificationError, match=r"self.signed|unable"):
            async with compat.open_connection(
                "127.0.0.1", port, ssl=True, server_hostname="localhost"
            ):
                pass  # pragma: no cover


async def test_tls_handshake_timeout_raises_connection_aborted_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        with (
            fail_after(5),
            pytest.raises(ConnectionAbortedError, match=r"0\.1 seconds"),
        ):
            async with compat.open_connection(
                "127.0.0.1", port, ssl=True, ssl_handshake_timeout=0.1
            ):
                pass  # pragma: no cover


async def test_tls_peer_closing_during_the_handshake_raises_connection_reset() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        async def hang_up() -> None:
            await wait_all_tasks_blocked()
            peer, _ = listener.accept()
            peer.close()

        async with create_task_group() as tg:
            tg.start_soon(hang_up)
            with fail_after(5), pytest.raises(ConnectionResetError) as caught:
                async with compat.open_connection("127.0.0.1", port, ssl=True):
                    pass  # pragma: no cover
        assert isinstance(caught.value.__cause__, BrokenResourceError)


async def test_tls_failed_handshake_closes_only_that_connection(
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="drainpipe.compat")
    async with serving(handle_echo, ssl=server_context) as port:
        with socket.create_connection(("127.0.0.1", port)) as plain:
            plain.settimeout(10)
            plain.sendall(b"GET / HTTP/1.0\r\n\r\n")
            with suppress(ConnectionResetError):  # the server may reset it
                await anyio.to_thread.run_sync(receive_until_eof, plain)
        async with compat.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost"
        ) as (reader, writer):
            writer.write(b"still serving")
            assert await reader.read(100) == b"still serving"
    assert any(r.message == "SSL handshake failed" for r in caplog.records)


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the peer of non-blocking ``sock`` has closed the connection."""
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("end", ["close_clients", "abort_clients"])
async def test_server_ends_connections_still_in_their_tls_handshake(
    server_context: ssl.SSLContext, end: str
) -> None:
    # The client never starts its handshake: without close_clients() or
    # abort_clients() the server would wait for it for ssl_handshake_timeout.
    with fail_after(5):
        async with compat.start_server(
            handle_echo, "127.0.0.1", 0, ssl=server_context, ssl_handshake_timeout=60
        ) as server:
            address = server.sockets[0].getsockname()
            with socket.create_connection(address) as silent:
                silent.setblocking(False)
                # Again until the server has accepted the connection.
                while not closed_by_peer(silent):
                    getattr(server, end)()
                    await anyio.sleep(0.05)


async def test_tls_extra_info(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async with (
        serving(handle_echo, ssl=server_context) as port,
        compat.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost"
        ) as (_reader, writer),
    ):
        assert writer.get_extra_info("sslcontext") is client_context
        ssl_object = writer.get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLObject)
        assert ssl_object.server_hostname == "localhost"
        assert writer.get_extra_info("peercert")["subjectAltName"] == (
            ("DNS", "localhost"),
        )
        assert writer.get_extra_info("cipher") == ssl_object.cipher()
        assert writer.get_extra_info("compression") == ssl_object.compression()
        assert writer.get_extra_info("peername")[0] == "127.0.0.1"
        writer.write(b"x")


async def test_tls_writer_cannot_write_eof(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async with (
        serving(handle_echo, ssl=server_context) as port,
        compat.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost"
        ) as (reader, writer),
    ):
        assert not writer.can_write_eof()
        with pytest.raises(NotImplementedError):
            writer.write_eof()
        writer.write(b"usable")
        assert await reader.read(100) == b"usable"


@asynccontextmanager
async def tls_server_hanging_up(context: ssl.SSLContext) -> AsyncIterator[int]:
    """A TLS server that sends b"hello" and closes without close_notify, as many
    HTTPS servers do; yields its port."""

    async def hang_up(stream: SocketStream) -> None:
        tls = await TLSStream.wrap(
            stream, server_side=True, ssl_context=context, standard_compatible=False
        )
        await tls.send(b"hello")
        await tls.aclose()

    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        create_task_group() as tg,
    ):
        tg.start_soon(listener.serve, hang_up)
        yield listener.extra(SocketAttribute.local_port)
        tg.cancel_scope.cancel()


async def test_tls_peer_closing_without_close_notify_ends_the_stream(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async with (
        tls_server_hanging_up(server_context) as port,
        compat.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost"
        ) as (reader, writer),
    ):
        assert await reader.read() == b"hello"
        writer.close()
        await writer.wait_closed()


async def test_tls_close_after_the_peer_hung_up_without_close_notify_succeeds(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async with (
        tls_server_hanging_up(server_context) as port,
        compat.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost"
        ) as (reader, writer),
    ):
        assert await reader.readexactly(5) == b"hello"
        await anyio.sleep(0.05)  # the peer's hang-up arrives, unread
        writer.close()
        await writer.wait_closed()
        assert reader.exception() is None


@needs_unix
async def test_tls_over_unix_sockets(
    tmp_path: Path, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    path = tmp_path / "sock"
    async with (
        compat.start_unix_server(handle_echo, path, ssl=server_context),
        compat.open_unix_connection(
            path, ssl=client_context, server_hostname="localhost"
        ) as (reader, writer),
    ):
        writer.write(b"unix+tls")
        assert await reader.read(100) == b"unix+tls"


# -- servers ---------------------------------------------------------------------


async def test_server_sockets_are_the_listening_sockets() -> None:
    async with compat.start_server(handle_echo, "127.0.0.1", 0) as server:
        (sock,) = server.sockets
        host, port = sock.getsockname()
        assert host == "127.0.0.1"
        assert port > 0
        server.close()
        assert server.sockets == ()


@needs_ipv6
async def test_start_server_listens_on_every_host_given() -> None:
    async with compat.start_server(echo_until_eof, ["127.0.0.1", "::1"], 0) as server:
        addresses = [sock.getsockname()[:2] for sock in server.sockets]
        assert sorted(host for host, _ in addresses) == ["127.0.0.1", "::1"]
        for host, port in addresses:
            async with compat.open_connection(host, port) as (reader, writer):
                writer.write(b"%d" % port)
                writer.write_eof()
                assert await reader.read() == b"%d" % port


@pytest.mark.parametrize("keep_alive", [True, False, None])
async def test_start_server_keep_alive_reaches_the_connections(
    keep_alive: bool | None,
) -> None:
    options: list[bool] = []

    async def record(reader: compat.StreamReader, writer: compat.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        options.append(bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)))
        await echo_until_eof(reader, writer)

    async with compat.start_server(
        record, "127.0.0.1", 0, keep_alive=keep_alive
    ) as server:
        (sock,) = server.sockets
        assert bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)) is bool(
            keep_alive
        )
        async with compat.open_connection(*sock.getsockname()[:2]) as (reader, writer):
            writer.write_eof()
            assert await reader.read() == b""
    assert options == [bool(keep_alive)]


async def test_start_server_listens_once_on_a_host_given_twice() -> None:
    # As asyncio's: the addresses of all hosts are one set.
    async with compat.start_server(
        echo_until_eof, ["127.0.0.1", "127.0.0.1"], 0
    ) as server:
        assert len(server.sockets) == 1


@needs_ipv6
async def test_start_server_closes_its_listeners_if_a_later_host_fails() -> None:
    # The IPv4 socket is bound first (the addresses are tried in order), then the
    # IPv6 bind fails, so the first socket must be closed (an unclosed one fails
    # the test with a ResourceWarning).
    with socket.socket(socket.AF_INET6) as taken:
        taken.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
        taken.bind(("::1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            async with compat.start_server(
                handle_echo, ["127.0.0.1", "::1"], taken.getsockname()[1]
            ):
                pass  # pragma: no cover


async def test_start_server_closes_its_sockets_if_listen_fails() -> None:
    # Both bind (SO_REUSEADDR, nothing listens yet); the second listen() fails.
    port = free_port()
    with pytest.raises(OSError, match="in use"):
        async with compat.start_server(handle_echo, ["0.0.0.0", "127.0.0.1"], port):
            pass  # pragma: no cover
    gc.collect()  # an unclosed socket fails the test with a ResourceWarning
    with socket.create_server(("0.0.0.0", port)):
        pass  # the port is free again


async def test_start_server_on_a_bound_socket() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    async with (
        compat.start_server(echo_until_eof, sock=sock) as server,
        compat.open_connection("127.0.0.1", port) as (reader, writer),
    ):
        assert server.sockets[0].getsockname()[1] == port
        writer.write(b"ok")
        writer.write_eof()
        assert await reader.read() == b"ok"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({"ssl_handshake_timeout": 1}, ValueError, id="timeout-no-ssl"),
        pytest.param({"ssl": True}, TypeError, id="ssl-not-a-context"),
        pytest.param({"limit": -1}, ValueError, id="negative-limit"),
        pytest.param({"sock": "SOCK"}, ValueError, id="host-and-sock"),
    ],
)
async def test_start_server_rejects_what_asyncio_rejects(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    with socket.socket() as sock:
        if kwargs.get("sock") == "SOCK":
            kwargs = {**kwargs, "sock": sock}
        with pytest.raises(error):
            async with compat.start_server(handle_echo, "127.0.0.1", 0, **kwargs):  # type: ignore[arg-type]
                pass  # pragma: no cover


async def test_callback_exception_is_logged_and_the_server_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = ZeroDivisionError("callback bug")

    async def failing(reader: compat.StreamReader, writer: compat.StreamWriter) -> None:
        writer.write(b"partial")
        if await reader.read(4) == b"fail":
            raise error
        writer.write(b" and fine")

    async with serving(failing) as port:
        async with compat.open_connection("127.0.0.1", port) as (reader, writer):
            writer.write(b"fail")
            assert await reader.read() == b"partial"
        async with compat.open_connection("127.0.0.1", port) as (reader, writer):
            writer.write(b"good")
            assert await reader.read() == b"partial and fine"

    (record,) = [r for r in caplog.records if r.name == "drainpipe.compat"]
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith("Unhandled exception in client_connected_cb")
    assert record.exc_info is not None
    assert record.exc_info[1] is error


async def echo_a_byte(reader: compat.StreamReader, writer: compat.StreamWriter) -> None:
    writer.write(await reader.read(1))


def lowest_free_fd() -> int:
    fd = os.dup(0)
    os.close(fd)
    return fd


@pytest.mark.skipif(sys.platform == "win32", reason="no RLIMIT_NOFILE")
async def test_server_out_of_file_descriptors_logs_and_accepts_again_a_second_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    logged = anyio.Event()
    notify = logging.Handler()
    notify.emit = lambda record: logged.set()  # type: ignore[method-assign]
    logger = logging.getLogger("drainpipe.compat")
    async with serving(echo_a_byte) as port:
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"x")
            # No file descriptor left for accept(): it fails with EMFILE.
            logger.addHandler(notify)
            resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free_fd(), hard))
            try:
                with fail_after(5):
                    await logged.wait()
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
                logger.removeHandler(notify)
            failed = time.monotonic()
            client.settimeout(5)
            assert await anyio.to_thread.run_sync(client.recv, 1) == b"x"
            assert time.monotonic() - failed >= 0.9  # asyncio's retry delay: 1 s

    (record,) = caplog.records
    assert record.name == "drainpipe.compat"
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith("socket.accept() out of system resource")


class FailingListener(SocketListener):
    """``listener``, whose first accepts raise ``errors`` in turn."""

    def __init__(self, listener: SocketListener, errors: list[Exception]) -> None:
        self.listener = listener
        self.errors = errors

    async def accept(self) -> SocketStream:
        await anyio.lowlevel.checkpoint()
        if self.errors:
            raise self.errors.pop(0)
        return await self.listener.accept()

    async def aclose(self) -> None:
        await self.listener.aclose()

    @property
    def _raw_socket(self) -> socket.socket:
        return self.listener.extra(SocketAttribute.raw_socket)


async def test_server_closed_as_a_connection_is_accepted_does_not_serve_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: list[object] = []
    servers: list[compat.Server] = []
    from_socket = SocketListener.from_socket

    class ClosingListener(FailingListener):
        async def accept(self) -> SocketStream:
            stream = await super().accept()
            servers[0].close()  # in the same iteration as the accept
            return stream

    async def closing(sock: socket.socket) -> SocketListener:
        return ClosingListener(await from_socket(sock), [])

    async def serve(reader: compat.StreamReader, writer: compat.StreamWriter) -> None:
        served.append(writer)  # pragma: no cover - must not run

    monkeypatch.setattr(SocketListener, "from_socket", closing)
    with fail_after(5):
        async with compat.start_server(serve, "127.0.0.1", 0) as server:
            servers.append(server)
            address = server.sockets[0].getsockname()
            with socket.create_connection(address) as client:
                client.settimeout(5)
                with suppress(ConnectionResetError):
                    assert await anyio.to_thread.run_sync(client.recv, 1) == b""
    assert served == []


async def test_server_accept_errors_are_logged_and_never_end_the_server(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    aborted = BrokenResourceError()
    aborted.__cause__ = ConnectionAbortedError(errno.ECONNABORTED, "aborted")
    other = OSError(errno.EPERM, "not permitted")
    from_socket = SocketListener.from_socket

    async def failing(sock: socket.socket) -> SocketListener:
        return FailingListener(await from_socket(sock), [aborted, other])

    monkeypatch.setattr(SocketListener, "from_socket", failing)
    async with serving(echo_a_byte) as port:
        started = time.monotonic()
        async with compat.open_connection("127.0.0.1", port) as (reader, writer):
            writer.write(b"y")
            assert await reader.read() == b"y"
        # A client gone while queued is skipped at once, as asyncio skips it;
        # another error is retried after asyncio's delay.
        assert 0.9 <= time.monotonic() - started < 1.9

    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "Error accepting a connection"
    assert record.exc_info is not None
    assert record.exc_info[1] is other


async def test_connection_is_flushed_and_closed_when_the_callback_returns() -> None:
    async def blurt(reader: compat.StreamReader, writer: compat.StreamWriter) -> None:
        writer.write(b"m" * 2_000_000)

    async with (
        serving(blurt) as port,
        compat.open_connection("127.0.0.1", port) as (reader, _writer),
    ):
        with fail_after(10):
            assert await reader.read() == b"m" * 2_000_000


async def test_start_server_limit_bounds_the_readers_lines() -> None:
    async def line(reader: compat.StreamReader, writer: compat.StreamWriter) -> None:
        try:
            await reader.readline()
        except ValueError:
            writer.write(b"too long")

    async with (
        serving(line, limit=4) as port,
        compat.open_connection("127.0.0.1", port) as (reader, writer),
    ):
        writer.write(b"0123456789\n")
        assert await reader.read() == b"too long"


async def test_serve_forever_returns_after_close() -> None:
    async with compat.start_server(handle_echo, "127.0.0.1", 0) as server:
        async with create_task_group() as tg:
            tg.start_soon(server.serve_forever)
            await wait_all_tasks_blocked()
            assert server.is_serving()
            server.close()
        assert not server.is_serving()


async def test_serve_forever_twice_raises_runtime_error() -> None:
    async with (
        compat.start_server(handle_echo, "127.0.0.1", 0) as server,
        create_task_group() as tg,
    ):
        tg.start_soon(server.serve_forever)
        await wait_all_tasks_blocked()
        with pytest.raises(RuntimeError, match="already being awaited"):
            await server.serve_forever()
        server.close()


async def test_serve_forever_on_a_closed_server_raises_runtime_error() -> None:
    async with compat.start_server(handle_echo, "127.0.0.1", 0) as server:
        server.close()
        with pytest.raises(RuntimeError, match="is closed"):
            await server.serve_forever()


async def test_cancelled_serve_forever_closes_the_server() -> None:
    async with compat.start_server(handle_echo, "127.0.0.1", 0) as server:
        with move_on_after(0.05):
            await server.serve_forever()
        assert server.sockets == ()
        assert not server.is_serving()


async def test_start_serving_false_defers_accepting() -> None:
    called = anyio.Event()

    async def handler(reader: compat.StreamReader, writer: compat.StreamWriter) -> None:
        called.set()

    async with compat.start_server(
        handler, "127.0.0.1", 0, start_serving=False
    ) as server:
        assert not server.is_serving()
        port = server.sockets[0].getsockname()[1]
        # As asyncio's: the socket listens only once the server starts serving.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port)).close()
        await server.start_serving()
        assert server.is_serving()
        with socket.create_connection(("127.0.0.1", port)), fail_after(5):
            await called.wait()


async def test_close_stops_accepting() -> None:
    async with compat.start_server(handle_echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(ConnectionRefusedError):
            async with compat.open_connection("127.0.0.1", port):
                pass  # pragma: no cover


async def test_wait_closed_waits_for_open_connections() -> None:
    entered = anyio.Event()
    release = anyio.Event()

    async def hold(reader: compat.StreamReader, writer: compat.StreamWriter) -> None:
        entered.set()
        await release.wait()

    async with (
        compat.start_server(hold, "127.0.0.1", 0) as server,
        compat.open_connection("127.0.0.1", server.sockets[0].getsockname()[1]),
    ):
        with fail_after(5):
            await entered.wait()
        server.close()
        with move_on_after(0.1) as scope:
            await server.wait_closed()
        assert scope.cancelled_caught
        release.set()
        with fail_after(5):
            await server.wait_closed()


async def test_close_clients_closes_open_connections() -> None:
    async def wait_for_eof(
        reader: compat.StreamReader, writer: compat.StreamWriter
    ) -> None:
        writer.write(b"hi")
        await reader.read()

    async with (
        compat.start_server(wait_for_eof, "127.0.0.1", 0) as server,
        compat.open_connection("127.0.0.1", server.sockets[0].getsockname()[1]) as (
            reader,
            _writer,
        ),
    ):
        assert await reader.readexactly(2) == b"hi"
        server.close_clients()
        with fail_after(5):
            assert await reader.read() == b""


async def test_abort_clients_drops_unsent_bytes() -> None:
    flooding = anyio.Event()

    async def flood(reader: compat.StreamReader, writer: compat.StreamWriter) -> None:
        # Small kernel buffers on both ends, so most of the flood is still ours
        # to drop when the abort comes (loopback buffers can hold megabytes).
        writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER
        )
        writer.write(b"f" * 8_000_000)
        flooding.set()
        await reader.read()

    async with compat.start_server(flood, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        with socket.socket() as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
            client.connect(("127.0.0.1", port))
            client.settimeout(10)
            with fail_after(5):
                await flooding.wait()
            server.abort_clients()
            received = await anyio.to_thread.run_sync(receive_until_eof, client)
        assert len(received) < 8_000_000


async def test_abort_clients_reaches_connections_flushing_after_their_callback() -> (
    None
):
    returned = anyio.Event()

    async def flood_and_return(
        reader: compat.StreamReader, writer: compat.StreamWriter
    ) -> None:
        # Small kernel buffers on both ends, so most of the flood is still ours
        # to drop when the abort comes (loopback buffers can hold megabytes).
        writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER
        )
        writer.write(b"f" * 8_000_000)
        returned.set()

    async with compat.start_server(flood_and_return, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        with socket.socket() as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
            client.connect(("127.0.0.1", port))
            client.settimeout(10)
            with fail_after(5):
                await returned.wait()
            await wait_all_tasks_blocked()  # the closing flush waits for the client
            server.abort_clients()
            received = await anyio.to_thread.run_sync(receive_until_eof, client)
        assert len(received) < 8_000_000


async def test_server_async_with_closes_and_waits_like_asyncio() -> None:
    async with compat.start_server(handle_echo, "127.0.0.1", 0) as server:
        async with server as entered:
            assert entered is server
        assert server.sockets == ()
        with fail_after(1):
            await server.wait_closed()


async def test_leaving_the_server_block_waits_for_running_callbacks() -> None:
    entered = anyio.Event()
    finished: list[bytes] = []

    async def slow(reader: compat.StreamReader, writer: compat.StreamWriter) -> None:
        entered.set()
        finished.append(await reader.read())

    with socket.socket() as client:

        async def hang_up_later() -> None:
            await anyio.sleep(0.1)
            client.shutdown(socket.SHUT_WR)

        async with create_task_group() as tg:
            async with compat.start_server(slow, "127.0.0.1", 0) as server:
                client.connect(server.sockets[0].getsockname())
                client.sendall(b"late")
                with fail_after(5):
                    await entered.wait()
                tg.start_soon(hang_up_later)
            assert finished == [b"late"]


async def test_exception_in_the_server_block_cancels_connections() -> None:
    entered = anyio.Event()
    cancelled = anyio.Event()

    async def hold(reader: compat.StreamReader, writer: compat.StreamWriter) -> None:
        entered.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    error = LookupError("stop")
    with socket.socket() as client, pytest.raises(LookupError) as caught:  # noqa: PT012
        async with compat.start_server(hold, "127.0.0.1", 0) as server:
            client.connect(server.sockets[0].getsockname())
            with fail_after(5):
                await entered.wait()
            raise error
    assert caught.value is error
    assert cancelled.is_set()


@needs_unix
async def test_start_unix_server_removes_its_socket_file_on_close(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sock"
    async with compat.start_unix_server(handle_echo, path) as server:
        assert path.exists()
        server.close()
        await server.wait_closed()
        assert not path.exists()


@needs_unix
async def test_start_unix_server_keeps_the_socket_file_without_cleanup(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sock"
    async with compat.start_unix_server(handle_echo, path, cleanup_socket=False):
        pass
    assert path.exists()


@needs_unix
async def test_start_unix_server_leaves_a_replaced_socket_file_alone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sock"
    async with compat.start_unix_server(handle_echo, path):
        path.unlink()
        path.write_text("someone else's")
    assert path.read_text() == "someone else's"


@needs_unix
@pytest.mark.parametrize("cleanup_socket", [True, False])
async def test_start_unix_server_on_a_bound_socket_removes_its_file_on_close(
    tmp_path: Path, cleanup_socket: bool
) -> None:
    path = tmp_path / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.fspath(path))
    async with compat.start_unix_server(
        handle_echo, sock=sock, cleanup_socket=cleanup_socket
    ):
        assert path.exists()
    assert path.exists() is not cleanup_socket


@needs_unix
async def test_start_unix_server_takes_a_bytes_path(tmp_path: Path) -> None:
    path = tmp_path / "sock"
    async with (
        compat.start_unix_server(echo_until_eof, os.fsencode(path)),
        compat.open_unix_connection(path) as (reader, writer),
    ):
        writer.write(b"bytes")
        writer.write_eof()
        assert await reader.read() == b"bytes"
    assert not path.exists()


@needs_unix
async def test_start_unix_server_logs_an_uncheckable_path_and_closes_its_socket(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # As asyncio: the stale-file check's error is logged, then bind() fails.
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with pytest.raises(NotADirectoryError):
        async with compat.start_unix_server(handle_echo, not_a_directory / "sock"):
            pass  # pragma: no cover
    gc.collect()  # an unclosed socket fails the test with a ResourceWarning

    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith("Unable to check or remove stale UNIX")


@needs_unix
async def test_start_unix_server_on_a_bound_socket(tmp_path: Path) -> None:
    path = tmp_path / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.fspath(path))
    async with (
        compat.start_unix_server(echo_until_eof, sock=sock),
        compat.open_unix_connection(path) as (reader, writer),
    ):
        writer.write(b"bound")
        writer.write_eof()
        assert await reader.read() == b"bound"


@pytest.mark.parametrize("host", [None, ""])
async def test_an_empty_or_no_host_listens_on_every_interface(host: str | None) -> None:
    async with compat.start_server(handle_echo, host, 0) as server:
        addresses = {sock.getsockname()[0] for sock in server.sockets}
        assert addresses & {"0.0.0.0", "::"}
        port = server.sockets[0].getsockname()[1]
        async with compat.open_connection("127.0.0.1", port) as (reader, writer):
            writer.write(b"hello\n")
            await writer.drain()
            assert await reader.readline() == b"hello\n"


async def test_open_connection_cancelled_as_it_connects_closes_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A deadline that lands in the step where an attempt connects: the connected
    # stream must be closed, not leaked (the cancel is made right after the real
    # connect returns, so that it lands in that step every time).
    real_connect = compat._client._connect_tcp
    connected: list[SocketStream] = []
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        with anyio.CancelScope() as outer:

            async def connect_then_cancel(*args: Any) -> SocketStream:
                stream = await real_connect(*args)
                connected.append(stream)
                outer.cancel()
                return stream

            monkeypatch.setattr(compat._client, "_connect_tcp", connect_then_cancel)
            async with compat.open_connection("127.0.0.1", port):
                pytest.fail("connected although cancelled")  # pragma: no cover

    assert outer.cancelled_caught
    (stream,) = connected
    with pytest.raises(anyio.ClosedResourceError):
        await stream.send(b"leaked")
