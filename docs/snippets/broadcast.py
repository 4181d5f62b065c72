"""Broadcast with slow-subscriber eviction: publish() never waits for anyone."""

import math

import anyio
import anyio.abc
from anyio.abc import AnyByteSendStream
from anyio.lowlevel import checkpoint

from drainpipe import BufferedByteSendStream


class Hub:
    def __init__(self, high_water: int = 64 * 1024) -> None:
        self.high_water = high_water
        self.evicted = 0
        self._subscribers: dict[BufferedByteSendStream, anyio.CancelScope] = {}
        self._closed = anyio.Event()

    def publish(self, message: bytes) -> None:
        for out in list(self._subscribers):
            self._send_or_evict(out, message)

    def _send_or_evict(self, out: BufferedByteSendStream, message: bytes) -> None:
        try:
            out.send_nowait(message)
        except anyio.WouldBlock:  # more than high_water behind: evict
            self.evicted += 1
            self._subscribers.pop(out).cancel()  # its serve() drops the backlog

    async def serve(
        self,
        stream: AnyByteSendStream,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve one subscriber (a listener's handler) until close() or eviction."""
        with anyio.CancelScope() as scope:
            async with BufferedByteSendStream(
                stream, high_water=self.high_water
            ) as out:
                self._subscribers[out] = scope
                task_status.started()
                await self._closed.wait()
            # closed normally: leaving the block sent the backlog

    def close(self) -> None:
        self._subscribers.clear()
        self._closed.set()


async def main() -> None:
    """A subscriber that reads everything and one that never reads."""
    hub = Hub()
    fast_send, fast_receive = anyio.create_memory_object_stream[bytes](math.inf)
    slow_send, slow_receive = anyio.create_memory_object_stream[bytes]()
    messages = [b"%099d\n" % number for number in range(2000)]
    async with fast_receive, slow_receive:
        async with anyio.create_task_group() as tg:
            await tg.start(hub.serve, fast_send)
            await tg.start(hub.serve, slow_send)
            for message in messages:
                hub.publish(message)
                await checkpoint()  # let the flush tasks run
            hub.close()

        assert hub.evicted == 1
        assert b"".join([piece async for piece in fast_receive]) == b"".join(messages)


if __name__ == "__main__":
    anyio.run(main)
