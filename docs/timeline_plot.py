"""Draw ``docs/_static/timeline.png``: a producer, the buffer and the flush task.

A real run on asyncio: a producer calls ``out.write(message)`` then
``await out.drain()`` for 40 messages of 16 KiB, as fast as it can, into a
``BufferedByteSendStream`` (``high_water`` 64 KiB, ``low_water`` 16 KiB) whose
wrapped stream is a link that takes 1 ms to accept every 16 KiB. Every ``write()``,
every ``drain()`` that waited, every ``send()`` of the flush task and
``buffered_bytes`` after each of them are recorded and drawn on one time axis.

Run it (matplotlib needed, ``make plots``) and commit the PNG it writes::

    python docs/timeline_plot.py
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import matplotlib.pyplot as plt
from anyio.abc import ByteSendStream

from drainpipe import BufferedByteSendStream

OUTPUT = Path(__file__).parent / "_static" / "timeline.png"
MESSAGES = 40
MESSAGE = 16 * 1024  # pieces this large leave one by one, not merged
HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024
SECONDS_PER_BYTE = 0.001 / MESSAGE  # the link accepts 16 KiB per millisecond


@dataclass
class Trace:
    start: float = field(default_factory=time.perf_counter)
    writes: list[float] = field(default_factory=list)
    drains: list[tuple[float, float]] = field(default_factory=list)
    sends: list[tuple[float, float, int]] = field(default_factory=list)
    buffered: list[tuple[float, int]] = field(default_factory=list)

    def now(self) -> float:
        return (time.perf_counter() - self.start) * 1000


class SlowLink(ByteSendStream):
    """Accepts every piece after a time proportional to its size."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.out: BufferedByteSendStream | None = None

    async def send(self, item: bytes) -> None:
        began = self.trace.now()
        await anyio.sleep(len(item) * SECONDS_PER_BYTE)
        now = self.trace.now()
        self.trace.sends.append((began, now, len(item)))
        if self.out is not None:  # what buffered_bytes is once this piece counts
            self.trace.buffered.append((now, self.out.buffered_bytes - len(item)))

    async def send_eof(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


async def run() -> Trace:
    trace = Trace()
    link = SlowLink(trace)
    async with BufferedByteSendStream(
        link, high_water=HIGH_WATER, low_water=LOW_WATER
    ) as out:
        link.out = out

        def sample() -> None:
            trace.buffered.append((trace.now(), out.buffered_bytes))

        async def sampler() -> None:
            while True:
                sample()
                await anyio.sleep(0.0002)

        async with anyio.create_task_group() as tg:
            tg.start_soon(sampler)
            for _ in range(MESSAGES):
                out.write(bytes(MESSAGE))
                trace.writes.append(trace.now())
                sample()
                if out.paused:
                    began = trace.now()
                    await out.drain()
                    trace.drains.append((began, trace.now()))
                    sample()
                else:
                    await out.drain()  # returns at once: not paused
            await out.flush()
            sample()
            tg.cancel_scope.cancel()
    trace.buffered.sort()
    return trace


def draw(trace: Trace) -> None:
    figure, (producer, buffer, flusher) = plt.subplots(
        3,
        1,
        figsize=(10, 5.2),
        sharex=True,
        gridspec_kw={"height_ratios": [1, 2.2, 1]},
    )
    producer.vlines(trace.writes, 0.15, 0.85, color="#2b6cb0", linewidth=0.8)
    producer.broken_barh(
        [(began, ended - began) for began, ended in trace.drains],
        (0.15, 0.7),
        color="#f6ad55",
        alpha=0.7,
        label="await drain() waits (paused)",
    )
    producer.set_yticks([])
    producer.set_ylabel("producer", rotation=0, ha="right", va="center")
    producer.legend(loc="upper right", fontsize=8)
    producer.set_title(
        f"write() + await drain() of {MESSAGES} x {MESSAGE // 1024} KiB "
        f"into a link that accepts 16 KiB/ms (blue ticks: write(), instant)",
        fontsize=10,
    )

    times = [moment for moment, _ in trace.buffered]
    sizes = [size / 1024 for _, size in trace.buffered]
    buffer.step(times, sizes, where="post", color="#2b6cb0", linewidth=1.2)
    buffer.axhline(HIGH_WATER / 1024, color="#c53030", linestyle="--", linewidth=1)
    buffer.axhline(LOW_WATER / 1024, color="#c53030", linestyle=":", linewidth=1)
    for mark, label in (
        (HIGH_WATER, "high_water: pause"),
        (LOW_WATER, "low_water: resume"),
    ):
        buffer.text(
            trace.buffered[-1][0] * 0.8,
            mark / 1024 + 3,
            label,
            color="#c53030",
            fontsize=8,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
        )
    buffer.set_ylabel("buffered_bytes\n(KiB)")
    buffer.set_ylim(0, (HIGH_WATER + 2 * MESSAGE) / 1024)

    flusher.broken_barh(
        [(began, ended - began) for began, ended, _ in trace.sends],
        (0.15, 0.7),
        color="#68d391",
        edgecolor="#276749",
        label="wrapped stream's send(): one per coalesced piece",
    )
    flusher.set_yticks([])
    flusher.set_ylabel("flush task", rotation=0, ha="right", va="center")
    flusher.set_xlabel("time (ms)")
    flusher.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(OUTPUT, dpi=110)


def main() -> None:
    trace = anyio.run(run)
    draw(trace)
    print(
        f"{len(trace.writes)} writes, {len(trace.drains)} drains that waited, "
        f"{len(trace.sends)} sends of the flush task -> {OUTPUT}"
    )


if __name__ == "__main__":
    main()
