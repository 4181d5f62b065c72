"""Draw ``docs/_static/backpressure.png``: ``buffered_bytes`` over time, from a real run.

A producer calls ``await out.send(message)`` in a loop as fast as it can, over
loopback TCP, to a consumer thread that reads 16 KiB every 2 ms (about 8 MB/s). The
kernel's socket buffers are shrunk to 16 KiB so that the backlog builds up in the
``BufferedByteSendStream``, where it can be seen. A sampler task records
``buffered_bytes`` and ``paused`` every 0.2 ms, and the producer does after every
``send()``.

Run it (matplotlib needed) and commit the PNG it writes::

    python docs/backpressure_plot.py            # asyncio
    python docs/backpressure_plot.py trio       # or asyncio+uvloop, trio
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import anyio
import matplotlib.pyplot as plt
from anyio.abc import SocketAttribute

from drainpipe import BufferedByteSendStream

OUTPUT = Path(__file__).parent / "_static" / "backpressure.png"
MESSAGE = 20 * 1024  # above 16 KiB: every message leaves as a piece of its own
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
READ_SIZE = 16 * 1024
READ_INTERVAL = 0.002
KERNEL_BUFFER = 16 * 1024
DURATION = 0.3
SAMPLE_INTERVAL = 0.0002
RESUME_COLOR = "#2e8b57"

Sample = tuple[float, int, bool]


def consume_slowly(listener: socket.socket, received: list[int]) -> None:
    connection, _ = listener.accept()
    with connection:
        total = 0
        while chunk := connection.recv(READ_SIZE):
            total += len(chunk)
            time.sleep(READ_INTERVAL)
        received.append(total)


async def produce() -> tuple[list[Sample], int, int]:
    """Run the producer for DURATION; return the samples, bytes sent and received."""
    received: list[int] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, KERNEL_BUFFER)
        consumer = threading.Thread(target=consume_slowly, args=(listener, received))
        consumer.start()
        tcp = await anyio.connect_tcp("127.0.0.1", listener.getsockname()[1])
        raw = tcp.extra(SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_BUFFER)

        samples: list[Sample] = []
        message = bytes(MESSAGE)
        started = time.perf_counter()

        def record() -> None:
            now = time.perf_counter() - started
            samples.append((now, out.buffered_bytes, out.paused))

        async def sample() -> None:
            while True:
                record()
                await anyio.sleep(SAMPLE_INTERVAL)

        async with BufferedByteSendStream(
            tcp, high_water=HIGH_WATER, low_water=LOW_WATER
        ) as out:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sample)
                while time.perf_counter() - started < DURATION:
                    await out.send(message)
                    record()
                tg.cancel_scope.cancel()
            written = out.statistics().bytes_written

        await anyio.to_thread.run_sync(consumer.join)

    return samples, written, received[0]


def draw(samples: list[Sample], backend: str) -> None:
    times = [seconds * 1000 for seconds, _, _ in samples]
    kib = [buffered / 1024 for _, buffered, _ in samples]
    figure, axes = plt.subplots(figsize=(8, 3.6), dpi=150, layout="constrained")

    # Mark the moments the stream stops being paused: send() returns there.
    resumes = [
        milliseconds
        for milliseconds, (_, _, paused), (_, _, was_paused) in zip(
            times[1:], samples[1:], samples[:-1], strict=True
        )
        if was_paused and not paused
    ]
    axes.plot(
        resumes,
        [LOW_WATER / 1024] * len(resumes),
        "^",
        color=RESUME_COLOR,
        markersize=6,
        label="resumed: the waiting send() returns",
        zorder=3,
    )

    axes.step(times, kib, where="post", color="#1f5f99", lw=1.4, label="buffered_bytes")
    for level, name, style in (
        (HIGH_WATER, "high_water", "--"),
        (LOW_WATER, "low_water", ":"),
    ):
        axes.axhline(level / 1024, color="#b03a2e", ls=style, lw=1.2)
        axes.annotate(
            f"{name} ({level // 1024} KiB)",
            (times[-1], level / 1024),
            xytext=(-4, 4),
            textcoords="offset points",
            ha="right",
            color="#b03a2e",
            fontsize=9,
        )

    axes.set_xlim(0, times[-1])
    axes.set_ylim(0, (HIGH_WATER + 2 * MESSAGE) / 1024)
    axes.set_xlabel("time (ms)")
    axes.set_ylabel("buffered_bytes (KiB)")
    axes.set_title(
        f"await send() of {MESSAGE // 1024} KiB messages against a reader of "
        f"{READ_SIZE // 1024} KiB / {READ_INTERVAL * 1000:g} ms "
        f"(loopback TCP, {backend})",
        fontsize=10,
    )
    axes.legend(loc="lower left", fontsize=9, framealpha=0.9)
    axes.grid(alpha=0.3)
    figure.savefig(OUTPUT)


def main() -> None:
    backend = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    name, options = {
        "asyncio": ("asyncio", {}),
        "asyncio+uvloop": ("asyncio", {"use_uvloop": True}),
        "trio": ("trio", {}),
    }[backend]
    samples, written, received = anyio.run(
        produce, backend=name, backend_options=options
    )
    if received != written:
        raise RuntimeError(f"wrote {written} bytes but {received} arrived")

    peak = max(buffered for _, buffered, _ in samples)
    if peak > HIGH_WATER + MESSAGE:
        raise RuntimeError(f"buffered_bytes reached {peak}, over high_water + 1")

    draw(samples, backend)
    print(
        f"{len(samples)} samples over {samples[-1][0] * 1000:.0f} ms; "
        f"peak buffered_bytes {peak:,} (high_water {HIGH_WATER:,} + one message "
        f"{MESSAGE:,}); {received:,} bytes arrived; wrote {OUTPUT}"
    )


if __name__ == "__main__":
    main()
