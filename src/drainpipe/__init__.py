"""A write-behind send buffer with back-pressure for any AnyIO byte stream."""

from typing import TYPE_CHECKING

from ._stream import BufferedByteSendStream, BufferStatistics
from ._version import __version__

if TYPE_CHECKING:
    from ._duplex import BufferedByteStream

__all__ = [
    "BufferStatistics",
    "BufferedByteSendStream",
    "BufferedByteStream",
    "__version__",
]


def __getattr__(name: str) -> object:
    # BufferedByteStream subclasses AnyIO's, whose module is loaded on first use only.
    if name == "BufferedByteStream":
        from ._duplex import BufferedByteStream

        globals()[name] = BufferedByteStream
        return BufferedByteStream

    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
