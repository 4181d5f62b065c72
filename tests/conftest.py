from __future__ import annotations

import pytest
import trustme

from tests.backends import BACKENDS


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Every async test runs on asyncio, asyncio+uvloop and trio."""
    backend: tuple[str, dict[str, object]] = request.param
    return backend


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A certificate authority for the TLS tests."""
    return trustme.CA()
