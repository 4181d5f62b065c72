"""The benchmark suite runs end to end at a tiny scale and verifies its bytes."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import pytest

from drainpipe import _bench

if TYPE_CHECKING:
    from pathlib import Path


def test_smoke_run_covers_every_scenario_and_contender(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "bench.json"
    assert _bench.main(["--smoke", "--json", str(output)]) == 0
    results = json.loads(output.read_text())
    assert set(results["scenarios"]) == {
        "small",
        "large",
        "tls",
        "latency",
        "memory",
        "idle",
        "import",
    }
    small = results["scenarios"]["small"]
    names = [row["name"] for row in small["contenders"]]
    assert names[0] == "asyncio write+drain"
    assert sum(name.startswith("drainpipe") for name in names) == 6
    assert all(row["ratio"] > 0 for row in small["contenders"])
    # each drainpipe contender beside the no-op ceiling of its backend and call
    ceilings = [row["name"] for row in small["contenders"] if row["kind"] == "ceiling"]
    assert sorted(ceilings) == sorted(
        f"ceiling {call} [{backend}]"
        for backend in _bench.BACKENDS
        for call in ("write+drain", "send()")
    )
    for row in small["contenders"]:
        if row["kind"] == "drainpipe":
            assert row["ceiling"] in ceilings
            assert row["ceiling"].split()[-1] == row["name"].split()[-1]
            assert row["ceiling_pct"] > 0
    large = results["scenarios"]["large"]
    # two sizes on three backends, each at high_water = 4 x size and the default
    assert len(large) == 12
    assert sum(row["high_water"] == 4 * row["size"] for row in large) == 6
    for row in results["scenarios"]["latency"]:
        # both contenders measured in every round, on the same connection
        assert len(row["direct"]) == len(row["drainpipe"]) == results["rounds"]
        assert min(row["direct"] + row["drainpipe"]) > 0
    for row in results["scenarios"]["memory"]:
        # send() keeps the buffer bounded: at most high_water plus one message
        assert 0 < row["peak_buffered_bytes"] <= row["limit"]
        series = row["series"]
        assert max(series["buffered_bytes"]) == row["peak_buffered_bytes"]
        assert len(series["seconds"]) == len(series["buffered_bytes"])
    for row in results["scenarios"]["idle"]:
        assert row["anyio"] > 0
        assert row["drainpipe"] > 0
        assert ("asyncio streams" in row) is (row["backend"] != "trio")
    imports = {row["module"]: row for row in results["scenarios"]["import"]}
    assert list(imports) == ["anyio", "drainpipe", "drainpipe.compat"]
    for row in imports.values():
        assert len(row["times_ms"]) >= 5
        assert row["median_ms"] > 0
        assert row["added_ms"] == row["median_ms"] - imports["anyio"]["median_ms"]
    assert imports["anyio"]["added_ms"] == 0
    assert results["machine"]["date"]
    assert results["command"] == f"python -m drainpipe bench --smoke --json {output}"
    assert results["machine"]["versions"]["anyio"]
    table = capsys.readouterr().out
    assert "1. small messages" in table
    assert "5. slow consumer" in table
    assert "6. idle connections" in table
    assert "7. import" in table
    assert "% of ceiling send() [trio]" in table
    # goals are printed beside the figures, never judged on this machine
    assert "PASS" not in table
    assert "target" not in table


def test_scenarios_can_be_chosen(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    assert _bench.main(["--smoke", "--scenarios", "memory", "--json", str(output)]) == 0
    assert set(json.loads(output.read_text())["scenarios"]) == {"memory"}


def test_a_short_count_fails_loudly() -> None:
    with pytest.raises(RuntimeError, match="received 99 bytes, not 100"):
        _bench.check(99, 100)


def test_a_missing_backend_is_skipped_with_a_note(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    without_uvloop = {k: v for k, v in _bench.BACKENDS.items() if k != "uvloop"}
    monkeypatch.setattr(_bench, "BACKENDS", without_uvloop)
    output = tmp_path / "results.json"
    arguments = ["--smoke", "--scenarios", "small,idle", "--json", str(output)]
    assert _bench.main(arguments) == 0
    assert "(uvloop is not installed: skipping its contenders)" in (
        capsys.readouterr().out
    )
    results = json.loads(output.read_text())
    names = [row["name"] for row in results["scenarios"]["small"]["contenders"]]
    assert not [name for name in names if "uvloop" in name]
    assert [row["backend"] for row in results["scenarios"]["idle"]] == [
        "asyncio",
        "trio",
    ]


def test_installed_tells_whether_a_backend_imports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _bench.installed("asyncio")
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now fails
    assert not _bench.installed("uvloop")


def test_drainpipe_is_reported_as_a_share_of_its_ceiling() -> None:
    def timed(name: str, *times: float) -> _bench.Contender:
        return _bench.Contender(name, lambda port: 0.0, list(times))

    baseline = timed("asyncio write+drain", 4.0, 4.0, 5.0)
    buffered = timed("drainpipe send() [trio]", 0.5, 0.4, 0.6)
    ceiling = timed("ceiling send() [trio]", 0.2, 0.1, 0.3)
    lines: list[str] = []
    rows = _bench.small_rows(
        [baseline, buffered, ceiling],
        {buffered.name: ceiling},
        1000,
        lines,
    )
    assert [row["kind"] for row in rows] == ["baseline", "drainpipe", "ceiling"]
    assert rows[1]["ceiling"] == "ceiling send() [trio]"
    assert rows[1]["ceiling_pct"] == 40.0  # median 0.2 s against median 0.5 s
    assert rows[1]["ratio"] == 8.0
    assert "ceiling_pct" not in rows[0]
    assert "ceiling_pct" not in rows[2]
    assert lines[1].endswith(" 40.0 % of ceiling send() [trio]")
