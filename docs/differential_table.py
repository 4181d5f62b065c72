"""Write the differential suite's table of the porting page from the suite's JSON:
``docs/_static/differential.md``, included by ``docs/porting.md``.

``make plots`` runs the suite with ``DRAINPIPE_DIFFERENTIAL_REPORT`` set, then this
script; the test suite checks that the committed table is what this script makes of
the committed JSON, and that the JSON lists the suite's scenarios and differences::

    DRAINPIPE_DIFFERENTIAL_REPORT=docs/_static/differential.json \\
        python -m pytest -p no:randomly tests/test_differential.py
    python docs/differential_table.py docs/_static/differential.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).parent / "_static" / "differential.md"
BACKENDS = ("asyncio", "asyncio+uvloop", "trio")


def table(report: dict[str, Any]) -> str:
    """The Markdown summary and table of scenarios, and where they came from."""
    runs = report["runs"]
    differences = report["differences"]
    scenarios = report["scenarios"]
    totals = {backend: sum(runs[backend].values()) for backend in BACKENDS}
    lines = [
        (
            f"{len(scenarios)} scenarios; examples compared with asyncio in one run "
            f"of the suite: "
            + ", ".join(f"{totals[backend]:,} on {backend}" for backend in BACKENDS)
            + f"; {len(differences)} differences documented (Python "
            f"{report['python']})."
        ),
        "",
        "| scenario | examples compared (asyncio, uvloop, trio) | difference |",
        "|---|---:|---|",
    ]
    for name in scenarios:
        counts = ", ".join(f"{runs[backend][name]:,}" for backend in BACKENDS)
        difference = differences.get(name)
        note = "none" if difference is None else difference["reason"]
        lines.append(f"| {name} | {counts} | {note} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    report = json.loads(Path(sys.argv[1]).read_text())
    OUTPUT.write_text(table(report))
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
