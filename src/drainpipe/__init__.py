"""A write-behind send buffer with back-pressure for any AnyIO byte stream."""

from ._duplex import BufferedByteStream
from ._stream import BufferedByteSendStream, BufferStatistics
from ._version import __version__

__all__ = [
    "BufferStatistics",
    "BufferedByteSendStream",
    "BufferedByteStream",
    "__version__",
]
