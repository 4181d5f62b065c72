"""An echo server and its client over TLS, both writing through a
:class:`~drainpipe.BufferedByteSendStream`.

The server echoes whatever it receives with ``write()`` and ``await drain()``: a
client that stops reading its echoes stops the server reading from it, so the server
holds at most ``high_water`` bytes per client. The client sends its messages with
``await send()`` while a second task reads the echoes, and checks that every byte
came back in order.

TLS changes nothing in how the buffer is used; it only cannot half-close, so the
client ends its session by closing it (TLS ``close_notify``), which the server
answers in kind. The certificates come from trustme, a throwaway certificate
authority, so the example runs anywhere without real certificates (``pip install
trustme``; it is in the project's ``test`` dependency group). Run it with::

    python examples/tls_echo.py        # on asyncio
    python examples/tls_echo.py trio   # on trio
"""

from __future__ import annotations

import hashlib
import ssl
import sys
import time
from typing import TYPE_CHECKING

import anyio
import trustme
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSListener

from drainpipe import BufferedByteSendStream

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anyio.streams.tls import TLSStream


def make_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for "localhost", and a client context
    that trusts it, both from a new throwaway certificate authority."""
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    return server_context, client_context


async def echo(client: TLSStream, *, high_water: int = 64 * 1024) -> None:
    """Echo everything back until the client ends the session (a listener's
    handler)."""
    try:
        async with BufferedByteSendStream(client, high_water=high_water) as out:
            async for chunk in client:
                out.write(chunk)
                await out.drain()  # the client is not reading? stop reading too
        # leaving the block sent the rest and closed the session (close_notify)
    except anyio.BrokenResourceError:
        pass  # the client went away without closing the session


async def echo_client(
    port: int, client_context: ssl.SSLContext, messages: Sequence[bytes]
) -> bytes:
    """Send ``messages`` over TLS and return everything echoed back."""
    expected = sum(map(len, messages))
    echoed = bytearray()
    tls = await anyio.connect_tcp(
        "127.0.0.1", port, ssl_context=client_context, tls_hostname="localhost"
    )
    async with BufferedByteSendStream(tls) as out, anyio.create_task_group() as tg:

        async def read_echoes() -> None:
            while len(echoed) < expected:
                echoed.extend(await tls.receive())

        tg.start_soon(read_echoes)  # read while sending, or both sides stall
        for message in messages:
            await out.send(message)
    # Leaving the blocks waited for every echo, then closed the session: that
    # sends close_notify and waits for the server's.
    return bytes(echoed)


def make_messages(count: int, size: int) -> list[bytes]:
    """``count`` distinct messages of ``size`` bytes."""
    return [
        (hashlib.sha256(b"%d" % number).digest() * (size // 32 + 1))[:size]
        for number in range(count)
    ]


async def main(clients: int = 4, messages: int = 2000, size: int = 1000) -> list[bytes]:
    """Run the echo server and ``clients`` concurrent clients, client ``n`` sending
    ``messages`` messages of ``size + n`` bytes; check and return every echo."""
    server_context, client_context = make_contexts()
    sent = [make_messages(messages, size + client) for client in range(clients)]
    echoed: list[bytes] = [b""] * clients

    tcp_listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = tcp_listener.extra(SocketAttribute.local_port)
    started = time.perf_counter()
    async with (
        TLSListener(tcp_listener, server_context) as listener,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(listener.serve, echo)

        async def run_client(number: int) -> None:
            echoed[number] = await echo_client(port, client_context, sent[number])

        async with anyio.create_task_group() as client_group:
            for number in range(clients):
                client_group.start_soon(run_client, number)
        tg.cancel_scope.cancel()
    elapsed = time.perf_counter() - started

    for number, messages_sent in enumerate(sent):
        if echoed[number] != b"".join(messages_sent):
            raise RuntimeError(f"client {number} got back something else")

    total = sum(map(len, echoed))
    print(
        f"{clients} clients each sent {messages} messages over TLS and got every "
        f"byte back: {total // 1024} KiB echoed in {elapsed:.2f} s."
    )
    return echoed


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
