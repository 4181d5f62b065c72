"""Vectored writes straight to the socket under one of AnyIO's own socket streams.

On loopback TCP each ``send()`` costs the kernel about as much as copying 64 KiB:
20,000 messages of 64 KiB at ``high_water`` 256 KiB, taking turns over 7 rounds
with direct sends (2026-11-25), went out at 1.10x / 0.89x / 0.86x the direct
throughput on asyncio / uvloop / trio with one ``send()`` per piece, and at
1.89x / 1.11x / 1.49x with queued pieces written four at a time by one
``writev()``. AnyIO's streams have no vectored send, so for the stream classes of
AnyIO's own backends, whose buffering is known, the flush task writes to their
socket itself, and hands a piece to the stream's ``send()`` whenever the socket
would block.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from anyio import BrokenResourceError, TypedAttributeProvider
from anyio.abc import SocketAttribute

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._core import Chunk

#: AnyIO stream classes (module, name) that keep no bytes of their own between
#: ``send()`` calls: their ``send()`` returns once the kernel has every byte.
_UNBUFFERED = frozenset(
    {
        ("anyio._backends._trio", "SocketStream"),
        ("anyio._backends._trio", "UNIXSocketStream"),
        ("anyio._backends._asyncio", "UNIXSocketStream"),
    }
)

#: AnyIO's asyncio TCP stream: its ``send()`` may leave bytes in its transport's
#: buffer (asyncio's or uvloop's), which a direct write must never overtake.
_TRANSPORT = ("anyio._backends._asyncio", "SocketStream")


def socket_writer(
    stream: TypedAttributeProvider,
) -> Callable[[Sequence[Chunk]], int] | None:
    """Return a function writing pieces to the socket under ``stream`` without
    waiting, or ``None`` unless ``stream`` is exactly one of AnyIO's own socket
    stream classes (a subclass may do its own thing in ``send()``) on a platform
    with :func:`os.writev`.

    The function returns how many bytes the kernel accepted, from the first piece
    on. It returns 0, writing nothing, if the socket would block, if the stream is
    closed or closing, or if the stream's transport still holds bytes of an
    earlier ``send()``: the caller then hands the next piece to the stream's own
    ``send()``, which waits. Only one task may use it.

    :raises ~anyio.BusyResourceError: if another task is in the stream's ``send()``
        (as that ``send()`` would raise for a second one)
    :raises ~anyio.BrokenResourceError: from the :exc:`OSError` of a failed write
    """
    if not hasattr(os, "writev"):  # pragma: no cover - Windows
        return None

    kind = (type(stream).__module__, type(stream).__qualname__)
    busy: Callable[[], bool]
    if kind in _UNBUFFERED:

        def busy() -> bool:
            return False

    elif kind == _TRANSPORT:
        transport: Any = getattr(stream, "_transport", None)
        if transport is None:  # pragma: no cover - a future AnyIO
            return None

        def busy() -> bool:
            # is_closing() covers the moment between abort() and the socket's close.
            return bool(transport.is_closing() or transport.get_write_buffer_size())

    else:
        return None

    raw_socket = stream.extra(SocketAttribute.raw_socket)
    # AnyIO's own guard: a task of the user's in the stream's send() (a misuse)
    # makes this raise BusyResourceError, as a second send() would, instead of
    # writing into the middle of that task's bytes.
    send_guard: Any = getattr(stream, "_send_guard", None) or nullcontext()
    writev = os.writev

    def write(pieces: Sequence[Chunk]) -> int:
        with send_guard:
            if busy():
                return 0

            descriptor = raw_socket.fileno()  # -1 once closed, never a reused number
            if descriptor < 0:
                return 0

            try:
                return writev(descriptor, pieces)
            except BlockingIOError:
                return 0
            except OSError as exc:
                raise BrokenResourceError from exc

    return write
