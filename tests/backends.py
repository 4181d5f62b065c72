"""The backends every async test runs on (the ``anyio_backend`` fixture's params)."""

from __future__ import annotations

import sys

import pytest

BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(
        ("asyncio", {"use_uvloop": True}),
        id="asyncio+uvloop",
        marks=pytest.mark.skipif(
            sys.platform == "win32", reason="uvloop does not run on Windows"
        ),
    ),
    pytest.param(("trio", {}), id="trio"),
]
