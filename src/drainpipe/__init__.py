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


def __getattr__(name: str) -> object:
    # Loaded on first use: BufferedByteStream subclasses AnyIO's buffered stream,
    # and BufferStatistics is a dataclass (see the benchmark's import scenario).
    if name == "BufferedByteStream":
        from ._duplex import BufferedByteStream

        globals()[name] = BufferedByteStream
        return BufferedByteStream

    if name == "BufferStatistics":
        from ._statistics import BufferStatistics

        globals()[name] = BufferStatistics
        return BufferStatistics

    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
