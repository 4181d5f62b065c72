"""Write every figure of the documentation from committed data files.

The pages quote no measured number themselves: they include Markdown files that
this script renders from the JSON written by real runs, and the README carries a
block that this script rewrites. ``make figures`` runs it; ``make plots`` runs the
benchmark and the scale test first. ``tests/test_docs_figures.py`` checks that the
committed files are what this script makes of the committed JSON.

* ``_static/bench_*.md`` from ``_static/bench.json``, for ``performance.md``;
* ``_static/idle.md`` from ``_static/idle.json``, for ``performance.md``;
* ``_static/overhead.md`` from ``_static/overhead.json``, for ``performance.md``;
* ``_static/checkpoint_cost.md`` from ``_static/checkpoint_cost.json``, for
  ``which-call.md``;
* ``_static/scale.md`` from ``_static/scale.json``, for ``guarantees.md``;
* ``_static/tests.md`` from ``_static/tests.json`` (the suite, collected), for
  ``guarantees.md``;
* ``_static/lifecycle.md`` from the expectations of ``tests/test_bad_input.py``, for
  ``errors.md``;
* the README's figures block from ``_static/bench.json``, and scenario 1 of the
  runs on other machines committed beside it as ``_static/bench-<machine>.json``.

Benchmark rows of ``"kind": "ceiling"`` (the interpreter's ceiling) are shown
with the others, and a ``ceiling_pct`` field, where rows have one, adds a "% of the
ceiling" column; a run without them gives tables without them.

    python docs/figures.py              # render every figure from the JSON
    python docs/figures.py count-tests  # first collect the suite into tests.json
"""

from __future__ import annotations

import importlib.util
import json
import re
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The goals, as ``python -m drainpipe bench`` prints them beside its figures.
from drainpipe._bench import (
    CEILING_GOAL,
    CORES,
    IMPORT_GOAL_MS,
    LARGE_GOAL,
    LARGE_GOAL_SIZE,
    LATENCY_GOAL,
    RSS_GOAL,
    TLS_GOAL,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
STATIC = DOCS / "_static"
README = ROOT / "README.md"
README_BEGIN = (
    "<!-- figures: written by docs/figures.py from docs/_static/bench.json; "
    "do not edit by hand -->"
)
README_END = "<!-- end of figures -->"
TIMES = "\N{MULTIPLICATION SIGN}"
DASH = "\N{EN DASH}"


Results = dict[str, Any]


# -- formatting -------------------------------------------------------------------


def ratio(value: float) -> str:
    return f"{value:.2f}{TIMES}" if value < 10 else f"{value:.1f}{TIMES}"


def span(values: Iterable[float], show: Callable[[float], str] = ratio) -> str:
    """``low-high`` with an en dash and the unit once, or one value if they are
    equal once shown."""
    ordered = sorted(values)
    low, high = show(ordered[0]), show(ordered[-1])
    if low == high:
        return low
    unit = re.search(r"[^\d.,]*$", high)
    suffix = unit.group(0) if unit else ""
    if suffix and low.endswith(suffix):
        low = low[: -len(suffix)]
    return f"{low}{DASH}{high}"


def size(n: int) -> str:
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor:,} {unit}"
    return f"{n:,} B"


def percent(value: float) -> str:
    return f"{value:.1f} %"


def median(times: list[float]) -> float:
    return statistics.median(times)


def table(header: list[str], align: str, rows: Iterable[list[str]]) -> list[str]:
    """A Markdown table; ``align`` has one ``l`` or ``r`` per column."""
    rule = ["---" if a == "l" else "---:" for a in align]
    return ["| " + " | ".join(cells) + " |" for cells in (header, rule, *rows)]


def machine(results: Results) -> str:
    """The machine and versions a run came from, in one line."""
    m = results["machine"]
    versions = ", ".join(f"{name} {v}" for name, v in m["versions"].items() if v)
    if "core" in m:  # runs made before drainpipe's core could be compiled: Python
        versions += f" ({CORES[m['core']]})"
    return (
        f"{m.get('cpu', '?')}, {m['cpus']} CPUs, {m['platform']}, "
        f"Python {m['python']}, {versions}, {m['date']}"
    )


def provenance(results: Results) -> str:
    rounds = results.get("rounds")
    medians = {None: "", 1: ", one round"}.get(rounds, f", medians of {rounds} rounds")
    return f"`{results['command']}` on {machine(results)}{medians}."


def render(
    caption: str,
    header: list[str],
    align: str,
    body: Iterable[list[str]],
    results: Results,
) -> str:
    """A caption, a table, and the run it came from."""
    lines = [caption, ""] if caption else []
    lines += [*table(header, align, body), "", provenance(results)]
    return "\n".join(lines) + "\n"


# -- benchmark rows -----------------------------------------------------------------


def kind(row: dict[str, Any]) -> str:
    """``baseline``, ``drainpipe`` or ``ceiling``: the benchmark says so in
    ``kind``; runs made before it did are told by the contender's name."""
    if "kind" in row:
        return str(row["kind"])
    name = str(row.get("name", ""))
    return next((k for k in ("drainpipe", "ceiling") if name.startswith(k)), "baseline")


def is_ceiling(row: dict[str, Any]) -> bool:
    return kind(row) == "ceiling"


def is_drainpipe(row: dict[str, Any]) -> bool:
    return kind(row) == "drainpipe"


def backend_of(row: dict[str, Any]) -> str:
    if "backend" in row:
        return str(row["backend"])
    found = re.search(r"\[(.+)\]$", str(row.get("name", "")))
    return found.group(1) if found else ""


def contender(row: dict[str, Any]) -> str:
    return f"`{row['name']}`"


def has_ceiling_pct(rows: Iterable[dict[str, Any]]) -> bool:
    return any("ceiling_pct" in row for row in rows)


def ceiling_cell(row: dict[str, Any]) -> str:
    return percent(row["ceiling_pct"]) if "ceiling_pct" in row else ""


def small_rows(results: Results) -> list[dict[str, Any]]:
    return list(results["scenarios"]["small"]["contenders"])


def small_table(results: Results) -> str:
    small = results["scenarios"]["small"]
    rows = small_rows(results)
    baseline = rows[0]["name"]
    header = ["contender", "messages/s", f"vs `{baseline}`"]
    align = "lrr"
    pct = has_ceiling_pct(rows)
    if pct:
        header.append("% of the ceiling")
        align += "r"
    body = []
    for row in rows:
        cells = [
            contender(row),
            f"{small['count'] / median(row['times']):,.0f}",
            ratio(row["ratio"]) if "ratio" in row else "",
        ]
        if pct:
            cells.append(ceiling_cell(row))
        body.append(cells)
    caption = f"{small['count']:,} messages of {small['size']} B."
    return render(caption, header, align, body, results)


def large_table(results: Results) -> str:
    rows = results["scenarios"]["large"]
    pct = has_ceiling_pct(rows)
    header = [
        "messages",
        "contender",
        "`high_water`",
        "direct MB/s",
        "contender MB/s",
        "ratio",
    ]
    align = "llrrrr"
    if pct:
        header.append("% of the ceiling")
        align += "r"
    body = []
    for row in rows:
        total = row["size"] * row["count"]
        cells = [
            f"{row['count']:,} {TIMES} {size(row['size'])}",
            contender(row),
            size(row["high_water"]),
            f"{total / median(row['direct']) / 1e6:,.0f}",
            f"{total / median(row['drainpipe']) / 1e6:,.0f}",
            ratio(row["ratio"]),
        ]
        if pct:
            cells.append(ceiling_cell(row))
        body.append(cells)
    return render("", header, align, body, results)


def paired_table(
    results: Results,
    scenario: str,
    caption: str,
    show: Callable[[dict[str, Any], str], str],
) -> str:
    """A scenario whose rows time a direct contender and drainpipe's, per backend."""
    rows = results["scenarios"][scenario]
    pct = has_ceiling_pct(rows)
    header = ["backend", "direct", "drainpipe", "ratio"]
    if pct:
        header.append("% of the ceiling")
    body = []
    for row in rows:
        cells = [
            row.get("name", row["backend"]),
            show(row, "direct"),
            show(row, "drainpipe"),
            ratio(row["ratio"]),
        ]
        if pct:
            cells.append(ceiling_cell(row))
        body.append(cells)
    return render(caption, header, "l" + "r" * (len(header) - 1), body, results)


def tls_table(results: Results) -> str:
    count = results["scenarios"]["tls"][0]["count"]
    return paired_table(
        results,
        "tls",
        f"Messages per second, {count:,} messages per contender and round.",
        lambda row, key: f"{row['count'] / median(row[key]):,.0f}",
    )


def latency_table(results: Results) -> str:
    count = results["scenarios"]["latency"][0]["count"]
    return paired_table(
        results,
        "latency",
        f"Time per round trip, {count:,} round trips per contender and round.",
        lambda row, key: f"{median(row[key]) * 1e6:.1f} µs",
    )


def memory_table(results: Results) -> str:
    rows = results["scenarios"]["memory"]
    body = [
        [
            row["backend"],
            f"{row['peak_buffered_bytes']:,} B",
            f"{row['limit']:,} B",
            "yes" if row["peak_buffered_bytes"] <= row["limit"] else "**no**",
            size(row["rss_growth"]) if row["rss_growth"] else "0 B",
        ]
        for row in rows
    ]
    first = rows[0]
    caption = (
        f"{first['total'] / 1e6:,.0f} MB in messages of {size(first['message'])}, "
        f"`high_water` {size(first['high_water'])}."
    )
    header = [
        "backend",
        "peak `buffered_bytes`",
        "limit: `high_water` + one message",
        "within it",
        "RSS growth",
    ]
    return render(caption, header, "lrrlr", body, results)


def large_ratios(results: Results, message: int) -> list[float]:
    """Ratios at ``high_water`` = 4 x the message size, drainpipe rows only."""
    return [
        row["ratio"]
        for row in results["scenarios"]["large"]
        if row["size"] == message
        and row["high_water"] == 4 * message
        and not is_ceiling(row)
    ]


def drainpipe_small(results: Results) -> list[dict[str, Any]]:
    return [
        row for row in small_rows(results) if is_drainpipe(row) and not is_ceiling(row)
    ]


def met(value: bool) -> str:
    return "yes" if value else "**no**"


def targets_table(results: Results) -> str:
    """Each goal, what the run gave, and whether that meets it."""
    scenarios = results["scenarios"]
    drainpipe = drainpipe_small(results)
    pct = [row["ceiling_pct"] for row in drainpipe if "ceiling_pct" in row]
    small_run = f"{span(row['ratio'] for row in drainpipe)} asyncio write+drain"
    if pct:
        small_met = met(min(pct) >= CEILING_GOAL)
        small_run = f"{span(pct, percent)} of the ceiling ({small_run})"
    else:
        small_met = "not measured: this run has no ceiling"
    large = large_ratios(results, LARGE_GOAL_SIZE)
    tls = [row["ratio"] for row in scenarios["tls"] if not is_ceiling(row)]
    latency = [row["ratio"] for row in scenarios["latency"]]
    memory = scenarios["memory"]
    peaks_ok = all(row["peak_buffered_bytes"] <= row["limit"] for row in memory)
    rss = [row["rss_growth"] for row in memory]
    body = [
        [
            "1. small messages",
            f"≥ {CEILING_GOAL} % of the interpreter's ceiling",
            small_run,
            small_met,
        ],
        [
            f"2. messages of {size(LARGE_GOAL_SIZE)}, `high_water` = 4 {TIMES} size",
            f"≥ {LARGE_GOAL:.1f}{TIMES} direct send",
            span(large),
            met(min(large) >= LARGE_GOAL),
        ],
        [
            "3. TLS",
            f"≥ {TLS_GOAL:g}{TIMES} direct send",
            span(tls),
            met(min(tls) >= TLS_GOAL),
        ],
        [
            "4. latency",
            f"≤ {LATENCY_GOAL:g}{TIMES} direct round trip",
            span(latency),
            met(max(latency) <= LATENCY_GOAL),
        ],
        [
            "5. slow consumer",
            f"peak ≤ `high_water` + one message; RSS growth ≤ {size(RSS_GOAL)}",
            f"peaks within the limit: {met(peaks_ok)}; RSS "
            + span(rss, lambda n: size(int(n)) if n else "0 B"),
            met(peaks_ok and max(rss) <= RSS_GOAL),
        ],
    ]
    imports = {row["module"]: row for row in scenarios.get("import", [])}
    if "drainpipe" in imports:
        added = imports["drainpipe"]["added_ms"]
        body.append(
            [
                "7. import",
                f"`import drainpipe` adds ≤ {IMPORT_GOAL_MS} ms to `import anyio`",
                f"+{added:.1f} ms",
                met(added <= IMPORT_GOAL_MS),
            ]
        )
    return render("", ["scenario", "goal", "this run", "met?"], "llll", body, results)


def import_table(results: Results) -> str:
    """The import scenario: each import's CPU time and what it adds to AnyIO's."""
    rows = results["scenarios"]["import"]
    body = [
        [
            f"`import {row['module']}`",
            f"{row['median_ms']:.1f} ms",
            "(baseline)" if row["module"] == "anyio" else f"+{row['added_ms']:.1f} ms",
        ]
        for row in rows
    ]
    rounds = len(rows[0]["times_ms"])
    return render(
        f"CPU time of the import in a fresh interpreter, median of {rounds}:",
        ["statement", "CPU time", "on top of `import anyio`"],
        "lrr",
        body,
        results,
    )


def idle_table(results: Results) -> str:
    lines = table(
        [
            "backend",
            "AnyIO stream",
            "drainpipe on top of it",
            "asyncio reader + writer",
        ],
        "lrrr",
        (
            [
                row["backend"],
                f"{row['anyio']:,.0f} B",
                f"+{row['drainpipe']:,.0f} B",
                "—"
                if row.get("asyncio streams") is None
                else f"{row['asyncio streams']:,.0f} B",
            ]
            for row in results["scenarios"]["idle"]
        ),
    )
    connections = results["scenarios"]["idle"][0]["connections"]
    lines += [
        "",
        (
            f"Bytes per connection, {connections:,} idle connections over UNIX socket "
            f"pairs, by tracemalloc. {provenance(results)}"
        ),
    ]
    return "\n".join(lines) + "\n"


# -- where the time goes ----------------------------------------------------------


def overhead_table(results: Results) -> str:
    """``docs/overhead.py --json``: time per message, direct and through drainpipe."""
    marks = results["high_water_multiples"]
    header = ["backend", "direct `send()`"] + [
        f"drainpipe, `high_water` {m} {TIMES} size" for m in marks
    ]
    body = []
    for row in results["rows"]:
        direct = row["direct_us"]
        cells = [row["backend"], f"{direct:.2f} µs"]
        for m in marks:
            value = row["buffered_us"][str(m)]
            cells.append(f"{value:.2f} µs (+{value - direct:.2f})")
        body.append(cells)
    caption = f"{results['count']:,} messages of {size(results['size'])}, no I/O."
    return render(caption, header, "l" + "r" * (len(header) - 1), body, results)


def checkpoint_cost_table(results: Results) -> str:
    """``docs/checkpoint_cost.py --json``: ``write()`` + ``drain()`` as shipped, and
    with a checkpoint after every call."""
    body = [
        [
            row["backend"],
            f"{row['as_shipped']:,.0f} msg/s",
            f"{row['checkpoint_per_call']:,.0f} msg/s",
            ratio(row["as_shipped"] / row["checkpoint_per_call"]),
        ]
        for row in results["rows"]
    ]
    caption = (
        f"{results['count']:,} messages of {results['size']} B over loopback TCP, "
        f"best of {results['best_of']} rounds."
    )
    header = ["backend", "as shipped", "with a checkpoint per call", "slower by"]
    lines = [caption, "", *table(header, "lrrr", body), ""]
    lines.append(f"`{results['command']}` on {machine(results)}.")
    return "\n".join(lines) + "\n"


# -- guarantees -------------------------------------------------------------------


def scale_table(results: Results) -> str:
    body = [
        [
            backend,
            f"{row['connections']:,}",
            f"{row['stalled_broken_by_send_timeout']:,}",
            (
                f"{row['readers_delivered_every_byte']:,} {TIMES} "
                f"{size(row['bytes_per_reader'])}"
            ),
            f"{row['send_timeout_s']:g} s",
            f"{row['peak_rss_mib']:,} MiB",
            f"{row['seconds']:g} s",
        ]
        for backend, row in results.items()
    ]
    header = [
        "backend",
        "connections",
        "stalled peers broken by `send_timeout`",
        "readers with every byte (SHA-256)",
        "`send_timeout`",
        "peak RSS",
        "time",
    ]
    return "\n".join(table(header, "lrrrrrr", body)) + "\n"


def count_tests() -> Results:
    """Collect the suite, as ``make test`` and ``make test-slow`` run it."""

    def collect(*options: str) -> Counter[str]:
        output = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", *options],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return Counter(
            line.split("::", 1)[0] for line in output.splitlines() if "::" in line
        )

    every, slow = collect(), collect("-m", "slow")
    return {
        "command": "python -m pytest --collect-only -q",
        "modules": {
            module: {"tests": every[module], "slow": slow[module]}
            for module in sorted(every)
        },
    }


def tests_table(results: Results) -> str:
    modules = results["modules"]
    body = [
        [f"`{module}`", f"{counts['tests']:,}", f"{counts['slow']:,}"]
        for module, counts in modules.items()
    ]
    body.append(
        [
            "all",
            f"{sum(c['tests'] for c in modules.values()):,}",
            f"{sum(c['slow'] for c in modules.values()):,}",
        ]
    )
    header = ["module", "tests, every backend counted", "of them slow"]
    lines = [
        *table(header, "lrr", body),
        "",
        f"Collected by `{results['command']}` (`make figures` counts them again).",
    ]
    return "\n".join(lines) + "\n"


# -- the lifecycle table ------------------------------------------------------------


def lifecycle_table(states: list[str], expected: dict[str, tuple[Any, ...]]) -> str:
    """What each call does in each state: the table that
    ``tests/test_bad_input.py::test_every_call_in_every_state_does_what_the_contract_says``
    checks against the real stream."""

    def outcome(result: Any) -> str:
        return "✓" if result is None else f"`{result.__name__}`"

    def label(call: str) -> str:
        return "`async with` again" if call == "async with" else f"`{call}()`"

    body = [
        [label(call), *(outcome(result) for result in row)]
        for call, row in expected.items()
    ]
    return "\n".join(table(["call", *states], "l" + "l" * len(states), body)) + "\n"


def lifecycle_from_tests() -> str:
    """The table from the state test's own expectations (imported as the test
    suite imports it, or loaded from its file when this runs as a script)."""
    module = sys.modules.get("tests.test_bad_input")
    if module is None:
        path = ROOT / "tests" / "test_bad_input.py"
        spec = importlib.util.spec_from_file_location("docs_state_test", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return lifecycle_table(module.STATES, module.EXPECTED)


# -- the README ---------------------------------------------------------------------


def command(results: Results) -> str:
    """The benchmark's command line, without where its JSON went."""
    return re.sub(r" --json \S+", "", str(results["command"]))


def baseline_name(results: Results) -> str:
    name = str(small_rows(results)[0]["name"])
    if name == "asyncio write+drain":
        return "asyncio's `StreamWriter.write()` + `await drain()`"
    return f"`{name}`"


def small_summary(results: Results) -> str:
    """Scenario 1's drainpipe ratios, and their share of the ceiling if measured."""
    small = drainpipe_small(results)
    ratios = span(row["ratio"] for row in small)
    summary = f"{ratios} the messages per second of {baseline_name(results)}"
    pct = [row["ceiling_pct"] for row in small if "ceiling_pct" in row]
    if pct:
        summary += f", and at {span(pct, percent)} of the interpreter's ceiling"
    return summary


def readme_figures(
    results: Results, others: list[Results], python_core: Results | None = None
) -> str:
    """The README's figures: ranges over backends and calls, each with the machine
    it came from; scenario 1 also from ``python_core``, a run on drainpipe's
    pure-Python core, and from the runs on ``others`` machines."""
    scenarios = results["scenarios"]
    small = scenarios["small"]
    lines = []
    if any(is_ceiling(row) for row in small_rows(results)):
        lines += [
            (
                "The benchmark also runs the same loop into a buffer that never sends: "
                "the interpreter's ceiling. drainpipe's share of it carries from one "
                "machine to another; its ratio to asyncio depends on how costly the "
                "machine's system calls are next to its interpreter."
            ),
            "",
        ]
    lines += [
        f"`{command(results)}` on {machine(results)}:",
        "",
        (
            f"- {small['count']:,} messages of {small['size']} B: drainpipe's "
            f"`write()` + `drain()` and `send()` on asyncio, uvloop and trio at "
            f"{small_summary(results)};"
        ),
    ]
    tls = [row["ratio"] for row in scenarios["tls"] if not is_ceiling(row)]
    lines.append(
        f"- over TLS, {span(tls)} the messages per second of a direct "
        "`TLSStream.send()` per message;"
    )
    latency = [row["ratio"] for row in scenarios["latency"]]
    lines.append(
        f"- a request/response round trip through `write()`: {span(latency)} the "
        "time of one through a direct `send()`;"
    )
    for message in sorted({row["size"] for row in scenarios["large"]}):
        lines.append(
            f"- messages of {size(message)} at `high_water` = 4 {TIMES} their size: "
            f"{span(large_ratios(results, message))} the throughput of direct "
            "`send()` calls;"
        )
    memory = scenarios["memory"]
    peak_ok = all(row["peak_buffered_bytes"] <= row["limit"] for row in memory)
    lines.append(
        "- against a slow consumer, `send()` kept `buffered_bytes` "
        + ("at or below" if peak_ok else "**not** at or below")
        + " `high_water` + one message on every backend."
    )
    if python_core is not None:
        lines += [
            "",
            (
                f"The same small messages on drainpipe's pure-Python core, which an "
                f"install without a C compiler gets (`{command(python_core)}` on "
                f"{machine(python_core)}): {small_summary(python_core)}."
            ),
        ]
    if others:
        lines += ["", "Small messages on other machines:", ""]
        lines += [
            f"- {machine(other)} (`{command(other)}`): {small_summary(other)}."
            for other in others
        ]
    return "\n".join(lines) + "\n"


def replace_block(text: str, block: str) -> str:
    begin, end = text.index(README_BEGIN), text.index(README_END)
    return text[: begin + len(README_BEGIN)] + "\n" + block + text[end:]


# -- writing ------------------------------------------------------------------------


def save_run(argv: list[str], script: str, **figures: Any) -> None:
    """Write a measuring script's figures, with the machine and the command line,
    to the file that follows ``--json`` in ``argv``, if it is there."""
    from drainpipe._bench import machine as this_machine

    if argv[:1] != ["--json"]:
        return
    results = {
        "machine": this_machine(),
        "command": " ".join([f"python docs/{script}", *argv]),
        **figures,
    }
    Path(argv[1]).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


# -- the pages ------------------------------------------------------------------------


def read(name: str) -> Any:
    return json.loads((STATIC / name).read_text(encoding="utf-8"))


def includes() -> dict[str, Callable[[], str]]:
    """Every include file under ``docs/_static``, and how to make it."""
    return {
        "bench_small.md": lambda: small_table(read("bench.json")),
        "bench_small_python.md": lambda: small_table(read("bench_python.json")),
        "bench_large.md": lambda: large_table(read("bench.json")),
        "bench_tls.md": lambda: tls_table(read("bench.json")),
        "bench_latency.md": lambda: latency_table(read("bench.json")),
        "bench_memory.md": lambda: memory_table(read("bench.json")),
        "bench_targets.md": lambda: targets_table(read("bench.json")),
        "bench_import.md": lambda: import_table(read("bench.json")),
        "idle.md": lambda: idle_table(read("idle.json")),
        "overhead.md": lambda: overhead_table(read("overhead.json")),
        "checkpoint_cost.md": lambda: checkpoint_cost_table(
            read("checkpoint_cost.json")
        ),
        "scale.md": lambda: scale_table(read("scale.json")),
        "tests.md": lambda: tests_table(read("tests.json")),
        "lifecycle.md": lifecycle_from_tests,
    }


def other_machines() -> list[Results]:
    """Benchmark runs from other machines, committed as ``bench-<machine>.json``."""
    return [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(STATIC.glob("bench-*.json"))
    ]


def readme() -> str:
    text = README.read_text(encoding="utf-8")
    return replace_block(
        text,
        readme_figures(read("bench.json"), other_machines(), read("bench_python.json")),
    )


def main(argv: list[str]) -> None:
    if argv[1:] == ["count-tests"]:
        path = STATIC / "tests.json"
        path.write_text(json.dumps(count_tests(), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    for name, make in includes().items():
        (STATIC / name).write_text(make(), encoding="utf-8")
        print(f"wrote docs/_static/{name}")
    README.write_text(readme(), encoding="utf-8")
    print("wrote the figures of README.md")


if __name__ == "__main__":
    main(sys.argv)
