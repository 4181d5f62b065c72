"""What a checkpoint per call would cost: the measurement quoted in the docs.

``write()`` never yields to the event loop, and ``send()`` and ``drain()`` yield only
while the stream is paused. This script sends 200,000 messages of 100 bytes over
loopback TCP to a sink process (the one ``python -m drainpipe bench`` uses) with
``write()`` + ``drain()`` as they are, and again with an ``anyio.lowlevel.checkpoint()``
after every call, as a Trio-style "every async call is a checkpoint" rule would
require, on every installed backend; each variant's best of three rounds is printed,
and with ``--json`` also written for ``docs/figures.py``::

    python docs/checkpoint_cost.py --json docs/_static/checkpoint_cost.json
"""

from __future__ import annotations

import sys
import time
from functools import partial

import anyio
from anyio.lowlevel import checkpoint
from figures import save_run

from drainpipe import BufferedByteSendStream
from drainpipe._bench import Sink
from drainpipe._demo import available_backends

COUNT = 200_000
SIZE = 100
ROUNDS = 3


async def send_all(port: int, *, checkpoint_per_call: bool) -> float:
    """Send COUNT messages; return the seconds from the first write to the last ack."""
    message = b"m" * SIZE
    tcp = await anyio.connect_tcp("127.0.0.1", port)
    started = time.perf_counter()
    async with BufferedByteSendStream(tcp) as out:
        for _ in range(COUNT):
            out.write(message)
            await out.drain()
            if checkpoint_per_call:
                await checkpoint()

        await out.send_eof()
        received = int.from_bytes(await tcp.receive(8), "big")

    elapsed = time.perf_counter() - started
    if received != COUNT * SIZE:
        raise RuntimeError(f"the sink received {received} bytes, not {COUNT * SIZE}")

    return elapsed


def main(argv: list[str]) -> None:
    rows = []
    sink = Sink("count")
    try:
        print(f"{COUNT:,} messages of {SIZE} B, write() + drain(), best of {ROUNDS}")
        for backend in available_backends():
            best: dict[bool, float] = {}
            for _ in range(ROUNDS):
                for checkpoint_per_call in (False, True):
                    seconds = anyio.run(
                        partial(
                            send_all, sink.port, checkpoint_per_call=checkpoint_per_call
                        ),
                        backend=backend.backend,
                        backend_options=backend.options,
                    )
                    best[checkpoint_per_call] = min(
                        seconds, best.get(checkpoint_per_call, seconds)
                    )
            plain, with_checkpoint = best[False], best[True]
            print(
                f"{backend.name:14} as shipped {COUNT / plain:>12,.0f} msg/s   "
                f"checkpoint per call {COUNT / with_checkpoint:>10,.0f} msg/s   "
                f"{with_checkpoint / plain:5.1f}x slower"
            )
            rows.append(
                {
                    "backend": backend.name,
                    "as_shipped": COUNT / plain,
                    "checkpoint_per_call": COUNT / with_checkpoint,
                }
            )
    finally:
        sink.close()

    save_run(
        argv, "checkpoint_cost.py", best_of=ROUNDS, count=COUNT, size=SIZE, rows=rows
    )


if __name__ == "__main__":
    main(sys.argv[1:])
