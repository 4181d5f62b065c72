"""Write the idle-connection table of the performance page from the benchmark's
JSON: ``docs/_static/idle.md``, included by ``docs/performance.md``.

``make plots`` runs it after the benchmark, and the test suite checks that the
committed table is what this script makes of the committed JSON::

    python -m drainpipe bench --quick --scenarios idle --json docs/_static/idle.json
    python docs/idle_table.py docs/_static/idle.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).parent / "_static" / "idle.md"


def table(results: dict[str, Any]) -> str:
    """The Markdown table, and the machine and command it came from."""
    machine = results["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    lines = [
        "| backend | AnyIO stream | drainpipe on top of it | asyncio reader + writer |",
        "|---|---:|---:|---:|",
    ]
    for row in results["scenarios"]["idle"]:
        asyncio_streams = row.get("asyncio streams")
        lines.append(
            f"| {row['backend']} | {row['anyio']:,.0f} B "
            f"| +{row['drainpipe']:,.0f} B "
            f"| {'—' if asyncio_streams is None else f'{asyncio_streams:,.0f} B'} |"
        )
    connections = results["scenarios"]["idle"][0]["connections"]
    lines += [
        "",
        (
            f"Bytes per connection, {connections:,} idle connections over UNIX socket "
            f"pairs, by tracemalloc. `{results['command']}` on {machine['platform']}, "
            f"{machine['cpu']}, {machine['cpus']} CPUs, Python {machine['python']}, "
            f"{versions}, {machine['date']}."
        ),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    results = json.loads(Path(sys.argv[1]).read_text())
    OUTPUT.write_text(table(results))
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
