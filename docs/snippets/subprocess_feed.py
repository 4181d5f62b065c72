"""Feed a subprocess's stdin: back-pressure from a pipe."""

import hashlib
import sys

import anyio

from drainpipe import BufferedByteSendStream

# The child hashes its stdin until EOF; any command that reads stdin will do.
CHILD = """
import hashlib, sys
digest = hashlib.sha256()
for block in iter(lambda: sys.stdin.buffer.read(65536), b""):
    digest.update(block)
print(digest.hexdigest())
"""


async def hash_in_child(blocks: list[bytes]) -> str:
    async with await anyio.open_process([sys.executable, "-c", CHILD]) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        async with BufferedByteSendStream(process.stdin) as out:
            for block in blocks:
                out.write(block)
                await out.drain()  # waits while the child is behind
        # leaving the block flushed and closed stdin: the child sees EOF
        output = b"".join([chunk async for chunk in process.stdout])
        if await process.wait() != 0:
            raise RuntimeError(f"the child exited with {process.returncode}")
    return output.decode().strip()


async def main() -> None:
    blocks = [b"%d" % number * 1000 for number in range(1000)]
    digest = await hash_in_child(blocks)
    assert digest == hashlib.sha256(b"".join(blocks)).hexdigest()


if __name__ == "__main__":
    anyio.run(main)
