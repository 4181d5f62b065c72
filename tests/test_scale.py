"""10,000 concurrent connections on one event loop, one in ten of whose peers stops
reading: the stalled ones break by ``send_timeout``, every other one delivers every
byte, memory stays bounded and nothing hangs.

The peers run in another process (tests/scale_peer.py), so that neither process
needs more than 10,000 file descriptors. With ``DRAINPIPE_SCALE_REPORT=FILE`` the
figures of each backend's run are merged into that JSON file (``make plots`` writes
``docs/_static/scale.json``, which the Guarantees page shows).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import socket
import struct
import sys
import time
from contextlib import suppress
from pathlib import Path

import anyio
import pytest
from anyio import BrokenResourceError, IncompleteRead, create_task_group, fail_after
from anyio.abc import SocketAttribute, SocketStream

from drainpipe import BufferedByteStream
from tests.test_load import BASE, ensure_file_descriptors

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(600)]

CONNECTIONS = 10_000
STALL_EVERY = 10
SIZE = 64 * 1024
SEND_TIMEOUT = 2.0
#: Small kernel buffers, so that a stalled peer's 64 KiB cannot all fit in them.
SEND_BUFFER = 4096
ROOT = Path(__file__).resolve().parent.parent


def payload(index: int) -> bytes:
    offset = index * 7919 % (len(BASE) - SIZE)
    return BASE[offset : offset + SIZE]


def reset_peak_rss() -> None:
    """Start measuring the peak RSS from now on, where Linux allows it."""
    with suppress(OSError):  # else the peak covers the whole process
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_bytes() -> int:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    (line,) = (line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def report(backend: str, figures: dict[str, object]) -> None:
    path = os.environ.get("DRAINPIPE_SCALE_REPORT")
    if not path:
        return
    target = Path(path)
    merged = json.loads(target.read_text()) if target.exists() else {}
    merged[backend] = figures
    target.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")


async def test_ten_thousand_connections_with_stalled_peers(
    anyio_backend: tuple[str, dict[str, object]],
) -> None:
    ensure_file_descriptors(CONNECTIONS + 256)
    delivered: set[int] = set()
    timed_out: set[int] = set()
    other_failures: dict[int, BaseException] = {}
    ended = 0
    all_ended = anyio.Event()

    async def serve(stream: SocketStream) -> None:
        nonlocal ended
        raw_socket = stream.extra(SocketAttribute.raw_socket)
        raw_socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        index = -1
        try:
            async with BufferedByteStream(stream, send_timeout=SEND_TIMEOUT) as conn:
                (index,) = struct.unpack("!I", await conn.receive_exactly(4))
                conn.write(payload(index))
                await conn.send_eof()
            delivered.add(index)
        except BrokenResourceError as exc:
            if isinstance(exc.__cause__, TimeoutError):
                timed_out.add(index)
            else:
                other_failures[index] = exc
        except (IncompleteRead, OSError) as exc:
            other_failures[index] = exc
        finally:
            ended += 1
            if ended == CONNECTIONS:
                all_ended.set()

    reset_peak_rss()
    started = time.perf_counter()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", backlog=4096)
    port = listener.extra(SocketAttribute.local_port)
    command = [
        sys.executable,
        "-m",
        "tests.scale_peer",
        str(port),
        str(CONNECTIONS),
        str(STALL_EVERY),
    ]
    async with listener, create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        async with await anyio.open_process(command, cwd=ROOT) as peers:
            assert peers.stdin is not None
            assert peers.stdout is not None
            with fail_after(300):
                await all_ended.wait()
                output = b""
                while not output.endswith(b"\n"):
                    output += await peers.stdout.receive()
            await peers.stdin.aclose()
        tg.cancel_scope.cancel()
    elapsed = time.perf_counter() - started

    stalled = set(range(0, CONNECTIONS, STALL_EVERY))
    readers = set(range(CONNECTIONS)) - stalled
    assert other_failures == {}
    assert timed_out == stalled
    assert delivered == readers
    received = {int(index): value for index, value in json.loads(output).items()}
    assert received.keys() == readers
    for index, (digest, size) in received.items():
        assert (digest, size) == (hashlib.sha256(payload(index)).hexdigest(), SIZE)

    peak = peak_rss_bytes()
    backend, options = anyio_backend
    name = "asyncio+uvloop" if options.get("use_uvloop") else backend
    print(
        f"\n{name}: {CONNECTIONS} connections, {len(stalled)} broken by "
        f"send_timeout, {len(readers)} x {SIZE} B delivered in {elapsed:.1f} s, "
        f"peak RSS {peak / 2**20:.0f} MiB"
    )
    report(
        name,
        {
            "connections": CONNECTIONS,
            "stalled_broken_by_send_timeout": len(stalled),
            "readers_delivered_every_byte": len(readers),
            "bytes_per_reader": SIZE,
            "send_timeout_s": SEND_TIMEOUT,
            "seconds": round(elapsed, 1),
            "peak_rss_mib": round(peak / 2**20),
        },
    )
    # Bounded: the payloads of every connection at once would be 625 MiB.
    assert peak < 1536 * 2**20
