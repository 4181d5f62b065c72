"""drainpipe's own cost per large message, without any I/O: the figures quoted in
the performance page.

The wrapped stream's ``send()`` here does what AnyIO's socket ``send()`` does around
its system call (a cancellation check, then one cancel-shielded trip through the
event loop) and nothing else. Sending 20,000 messages of 64 KiB through it directly
and through drainpipe's ``send()`` at ``high_water`` 4 and 16 times the message size
isolates what drainpipe adds: its per-message bookkeeping, and a pause and resume of
the producer every few messages. Medians of seven alternating rounds, on every
installed backend; ``--json`` also writes them for ``docs/figures.py``::

    python docs/overhead.py --json docs/_static/overhead.json
"""

from __future__ import annotations

import statistics
import sys
import time
from functools import partial
from typing import TYPE_CHECKING

import anyio
from anyio.abc import ByteSendStream
from anyio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled
from figures import save_run

from drainpipe import BufferedByteSendStream
from drainpipe._demo import available_backends

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

COUNT = 20_000
SIZE = 65_536
ROUNDS = 7
MULTIPLES = (4, 16)


class NoIOStream(ByteSendStream):
    """A stream whose ``send()`` schedules like AnyIO's socket streams, sends nothing."""

    async def send(self, item: bytes) -> None:
        await checkpoint_if_cancelled()
        await cancel_shielded_checkpoint()

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


async def direct() -> float:
    stream, message = NoIOStream(), b"m" * SIZE
    started = time.perf_counter()
    for _ in range(COUNT):
        await stream.send(message)
    return time.perf_counter() - started


async def buffered(high_water: int) -> float:
    stream, message = NoIOStream(), b"m" * SIZE
    started = time.perf_counter()
    async with BufferedByteSendStream(stream, high_water=high_water) as out:
        for _ in range(COUNT):
            await out.send(message)
    return time.perf_counter() - started


def main(argv: list[str]) -> None:
    contenders: dict[str, Callable[[], Awaitable[float]]] = {
        "direct": direct,
        **{f"high_water {m}x": partial(buffered, m * SIZE) for m in MULTIPLES},
    }
    rows = []
    print(f"{COUNT:,} messages of {SIZE // 1024} KiB, no I/O, median of {ROUNDS}")
    for backend in available_backends():
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(ROUNDS):
            for name, contender in contenders.items():
                seconds = anyio.run(
                    contender, backend=backend.backend, backend_options=backend.options
                )
                times[name].append(seconds)
        per_message = {
            name: statistics.median(seconds) / COUNT * 1e6
            for name, seconds in times.items()
        }
        base = per_message["direct"]
        print(
            f"{backend.name:14} "
            + "   ".join(
                f"{name} {micros:.2f} us"
                + ("" if name == "direct" else f" (+{micros - base:.2f})")
                for name, micros in per_message.items()
            )
        )
        rows.append(
            {
                "backend": backend.name,
                "direct_us": base,
                "buffered_us": {
                    str(m): per_message[f"high_water {m}x"] for m in MULTIPLES
                },
            }
        )
    save_run(
        argv,
        "overhead.py",
        rounds=ROUNDS,
        count=COUNT,
        size=SIZE,
        high_water_multiples=list(MULTIPLES),
        rows=rows,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
