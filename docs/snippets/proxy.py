"""A TCP proxy: two relays, each with back-pressure from the side it writes to."""

from functools import partial

import anyio
import anyio.abc

from drainpipe import BufferedByteSendStream


async def relay(
    source: anyio.abc.ByteReceiveStream, out: BufferedByteSendStream
) -> None:
    async for chunk in source:
        out.write(chunk)
        await out.drain()  # stop reading while the other side is slow
    await out.send_eof()  # pass the half-close on


async def proxy(client: anyio.abc.SocketStream, upstream_port: int) -> None:
    upstream = await anyio.connect_tcp("127.0.0.1", upstream_port)
    async with (
        BufferedByteSendStream(upstream) as to_upstream,
        BufferedByteSendStream(client) as to_client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(relay, client, to_upstream)
        tg.start_soon(relay, upstream, to_client)
    # both directions ended: leaving the blocks closed both connections


async def echo(stream: anyio.abc.SocketStream) -> None:
    async with stream:
        async for chunk in stream:
            await stream.send(chunk)


async def main() -> None:
    """Client -> proxy -> echo server and back; 4 MiB must come back intact."""
    data = bytes(range(256)) * 16 * 1024
    echo_listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    proxy_listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with echo_listener, proxy_listener, anyio.create_task_group() as tg:
        echo_port = echo_listener.extra(anyio.abc.SocketAttribute.local_port)
        tg.start_soon(echo_listener.serve, echo)
        tg.start_soon(proxy_listener.serve, partial(proxy, upstream_port=echo_port))
        port = proxy_listener.extra(anyio.abc.SocketAttribute.local_port)
        async with await anyio.connect_tcp("127.0.0.1", port) as tcp:

            async def upload() -> None:
                for offset in range(0, len(data), 65536):
                    await tcp.send(data[offset : offset + 65536])
                await tcp.send_eof()

            async with anyio.create_task_group() as client:
                client.start_soon(upload)
                echoed = b"".join([chunk async for chunk in tcp])
        tg.cancel_scope.cancel()

    assert echoed == data


if __name__ == "__main__":
    anyio.run(main)
