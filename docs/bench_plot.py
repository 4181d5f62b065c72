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
SMALL_TARGET, SMALL_STRETCH = 15, 25
BASELINE_COLOR = "#8c8c8c"
ANYIO_COLOR = "#b03a2e"
DRAINPIPE_COLOR = "#1f5f99"
TARGET_COLOR = "#b03a2e"
TIMES = "\N{MULTIPLICATION SIGN}"


def footer(figure: Figure, results: dict[str, Any]) -> None:
    """Name the machine, the versions, the date and the command under the plot."""
    machine = results["machine"]
    versions = ", ".join(
        f"{name} {number}" for name, number in machine["versions"].items() if number
    )
    figure.supxlabel(
        f"{machine.get('cpu', '?')}, {machine['cpus']} CPUs, {machine['platform']}\n"
        f"Python {machine['python']}, {versions}, {machine['date']}\n"
        f"{results.get('command', 'python -m drainpipe bench')} "
        f"(median of {results.get('rounds', '?')} rounds)",
        fontsize=7.5,
        color="#555555",
    )


def color_of(name: str) -> str:
    if name.startswith("drainpipe"):
        return DRAINPIPE_COLOR
    if name.startswith("anyio"):
        return ANYIO_COLOR
    return BASELINE_COLOR


def draw_small(results: dict[str, Any]) -> str:
    small = results["scenarios"]["small"]
    count = small["count"]
    rows = [
        (row["name"], count / statistics.median(row["times"]), row["ratio"])
        for row in small["contenders"]
    ]
    baseline = rows[0][1]
    figure, axes = plt.subplots(figsize=(8, 5), dpi=150, layout="constrained")
    positions = range(len(rows))[::-1]  # the first contender at the top
    axes.barh(
        positions,
        [rate for _, rate, _ in rows],
        color=[color_of(name) for name, _, _ in rows],
        height=0.7,
    )
    for position, (_, rate, ratio) in zip(positions, rows, strict=True):
        axes.annotate(
            f"{rate / 1e6:.2f}M/s  {ratio:.1f}{TIMES}"
            if rate >= 1e6
            else f"{rate / 1e3:.0f}k/s  {ratio:.1f}{TIMES}",
            (rate, position),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8.5,
        )
    for multiple, style in ((SMALL_TARGET, "--"), (SMALL_STRETCH, ":")):
        axes.axvline(baseline * multiple, color=TARGET_COLOR, ls=style, lw=1.1)
        axes.annotate(
            f"{multiple}{TIMES} target"
            if multiple == SMALL_TARGET
            else f"{multiple}{TIMES} stretch",
            (baseline * multiple, len(rows) - 0.5),
            xytext=(3, -2),
            textcoords="offset points",
            va="top",
            color=TARGET_COLOR,
            fontsize=8.5,
        )
    best = max(rate for _, rate, _ in rows)
    axes.set_xlim(0, max(best, baseline * SMALL_STRETCH) * 1.2)
    axes.set_ylim(-0.6, len(rows) - 0.4)
    axes.set_yticks(list(positions), [name for name, _, _ in rows], fontsize=8.5)
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
    drainpipe = [ratio for name, _, ratio in rows if name.startswith("drainpipe")]
    return (
        f"{SMALL_OUTPUT.name}: drainpipe at {min(drainpipe):.1f}-{max(drainpipe):.1f}x "
        f"asyncio write+drain ({baseline:,.0f} msg/s)"
    )


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else STATIC / "bench.json"
    results = json.loads(source.read_text())
    scenarios = results["scenarios"]
    if "small" in scenarios:
        print(draw_small(results))


if __name__ == "__main__":
    main()
