"""The demo behind ``make demo`` runs and verifies what it sent."""

from __future__ import annotations

import importlib.metadata
import io
from typing import TYPE_CHECKING

import drainpipe
from drainpipe import _demo
from drainpipe.__main__ import main

if TYPE_CHECKING:
    import pytest


def test_demo_shows_back_pressure_and_verifies_every_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_demo, "TOTAL_BYTES", 3 * 1024 * 1024)
    output = io.StringIO()
    assert _demo.main(output) == 0
    text = output.getvalue()
    for backend in ("asyncio", "asyncio+uvloop", "trio"):
        assert f"  {backend}: 3072 KiB" in text
    assert text.count("... OK") == 3
    assert "MISMATCH" not in text
    assert "paused" in text  # the bar showed the stream paused at least once


def test_bar_marks_both_water_marks() -> None:
    class Fake:
        high_water = 100
        low_water = 25
        buffered_bytes = 50
        paused = True

    line = _demo.bar(Fake())  # type: ignore[arg-type]
    assert line.index("L") < line.index("H")
    assert line.count("#") == 50 * _demo.BAR_WIDTH // 150 - 1  # L sits in the fill
    assert line.endswith("0 KiB paused")


def test_messages_add_up_to_the_total() -> None:
    chunks = list(_demo.messages(10_500, 1000))
    assert sum(map(len, chunks)) == 10_500
    assert len(set(chunks)) == len(chunks)  # every message is distinct


def test_unknown_command_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nonsense"]) == 2
    assert "usage: python -m drainpipe" in capsys.readouterr().err


def test_help_lists_every_command_and_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for word in ("demo", "bench", "--version", "--quick", "--smoke", "--json"):
        assert word in text
    assert "--scenarios" in text
    assert "small, large, tls, latency" in text


def test_an_unknown_scenario_is_refused_naming_the_known_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "--smoke", "--scenarios", "small,bogus"]) == 2
    assert "unknown scenario(s) bogus; choose from small" in capsys.readouterr().err


def test_version_is_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"drainpipe {drainpipe.__version__}\n"
    assert drainpipe.__version__ == importlib.metadata.version("drainpipe")
