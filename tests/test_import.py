"""What ``import drainpipe`` loads: the import budget's invariants, not its time.

The time itself is measured by the benchmark; these tests pin what keeps it low.
Each runs a fresh interpreter, since this one has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Loaded by AnyIO only once a stream is used: a task group, an event, a cancel
# scope, a checkpoint, a socket. ``import drainpipe`` must not load them.
LOADED_ON_FIRST_USE = (
    "anyio._core._eventloop",
    "anyio._core._synchronization",
    "anyio._core._tasks",
    "anyio.abc._sockets",
    "anyio.lowlevel",
    "anyio.streams.buffered",
    "asyncio",
    "dataclasses",
    "ipaddress",
    "selectors",
    "socket",
    "ssl",
    "subprocess",
    "threading",
)


def python_output(code: str) -> str:
    """What ``code`` prints when a fresh interpreter runs it."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return result.stdout


def loaded_after(statement: str) -> set[str]:
    """The modules that ``statement`` loads on top of ``import anyio``."""
    code = (
        "import json, sys, anyio; before = set(sys.modules); "
        f"{statement}; print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    return set(json.loads(python_output(code)))


def test_importing_drainpipe_loads_none_of_anyios_runtime_modules() -> None:
    loaded = loaded_after("import drainpipe")
    assert "drainpipe._stream" in loaded
    assert loaded.isdisjoint(LOADED_ON_FIRST_USE), loaded & set(LOADED_ON_FIRST_USE)


@pytest.mark.parametrize(
    "statement",
    [
        "from drainpipe import BufferedByteStream",
        "import drainpipe; drainpipe.BufferedByteStream",
    ],
)
def test_the_duplex_stream_loads_anyios_buffered_stream_on_first_use(
    statement: str,
) -> None:
    loaded = loaded_after(statement)
    assert {"drainpipe._duplex", "anyio.streams.buffered"} <= loaded


@pytest.mark.parametrize(
    "statement",
    [
        "from drainpipe import BufferStatistics",
        "import drainpipe; drainpipe.BufferStatistics",
    ],
)
def test_the_statistics_class_loads_dataclasses_on_first_use(statement: str) -> None:
    loaded = loaded_after(statement)
    assert {"drainpipe._statistics", "dataclasses"} <= loaded


def test_the_lazy_names_are_the_classes_and_are_listed() -> None:
    import drainpipe
    from drainpipe._duplex import BufferedByteStream
    from drainpipe._statistics import BufferStatistics

    assert drainpipe.BufferedByteStream is BufferedByteStream
    assert drainpipe.BufferStatistics is BufferStatistics
    assert {"BufferedByteStream", "BufferStatistics"} <= set(dir(drainpipe))
    assert set(drainpipe.__all__) <= set(dir(drainpipe))
    with pytest.raises(AttributeError, match="has no attribute 'nonexistent'"):
        drainpipe.nonexistent  # noqa: B018


def test_a_stream_in_use_loads_what_it_needs() -> None:
    # The lazily looked-up names resolve: a stream wraps, writes and closes with
    # nothing but drainpipe and AnyIO imported by the caller.
    code = (
        "import anyio, drainpipe\n"
        "async def main():\n"
        "    send, receive = anyio.create_memory_object_stream(10)\n"
        "    async with drainpipe.BufferedByteSendStream(send) as stream:\n"
        "        stream.write(b'x')\n"
        "        await stream.flush()\n"
        "    print(receive.receive_nowait())\n"
        "anyio.run(main)\n"
    )
    assert python_output(code) == "b'x'\n"


def test_drainpipe_needs_no_mypy_extensions_on_either_core() -> None:
    """The core names mypyc's decorator, which comes with mypy, not with
    drainpipe's dependencies: importing and using it must not need it."""
    code = (
        "import sys; sys.modules['mypy_extensions'] = None; "
        "import anyio, drainpipe; "
        "from drainpipe.testing import buffered_scripted_stream\n"
        "async def main():\n"
        "    async with buffered_scripted_stream() as (out, wire):\n"
        "        out.write(b'ok'); await out.send(b'!'); await out.drain()\n"
        "    assert wire.data == b'ok!', wire.data\n"
        "anyio.run(main)\n"
        "print('mypy_extensions' in sys.modules and sys.modules['mypy_extensions'])"
    )
    assert python_output(code).strip() == "None"


def test_importing_drainpipe_imports_no_ssl_asyncio_or_subprocess() -> None:
    code = (
        "import sys, drainpipe; "
        "print(sorted({'ssl', 'asyncio', 'subprocess'} & set(sys.modules)))"
    )
    assert python_output(code) == "[]\n"
