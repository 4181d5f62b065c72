"""Waiting for an event so that a deadline always lands.

AnyIO's asyncio backend delivers a cancellation only to a task that is waiting on
a future that is not done yet, and retries once per event loop iteration. A task
whose every wait is resolved before the retry (a producer whose pauses the flush
task ends quickly) is never caught waiting, so a deadline around its loop would
not land. Trio raises a pending cancellation at every checkpoint and needs none of
this; the extra check costs it one cheap call after a wait that happened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from anyio import Event


async def wait(event: Event) -> None:
    """Wait until ``event`` is set, then raise a cancellation that is pending by
    then, even if the event was set first."""
    await event.wait()
    await anyio.lowlevel.checkpoint_if_cancelled()
