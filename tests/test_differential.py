"""drainpipe.compat against asyncio's own streams, with asyncio as the oracle.

Each scenario is written once against ``tests.differential.Api`` and run twice: on
asyncio's streams on a fresh standard event loop, and on ``drainpipe.compat`` under
the test's backend; the two results must be equal. The reader is compared over
Hypothesis-drawn byte feeds, chunkings and operations, exactly (asyncio's
``StreamReader`` fed one chunk whenever a read waits, ``compat.StreamReader`` pulling
the same chunks from a memory stream) and over real TCP (for the results that do not
depend on chunking). The writer and transport, resets and half-closes, server set-up
and connection errors are single scenarios.

A difference that stays is listed in ``DOCUMENTED`` with its reason, and the test
asserts that it is still there and still only there (the rest of the result must
match), so that a fix shows up as a failure asking to update the porting page. With
``DRAINPIPE_DIFFERENTIAL_REPORT=FILE`` the figures of each backend's run (examples
compared per scenario, the documented differences) are merged into that JSON file;
``make plots`` writes ``docs/_static/differential.json``, which the porting page
shows through ``docs/differential_table.py``.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import os
import socket
import ssl
import stat
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.differential import (
    Api,
    call,
    describe,
    outcome,
    port_of,
    run_on_asyncio,
    run_on_compat,
)
from tests.network import free_port, has_ipv6

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator, Sequence

READER_EXAMPLES = 200
TCP_EXAMPLES = 25


# -- comparing and counting ------------------------------------------------------


class Difference(NamedTuple):
    """A difference that stays: the result keys where compat differs, and why."""

    keys: tuple[str, ...]
    reason: str
    #: the first Python whose asyncio differs (None: every one)
    since: tuple[int, int] | None = None
    #: the first Python whose asyncio behaves as compat does (None: none yet)
    until: tuple[int, int] | None = None

    def applies(self) -> bool:
        version = sys.version_info[:2]
        return (self.since is None or version >= self.since) and (
            self.until is None or version < self.until
        )


#: Scenario -> the difference that stays (see docs/porting.md, "Differences from
#: asyncio").
DOCUMENTED: dict[str, Difference] = {
    "write after a reset": Difference(
        ("write",),
        "write() raises the connection error once the connection is lost; asyncio "
        "drops the data (and logs a warning after five such writes)",
    ),
    "public names of the reader and writer": Difference(
        (
            "StreamReader.feed_data",
            "StreamReader.feed_eof",
            "StreamReader.set_exception",
            "StreamReader.set_transport",
            "StreamReader: more names",
            "StreamWriter.start_tls",
            "StreamWriter: more names",
        ),
        "the reader pulls from its stream, so it has no feed_data(), feed_eof(), "
        "set_exception() or set_transport() (give it a memory object stream to "
        "feed) and has receive_stream, that stream; the writer has no start_tls() "
        "(Python 3.11; wrap the stream in anyio.streams.tls.TLSStream instead) and "
        "has send_stream, the BufferedByteSendStream underneath",
    ),
    "public names of the write transport": Difference(
        ("WriteTransport.get_protocol", "WriteTransport.set_protocol"),
        "the write transport has no get_protocol() or set_protocol(): there is no "
        "protocol",
    ),
    "public names of the server": Difference(
        ("Server.get_loop",),
        "Server has no get_loop(): there is no asyncio event loop on trio",
    ),
    "server keep_alive": Difference(
        ("keep_alive=True", "keep_alive=False"),
        "start_server() takes keep_alive on every Python; asyncio from 3.13 on",
        until=(3, 13),
    ),
    "server names of newer Pythons": Difference(
        ("close_clients", "abort_clients"),
        "Server has close_clients() and abort_clients() on every Python; asyncio "
        "from 3.13 on",
        until=(3, 13),
    ),
    "ssl_shutdown_timeout": Difference(
        ("start_server", "open_connection"),
        "ssl_shutdown_timeout (Python 3.11) is not accepted (TypeError): the closing "
        "TLS handshake is bounded by send_timeout, or by a cancel scope around the "
        "block; before 3.11 both refuse it, asyncio naming its event loop's method",
    ),
    "TLS peer closes, then wait_closed() without close()": Difference(
        ("is_closing",),
        "over TLS the peer's end of stream closes the connection, as asyncio's does "
        "from Python 3.11 on (before, its TLS transport stays open)",
        until=(3, 11),
    ),
    "client options": Difference(
        ("interleave",),
        "interleave (and all_errors, Python 3.12) are not accepted (TypeError): the "
        "addresses of a host are tried one at a time, or raced with "
        "happy_eyeballs_delay",
    ),
    "server argument errors": Difference(
        ("limit 0",),
        "start_server(limit=0) raises ValueError at once; asyncio's starts serving "
        "and fails every connection, since it makes each reader only then",
    ),
    "write after write_eof": Difference(
        ("writelines",),
        "writelines() after write_eof() raises RuntimeError naming writelines(), "
        "as asyncio does from Python 3.12 on (before, it joins the items and "
        "names write())",
        until=(3, 12),
    ),
    "UNIX server on a socket": Difference(
        ("file after close",),
        "the file of the socket given as sock is removed when the server closes, as "
        "asyncio does from Python 3.13 on (cleanup_socket=True)",
        until=(3, 13),
    ),
    "UNIX server removes its socket file": Difference(
        ("file after close",),
        "the socket file is removed when the server closes, as asyncio does from "
        "Python 3.13 on (cleanup_socket=True)",
        until=(3, 13),
    ),
}

#: (backend, scenario) -> examples compared in this run.
COMPARED: Counter[tuple[str, str]] = Counter()


def compare(
    name: str,
    scenario: Callable[[Api], Coroutine[Any, Any, dict[str, Any]]],
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    expected = run_on_asyncio(scenario)
    actual = run_on_compat(scenario, anyio_backend)
    COMPARED[backend_id(anyio_backend), name] += 1
    assert set(actual) == set(expected)
    documented = DOCUMENTED.get(name)
    if documented is None or not documented.applies():
        assert actual == expected
        return

    for key in expected:
        if key in documented.keys:
            assert actual[key] != expected[key], f"{name}: {key} now matches asyncio"
        else:
            assert actual[key] == expected[key], key


def backend_id(anyio_backend: tuple[str, dict[str, Any]]) -> str:
    backend, options = anyio_backend
    return "asyncio+uvloop" if options.get("use_uvloop") else backend


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    """Merge this run's figures into ``$DRAINPIPE_DIFFERENTIAL_REPORT``."""
    yield
    path = os.environ.get("DRAINPIPE_DIFFERENTIAL_REPORT")
    if not path:
        return
    target = Path(path)
    merged = json.loads(target.read_text()) if target.exists() else {}
    runs = merged.setdefault("runs", {})
    for (backend, name), count in sorted(COMPARED.items()):
        runs.setdefault(backend, {})[name] = count
    merged["python"] = ".".join(map(str, sys.version_info[:2]))
    merged["scenarios"] = scenario_names()
    merged["differences"] = documented_differences()
    target.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")


# -- the reader over fed chunks: exact ---------------------------------------------

SEPARATORS: list[Any] = [b"\n", b"b", b"ab", b"\nb", b"aaa"]
if sys.version_info >= (3, 13):  # asyncio takes a tuple of separators from 3.13
    SEPARATORS += [(b"\n", b"ab"), (b"aaa", b"b\n")]

reader_operations = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.integers(-1, 9)),
        st.tuples(st.just("readline")),
        st.tuples(st.just("readuntil"), st.sampled_from(SEPARATORS)),
        st.tuples(st.just("readexactly"), st.integers(-1, 9)),
        st.tuples(st.just("__anext__")),
        st.tuples(st.just("at_eof")),
    ),
    min_size=1,
    max_size=8,
)
byte_chunks = st.lists(
    st.binary(min_size=1, max_size=8).map(
        lambda data: bytes(b"ab\n"[byte % 3] for byte in data)
    ),
    max_size=6,
)


async def read_fed_chunks(
    api: Api, chunks: Sequence[bytes], limit: int, operations: Sequence[Any]
) -> dict[str, Any]:
    reader = api.fed_reader(chunks, limit)
    results: list[Any] = []
    for name, *args in operations:
        if name == "at_eof":
            results.append(reader.at_eof())
        else:
            results.append(await outcome(getattr(reader, name)(*args)))
    return {"results": results, "exception": reader.exception()}


@settings(
    max_examples=READER_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(chunks=byte_chunks, limit=st.integers(1, 10), operations=reader_operations)
def test_reads_of_fed_chunks_match_asyncio(
    anyio_backend: tuple[str, dict[str, Any]],
    chunks: list[bytes],
    limit: int,
    operations: list[Any],
) -> None:
    async def scenario(api: Api) -> dict[str, Any]:
        return await read_fed_chunks(api, chunks, limit, operations)

    compare("reads of fed chunks", scenario, anyio_backend)


# -- the reader over TCP: the results that do not depend on chunking ---------------

tcp_operations = st.lists(
    st.one_of(
        st.tuples(st.just("readline")),
        st.tuples(st.just("readuntil"), st.sampled_from(SEPARATORS)),
        st.tuples(st.just("readexactly"), st.integers(0, 300)),
    ),
    max_size=6,
)


@settings(
    max_examples=TCP_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    chunks=st.lists(
        st.binary(min_size=1, max_size=200).map(
            lambda data: bytes(b"ab\n"[byte % 3] for byte in data)
        ),
        max_size=5,
    ),
    operations=tcp_operations,
)
def test_reads_over_tcp_match_asyncio(
    anyio_backend: tuple[str, dict[str, Any]],
    chunks: list[bytes],
    operations: list[Any],
) -> None:
    async def scenario(api: Api) -> dict[str, Any]:
        async def send_chunks(reader: Any, writer: Any) -> None:
            for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
            writer.close()
            await writer.wait_closed()

        async with (
            api.serve(send_chunks, "127.0.0.1", 0) as server,
            api.connect("127.0.0.1", port_of(server)) as (reader, _),
        ):
            results = [
                await outcome(getattr(reader, name)(*args))
                for name, *args in operations
            ]
            rest = await outcome(reader.read())
            return {"results": results, "rest": rest, "at_eof": reader.at_eof()}

    compare("reads over TCP", scenario, anyio_backend)


# -- single scenarios ----------------------------------------------------------------

SCENARIOS: dict[str, Callable[[Api], Coroutine[Any, Any, dict[str, Any]]]] = {}


def scenario(
    name: str,
) -> Callable[
    [Callable[[Api], Coroutine[Any, Any, dict[str, Any]]]],
    Callable[[Api], Coroutine[Any, Any, dict[str, Any]]],
]:
    def register(
        function: Callable[[Api], Coroutine[Any, Any, dict[str, Any]]],
    ) -> Callable[[Api], Coroutine[Any, Any, dict[str, Any]]]:
        assert name not in SCENARIOS
        SCENARIOS[name] = function
        return function

    return register


async def close(writer: Any) -> None:
    writer.close()
    await writer.wait_closed()


async def read_all_then_close(reader: Any, writer: Any) -> None:
    await reader.read()
    await close(writer)


@scenario("limit edges")
async def limit_edges(api: Api) -> dict[str, Any]:
    async def reads(chunks: list[bytes], limit: int, *operations: Any) -> Any:
        return (await read_fed_chunks(api, chunks, limit, operations))["results"]

    return {
        "line of limit bytes": await reads([b"abcd\n"], 4, ("readline",)),
        "line of limit + 1": await reads(
            [b"abcde\n", b"x\n"], 4, ("readline",), ("readline",)
        ),
        "no separator within limit": await reads(
            [b"abcdefgh", b"ij\nk\n"], 4, ("readuntil", b"\n"), ("read", 20)
        ),
        "separator across chunks": await reads(
            [b"abc", b"a", b"a", b"ab"], 3, ("readuntil", b"aaa"), ("read", 9)
        ),
        "readline overrun, line complete": await reads(
            [b"abcdef\nxy\n"], 3, ("readline",), ("readline",)
        ),
        "readline overrun, line incomplete": await reads(
            [b"abcdef", b"g\nxy\n"], 3, ("readline",), ("readline",)
        ),
        "limit 0": call(api.fed_reader, [], 0),
        "limit -1": call(api.fed_reader, [], -1),
        "empty separator": await reads([b"a"], 4, ("readuntil", b"")),
        "readexactly(-1)": await reads([b"a"], 4, ("readexactly", -1)),
    }


@scenario("writer and transport surface")
async def writer_surface(api: Api) -> dict[str, Any]:
    async with api.connected_to(read_all_then_close) as (_, writer):
        transport = writer.transport
        result: dict[str, Any] = {
            "can_write_eof": writer.can_write_eof(),
            "is_closing": writer.is_closing(),
            "limits": transport.get_write_buffer_limits(),
            "size": transport.get_write_buffer_size(),
            "peername": writer.get_extra_info("peername")[0],
            "sockname": writer.get_extra_info("sockname")[0],
            "socket family": writer.get_extra_info("socket").family,
            "transport peername": transport.get_extra_info("peername")[0],
            "missing": writer.get_extra_info("missing", "default"),
            "write str": call(writer.write, "text"),
            "write empty": call(writer.write, b""),
            "writelines": call(writer.writelines, [b"a", bytearray(b"b")]),
            "writelines str": call(writer.writelines, ["text"]),
        }
        for name, arguments in {
            "high only": {"high": 100},
            "low only": {"low": 10},
            "both": {"high": 50, "low": 20},
            "defaults": {},
            "low above high": {"high": 1, "low": 2},
            "negative": {"high": -1},
        }.items():
            result[name] = (
                call(transport.set_write_buffer_limits, **arguments),
                transport.get_write_buffer_limits(),
            )
        result["drain"] = await outcome(writer.drain())
        return result


@scenario("write after write_eof")
async def write_after_write_eof(api: Api) -> dict[str, Any]:
    async with api.connected_to(read_all_then_close) as (reader, writer):
        writer.write_eof()
        return {
            "again": call(writer.write_eof),
            "write": call(writer.write, b"x"),
            "writelines": call(writer.writelines, [b"x"]),
            "write str": call(writer.write, "x"),
            "writelines str": call(writer.writelines, ["x"]),
            "writelines, a bad second item": call(writer.writelines, [b"x", 1]),
            "is_closing": writer.is_closing(),
            "peer closes": await outcome(reader.read()),
            "drain": await outcome(writer.drain()),
        }


@scenario("write and drain after close")
async def write_after_close(api: Api) -> dict[str, Any]:
    async with api.connected_to(read_all_then_close) as (_, writer):
        writer.close()
        return {
            "write": call(writer.write, b"x"),
            "write str": call(writer.write, "x"),
            "writelines str": call(writer.writelines, ["x"]),
            "write_eof": call(writer.write_eof),
            "is_closing": writer.is_closing(),
            "drain": await outcome(writer.drain()),
            "wait_closed": await outcome(writer.wait_closed()),
            "drain after wait_closed": await outcome(writer.drain()),
            "close again": call(writer.close),
        }


BIG = 16 * 1024 * 1024


@scenario("drain after close with 16 MiB buffered")
async def drain_after_close_buffered(api: Api) -> dict[str, Any]:
    received: list[int] = []

    async def count(reader: Any, writer: Any) -> None:
        received.append(len(await reader.read()))
        await close(writer)

    async with api.connected_to(count) as (_, writer):
        writer.write(b"x" * BIG)
        writer.close()
        drained = await outcome(writer.drain())
        closed = await outcome(writer.wait_closed())
        while not received:
            await api.sleep(0.01)
        return {"drain": drained, "wait_closed": closed, "received": received}


@scenario("write after close with bytes unsent")
async def write_after_close_unsent(api: Api) -> dict[str, Any]:
    async def sent_after_close(first: bytes, *, lines: bool = False) -> bool:
        received: list[bytes] = []

        async def read_all(reader: Any, writer: Any) -> None:
            received.append(await reader.read())
            await close(writer)

        async with api.connected_to(read_all) as (_, writer):
            if lines:
                writer.writelines([first[:2], first[2:]])
            else:
                writer.write(first)
            writer.close()
            writer.write(b"tail")
            await writer.wait_closed()
            while not received:
                await api.sleep(0.01)
        return received[0].endswith(b"tail")

    return {
        "16 MiB, then a write": await sent_after_close(b"x" * BIG),
        "4 bytes, then a write": await sent_after_close(b"kept"),
        "4 bytes by writelines(), then a write": await sent_after_close(
            b"kept", lines=True
        ),
    }


@scenario("abort with a buffer")
async def abort_with_buffer(api: Api) -> dict[str, Any]:
    release = api.event()

    async def stall(reader: Any, writer: Any) -> None:
        await release.wait()
        await close(writer)

    async with api.connected_to(stall) as (_, writer):
        writer.write(b"x" * BIG)
        writer.transport.abort()
        result = {
            "is_closing": writer.is_closing(),
            "drain": await outcome(writer.drain()),
            "wait_closed": await outcome(writer.wait_closed()),
            "write": call(writer.write, b"x"),
        }
        release.set()
        return result


async def reset_at_once(reader: Any, writer: Any) -> None:
    writer.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
    )
    writer.transport.abort()


@scenario("peer resets")
async def peer_resets(api: Api) -> dict[str, Any]:
    async with api.connected_to(reset_at_once) as (reader, writer):
        first = await outcome(reader.read())
        return {
            "read": first,
            "read again": await outcome(reader.read()),
            "readline": await outcome(reader.readline()),
            "exception": describe(reader.exception()),
            "at_eof": reader.at_eof(),
            "is_closing": writer.is_closing(),
            "drain": await outcome(writer.drain()),
        }


@scenario("peer resets, then wait_closed() without close()")
async def wait_closed_after_reset(api: Api) -> dict[str, Any]:
    async with api.connected_to(reset_at_once) as (reader, writer):
        read = await outcome(reader.read())
        return {
            "read": read,
            "wait_closed": await outcome(writer.wait_closed()),
            "is_closing": writer.is_closing(),
        }


@scenario("peer resets during a large write, then wait_closed() without close()")
async def wait_closed_after_reset_in_write(api: Api) -> dict[str, Any]:
    # A plain socket for the peer: it reads nothing (a server of either API would
    # read the bytes into its memory), so the write is still being sent.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        async with api.connect(*listener.getsockname()) as (reader, writer):
            peer, _ = listener.accept()
            writer.write(b"x" * BIG * 4)  # more than the socket takes
            await api.sleep(0.05)
            peer.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            peer.close()
            # Neither read nor drain(): only the sending side meets the reset.
            closed = await outcome(writer.wait_closed())
            return {
                "wait_closed": closed,
                "is_closing": writer.is_closing(),
                "exception": describe(reader.exception()),
                "read": await outcome(reader.read()),
            }


@scenario("write after a reset")
async def write_after_reset(api: Api) -> dict[str, Any]:
    async with api.connected_to(reset_at_once) as (reader, writer):
        await outcome(reader.read())
        result = {"first write": call(writer.write, b"x")}
        result["drain"] = await outcome(writer.drain())
        # Long enough for drainpipe's flush task to meet the reset.
        await api.sleep(0.1)
        result["write"] = call(writer.write, b"x")
        writer.close()
        result["wait_closed"] = await outcome(writer.wait_closed())
        return result


async def answer_the_request(reader: Any, writer: Any) -> None:
    """Read to the end of stream, then answer ``got `` and what was read."""
    request = await reader.read()
    writer.write(b"got " + request)
    await close(writer)


@scenario("half-close")
async def half_close(api: Api) -> dict[str, Any]:
    async with api.connected_to(answer_the_request) as (reader, writer):
        writer.write(b"ping")
        writer.write_eof()
        return {
            "can_write_eof": writer.can_write_eof(),
            "answer": await outcome(reader.read()),
            "at_eof": reader.at_eof(),
            "read at eof": await outcome(reader.read()),
            "readexactly at eof": await outcome(reader.readexactly(1)),
            "is_closing": writer.is_closing(),
            "drain": await outcome(writer.drain()),
        }


@scenario("write through the transport")
async def write_through_transport(api: Api) -> dict[str, Any]:
    async with api.connected_to(answer_the_request) as (reader, writer):
        transport = writer.transport
        return {
            "can_write_eof": transport.can_write_eof(),
            "write": call(transport.write, b"a"),
            "writelines": call(transport.writelines, [b"b", b"c"]),
            "write_eof": call(transport.write_eof),
            "write after write_eof": call(transport.write, b"d"),
            "answer": await outcome(reader.read()),
        }


@scenario("peer closes")
async def peer_closes(api: Api) -> dict[str, Any]:
    async def greet(reader: Any, writer: Any) -> None:
        writer.write(b"hello\nbye")
        await close(writer)

    async with api.connected_to(greet) as (reader, _):
        lines = [line async for line in reader]
        return {
            "lines": lines,
            "at_eof": reader.at_eof(),
            "readuntil": await outcome(reader.readuntil(b"\n")),
            "exception": reader.exception(),
        }


# -- TLS -------------------------------------------------------------------------------


@functools.cache
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context for "localhost" and a client context that trusts it."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return server_context, client_context


async def answer_a_line(reader: Any, writer: Any) -> None:
    line = await reader.readline()
    writer.write(line.upper())
    await close(writer)


@scenario("TLS")
async def tls(api: Api) -> dict[str, Any]:
    server_context, client_context = tls_contexts()
    async with (
        api.serve(answer_a_line, "127.0.0.1", 0, ssl=server_context) as server,
        api.connect(
            "127.0.0.1",
            port_of(server),
            ssl=client_context,
            server_hostname="localhost",
        ) as (reader, writer),
    ):
        writer.write(b"hello\n")
        return {
            "can_write_eof": writer.can_write_eof(),
            "write_eof": call(writer.write_eof),
            "sslcontext": writer.get_extra_info("sslcontext") is client_context,
            "peercert subject": writer.get_extra_info("peercert")["subject"],
            "cipher": len(writer.get_extra_info("cipher")),
            "compression": writer.get_extra_info("compression"),
            "ssl_object": type(writer.get_extra_info("ssl_object")).__name__,
            "answer": await outcome(reader.read()),
            "at_eof": reader.at_eof(),
        }


@scenario("TLS peer closes, then wait_closed() without close()")
async def tls_peer_closes(api: Api) -> dict[str, Any]:
    server_context, client_context = tls_contexts()
    handled: list[dict[str, Any]] = []

    async def read_then_wait_closed(reader: Any, writer: Any) -> None:
        read = await outcome(reader.read())
        handled.append(
            {
                "read": read,
                "wait_closed": await outcome(writer.wait_closed()),
                "is_closing": writer.is_closing(),
                "write": call(writer.write, b"late"),
            }
        )
        # Before Python 3.11 asyncio's TLS transport stays open (is_closing()
        # False) and warns when collected unclosed.
        writer.close()

    async with api.serve(
        read_then_wait_closed, "127.0.0.1", 0, ssl=server_context
    ) as server:
        async with api.connect(
            "127.0.0.1",
            port_of(server),
            ssl=client_context,
            server_hostname="localhost",
        ) as (_, writer):
            writer.write(b"hello")
        while not handled:
            await api.sleep(0.01)
    return handled[0]


@scenario("TLS handshake failures")
async def tls_handshake_failures(api: Api) -> dict[str, Any]:
    server_context, client_context = tls_contexts()

    async def connect(**kwargs: Any) -> None:
        async with api.connect("127.0.0.1", port_of(server), **kwargs):
            pass

    async with api.serve(answer_a_line, "127.0.0.1", 0, ssl=server_context) as server:
        return {
            "untrusted": await outcome(
                connect(ssl=ssl.create_default_context(), server_hostname="localhost")
            ),
            "wrong host name": await outcome(
                connect(ssl=client_context, server_hostname="example.com")
            ),
            "ssl without a host name": await outcome(connect(ssl=client_context)),
        }


# -- server set-up -------------------------------------------------------------------


async def served_addresses(api: Api, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The listening sockets' families and addresses, and an echo through each."""
    async with api.serve(read_all_then_close, *args, **kwargs) as server:
        sockets = sorted(
            (sock.family, sock.getsockname()[0]) for sock in server.sockets
        )
        for sock in server.sockets:
            host = "::1" if sock.family == socket.AF_INET6 else "127.0.0.1"
            async with api.connect(host, sock.getsockname()[1]) as (reader, writer):
                writer.write_eof()
                await reader.read()
        return {"sockets": sockets, "is_serving": server.is_serving()}


@scenario('server on host ""')
async def server_on_empty_host(api: Api) -> dict[str, Any]:
    return await served_addresses(api, "", 0)


@scenario("server on host None")
async def server_on_host_none(api: Api) -> dict[str, Any]:
    return await served_addresses(api, None, 0)


@scenario("server on host None, AF_INET")
async def server_on_ipv4_only(api: Api) -> dict[str, Any]:
    return await served_addresses(api, None, 0, family=socket.AF_INET)


@scenario("server on host None, AF_INET6")
async def server_on_ipv6_only(api: Api) -> dict[str, Any]:
    if not has_ipv6():
        return {"skipped": "no IPv6"}
    return await served_addresses(api, None, 0, family=socket.AF_INET6)


@scenario("server on a port given as a string")
async def server_on_port_string(api: Api) -> dict[str, Any]:
    return await served_addresses(api, ("127.0.0.1",), str(free_port()))


@scenario("server on a list of hosts")
async def server_on_host_list(api: Api) -> dict[str, Any]:
    hosts = ["127.0.0.1", "::1"] if has_ipv6() else ["127.0.0.1", "127.0.0.1"]
    return await served_addresses(api, hosts, 0)


@scenario("server on IPv6")
async def server_on_ipv6(api: Api) -> dict[str, Any]:
    if not has_ipv6():
        return {"skipped": "no IPv6"}
    async with api.serve(read_all_then_close, "::1", 0) as server:
        address = server.sockets[0].getsockname()
        async with api.connect("::1", address[1]) as (_, writer):
            return {
                "sockname": (address[0], len(address)),
                "peername": len(writer.get_extra_info("peername")),
            }


@scenario("server on a socket")
async def server_on_sock(api: Api) -> dict[str, Any]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    address = sock.getsockname()
    async with api.serve(read_all_then_close, sock=sock) as server:
        async with api.connect(*address) as (reader, writer):
            writer.write_eof()
            read = await outcome(reader.read())
        return {
            "same address": server.sockets[0].getsockname() == address,
            "read": read,
        }


@scenario("server with start_serving=False")
async def server_not_serving(api: Api) -> dict[str, Any]:
    served: list[bool] = []

    async def note(reader: Any, writer: Any) -> None:
        served.append(True)
        await close(writer)

    async def connect_and_read(port: int) -> bytes:
        async with api.connect("127.0.0.1", port) as (reader, _):
            data: bytes = await reader.read()
            return data

    async with api.serve(note, "127.0.0.1", 0, start_serving=False) as server:
        port = port_of(server)
        result: dict[str, Any] = {
            "is_serving": server.is_serving(),
            "connect before": await outcome(connect_and_read(port)),
            "served before": list(served),
        }
        await server.start_serving()
        result["is_serving after"] = server.is_serving()
        result["connect after"] = await outcome(connect_and_read(port))
        result["served after"] = list(served)
        result["start_serving again"] = await outcome(server.start_serving())
        server.close()
        result["after close"] = (server.is_serving(), server.sockets)
        result["close again"] = call(server.close)
        result["serve_forever"] = await outcome(server.serve_forever())
        return result


@scenario("server options")
async def server_options(api: Api) -> dict[str, Any]:
    """asyncio's create_server() keywords, each given, with its socket option."""
    result: dict[str, Any] = {}
    options: dict[str, dict[str, Any]] = {
        "reuse_address=True": {"reuse_address": True},
        "reuse_address=False": {"reuse_address": False},
        "reuse_port=True": {"reuse_port": True},
        "backlog=5": {"backlog": 5},
        "flags": {"flags": socket.AI_PASSIVE},
        "ssl_handshake_timeout without ssl": {"ssl_handshake_timeout": 1.0},
    }
    for name, arguments in options.items():
        try:
            async with api.serve(
                read_all_then_close, "127.0.0.1", 0, **arguments
            ) as server:
                sock = server.sockets[0]
                result[name] = (
                    "ok",
                    bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)),
                    bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)),
                )
        except Exception as exc:  # noqa: BLE001, PERF203 - the exception is the result
            result[name] = describe(exc)
    return result


@scenario("server keep_alive")
async def server_keep_alive(api: Api) -> dict[str, Any]:
    """keep_alive (Python 3.13): SO_KEEPALIVE on the listening socket."""
    result: dict[str, Any] = {}
    for value in (True, False):
        try:
            async with api.serve(
                read_all_then_close, "127.0.0.1", 0, keep_alive=value
            ) as server:
                sock = server.sockets[0]
                option = sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
                result[f"keep_alive={value}"] = ("ok", bool(option))
        except Exception as exc:  # noqa: BLE001, PERF203 - the exception is the result
            result[f"keep_alive={value}"] = describe(exc)
    return result


@scenario("ssl_shutdown_timeout")
async def ssl_shutdown_timeout(api: Api) -> dict[str, Any]:
    """Given without ssl: asyncio's ValueError (a TypeError before Python 3.11)."""

    async def start() -> None:
        async with api.serve(
            read_all_then_close, "127.0.0.1", 0, ssl_shutdown_timeout=1.0
        ):
            pass

    async def connect() -> None:
        async with api.connect("127.0.0.1", free_port(), ssl_shutdown_timeout=1.0):
            pass

    return {
        "start_server": await outcome(start()),
        "open_connection": await outcome(connect()),
    }


@scenario("server argument errors")
async def server_argument_errors(api: Api) -> dict[str, Any]:
    async def start(*args: Any, **kwargs: Any) -> None:
        async with api.serve(read_all_then_close, *args, **kwargs):
            pass

    with (
        socket.socket() as sock,
        socket.socket(type=socket.SOCK_DGRAM) as datagram_sock,
    ):
        datagram_sock.bind(("127.0.0.1", 0))
        return {
            "no host, port or sock": await outcome(start()),
            "host and sock": await outcome(start("127.0.0.1", sock=sock)),
            "datagram sock": await outcome(start(sock=datagram_sock)),
            "limit 0": await outcome(start("127.0.0.1", 0, limit=0)),
            "ssl not a context": await outcome(start("127.0.0.1", 0, ssl=True)),
        }


@scenario("server on an address of another host")
async def server_on_foreign_address(api: Api) -> dict[str, Any]:
    async def start() -> None:
        async with api.serve(read_all_then_close, "192.0.2.1", 0):  # TEST-NET-1
            pass

    return {"start": await outcome(start())}


@scenario("server on a port in use")
async def server_port_in_use(api: Api) -> dict[str, Any]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()

        async def start() -> None:
            async with api.serve(
                read_all_then_close, "127.0.0.1", taken.getsockname()[1]
            ):
                pass

        return {"start": await outcome(start())}


@scenario("UNIX server removes its socket file")
async def unix_server(api: Api) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "server.sock"
        async with api.serve_unix(read_all_then_close, path) as server:
            result: dict[str, Any] = {
                "sockname": server.sockets[0].getsockname() == str(path),
                "family": server.sockets[0].family,
            }
            async with api.connect_unix(path) as (reader, writer):
                writer.write_eof()
                result["read"] = await outcome(reader.read())
        result["file after close"] = path.exists()
        return result


@scenario("UNIX server on paths in use")
async def unix_paths_in_use(api: Api) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        stale = Path(directory) / "stale.sock"
        with socket.socket(socket.AF_UNIX) as old:
            old.bind(str(stale))
        async with api.serve_unix(read_all_then_close, str(stale)) as server:
            result["stale socket replaced"] = stat.S_ISSOCK(stale.stat().st_mode)
            async with api.connect_unix(str(stale)) as (reader, writer):
                writer.write_eof()
                result["read"] = await outcome(reader.read())
            server.close()

        regular = Path(directory) / "regular"
        regular.write_bytes(b"data")

        async def start() -> None:
            async with api.serve_unix(read_all_then_close, regular):
                pass

        result["regular file"] = await outcome(start())

        async def start_in_missing_directory() -> None:
            async with api.serve_unix(
                read_all_then_close, Path(directory) / "missing" / "s.sock"
            ):
                pass

        result["missing directory"] = await outcome(start_in_missing_directory())
        result["regular file kept"] = regular.read_bytes()
        return result


@scenario("UNIX server argument errors")
async def unix_server_argument_errors(api: Api) -> dict[str, Any]:
    async def start(*args: Any, **kwargs: Any) -> None:
        async with api.serve_unix(read_all_then_close, *args, **kwargs):
            pass

    with tempfile.TemporaryDirectory() as directory, socket.socket() as tcp_sock:
        tcp_sock.bind(("127.0.0.1", 0))
        return {
            "no path or sock": await outcome(start()),
            "path and sock": await outcome(
                start(str(Path(directory) / "s.sock"), sock=tcp_sock)
            ),
            "TCP sock": await outcome(start(sock=tcp_sock)),
        }


@scenario("UNIX server on an abstract socket")
async def unix_server_abstract(api: Api) -> dict[str, Any]:
    if not sys.platform.startswith("linux"):
        return {"skipped": "abstract sockets are Linux's"}
    path = f"\x00drainpipe-differential-{os.getpid()}-{api.name}"
    async with api.serve_unix(read_all_then_close, path) as server:
        async with api.connect_unix(path) as (reader, writer):
            writer.write(b"x")
            writer.write_eof()
            read = await outcome(reader.read())
        return {"sockname": server.sockets[0].getsockname() == path, "read": read}


@scenario("UNIX server on a socket")
async def unix_server_on_sock(api: Api) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        bound = Path(directory) / "bound.sock"
        path = str(bound)
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        async with api.serve_unix(read_all_then_close, sock=sock) as server:
            async with api.connect_unix(path) as (reader, writer):
                writer.write(b"x")
                writer.write_eof()
                read = await outcome(reader.read())
            sockname = server.sockets[0].getsockname() == path
        return {
            "sockname": sockname,
            "read": read,
            "file after close": bound.exists(),
        }


# -- connection errors ---------------------------------------------------------------


async def refused_on_two(api: Api) -> tuple[Any, ...]:
    """Connecting to a name with two addresses, both refusing."""

    async def connect() -> None:
        async with api.connect("two.test", free_port()):
            pass

    hosts = ["::1", "127.0.0.1"] if has_ipv6() else ["127.0.0.1", "127.0.0.2"]
    with api.resolving("two.test", hosts):
        return await outcome(connect())


async def refused_on_four(api: Api) -> tuple[Any, ...]:
    """A name with two addresses of each family, all refusing, tried with
    happy_eyeballs_delay: asyncio then lets the families take turns."""

    async def connect() -> None:
        async with api.connect("four.test", free_port(), happy_eyeballs_delay=0.05):
            pass

    hosts = (
        ["::1", "::ffff:127.0.0.2", "127.0.0.1", "127.0.0.3"]
        if has_ipv6()
        else ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
    )
    with api.resolving("four.test", hosts):
        return await outcome(connect())


async def local_addr_of_one_family(api: Api) -> tuple[Any, ...]:
    """A name with an address of each family and an IPv4 local_addr: the IPv6
    address fails without an attempt."""

    async def connect() -> None:
        async with api.connect("two.test", free_port(), local_addr=("127.0.0.1", 0)):
            pass

    hosts = ["::1", "127.0.0.1"] if has_ipv6() else ["127.0.0.1", "127.0.0.2"]
    with api.resolving("two.test", hosts):
        return await outcome(connect())


@scenario("connection errors")
async def connection_errors(api: Api) -> dict[str, Any]:
    async def connect(*args: Any, **kwargs: Any) -> None:
        async with api.connect(*args, **kwargs):
            pass

    async def connect_unix(*args: Any, **kwargs: Any) -> None:
        async with api.connect_unix(*args, **kwargs):
            pass

    with tempfile.TemporaryDirectory() as directory:
        missing = str(Path(directory) / "missing.sock")
        sock = socket.socket()
        datagram_sock = socket.socket(type=socket.SOCK_DGRAM)
        try:
            return {
                "refused": await outcome(connect("127.0.0.1", free_port())),
                "refused on localhost": await outcome(
                    connect("localhost", free_port())
                ),
                "refused on both addresses of a host": await refused_on_two(api),
                "refused on four addresses, happy eyeballs": await refused_on_four(api),
                "local_addr of one family": await local_addr_of_one_family(api),
                "unresolvable host": await outcome(connect("drainpipe.invalid", 80)),
                "unresolvable local_addr": await outcome(
                    connect("127.0.0.1", 1, local_addr=("127.0.0.1", "no such port"))
                ),
                "no host, port or sock": await outcome(connect()),
                "host and sock": await outcome(connect("127.0.0.1", 1, sock=sock)),
                "server_hostname without ssl": await outcome(
                    connect("127.0.0.1", 1, server_hostname="example.com")
                ),
                "ssl_handshake_timeout without ssl": await outcome(
                    connect("127.0.0.1", 1, ssl_handshake_timeout=1.0)
                ),
                "limit 0": await outcome(connect("127.0.0.1", 1, limit=0)),
                "family AF_INET, refused": await outcome(
                    connect("127.0.0.1", free_port(), family=socket.AF_INET)
                ),
                "family AF_INET6 for an IPv4 address": await outcome(
                    connect("127.0.0.1", free_port(), family=socket.AF_INET6)
                ),
                "UNIX path missing": await outcome(connect_unix(missing)),
                "UNIX no path or sock": await outcome(connect_unix()),
                "UNIX path and sock": await outcome(connect_unix(missing, sock=sock)),
                "UNIX over a TCP sock": await outcome(connect_unix(sock=sock)),
                "datagram sock": await outcome(connect(sock=datagram_sock)),
            }
        finally:
            sock.close()
            datagram_sock.close()


@scenario("client options")
async def client_options(api: Api) -> dict[str, Any]:
    """asyncio's create_connection() keywords, each given."""
    result: dict[str, Any] = {}
    async with api.serve(read_all_then_close, "127.0.0.1", 0) as server:
        port = port_of(server)
        options: dict[str, dict[str, Any]] = {
            "family AF_INET": {"family": socket.AF_INET},
            "proto": {"proto": socket.IPPROTO_TCP},
            "flags": {"flags": socket.AI_NUMERICHOST},
            "local_addr": {"local_addr": ("127.0.0.1", 0)},
            "happy_eyeballs_delay": {"happy_eyeballs_delay": 0.25},
            "interleave": {"interleave": 1},
        }
        for name, arguments in options.items():
            try:
                async with api.connect("127.0.0.1", port, **arguments) as (
                    reader,
                    writer,
                ):
                    writer.write_eof()
                    result[name] = (
                        "ok",
                        writer.get_extra_info("peername")[1] == port,
                        await reader.read(),
                    )
            except Exception as exc:  # noqa: BLE001, PERF203 - the result
                result[name] = describe(exc)
    return result


# -- the public surface ----------------------------------------------------------------


def public_names(obj: object) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


def surface(kind: str, obj: object, oracle: type) -> dict[str, Any]:
    """For each public name of asyncio's ``oracle`` class, whether ``obj`` has it,
    and the names ``obj`` has beyond them."""
    names = public_names(oracle)
    result: dict[str, Any] = {
        f"{kind}.{name}": hasattr(obj, name) for name in sorted(names)
    }
    result[f"{kind}: more names"] = sorted(public_names(obj) - names)
    return result


@scenario("public names of the reader and writer")
async def reader_and_writer_names(api: Api) -> dict[str, Any]:
    async with api.connected_to(read_all_then_close) as (reader, writer):
        return {
            **surface("StreamReader", reader, asyncio.StreamReader),
            **surface("StreamWriter", writer, asyncio.StreamWriter),
        }


@scenario("public names of the write transport")
async def write_transport_names(api: Api) -> dict[str, Any]:
    return surface("WriteTransport", api.write_transport_type, asyncio.WriteTransport)


@scenario("public names of the server")
async def server_names(api: Api) -> dict[str, Any]:
    async with api.serve(read_all_then_close, "127.0.0.1", 0) as server:
        result = surface("Server", server, asyncio.base_events.Server)
        more = result.pop("Server: more names")
        return {**result, "Server: more names": sorted(set(more) - NEWER_SERVER_NAMES)}


@scenario("server names of newer Pythons")
async def newer_server_names(api: Api) -> dict[str, Any]:
    async with api.serve(read_all_then_close, "127.0.0.1", 0) as server:
        return {name: hasattr(server, name) for name in sorted(NEWER_SERVER_NAMES)}


#: Server methods that asyncio has from Python 3.13 on, and compat on every Python.
NEWER_SERVER_NAMES = {"close_clients", "abort_clients"}


def documented_differences() -> dict[str, dict[str, Any]]:
    """The documented differences as the report records them."""
    return {
        name: {
            "reason": difference.reason,
            "since": None if difference.since is None else list(difference.since),
            "until": None if difference.until is None else list(difference.until),
        }
        for name, difference in sorted(DOCUMENTED.items())
    }


def test_every_documented_difference_names_a_scenario() -> None:
    assert set(DOCUMENTED) <= set(scenario_names())


def test_the_porting_page_shows_this_suite() -> None:
    """The committed report lists this suite's scenarios and differences, and the
    porting page shows the table made from it."""
    docs = Path(__file__).resolve().parent.parent / "docs"
    committed = json.loads((docs / "_static" / "differential.json").read_text())
    assert committed["scenarios"] == scenario_names()
    assert committed["differences"] == documented_differences()
    assert set(committed["runs"]) == {"asyncio", "asyncio+uvloop", "trio"}
    for run in committed["runs"].values():
        assert set(run) == set(scenario_names())
    spec = importlib.util.spec_from_file_location(
        "differential_table", docs / "differential_table.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (docs / "_static" / "differential.md").read_text() == module.table(committed)
    assert "{include} _static/differential.md" in (docs / "porting.md").read_text()


def scenario_names() -> list[str]:
    """Every scenario of the suite, the Hypothesis ones first."""
    return ["reads of fed chunks", "reads over TCP", *SCENARIOS]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_matches_asyncio(
    anyio_backend: tuple[str, dict[str, Any]], name: str
) -> None:
    if name.startswith("UNIX") and sys.platform == "win32":
        pytest.skip("no UNIX sockets")
    compare(name, SCENARIOS[name], anyio_backend)
