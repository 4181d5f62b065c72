"""A write-behind send buffer with back-pressure for any AnyIO byte stream."""

from typing import TYPE_CHECKING

from ._stream import BufferedByteSendStream
from ._version import __version__

if TYPE_CHECKING:
    from ._duplex import BufferedByteStream
    from ._statistics import BufferStatistics

__all__ = [
    "BufferStatistics",
    "BufferedByteSendStream",
    "BufferedByteStream",
    "__version__",
]


#: Names loaded on first use, and their modules: BufferedByteStream subclasses
#: AnyIO's buffered stream, and BufferStatistics is a dataclass (see the
#: benchmark's import scenario).
_LAZY = {"BufferedByteStream": "._duplex", "BufferStatistics": "._statistics"}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    from importlib import import_module

    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
