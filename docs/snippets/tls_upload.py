"""Over TLS: the same calls; no half-close, large writes sliced without a copy."""

import hashlib
import ssl

import anyio
import anyio.abc
import trustme  # a throwaway certificate authority, so the example runs anywhere
from anyio.streams.tls import TLSListener, TLSStream

from drainpipe import BufferedByteSendStream


async def upload(tls: anyio.abc.ByteStream, blocks: list[bytes]) -> None:
    async with BufferedByteSendStream(tls, high_water=256 * 1024) as out:
        for block in blocks:
            await out.send(block)
        try:
            await out.send_eof()
        except NotImplementedError:  # TLS cannot half-close; the stream stays usable
            out.write(b"\n")
    # leaving the block flushed, then closed the TLS session (close_notify)


async def main() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    digest = hashlib.sha256()
    done = anyio.Event()

    async def receive_all(stream: TLSStream) -> None:
        async with stream:  # closing answers the client's close_notify
            async for chunk in stream:
                digest.update(chunk)
        done.set()

    blocks = [bytes([number]) * 300_000 for number in range(10)]
    tcp_listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = tcp_listener.extra(anyio.abc.SocketAttribute.local_port)
    listener = TLSListener(tcp_listener, server_context)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, receive_all)
        tls = await anyio.connect_tcp(
            "127.0.0.1", port, ssl_context=client_context, tls_hostname="localhost"
        )
        await upload(tls, blocks)
        await done.wait()
        tg.cancel_scope.cancel()

    assert digest.hexdigest() == hashlib.sha256(b"".join([*blocks, b"\n"])).hexdigest()


if __name__ == "__main__":
    anyio.run(main)
