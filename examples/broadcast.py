"""A line-based publish/subscribe server over TCP that evicts subscribers who stop
reading.

The protocol has one command per line::

    SUBSCRIBE          answered with "SUBSCRIBED", then every published message
    PUBLISH <message>  sends "<message>" to every subscriber, one message per line

Every connection writes through its own :class:`~drainpipe.BufferedByteSendStream`.
Publishing calls ``send_nowait()`` on each subscriber's stream, so it never waits for
anyone. A subscriber that stops reading falls behind until its stream holds more
than ``high_water`` bytes; then ``send_nowait()`` raises :exc:`anyio.WouldBlock` and
the broker evicts it: its backlog is dropped and its connection closed, and the
other subscribers never notice.

The demo: a publisher, two subscribers that read every message, and one that stops
reading right after subscribing. The publisher sends a batch of messages, waits
until both readers have received it, and sends the next (so the readers never fall
behind themselves, and every run is the same). The stalled subscriber holds
nobody up; it is evicted once ``high_water`` bytes are waiting for it, on top of
what the kernel's socket buffers hold. Run it with::

    python examples/broadcast.py        # on asyncio
    python examples/broadcast.py trio   # on trio
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from anyio.abc import SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream

from drainpipe import BufferedByteSendStream

if TYPE_CHECKING:
    from anyio.abc import SocketStream

#: the longest command line the broker accepts, newline excluded
MAX_LINE = 64 * 1024
#: seconds a client that closed its side gets to read what is still queued for it
CLOSE_TIMEOUT = 5.0


class Broker:
    """Subscribers and their streams; :meth:`handle` serves one connection.

    A subscriber is evicted once its stream holds more than ``high_water`` bytes,
    which happens only after the kernel's send buffer for its connection is full:
    on Linux that buffer grows up to 4 MiB (``net.ipv4.tcp_wmem``), so a
    subscriber could be that much further behind. ``socket_send_buffer`` caps it
    (``SO_SNDBUF``; Linux doubles the value).

    :param high_water: the high watermark of each connection's stream
    :param socket_send_buffer: the kernel send buffer size for each connection, or
        ``None`` for the system's default
    """

    def __init__(
        self, *, high_water: int = 64 * 1024, socket_send_buffer: int | None = None
    ) -> None:
        self.high_water = high_water
        self.socket_send_buffer = socket_send_buffer
        #: subscribers evicted for falling behind, so far
        self.evicted = 0
        self._subscribers: dict[BufferedByteSendStream, anyio.CancelScope] = {}

    @property
    def subscribers(self) -> int:
        """The number of current subscribers."""
        return len(self._subscribers)

    def publish(self, message: bytes) -> int:
        """Queue ``message`` and a newline for every subscriber; never waits.

        A subscriber more than ``high_water`` bytes behind is evicted instead.
        Returns how many subscribers the message was queued for.
        """
        line = message + b"\n"
        for out in list(self._subscribers):
            self._send_or_evict(out, line)

        return len(self._subscribers)

    def _send_or_evict(self, out: BufferedByteSendStream, line: bytes) -> None:
        try:
            out.send_nowait(line)
        except anyio.WouldBlock:  # too far behind: evict it
            self.evicted += 1
            self._subscribers.pop(out).cancel()  # its handler drops the backlog
        except anyio.BrokenResourceError:  # its connection failed
            self._subscribers.pop(out).cancel()

    async def handle(self, client: SocketStream) -> None:
        """Serve one client (a listener's handler) until it leaves or is evicted."""
        if self.socket_send_buffer is not None:
            client.extra(SocketAttribute.raw_socket).setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, self.socket_send_buffer
            )

        commands = BufferedByteReceiveStream(client)
        with anyio.CancelScope() as scope:  # cancelled to evict the client
            try:
                async with BufferedByteSendStream(
                    client, high_water=self.high_water
                ) as out:
                    try:
                        await self._serve_commands(commands, out, scope)
                    finally:
                        self._subscribers.pop(out, None)
                    # The client closed its side. Leaving the block sends what is
                    # still queued for it, but a client that stopped reading must
                    # not keep this task forever.
                    scope.deadline = anyio.current_time() + CLOSE_TIMEOUT
            except anyio.BrokenResourceError:
                pass  # the connection failed: nothing is left to do

    async def _serve_commands(
        self,
        commands: BufferedByteReceiveStream,
        out: BufferedByteSendStream,
        scope: anyio.CancelScope,
    ) -> None:
        while True:
            try:
                line = await commands.receive_until(b"\n", MAX_LINE)
            except anyio.IncompleteRead:
                return  # the client closed its side
            except anyio.DelimiterNotFound:
                await out.send(b"ERROR line too long\n")
                return

            command, _, message = line.rstrip(b"\r").partition(b" ")
            if command == b"PUBLISH":
                self.publish(message)
            elif command == b"SUBSCRIBE":
                self._subscribers[out] = scope
                await out.send(b"SUBSCRIBED\n")
            else:
                await out.send(b"ERROR unknown command\n")


async def subscribe(port: int) -> BufferedByteReceiveStream:
    """Connect to the broker, subscribe, and return the stream of messages."""
    tcp = await anyio.connect_tcp("127.0.0.1", port)
    messages = BufferedByteReceiveStream(tcp)
    try:
        await tcp.send(b"SUBSCRIBE\n")
        reply = await messages.receive_until(b"\n", MAX_LINE)
    except BaseException:
        await anyio.aclose_forcefully(tcp)
        raise

    if reply != b"SUBSCRIBED":
        await tcp.aclose()
        raise RuntimeError(f"the broker refused: {reply!r}")

    return messages


@dataclass(frozen=True)
class Report:
    #: every message published, one per line, as a subscriber receives them
    published: bytes
    #: what each reading subscriber received
    delivered: list[bytes]
    #: what the stalled subscriber received (read after it was evicted)
    stalled: bytes
    #: subscribers evicted
    evicted: int
    #: bytes of messages published when the eviction was noticed (0: never)
    evicted_after: int


async def main(
    batches: int = 500,
    batch_size: int = 50,
    *,
    high_water: int = 64 * 1024,
    socket_send_buffer: int | None = 64 * 1024,
) -> Report:
    """Publish ``batches`` batches of ``batch_size`` messages to two reading
    subscribers and a stalled one; check that the readers got every message."""
    broker = Broker(high_water=high_water, socket_send_buffer=socket_send_buffer)
    published = bytearray()
    evicted_after = 0
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, broker.handle)
        port = listener.extra(SocketAttribute.local_port)
        stalled = await subscribe(port)  # ...and never reads again
        readers = [await subscribe(port), await subscribe(port)]
        delivered = [bytearray() for _ in readers]
        async with stalled, readers[0], readers[1]:
            async with await anyio.connect_tcp("127.0.0.1", port) as publisher:
                for batch in range(batches):
                    messages = [
                        b"batch %06d message %03d" % (batch, number)
                        for number in range(batch_size)
                    ]
                    await publisher.send(
                        b"".join(b"PUBLISH " + message + b"\n" for message in messages)
                    )
                    lines = b"".join(message + b"\n" for message in messages)
                    published += lines
                    # Both readers get the whole batch at once: the stalled
                    # subscriber, which has read nothing, delays nobody.
                    for reader, received in zip(readers, delivered, strict=True):
                        received += await reader.receive_exactly(len(lines))
                    if broker.evicted and not evicted_after:
                        evicted_after = len(published)

            # Evicted, the stalled subscriber finds its connection closed after
            # the part of its backlog that was already in the kernel's buffers.
            stalled_received = b""
            if broker.evicted:
                stalled_received = b"".join([chunk async for chunk in stalled])
        tg.cancel_scope.cancel()

    report = Report(
        bytes(published),
        [bytes(received) for received in delivered],
        stalled_received,
        broker.evicted,
        evicted_after,
    )
    if report.delivered != [report.published] * len(readers):
        raise RuntimeError("a reading subscriber missed messages")

    print(
        f"published {batches * batch_size} messages "
        f"({len(published) // 1024} KiB); both readers received every one.\n"
        f"The stalled subscriber was evicted {evicted_after // 1024} KiB into the "
        f"stream: {len(stalled_received) // 1024} KiB had reached its kernel "
        f"buffers, over {high_water // 1024} KiB (high_water) waited in its stream."
    )
    return report


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
