"""A write-behind send buffer with back-pressure for any AnyIO byte stream."""

from ._stream import BufferedByteSendStream, BufferStatistics

__all__ = ["BufferStatistics", "BufferedByteSendStream"]
