"""Draw the benchmark's figure from the JSON that ``python -m drainpipe bench`` writes.

``docs/_static/bench_small.png``: scenario 1, small messages: messages per second
of every contender on every backend, with its ratio to asyncio's
``StreamWriter.write()`` + ``drain()``. The other scenarios are tables, written by
``docs/figures.py``.

The machine, Python, the versions, the date and the command come from the JSON and
are printed on the figures. Run it (matplotlib needed, ``make plots``) and commit the
JSON with the PNGs::

    python -m drainpipe bench --quick --json docs/_static/bench.json
    python docs/bench_plot.py docs/_static/bench.json
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STATIC = Path(__file__).parent / "_static"
SMALL_OUTPUT = STATIC / "bench_small.png"
BASELINE_COLOR = "#8c8c8c"
ANYIO_COLOR = "#b03a2e"
DRAINPIPE_COLOR = "#1f5f99"
CEILING_COLOR = "#c9d7e6"
TIMES = "\N{MULTIPLICATION SIGN}"


def footer(figure: Figure, results: dict[str, Any]) -> None:
    """Name the machine, the versions, the date and the command under the plot."""
    machine = results["machine"]
    rounds = results.get("rounds", "?")
    versions = ", ".join(
        f"{name} {number}" for name, number in machine["versions"].items() if number
    )
    figure.supxlabel(
        f"{machine.get('cpu', '?')}, {machine['cpus']} CPUs, {machine['platform']}\n"
        f"Python {machine['python']}, {versions}, {machine['date']}\n"
        f"{results.get('command', 'python -m drainpipe bench')} "
        + ("(one round)" if rounds == 1 else f"(median of {rounds} rounds)"),
        fontsize=7.5,
        color="#555555",
    )


def color_of(row: dict[str, Any]) -> str:
    """The benchmark's ``kind`` of a row (runs before it had one: its name)."""
    name = row["name"]
    kind = row.get("kind") or next(
        (k for k in ("drainpipe", "ceiling") if name.startswith(k)), "baseline"
    )
    if kind == "drainpipe":
        return DRAINPIPE_COLOR
    if kind == "ceiling":
        return CEILING_COLOR
    if name.startswith("anyio"):
        return ANYIO_COLOR
    return BASELINE_COLOR


def label(rate: float, row: dict[str, Any]) -> str:
    """Messages per second, the ratio to the baseline, and the share of the
    ceiling where the run measured it."""
    text = (
        f"{rate / 1e6:.2f}M/s" if rate >= 1e6 else f"{rate / 1e3:.0f}k/s"
    ) + f"  {row['ratio']:.1f}{TIMES}"
    if "ceiling_pct" in row:
        text += f"  {row['ceiling_pct']:.1f} % of the ceiling"
    return text


def draw_small(results: dict[str, Any]) -> str:
    small = results["scenarios"]["small"]
    count = small["count"]
    rows = [
        (row, count / statistics.median(row["times"])) for row in small["contenders"]
    ]
    figure, axes = plt.subplots(figsize=(8, 5), dpi=150, layout="constrained")
    positions = range(len(rows))[::-1]  # the first contender at the top
    axes.barh(
        positions,
        [rate for _, rate in rows],
        color=[color_of(row) for row, _ in rows],
        height=0.7,
    )
    for position, (row, rate) in zip(positions, rows, strict=True):
        axes.annotate(
            label(rate, row),
            (rate, position),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8.5,
        )
    best = max(rate for _, rate in rows)
    axes.set_xlim(0, best * 1.45)
    axes.set_ylim(-0.6, len(rows) - 0.4)
    axes.set_yticks(list(positions), [row["name"] for row, _ in rows], fontsize=8.5)
    axes.xaxis.set_major_formatter(
        lambda value, _: f"{value / 1e6:g}M" if value else "0"
    )
    axes.set_xlabel("messages per second (ratios: to asyncio write+drain)")
    axes.set_title(
        f"1. Small messages: {count:,} {TIMES} {small.get('size', 100)} B over loopback "
        "TCP to a sink process",
        fontsize=10,
    )
    axes.grid(axis="x", alpha=0.3)
    footer(figure, results)
    figure.savefig(SMALL_OUTPUT)
    return f"wrote {SMALL_OUTPUT}"


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else STATIC / "bench.json"
    results = json.loads(source.read_text())
    scenarios = results["scenarios"]
    if "small" in scenarios:
        print(draw_small(results))


if __name__ == "__main__":
    main()
