"""asyncio's streams API on AnyIO: a porting layer for code written against
:func:`asyncio.open_connection` and :func:`asyncio.start_server`.

The classes keep asyncio's names, methods and exceptions
(:exc:`asyncio.IncompleteReadError`, :exc:`asyncio.LimitOverrunError`,
:exc:`ConnectionResetError`, …) so that existing ``except`` clauses keep working,
on asyncio and on trio. What changes is ownership: every connection and every
server lives in an ``async with`` block that owns its background work and closes
it on the way out::

    async with compat.open_connection("127.0.0.1", 8888) as (reader, writer):
        writer.write(b"ping\\n")
        await writer.drain()
        print(await reader.readline())

The writer is a :class:`~drainpipe.BufferedByteSendStream` underneath
(:attr:`StreamWriter.send_stream`); the reader pulls from the AnyIO stream only
when a read needs more bytes. ``docs/porting.md`` maps every method.

.. versionadded:: 0.1
"""

from ._client import open_connection, open_unix_connection
from ._reader import StreamReader
from ._server import Server, start_server, start_unix_server
from ._writer import StreamWriter, WriteTransport

__all__ = [
    "Server",
    "StreamReader",
    "StreamWriter",
    "WriteTransport",
    "open_connection",
    "open_unix_connection",
    "start_server",
    "start_unix_server",
]
