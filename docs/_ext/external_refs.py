"""Offline links to the documentation of Python, AnyIO, Trio and typing_extensions.

The docs build runs with ``-n`` (every cross-reference must resolve) and must work
without network access, so intersphinx cannot fetch the inventories of
docs.python.org, anyio.readthedocs.io and trio.readthedocs.io. This extension
resolves the references that nothing else resolved (it runs after intersphinx when
``DRAINPIPE_DOCS_INTERSPHINX=1`` enables that) to links into those sites:

* ``anyio.X``: AnyIO documents its whole public API on one page, ``api.html``,
  anchored by the full name (``anyio.abc._streams.X`` is written ``anyio.abc.X``
  there);
* ``trio.X``: the pages listed in :data:`TRIO_PAGES`;
* the standard library: ``library/<module>.html#<name>``, or the page in
  :data:`PYTHON_PAGES` where Python documents a module over several pages;
* ``typing_extensions.X`` (and ``typing.Buffer``, as which sphinx-autodoc-typehints
  renders ``typing_extensions.Buffer`` before Python 3.12).

A target is linked only if it can be imported, so a misspelt name still fails the
build; one outside these packages is left alone and fails it too.
"""

from __future__ import annotations

import builtins
import importlib
from typing import TYPE_CHECKING, Any

from docutils import nodes

if TYPE_CHECKING:
    from docutils.nodes import Element, TextElement
    from sphinx.addnodes import pending_xref
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

PYTHON = "https://docs.python.org/3/"
ANYIO = "https://anyio.readthedocs.io/en/stable/"
TRIO = "https://trio.readthedocs.io/en/stable/"
TYPING_EXTENSIONS = "https://typing-extensions.readthedocs.io/en/latest/"

#: Modules that Python documents over several pages: a name's prefix -> its page.
PYTHON_PAGES = {
    "asyncio.CancelledError": "library/asyncio-exceptions.html",
    "asyncio.IncompleteReadError": "library/asyncio-exceptions.html",
    "asyncio.LimitOverrunError": "library/asyncio-exceptions.html",
    "asyncio.open_connection": "library/asyncio-stream.html",
    "asyncio.open_unix_connection": "library/asyncio-stream.html",
    "asyncio.start_server": "library/asyncio-stream.html",
    "asyncio.start_unix_server": "library/asyncio-stream.html",
    "asyncio.StreamReader": "library/asyncio-stream.html",
    "asyncio.StreamWriter": "library/asyncio-stream.html",
    "asyncio.Server": "library/asyncio-eventloop.html",
    "asyncio.Transport": "library/asyncio-protocol.html",
    "asyncio.WriteTransport": "library/asyncio-protocol.html",
}

#: Names Python documents under another anchor.
PYTHON_ANCHORS = {
    # The enum is described with the AF_* constants, not as a class of its own.
    "socket.AddressFamily": "socket.AF_INET",
}

#: Trio's reference pages: a name's prefix -> its page.
TRIO_PAGES = {
    "trio.SocketStream": "reference-io.html",
    "trio.SSLStream": "reference-io.html",
    "trio.abc.SendStream": "reference-io.html",
    "trio.abc.HalfCloseableStream": "reference-io.html",
    "trio.lowlevel.checkpoint": "reference-lowlevel.html",
    "trio.run": "reference-core.html",
    "trio.sleep": "reference-core.html",
    "trio.Cancelled": "reference-core.html",
}


def _importable(target: str) -> bool:
    """Whether ``target`` names a module, or an attribute reachable from one."""
    parts = target.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue

        for attribute in parts[split:]:
            if not hasattr(obj, attribute):
                # Dataclass fields and instance attributes live on instances only.
                annotations = getattr(obj, "__annotations__", {})
                return attribute in annotations and attribute == parts[-1]

            obj = getattr(obj, attribute)

        return True

    return False


def _longest_prefix(target: str, pages: dict[str, str]) -> str | None:
    for prefix in sorted(pages, key=len, reverse=True):
        if target == prefix or target.startswith(prefix + "."):
            return pages[prefix]

    return None


def external_url(target: str) -> str | None:
    """The URL documenting ``target``, or ``None`` if this table does not know it."""
    if target == "typing.Buffer":  # typing_extensions.Buffer before Python 3.12
        return f"{TYPING_EXTENSIONS}#typing_extensions.Buffer"

    if not _importable(target):
        return None

    if target.startswith("anyio."):
        parts = target.split(".")
        public = [part for part in parts[:-1] if not part.startswith("_")]
        return f"{ANYIO}api.html#{'.'.join([*public, parts[-1]])}"

    if target.startswith("trio."):
        page = _longest_prefix(target, TRIO_PAGES)
        return None if page is None else f"{TRIO}{page}#{target}"

    if target.startswith("typing_extensions."):
        return f"{TYPING_EXTENSIONS}#{target}"

    if "." not in target:
        return None  # builtins: Sphinx's own resolver shows them as plain names

    module = target.split(".")[0]
    if module in builtins.__dict__ or module.startswith("_"):
        return None

    anchor = PYTHON_ANCHORS.get(target, target)
    page = _longest_prefix(target, PYTHON_PAGES)
    if page is None:
        if module == "asyncio":
            return None  # asyncio spans many pages: add the name to PYTHON_PAGES

        page = f"library/{_documented_module(target)}.html"

    return f"{PYTHON}{page}#{anchor}"


def _documented_module(target: str) -> str:
    """The longest importable module prefix of ``target`` (``collections.abc``)."""
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:split])
        try:
            importlib.import_module(name)
        except ImportError:
            continue

        return name

    return parts[0]


def _resolve(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: TextElement
) -> Element | None:
    if node.get("refdomain") != "py":
        return None

    target = node["reftarget"]
    url = external_url(target)
    if url is None:
        return None

    reference = nodes.reference(
        "", "", internal=False, refuri=url, reftitle=f"(external) {target}"
    )
    reference += contnode
    return reference


def setup(app: Sphinx) -> dict[str, Any]:
    # After intersphinx (priority 500): the full inventories win when fetched.
    app.connect("missing-reference", _resolve, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
