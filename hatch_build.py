"""Build the wheel with drainpipe's core compiled by mypyc wherever that works.

``src/drainpipe/_core.py`` (the byte accounting and the calls a producer makes
once per message) is compiled by hatch-mypyc into a C extension that Python picks
over the ``.py`` beside it. Anything that stops the compilation (no C compiler, no
Python headers, an interpreter mypyc does not support) leaves a pure-Python wheel
that behaves the same, only slower, with a warning. Editable installs stay pure
Python (the test suite measures coverage there), and so does any build with
``DRAINPIPE_PURE_PYTHON=1`` in its environment.
"""

from __future__ import annotations

import os
from typing import Any

from hatch_mypyc.plugin import MypycBuildHook


class CompiledCore(MypycBuildHook):
    """hatch-mypyc's hook, falling back to pure Python instead of failing."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable" or os.environ.get("DRAINPIPE_PURE_PYTHON"):
            return

        try:
            super().initialize(version, build_data)
        except Exception as exc:  # noqa: BLE001 - any failure: the pure wheel
            self.app.display_warning(
                f"drainpipe: the core could not be compiled, so this wheel is "
                f"pure Python (it works the same, only slower): {exc}"
            )

    def finalize(
        self, version: str, build_data: dict[str, Any], artifact_path: str
    ) -> None:
        # hatch-mypyc compiles in place: the extensions are in the wheel now, and
        # left in src/ they would shadow the Python source of an editable install.
        self.clean([version])


def get_build_hook() -> type[CompiledCore]:
    """What hatchling loads from this file (the module holds two hook classes)."""
    return CompiledCore
