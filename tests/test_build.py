"""The two builds of drainpipe's core: compiled by mypyc, and pure Python.

``make test`` runs the suite twice: on the editable install, whose core is the
Python source (with coverage), and on a wheel built as users get it, whose core
mypyc compiled (``hatch_build.py``). ``DRAINPIPE_CORE`` says which core a run must
be testing, so that neither run can test the other core by mistake. The wheel
builds themselves are slow tests.
"""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Coroutine
from pathlib import Path

import pytest

from drainpipe import BufferedByteSendStream, BufferedByteStream
from drainpipe._core import COMPILED, HotPath
from drainpipe.testing import buffered_scripted_stream

ROOT = Path(__file__).parent.parent
#: What a wheel is built from (the Makefile copies the same).
PROJECT_FILES = ("pyproject.toml", "hatch_build.py", "README.md", "LICENSE", "src")


def test_the_core_is_the_one_this_run_expects() -> None:
    # A compiled method is a C descriptor, not a Python function.
    compiled = not isinstance(HotPath.__dict__["write"], type(build_wheel))
    assert compiled == COMPILED
    # Compiled, HotPath must be a native class (its attributes in C fields, its
    # methods called directly), not a Python class of compiled functions, which
    # mypyc makes of a class it cannot compile natively.
    slot = type(HotPath.__dict__["_send_buffer"]).__name__
    assert slot == ("getset_descriptor" if COMPILED else "member_descriptor")
    expected = os.environ.get("DRAINPIPE_CORE")
    if expected is not None:
        assert expected in {"compiled", "python"}, expected
        assert (expected == "compiled") == COMPILED


@pytest.mark.anyio
async def test_the_hot_path_is_made_of_coroutine_functions_on_either_core() -> None:
    """Code that checks before awaiting (a framework's callback, a task spawner)
    must see send() and drain() as what they are, compiled or not."""
    async with buffered_scripted_stream() as (out, wire):
        for method in (
            out.send,
            out.drain,
            BufferedByteSendStream.send,
            BufferedByteStream.send,
            BufferedByteStream.drain,
        ):
            assert inspect.iscoroutinefunction(method), method
        assert not inspect.iscoroutinefunction(out.write)
        coroutine = out.send(b"sent")
        assert isinstance(coroutine, Coroutine)
        await coroutine
        await out.drain()
        out.write(b" and written")
    assert wire.data == b"sent and written"


def build_wheel(tmp_path: Path, **environment: str) -> Path:
    """Build drainpipe's wheel from a copy of the project (a build compiles in
    place, and must not touch the tree the other tests import), with the pip of a
    new virtual environment, and return it."""
    project = tmp_path / "project"
    project.mkdir()
    for name in PROJECT_FILES:
        if name != "src":
            shutil.copy(ROOT / name, project / name)
    shutil.copytree(
        ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__")
    )
    # A fresh environment, as where pip builds drainpipe before installing AnyIO:
    # the build must not depend on what the builder's environment holds.
    subprocess.run([sys.executable, "-m", "venv", tmp_path / "venv"], check=True)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            tmp_path / "venv" / "bin" / "python",
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            wheels,
            project,
        ],
        check=True,
        env={**os.environ, **environment},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    (wheel,) = wheels.glob("drainpipe-*.whl")
    return wheel


def extensions_in(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return sorted(
            name for name in archive.namelist() if name.endswith((".so", ".pyd"))
        )


def compiler_found() -> bool:
    """Whether the C compiler a build would use is installed."""
    return shutil.which(os.environ.get("CC", "cc")) is not None


@pytest.mark.slow
def test_the_wheel_carries_the_compiled_core_where_a_compiler_is_found(
    tmp_path: Path,
) -> None:
    wheel = build_wheel(tmp_path)
    if compiler_found():
        assert not wheel.name.endswith("-py3-none-any.whl"), wheel.name
        stems = [name.split(".")[0] for name in extensions_in(wheel)]
        assert stems == ["drainpipe/_core", "drainpipe/_core__mypyc"]
    else:
        assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    # hatch-mypyc compiles in place and hides pyproject.toml meanwhile;
    # hatch_build.py removes what it compiled there. mypy's cache is left, as after
    # any mypy run.
    project = tmp_path / "project"
    left = sorted(path.name for path in project.iterdir())
    assert left == sorted(
        [*PROJECT_FILES, *([".mypy_cache"] if compiler_found() else [])]
    )
    assert [path.name for path in project.rglob("*.so")] == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "environment",
    [{"CC": "false"}, {"DRAINPIPE_PURE_PYTHON": "1"}],
    ids=["no-working-compiler", "DRAINPIPE_PURE_PYTHON"],
)
def test_a_build_that_cannot_or_must_not_compile_gives_the_pure_wheel(
    tmp_path: Path, environment: dict[str, str]
) -> None:
    wheel = build_wheel(tmp_path, **environment)
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    assert extensions_in(wheel) == []
    with zipfile.ZipFile(wheel) as archive:
        assert "drainpipe/_core.py" in archive.namelist()


@pytest.mark.slow
def test_a_build_that_must_compile_fails_instead_of_falling_back(
    tmp_path: Path,
) -> None:
    with pytest.raises(subprocess.CalledProcessError):
        build_wheel(tmp_path, CC="false", DRAINPIPE_REQUIRE_COMPILED="1")
    assert not (tmp_path / "wheels").exists() or not list(
        (tmp_path / "wheels").iterdir()
    )
