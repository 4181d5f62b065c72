"""A deadline around a producer loop lands on every backend.

AnyIO's asyncio backend delivers a cancellation only to a task waiting on a
future that is not done yet. A producer whose every pause is resolved by the flush
task before the delivery is retried would never be caught waiting, so drainpipe
checks for a pending cancellation after every wait that actually happened. Each
test runs a producer loop under a deadline against a consumer that keeps up (so
that pauses end quickly) or a slow one, and counts the pauses the producer still
waited through after the deadline had passed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import pytest
from anyio import (
    CancelScope,
    create_memory_object_stream,
    create_task_group,
    current_time,
    fail_after,
    move_on_after,
)

from drainpipe import BufferedByteSendStream, compat
from drainpipe.testing import ScriptedSendStream, settle
from tests.test_transports import read_all, tcp_pair

if TYPE_CHECKING:
    from anyio.abc import TaskStatus
    from typing_extensions import Buffer

pytestmark = pytest.mark.anyio

DEADLINE = 0.3
#: The producer gives up by itself after this long, failing the test.
LOOP_BOUND = 10.0
#: Pauses the producer may still wait through once the deadline has passed (the
#: one it is in when the deadline passes, and one for scheduling slack).
PAUSES_AFTER_DEADLINE = 2
MESSAGE = b"x" * 100
FORMS = ["write+drain", "send"]
SCOPES = ["move_on_after", "fail_after"]


@dataclass
class Pauses:
    """How many of the producer's calls waited in a pause, in all and after the
    deadline."""

    total: int = 0
    late: int = 0

    def count(self, paused: bool, deadline: float) -> None:
        if paused:
            self.total += 1
            self.late += current_time() >= deadline


async def produce(out: BufferedByteSendStream, form: str, pauses: Pauses) -> None:
    """Write ``MESSAGE`` in a loop (``write()`` + ``drain()``, or ``send()``) until
    cancelled, counting the calls that wait in a pause."""
    deadline = current_time() + DEADLINE
    give_up = deadline + LOOP_BOUND
    while current_time() < give_up:
        if form == "write+drain":
            out.write(MESSAGE)
            pauses.count(out.paused, deadline)
            await out.drain()
        else:
            pauses.count(out.paused, deadline)
            await out.send(MESSAGE)
    pytest.fail(f"the producer was still running {LOOP_BOUND} s after its deadline")


async def produce_until_deadline(
    out: BufferedByteSendStream, form: str, scope: str
) -> None:
    pauses = Pauses()
    if scope == "move_on_after":
        with move_on_after(DEADLINE) as cancel_scope:
            await produce(out, form, pauses)
        assert cancel_scope.cancelled_caught
    else:
        with pytest.raises(TimeoutError), fail_after(DEADLINE):
            await produce(out, form, pauses)

    assert pauses.total > 0, "the producer never paused: this proves nothing"
    assert pauses.late <= PAUSES_AFTER_DEADLINE


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("form", FORMS)
async def test_a_deadline_stops_a_producer_writing_to_a_fast_tcp_peer(
    form: str, scope: str
) -> None:
    async with tcp_pair() as (client, server), create_task_group() as tg:
        tg.start_soon(read_all, server, hashlib.sha256())
        async with BufferedByteSendStream(client) as out:
            await produce_until_deadline(out, form, scope)
            await out.send_eof()


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("form", FORMS)
async def test_a_deadline_stops_a_producer_writing_to_a_memory_stream(
    form: str, scope: str
) -> None:
    send, receive = create_memory_object_stream[bytes](1)

    async def consume() -> None:
        async with receive:
            async for _ in receive:
                pass

    async with create_task_group() as tg:
        tg.start_soon(consume)
        async with BufferedByteSendStream(send) as out:
            await produce_until_deadline(out, form, scope)


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("form", FORMS)
async def test_a_deadline_stops_a_producer_writing_to_a_slow_peer(
    form: str, scope: str
) -> None:
    async with tcp_pair() as (client, server):

        async def consume_slowly() -> None:
            while True:
                try:
                    await server.receive(4096)
                except anyio.EndOfStream:
                    return
                await anyio.sleep(0.001)

        async with create_task_group() as tg:
            tg.start_soon(consume_slowly)
            async with BufferedByteSendStream(client, high_water=8192) as out:
                await produce_until_deadline(out, form, scope)
                await out.send_eof()


# -- drainpipe.compat ---------------------------------------------------------------


async def test_a_deadline_stops_a_compat_writer_loop_to_a_fast_peer() -> None:
    async def read_everything(
        reader: compat.StreamReader, writer: compat.StreamWriter
    ) -> None:
        while await reader.read(65536):
            pass

    async with compat.start_server(read_everything, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with compat.open_connection("127.0.0.1", port) as (_, writer):
            out = writer.send_stream
            pauses = Pauses()
            deadline = current_time() + DEADLINE
            with move_on_after(DEADLINE) as scope:
                while current_time() < deadline + LOOP_BOUND:
                    writer.write(MESSAGE)
                    pauses.count(out.paused, deadline)
                    await writer.drain()
            assert scope.cancelled_caught
            assert pauses.total > 0
            assert pauses.late <= PAUSES_AFTER_DEADLINE


async def test_a_deadline_stops_a_compat_reader_loop_from_a_fast_peer() -> None:
    async def write_for_ever(
        reader: compat.StreamReader, writer: compat.StreamWriter
    ) -> None:
        with move_on_after(LOOP_BOUND):
            while True:
                writer.write(MESSAGE * 100)
                await writer.drain()

    async with compat.start_server(write_for_ever, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with compat.open_connection("127.0.0.1", port) as (reader, writer):
            received = 0
            with fail_after(DEADLINE + LOOP_BOUND / 2):
                with move_on_after(DEADLINE) as scope:
                    while True:
                        received += len(await reader.read(100))
            assert scope.cancelled_caught
            assert received > 0
            writer.transport.abort()
        server.close()


# -- a cancellation arriving as the wait ends ---------------------------------------


class SignallingStream(ScriptedSendStream):
    """Sets :attr:`accepted` each time its ``send()`` accepts a piece."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted = anyio.Event()

    async def send(self, item: Buffer) -> None:
        await super().send(item)
        self.accepted.set()


async def call(out: BufferedByteSendStream, method: str) -> None:
    if method == "send":
        await out.send(b"y")
    else:
        await getattr(out, method)()


@pytest.mark.parametrize("method", ["drain", "send", "flush", "send_eof", "aclose"])
async def test_a_cancellation_arriving_as_the_wait_ends_is_raised(
    method: str, anyio_backend_name: str
) -> None:
    # The canceller is woken inside the flush task's send(), just before the flush
    # task ends the waiter's wait. On asyncio it runs first (tasks run in the order
    # they were woken) and cancels a waiter whose wait is over but which has not
    # run yet; trio runs the two in random order. The call must raise the
    # cancellation, with nothing enqueued and the stream still open.
    wire = SignallingStream()
    wire.block()
    raced = False
    returned = False
    async with BufferedByteSendStream(wire, high_water=10) as out:
        out.write(b"x" * 20)
        async with create_task_group() as tg:

            async def waiter(*, task_status: TaskStatus[CancelScope]) -> None:
                nonlocal returned
                with CancelScope() as scope:
                    task_status.started(scope)
                    await call(out, method)
                    returned = True

            async def canceller() -> None:
                nonlocal raced
                await wire.accepted.wait()
                # the waiter still counts as waiting until it has run
                raced = out.statistics().tasks_waiting == 1
                scope.cancel()

            scope = await tg.start(waiter)
            tg.start_soon(canceller)
            await settle()
            wire.unblock()
        if not raced:
            assert anyio_backend_name == "trio"  # the waiter ran first
            return

        assert scope.cancelled_caught
        assert not returned
        stats = out.statistics()
        assert (stats.bytes_written, stats.tasks_waiting) == (20, 0)
        if method != "aclose":
            out.write(b"after")  # still open, and nothing else was enqueued
    assert wire.data == b"x" * 20 + (b"after" if method != "aclose" else b"")
