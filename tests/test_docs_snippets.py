"""Every code sample in the documentation runs, on every backend.

The pages under docs/ include their Python code from files (``literalinclude``): the
snippets in docs/snippets/ are run here, each one's ``main()`` asserting its own
result; the programs in examples/ are tested by tests/test_examples.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from types import ModuleType

pytestmark = pytest.mark.anyio

DOCS = Path(__file__).resolve().parent.parent / "docs"
SNIPPETS = sorted((DOCS / "snippets").glob("*.py"))


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_snippet_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", SNIPPETS, ids=[path.stem for path in SNIPPETS])
async def test_snippet_runs_and_asserts_its_result(path: Path) -> None:
    await load(path).main()


#: Files whose code the test suite runs: the snippets (above), the examples
#: (tests/test_examples.py) and the ported echo pair (tests/test_compat.py).
TESTED = {
    *SNIPPETS,
    *(DOCS.parent / "examples").glob("*.py"),
    DOCS / "porting_echo.py",
}


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda page: page.stem)
def test_pages_take_their_python_code_from_tested_files(page: Path) -> None:
    lines = page.read_text(encoding="utf-8").splitlines()
    inline = [line for line in lines if line.strip() in {"```python", "```py"}]
    assert inline == [], "a Python block written in the page is run by no test"
    for line in lines:
        if line.startswith("```{literalinclude}"):
            target = (page.parent / line.split(maxsplit=1)[1]).resolve()
            if target.suffix == ".json":
                # the output of a run (make plots), not code
                assert target.parent == DOCS / "_static"
                assert target.is_file()
                continue
            assert target in TESTED, f"{target} is shown but run by no test"
