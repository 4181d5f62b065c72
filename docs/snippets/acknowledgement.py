"""flush() is not delivery: when it matters, let the peer acknowledge."""

import anyio
import anyio.abc

from drainpipe import BufferedByteSendStream


async def upload(tcp: anyio.abc.SocketStream, records: list[bytes]) -> None:
    async with BufferedByteSendStream(tcp) as out:
        for record in records:
            await out.send(record)
        await out.send_eof()  # "that was all"
        # The flush task sent every byte, but only the peer knows what arrived:
        ack = await tcp.receive()
    if ack != b"%d" % sum(map(len, records)):
        raise RuntimeError(f"the peer received only {ack.decode()} bytes")


async def count_and_acknowledge(stream: anyio.abc.SocketStream) -> None:
    async with stream:
        received = sum([len(chunk) async for chunk in stream])
        await stream.send(b"%d" % received)


async def main() -> None:
    records = [b"record %d\n" % number for number in range(10_000)]
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, count_and_acknowledge)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        await upload(await anyio.connect_tcp("127.0.0.1", port), records)
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main)
