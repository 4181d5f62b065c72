"""Relay lines from one peer to another: the classic back-pressure loop.

The relay reads lines from the first peer and writes each one, wrapped in
``<response>…</response>``, to the second peer through a
:class:`~drainpipe.BufferedByteSendStream`, then awaits ``drain()``::

    out.write(b"<response>" + line + b"</response>\\n")
    await out.drain()

``write()`` never waits; ``drain()`` waits only while the relay holds more than
``high_water`` bytes that the second peer has not taken. While it waits, the relay
does not read from the first peer, whose data then backs up in the socket buffers
until the first peer's own sends wait too. A slow second peer slows the first one
down, and the relay's memory stays bounded however fast the first peer is.

Here peer 1 sends lines as fast as it can and peer 2 reads them slowly; the output
shows that peer 1 finished only about as fast as peer 2 read, and how full the
relay's buffer got. Run it with::

    python examples/relay.py        # on asyncio
    python examples/relay.py trio   # on trio
"""

from __future__ import annotations

import socket
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from anyio.abc import SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream

from drainpipe import BufferedByteSendStream

if TYPE_CHECKING:
    from anyio import TypedAttributeProvider
    from anyio.abc import AnyByteReceiveStream, SocketStream

#: the longest line the relay accepts, newline excluded
MAX_LINE = 64 * 1024
#: kernel socket buffers are kept small so the back-pressure shows in userspace
SOCKET_BUFFER = 32 * 1024


@dataclass(frozen=True)
class RelayResult:
    #: lines relayed
    lines: int
    #: the most bytes the relay held at once (``buffered_bytes`` after a write)
    peak_buffered: int


async def relay(
    source: AnyByteReceiveStream, out: BufferedByteSendStream
) -> RelayResult:
    """Relay every line of ``source`` to ``out`` wrapped in ``<response>`` tags,
    until ``source`` ends; a last line without a newline is relayed too."""
    lines = BufferedByteReceiveStream(source)
    count = peak = 0
    at_end = False
    while not at_end:
        try:
            line = await lines.receive_until(b"\n", MAX_LINE)
        except anyio.IncompleteRead:  # the first peer closed its side...
            line, at_end = lines.buffer, True  # ...maybe after a line without "\n"
            if not line:
                break

        out.write(b"<response>" + line + b"</response>\n")
        count += 1
        peak = max(peak, out.buffered_bytes)
        await out.drain()  # the second peer is slow? stop reading from the first

    return RelayResult(lines=count, peak_buffered=peak)


def make_lines(count: int, size: int = 100) -> list[bytes]:
    """``count`` distinct lines of ``size`` bytes, newline included."""
    return [
        b"line %08d " % number + b"." * (size - 15) + b"\n" for number in range(count)
    ]


def shrink_buffers(stream: SocketStream) -> None:
    raw = stream.extra(SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)


async def connect_both(
    peer1: TypedAttributeProvider, peer2: TypedAttributeProvider
) -> tuple[SocketStream, SocketStream]:
    """Connect to both peers' listeners, like socat, and return (from peer 1, to
    peer 2), their socket buffers shrunk.

    (Accepted connections would do as well on trio, but on asyncio AnyIO reads an
    accepted connection into memory, unbounded, until the first receive() call.)
    """
    to_peer2 = await anyio.connect_tcp(
        "127.0.0.1", peer2.extra(SocketAttribute.local_port)
    )
    from_peer1 = await anyio.connect_tcp(
        "127.0.0.1", peer1.extra(SocketAttribute.local_port)
    )
    shrink_buffers(to_peer2)
    shrink_buffers(from_peer1)
    return from_peer1, to_peer2


@dataclass(frozen=True)
class Report:
    relay: RelayResult
    high_water: int
    #: seconds from the start until peer 1 had sent its last line
    peer1_seconds: float
    #: seconds from the start until peer 2 had read the last response
    peer2_seconds: float
    #: bytes peer 2 had yet to read when peer 1 was done: all that was buffered
    peer1_lead: int


async def main(
    lines: int = 20_000,
    *,
    high_water: int = 64 * 1024,
    read_size: int = 4096,
    read_pause: float = 0.001,
) -> Report:
    """Peer 1 -> relay -> peer 2, where peer 2 reads ``read_size`` bytes then
    sleeps ``read_pause`` seconds; check that peer 2 got every line, wrapped."""
    sent = make_lines(lines)
    expected = b"".join(b"<response>" + line[:-1] + b"</response>\n" for line in sent)
    received = bytearray()
    peer1_seconds = peer2_seconds = 0.0
    peer1_lead = 0
    peer1_done = anyio.Event()
    peer2_done = anyio.Event()

    async def peer1(stream: SocketStream) -> None:
        """Send every line as fast as the relay takes them."""
        nonlocal peer1_seconds, peer1_lead
        shrink_buffers(stream)
        async with BufferedByteSendStream(stream) as out:
            for line in sent:
                await out.send(line)  # waits while the relay is not reading
        peer1_seconds = time.perf_counter() - started
        peer1_lead = len(expected) - len(received)
        peer1_done.set()

    async def peer2(stream: SocketStream) -> None:
        """Read slowly until the relay closes the connection."""
        nonlocal peer2_seconds
        shrink_buffers(stream)
        async with stream:
            while True:
                try:
                    received.extend(await stream.receive(read_size))
                except anyio.EndOfStream:
                    break
                await anyio.sleep(read_pause)
        peer2_seconds = time.perf_counter() - started
        peer2_done.set()

    peer1_listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    peer2_listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    started = time.perf_counter()
    async with peer1_listener, peer2_listener, anyio.create_task_group() as tg:
        tg.start_soon(peer1_listener.serve, peer1)
        tg.start_soon(peer2_listener.serve, peer2)
        from_peer1, to_peer2 = await connect_both(peer1_listener, peer2_listener)
        async with (
            from_peer1,
            BufferedByteSendStream(to_peer2, high_water=high_water) as out,
        ):
            result = await relay(from_peer1, out)
        # leaving the block flushed the rest and closed the connection to peer 2
        await peer1_done.wait()
        await peer2_done.wait()
        tg.cancel_scope.cancel()

    if bytes(received) != expected:
        raise RuntimeError("peer 2 did not receive every line, wrapped, in order")

    report = Report(result, high_water, peer1_seconds, peer2_seconds, peer1_lead)
    print(
        f"peer 1 sent {lines} lines ({len(expected) // 1024} KiB) in "
        f"{report.peer1_seconds:.2f} s, paced by peer 2, which read "
        f"{read_size} bytes every {read_pause * 1000:g} ms:\n"
        f"when peer 1 was done, peer 2 had only {report.peer1_lead // 1024} KiB "
        f"left to read, and was done at {report.peer2_seconds:.2f} s.\n"
        f"The relay held at most {result.peak_buffered} bytes "
        f"(high_water {high_water})."
    )
    return report


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
