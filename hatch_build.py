"""Build the wheel with drainpipe's core compiled by mypyc wherever that works.

``src/drainpipe/_core.py`` (the byte accounting and the calls a producer makes
once per message) is compiled by hatch-mypyc into a C extension that Python picks
over the ``.py`` beside it. Anything that stops the compilation (no C compiler, no
Python headers, an interpreter mypyc does not support, hatch-mypyc missing from a
build without isolation) leaves a pure-Python wheel that behaves the same, only
slower, with a warning. Editable installs stay pure Python (the test suite
measures coverage there).

Two variables of the build's environment, each on when set to anything but ``""``
or ``0``:

* ``DRAINPIPE_PURE_PYTHON``: build the pure-Python wheel without trying;
* ``DRAINPIPE_REQUIRE_COMPILED``: fail the build instead of falling back (for
  building release wheels, which must not ship pure Python by mistake).

hatch-mypyc compiles in place, in ``src/drainpipe``, and hides ``pyproject.toml``
while it does: build from a copy of the tree if something else uses the tree at
the same time (``make test`` does).
"""

from __future__ import annotations

import os
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

try:
    from hatch_mypyc.plugin import MypycBuildHook
except ImportError as exc:  # a build without isolation, without hatch-mypyc
    _MISSING: ImportError | None = exc
    MypycBuildHook = BuildHookInterface
else:
    _MISSING = None


def _on(name: str) -> bool:
    return os.environ.get(name, "") not in {"", "0"}


class CompiledCore(MypycBuildHook):
    """hatch-mypyc's hook, falling back to pure Python instead of failing."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable" or _on("DRAINPIPE_PURE_PYTHON"):
            return

        try:
            if _MISSING is not None:
                raise _MISSING
            super().initialize(version, build_data)
        except Exception as exc:
            if _on("DRAINPIPE_REQUIRE_COMPILED"):
                raise

            self.app.display_warning(
                f"drainpipe: the core could not be compiled, so this wheel is "
                f"pure Python (it works the same, only slower): {exc}"
            )

    def finalize(
        self, version: str, build_data: dict[str, Any], artifact_path: str
    ) -> None:
        # The extensions are in the wheel now; left in src/ they would shadow the
        # Python source of an editable install.
        if _MISSING is None:
            self.clean([version])


def get_build_hook() -> type[CompiledCore]:
    """What hatchling loads from this file (the module holds two hook classes)."""
    return CompiledCore
