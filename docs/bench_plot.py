"""Draw the benchmark figures from the JSON that ``python -m drainpipe bench`` writes.

* ``docs/_static/bench_small.png``: scenario 1, small messages: messages per second
  of every contender on every backend, with its ratio to asyncio's
  ``StreamWriter.write()`` + ``drain()``.
* ``docs/_static/bench_memory.png``: scenario 5, a slow consumer: ``buffered_bytes``
  over time against ``high_water`` on every backend, and the peaks of
  ``buffered_bytes`` and of RSS growth against their targets.

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
MEMORY_OUTPUT = STATIC / "bench_memory.png"
SMALL_TARGET, SMALL_STRETCH = 15, 25
RSS_TARGET = 4 * 1024 * 1024
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


def draw_memory(results: dict[str, Any]) -> str:
    rows = results["scenarios"]["memory"]
    figure = plt.figure(figsize=(10, 6), dpi=150, layout="constrained")
    left, right = figure.subfigures(1, 2, width_ratios=(2, 1))
    series_axes = left.subplots(len(rows), 1, sharex=True, sharey=True)

    for axes, row in zip(series_axes, rows, strict=True):
        series = row["series"]
        milliseconds = [second * 1000 for second in series["seconds"]]
        kib = [size / 1024 for size in series["buffered_bytes"]]
        axes.fill_between(
            milliseconds, kib, step="post", color=DRAINPIPE_COLOR, alpha=0.25, lw=0
        )
        axes.step(milliseconds, kib, where="post", color=DRAINPIPE_COLOR, lw=0.5)
        axes.set_xlim(0, milliseconds[-1])
        for level, label, style in (
            (row["high_water"], "high_water", "--"),
            (row["limit"], "high_water + one message (target)", ":"),
        ):
            axes.axhline(level / 1024, color=TARGET_COLOR, ls=style, lw=1.1)
            axes.annotate(
                f"{label}: {level // 1024} KiB",
                (1, level / 1024),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 3),
                textcoords="offset points",
                ha="right",
                color=TARGET_COLOR,
                fontsize=8,
            )
        axes.set_ylabel(f"{row['backend']}\nbuffered (KiB)", fontsize=9)
        axes.set_ylim(0, row["limit"] / 1024 * 1.35)
        axes.grid(alpha=0.3)
    series_axes[-1].set_xlabel("time (ms)")
    series_axes[0].set_title(
        f"5. Slow consumer: {rows[0]['total'] / 1e6:,.0f} MB by await send() of "
        f"{rows[0]['message'] // 1024} KiB, high_water {rows[0]['high_water'] // 1024} "
        "KiB: buffered_bytes",
        fontsize=10,
    )

    # The peaks as a share of their targets: 100 % is the limit.
    targets, growth = right.subplots(2, 1, height_ratios=(2, 1))
    labels: list[str] = []
    shares: list[float] = []
    notes: list[str] = []
    for row in rows:
        labels += [f"{row['backend']}: buffered", f"{row['backend']}: RSS"]
        shares += [
            100 * row["peak_buffered_bytes"] / row["limit"],
            100 * row["rss_growth"] / RSS_TARGET,
        ]
        notes += [
            f"{row['peak_buffered_bytes']:,} B\nof {row['limit']:,}",
            f"{row['rss_growth'] / 1024:,.0f} KiB\nof 4 MiB",
        ]
    positions = range(len(labels))[::-1]
    targets.barh(
        positions,
        shares,
        color=[DRAINPIPE_COLOR, BASELINE_COLOR] * len(rows),
        height=0.7,
    )
    for position, share, note in zip(positions, shares, notes, strict=True):
        targets.annotate(
            note,
            (min(share, 100), position),
            xytext=(4, 0) if share < 60 else (-4, 0),
            textcoords="offset points",
            ha="left" if share < 60 else "right",
            va="center",
            color="black" if share < 60 else "white",
            fontsize=7.5,
        )
    targets.axvline(100, color=TARGET_COLOR, ls="--", lw=1.1)
    targets.set_xlim(0, 115)
    targets.set_yticks(list(positions), labels, fontsize=8)
    targets.set_xlabel("peak, % of its target", fontsize=9)
    targets.set_title("Peaks against their targets", fontsize=10)
    targets.grid(axis="x", alpha=0.3)

    # RSS over the run: growth that kept creeping up would be a leak.
    for row, style in zip(rows, ("-", "--", ":"), strict=False):
        rss = row["rss_series"]
        growth.plot(
            [second * 1000 for second in rss["seconds"]],
            [size / 1024 for size in rss["rss_growth"]],
            color=BASELINE_COLOR if style == "-" else "black",
            ls=style,
            lw=1,
            label=row["backend"],
        )
    growth.set_ylim(bottom=0)
    growth.set_xlabel("time (ms)")
    growth.set_ylabel("RSS growth (KiB)", fontsize=9)
    growth.legend(fontsize=7.5, loc="lower right")
    growth.grid(alpha=0.3)
    footer(figure, results)
    figure.savefig(MEMORY_OUTPUT)
    return f"{MEMORY_OUTPUT.name}: " + "; ".join(
        f"{row['backend']} peak {row['peak_buffered_bytes']:,} B "
        f"(limit {row['limit']:,}), RSS growth {row['rss_growth'] / 1024:,.0f} KiB"
        for row in rows
    )


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else STATIC / "bench.json"
    results = json.loads(source.read_text())
    scenarios = results["scenarios"]
    if "small" in scenarios:
        print(draw_small(results))
    if "memory" in scenarios:
        print(draw_memory(results))


if __name__ == "__main__":
    main()
