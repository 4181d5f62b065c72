"""The code samples in the public docstrings run, on every backend.

The API reference shows them, so like every sample in the documentation they must
work. Each is run as the body of a coroutine, with the names it leaves to the
reader supplied here.
"""

from __future__ import annotations

import inspect
import textwrap
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio.abc import SocketAttribute
from anyio.streams.stapled import StapledObjectStream

import drainpipe
from drainpipe import BufferedByteSendStream, BufferedByteStream, compat, testing
from drainpipe.testing import ScriptedSendStream, buffered_scripted_stream, settle

if TYPE_CHECKING:
    from anyio.abc import SocketStream

pytestmark = pytest.mark.anyio


def sample(docstring: str | None) -> str:
    """The indented block after the first line ending in ``::``."""
    assert docstring is not None
    lines = inspect.cleandoc(docstring).splitlines()
    start = next(number for number, line in enumerate(lines) if line.endswith("::"))
    block: list[str] = []
    for line in lines[start + 1 :]:
        if line.strip() and not line[0].isspace():
            break
        block.append(line)
    code = textwrap.dedent("\n".join(block)).strip()
    assert code
    return code


async def run(code: str, namespace: dict[str, Any]) -> None:
    source = "async def _sample():\n" + textwrap.indent(code, "    ")
    exec(compile(source, "<docstring>", "exec"), namespace)  # noqa: S102
    await namespace["_sample"]()


def test_sample_extraction_takes_the_whole_block() -> None:
    code = sample(testing.__doc__)
    assert code.startswith("async with buffered_scripted_stream(")
    assert code.endswith('assert wire.data == b"x" * 2000')


async def test_buffered_byte_send_stream_sample() -> None:
    wire = ScriptedSendStream()
    await run(
        sample(BufferedByteSendStream.__doc__),
        {
            "BufferedByteSendStream": BufferedByteSendStream,
            "tcp_stream": wire,
            "messages": [b"one", b"two", b"three"],
        },
    )
    assert wire.data == b"onetwothree"
    assert wire.closed


async def test_buffered_byte_stream_sample() -> None:
    a_send, b_receive = anyio.create_memory_object_stream[bytes](10)
    b_send, a_receive = anyio.create_memory_object_stream[bytes](10)
    async with (
        StapledObjectStream(a_send, a_receive) as client,
        StapledObjectStream(b_send, b_receive) as peer,
    ):
        await peer.send(b"hello\nworld\n")
        await peer.send_eof()
        await run(
            sample(BufferedByteStream.__doc__),
            {
                "anyio": anyio,
                "BufferedByteStream": BufferedByteStream,
                "client": client,
            },
        )
        assert b"".join([item async for item in peer]) == b"HELLO\nWORLD\n"


async def test_testing_module_sample() -> None:
    await run(
        sample(testing.__doc__),
        {"buffered_scripted_stream": buffered_scripted_stream},
    )


async def test_settle_sample() -> None:
    await run(
        sample(settle.__doc__),
        {
            "anyio": anyio,
            "buffered_scripted_stream": buffered_scripted_stream,
            "settle": settle,
        },
    )


async def test_compat_module_sample(capsys: pytest.CaptureFixture[str]) -> None:
    async def pong(stream: SocketStream) -> None:
        async with stream:
            assert await stream.receive() == b"ping\n"
            await stream.send(b"pong\n")

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, pong)
        port = listener.extra(SocketAttribute.local_port)
        code = sample(compat.__doc__)
        assert "8888" in code
        # The sample's port is the asyncio documentation's 8888; serve a free one.
        await run(code.replace("8888", str(port)), {"compat": compat})
        tg.cancel_scope.cancel()
    assert capsys.readouterr().out == "b'pong\\n'\n"


def test_every_public_docstring_sample_is_run_here() -> None:
    objects: dict[str, object] = {
        "drainpipe.testing": testing,
        "drainpipe.compat": compat,
    }
    for module in (drainpipe, testing, compat):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, str):
                continue  # __version__: data, with no docstring of its own
            objects[name] = obj
            if isinstance(obj, type):
                objects.update(
                    (f"{name}.{attribute}", member)
                    for attribute, member in vars(obj).items()
                    if not attribute.startswith("_")
                )
    with_samples = sorted(
        name
        for name, obj in objects.items()
        if any(line.endswith("::") for line in (inspect.getdoc(obj) or "").splitlines())
    )
    assert with_samples == [
        "BufferedByteSendStream",
        "BufferedByteStream",
        "drainpipe.compat",
        "drainpipe.testing",
        "settle",
    ]
