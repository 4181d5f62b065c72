"""The sticky error: a failure of the wrapped stream is reported, at least once."""

import anyio

from drainpipe import BufferedByteSendStream
from drainpipe.testing import ScriptedSendStream


async def reported_by_a_call() -> None:
    wire = ScriptedSendStream()  # a test double: its next send() will fail
    wire.fail_next(ConnectionResetError("peer reset"))
    causes = []
    async with BufferedByteSendStream(wire) as out:
        out.write(b"lost")
        try:
            await out.flush()
        except anyio.BrokenResourceError as exc:
            causes.append(exc.__cause__)

        try:  # sticky: every later call raises it too
            out.write(b"more")
        except anyio.BrokenResourceError as exc:
            causes.append(exc.__cause__)
    # a call reported the failure, so leaving the block is quiet

    assert [type(cause) for cause in causes] == [ConnectionResetError] * 2


async def reported_on_exit() -> None:
    wire = ScriptedSendStream()
    wire.fail_next(ConnectionResetError("peer reset"))
    causes = []
    try:
        async with BufferedByteSendStream(wire) as out:
            out.write(b"lost")  # write() never waits, so it cannot see the failure
    except anyio.BrokenResourceError as exc:  # no call reported it: the exit does
        causes.append(exc.__cause__)

    assert [type(cause) for cause in causes] == [ConnectionResetError]


async def main() -> None:
    await reported_by_a_call()
    await reported_on_exit()


if __name__ == "__main__":
    anyio.run(main)
