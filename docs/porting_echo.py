"""The echo client and server from the "Streams" page of the asyncio documentation,
ported to ``drainpipe.compat`` by the steps in porting.md.

The one other change: the port is a parameter instead of 8888, so that
tests/test_compat.py, which runs this pair on every backend, can use a free one.
"""

from __future__ import annotations

import anyio

from drainpipe import compat


async def tcp_echo_client(message: str, port: int) -> None:
    async with compat.open_connection("127.0.0.1", port) as (reader, writer):
        print(f"Send: {message!r}")
        writer.write(message.encode())
        await writer.drain()

        data = await reader.read(100)
        print(f"Received: {data.decode()!r}")

        print("Close the connection")
        writer.close()
        await writer.wait_closed()


async def handle_echo(reader: compat.StreamReader, writer: compat.StreamWriter) -> None:
    data = await reader.read(100)
    message = data.decode()
    addr = writer.get_extra_info("peername")

    print(f"Received {message!r} from {addr!r}")

    print(f"Send: {message!r}")
    writer.write(data)
    await writer.drain()

    print("Close the connection")
    writer.close()
    await writer.wait_closed()


async def main(port: int) -> None:
    async with compat.start_server(handle_echo, "127.0.0.1", port) as server:
        addrs = ", ".join(str(sock.getsockname()) for sock in server.sockets)
        print(f"Serving on {addrs}")

        async with server:
            await server.serve_forever()


if __name__ == "__main__":
    anyio.run(main, 8888)
