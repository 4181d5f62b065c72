"""What :meth:`BufferedByteSendStream.statistics` returns.

A module of its own, loaded on first use, so that ``import drainpipe`` does not
load :mod:`dataclasses` (see the benchmark's import scenario).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BufferStatistics:
    """A snapshot of a :class:`BufferedByteSendStream`'s state.

    .. versionadded:: 0.1
    """

    #: bytes accepted by ``write()``/``send()`` but not yet accepted by the wrapped
    #: stream (a piece in flight still counts)
    buffered_bytes: int
    #: the high watermark in bytes
    high_water: int
    #: the low watermark in bytes
    low_water: int
    #: whether the buffer is above its high watermark and has not yet fallen to its
    #: low watermark
    paused: bool
    #: bytes accepted by ``write()``, ``writelines()``, ``send()`` and
    #: ``send_nowait()`` since the stream was created
    bytes_written: int
    #: bytes accepted by the wrapped stream
    bytes_sent: int
    #: number of completed writes to the wrapped stream: calls of its ``send()``
    #: that returned and, on AnyIO's socket streams, ``writev()`` calls on its socket
    #: that wrote something (see :class:`BufferedByteSendStream`)
    send_calls: int
    #: number of tasks waiting in ``send()`` (for their turn), ``drain()`` (for a
    #: resume), or ``flush()``, ``send_eof()`` and ``aclose()`` (for their bytes
    #: to be sent)
    tasks_waiting: int
