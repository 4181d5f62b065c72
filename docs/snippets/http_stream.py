"""Stream an HTTP/1.1 response in chunks with h11 (server and client)."""

import anyio
import anyio.abc
import h11

from drainpipe import BufferedByteSendStream


def encode(connection: h11.Connection, event: h11.Event) -> bytes:
    data = connection.send(event)
    assert data is not None  # None only for h11.ConnectionClosed
    return data


async def next_event(
    connection: h11.Connection, stream: anyio.abc.ByteReceiveStream
) -> h11.Event:
    while (event := connection.next_event()) is h11.NEED_DATA:
        connection.receive_data(await stream.receive())
    assert isinstance(event, h11.Event)  # not PAUSED: one request per connection
    return event


async def stream_numbers(client: anyio.abc.SocketStream) -> None:
    connection = h11.Connection(h11.SERVER)
    async with BufferedByteSendStream(client) as out:
        while not isinstance(await next_event(connection, client), h11.EndOfMessage):
            pass  # read the request up to its end
        headers = [("content-type", "text/plain"), ("transfer-encoding", "chunked")]
        out.write(encode(connection, h11.Response(status_code=200, headers=headers)))
        for number in range(10_000):
            out.write(encode(connection, h11.Data(data=b"%d\n" % number)))
            await out.drain()  # the client reads slowly? wait here, not in memory
        out.write(encode(connection, h11.EndOfMessage()))


async def get(port: int) -> tuple[int, bytes]:
    connection = h11.Connection(h11.CLIENT)
    async with await anyio.connect_tcp("127.0.0.1", port) as tcp:
        request = h11.Request(method="GET", target="/", headers=[("host", "local")])
        await tcp.send(
            encode(connection, request) + encode(connection, h11.EndOfMessage())
        )
        status, body = 0, bytearray()
        while not isinstance(
            event := await next_event(connection, tcp), h11.EndOfMessage
        ):
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
    return status, bytes(body)


async def main() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, stream_numbers)
        status, body = await get(listener.extra(anyio.abc.SocketAttribute.local_port))
        tg.cancel_scope.cancel()

    assert status == 200
    assert body == b"".join(b"%d\n" % number for number in range(10_000))


if __name__ == "__main__":
    anyio.run(main)
