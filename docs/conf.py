"""Sphinx configuration for drainpipe's documentation.

Build with ``make docs`` (``python -m sphinx -W --keep-going -n -b html docs
docs/_build/html``). The build works offline: references to Python, AnyIO, Trio and
typing_extensions objects resolve through the small table in
``_ext/external_refs.py``. With ``DRAINPIPE_DOCS_INTERSPHINX=1`` the full
inventories of docs.python.org, anyio.readthedocs.io and trio.readthedocs.io are
fetched as well (this needs network access) and take precedence over the table.
"""

from __future__ import annotations

import os
import sys
import warnings
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import Any

from sphinx.deprecation import RemovedInSphinx10Warning

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

# sphinx-autodoc-typehints 3.6.1, the newest, calls an API that Sphinx 9 deprecates,
# once per docstring: lines that are not ours to fix and would bury a warning that
# is. Only that plugin's deprecation warnings are silenced.
warnings.filterwarnings(
    "ignore", category=RemovedInSphinx10Warning, module="sphinx_autodoc_typehints"
)

project = "drainpipe"
author = "The drainpipe developers"
copyright = "The drainpipe developers"
release = distribution_version("drainpipe")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx_autodoc_typehints",
    "myst_parser",
    "external_refs",
]

if os.environ.get("DRAINPIPE_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "anyio": ("https://anyio.readthedocs.io/en/stable", None),
        "trio": ("https://trio.readthedocs.io/en/stable", None),
    }

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "snippets", "Thumbs.db", ".DS_Store"]
nitpicky = True

# -- MyST ----------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# -- autodoc ---------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_preserve_defaults = False
typehints_defaults = "comma"
typehints_document_rtype = True
always_use_bars_union = True

# -- HTML ------------------------------------------------------------------------
html_theme = "furo"
html_title = f"drainpipe {release}"
html_static_path = ["_static"]


def hide_private_bases(
    app: object, name: str, obj: object, options: object, bases: list[type]
) -> None:
    """Leave drainpipe's private classes out of the bases a class page shows: the
    compiled core's HotPath holds write(), send() and drain() of
    BufferedByteSendStream, which the page shows as its own."""
    bases[:] = [base for base in bases if not base.__module__.startswith("drainpipe._")]


def skip_anyio_members(
    app: object, what: str, name: str, obj: object, skip: bool, options: object
) -> bool | None:
    """Document what drainpipe's classes inherit from the compiled core (api.rst
    asks for inherited members), not what they inherit from AnyIO: that is on
    AnyIO's pages."""
    function = getattr(obj, "fget", obj)
    module = getattr(function, "__module__", None) or ""
    return True if module.startswith("anyio") else None


def setup(app: Any) -> None:
    app.connect("autodoc-process-bases", hide_private_bases)
    app.connect("autodoc-skip-member", skip_anyio_members)
