"""Every figure in the documentation and the README is what the committed data says.

``docs/figures.py`` renders the Markdown that the pages include, and the README's
figures block, from the JSON under ``docs/_static``; these tests render them again
and compare. When one fails, run ``make figures`` (or ``make plots`` for new runs)
and commit what it writes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.test_docs_snippets import load

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
STATIC = DOCS / "_static"
STALE = "stale: run `make figures` and commit what it writes"


figures = load(DOCS / "figures.py")
INCLUDES = figures.includes()

#: The page that shows each include file.
SHOWN_BY = {
    "bench_small.md": "performance.md",
    "bench_small_python.md": "performance.md",
    "bench_large.md": "performance.md",
    "bench_tls.md": "performance.md",
    "bench_latency.md": "performance.md",
    "bench_memory.md": "performance.md",
    "bench_targets.md": "performance.md",
    "bench_import.md": "performance.md",
    "idle.md": "performance.md",
    "overhead.md": "performance.md",
    "checkpoint_cost.md": "which-call.md",
    "scale.md": "guarantees.md",
    "tests.md": "guarantees.md",
    "lifecycle.md": "errors.md",
}


@pytest.mark.parametrize("name", sorted(INCLUDES))
def test_the_committed_include_is_what_its_data_says(name: str) -> None:
    committed = (STATIC / name).read_text(encoding="utf-8")
    assert committed == INCLUDES[name](), f"docs/_static/{name} is {STALE}"


@pytest.mark.parametrize("name", sorted(INCLUDES))
def test_every_include_is_shown_by_its_page(name: str) -> None:
    page = (DOCS / SHOWN_BY[name]).read_text(encoding="utf-8")
    assert f"{{include}} _static/{name}" in page


def test_the_readme_figures_are_what_the_benchmark_json_says() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert figures.README_BEGIN in readme
    assert readme == figures.readme(), f"README.md's figures block is {STALE}"


def test_runs_on_other_machines_are_summed_up_with_their_machine() -> None:
    results = json.loads((STATIC / "bench.json").read_text(encoding="utf-8"))
    other = json.loads(json.dumps(results))
    other["machine"]["cpu"] = "Another CPU"
    other["command"] = "python -m drainpipe bench --quick --json bench-other.json"
    for row in other["scenarios"]["small"]["contenders"][1:]:
        row["ratio"] /= 2
    block = figures.readme_figures(results, [other])
    assert block.startswith(figures.readme_figures(results, []))
    assert f"- {figures.machine(other)} (`python -m drainpipe bench --quick`)" in block
    assert figures.small_summary(other) in block
    assert figures.small_summary(other) != figures.small_summary(results)


def test_the_pure_python_core_is_summed_up_after_the_compiled_one() -> None:
    results = json.loads((STATIC / "bench.json").read_text(encoding="utf-8"))
    python_core = json.loads((STATIC / "bench_python.json").read_text("utf-8"))
    assert results["machine"]["core"] == "compiled"
    assert python_core["machine"]["core"] == "python"
    block = figures.readme_figures(results, [], python_core)
    assert block.startswith(figures.readme_figures(results, []).rstrip("\n"))
    assert "(core compiled by mypyc)" in figures.machine(results)
    assert f"{figures.small_summary(python_core)}." in block
    assert "(pure-Python core)" in block


def with_a_ceiling(results: dict[str, Any]) -> dict[str, Any]:
    """The committed run as the benchmark writes it since it races the ceiling:
    a ``kind`` on every small-messages row, ceiling rows, and ``ceiling_pct``."""
    run: dict[str, Any] = json.loads(json.dumps(results))
    rows = run["scenarios"]["small"]["contenders"]
    for row in list(rows):
        if row["name"].startswith("drainpipe"):
            ceiling = "ceiling " + row["name"].removeprefix("drainpipe ")
            row.update(kind="drainpipe", ceiling=ceiling, ceiling_pct=40.0)
            rows.append(
                {"name": ceiling, "kind": "ceiling", "times": [1e-3], "ratio": 99.0}
            )
        else:
            row["kind"] = "baseline"
    return run


def test_a_run_with_the_ceiling_shows_drainpipe_as_a_share_of_it() -> None:
    run = with_a_ceiling(json.loads((STATIC / "bench.json").read_text("utf-8")))
    small = figures.small_table(run)
    assert "| % of the ceiling |" in small
    assert small.count("| 40.0 % |") == len(figures.drainpipe_small(run)) > 0
    assert "`ceiling send() [trio]`" in small
    assert "| 1. small messages | ≥ 50 % of the interpreter's ceiling | 40.0 %" in (
        figures.targets_table(run)
    )
    assert "at 40.0 % of the interpreter's ceiling" in figures.readme_figures(run, [])


def test_a_run_without_the_ceiling_has_no_ceiling_column() -> None:
    # A run from before the benchmark measured the ceiling: no ceiling rows, and
    # no share of them on drainpipe's.
    run = json.loads((STATIC / "bench.json").read_text("utf-8"))
    small = run["scenarios"]["small"]
    small["contenders"] = [
        row for row in small["contenders"] if row.get("kind") != "ceiling"
    ]
    for row in small["contenders"]:
        for key in ("kind", "ceiling", "ceiling_pct"):
            row.pop(key, None)
    assert "ceiling" not in figures.small_table(run)
    assert "ceiling" not in figures.readme_figures(run, [])


def test_the_test_counts_are_those_of_the_suite() -> None:
    committed = json.loads((STATIC / "tests.json").read_text(encoding="utf-8"))
    assert committed == figures.count_tests(), f"docs/_static/tests.json is {STALE}"


def test_the_lifecycle_table_is_the_one_the_state_test_checks() -> None:
    from tests import test_bad_input

    table = figures.lifecycle_table(test_bad_input.STATES, test_bad_input.EXPECTED)
    assert (STATIC / "lifecycle.md").read_text(encoding="utf-8") == table


def test_the_committed_runs_hold_what_the_pages_promise_of_them() -> None:
    """The guarantees page says the scale test's stalled peers break and every
    other reader gets every byte, and the performance page that send() keeps
    buffered_bytes within high_water + one message: so must the runs shown."""
    scale = json.loads((STATIC / "scale.json").read_text(encoding="utf-8"))
    for row in scale.values():
        stalled = row["stalled_broken_by_send_timeout"]
        assert 0 < stalled < row["connections"]
        assert row["readers_delivered_every_byte"] == row["connections"] - stalled
    bench = json.loads((STATIC / "bench.json").read_text(encoding="utf-8"))
    for row in bench["scenarios"]["memory"]:
        assert row["peak_buffered_bytes"] <= row["high_water"] + row["message"]
        assert row["limit"] == row["high_water"] + row["message"]


def test_the_readme_links_are_absolute() -> None:
    """The README is also the package index's page, where relative links break."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)]*)\)", readme) + re.findall(
        r"^\[[^]]+\]:\s*(\S+)", readme, flags=re.MULTILINE
    )
    assert [t for t in targets if not t.startswith(("https://", "http://"))] == []


def named_tests(text: str) -> list[tuple[str, str]]:
    """``(module, name)`` of every ``tests/x.py::name`` on a page, and of every
    ``::name`` after it, which names a test of the last module named."""
    named = []
    module = ""
    for found in re.finditer(r"`(tests/\w+\.py)?(?:::(\w+))?`", text):
        module = found.group(1) or module
        if found.group(2):
            named.append((module, found.group(2)))
    return named


@pytest.mark.parametrize("page", ["performance.md", "guarantees.md", "errors.md"])
def test_every_test_a_page_names_exists(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    missing = [
        f"{module}::{name}"
        for module, name in named_tests(text)
        if not re.search(
            rf"^\s*(?:(?:async def|def|class) {name}\b|{name} = )",
            (ROOT / module).read_text(encoding="utf-8"),
            flags=re.MULTILINE,
        )
    ]
    assert missing == []


def without_generated_and_code(text: str) -> str:
    """The prose of a page: no code, no include, no README figures block."""
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    text = re.sub(r"\([^)\s]*\)", "", text)  # link targets
    text = text.replace("SHA-256", "SHA")
    begin, end = figures.README_BEGIN, figures.README_END
    if begin in text:
        text = text[: text.index(begin)] + text[text.index(end) :]
    return text


#: Numbers that the prose may state: single digits (the scenarios' numbers, "0, 1,
#: 2, … checkpoints"), constants of the API (the default ``high_water`` of 64 KiB,
#: the 256 KiB and 16 KiB of the flush task's pieces, the messages of 64 KiB and
#: 1 MiB that the scenarios are about), the Python and the AnyIO versions.
ALLOWED = re.compile(r"^(?:\d|3\.10|64 KiB|256 KiB|16 KiB|1 MiB|4\.(?:0|15|16))$")
MEASURED = re.compile(r"\d[\d,.]*(?:\s?(?:%|µs|ns|ms|s|KiB|MiB|MB|B)\b)?")


@pytest.mark.parametrize(
    "page", ["performance.md", "guarantees.md", "errors.md", "index.md", "README.md"]
)
def test_no_measured_number_is_typed_into_the_prose(page: str) -> None:
    path = ROOT / page if page == "README.md" else DOCS / page
    prose = without_generated_and_code(path.read_text(encoding="utf-8"))
    numbers = (
        " ".join(number.split()).rstrip(".,") for number in MEASURED.findall(prose)
    )
    typed = [number for number in numbers if not ALLOWED.match(number)]
    assert typed == [], "numbers belong in the data files, rendered by make figures"
