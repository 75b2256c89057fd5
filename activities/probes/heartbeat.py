"""Heartbeating shared by the probe activities (``observe``, ``wait_until``, ``watch``) and their cancel test.

A probe activity heartbeats in the background while a slow sample is in flight, so a cancel from the workflow is
delivered within :data:`HEARTBEAT_EVERY` seconds; on a cancel it tells the workflow's own (return what was seen)
from a worker shutdown, pause or reset (propagate, so Temporal retries the attempt).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from temporalio import activity

HEARTBEAT_EVERY = 0.5
"""Seconds between heartbeats while a block is in flight: a cancel reaches the activity this fast."""


@contextlib.asynccontextmanager
async def heartbeating(details: Callable[[], tuple[object, ...]]) -> AsyncIterator[None]:
    """Heartbeat ``details()`` in the background every :data:`HEARTBEAT_EVERY` seconds while the block runs."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY)
            activity.heartbeat(*details())

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        # wait(), not await: it does not raise the heartbeat task's CancelledError into the activity.
        await asyncio.wait([task])


def cancelled_by_workflow() -> bool:
    """Whether the running activity's cancel came from its workflow (not a worker shutdown, pause or reset)."""
    details = activity.cancellation_details()
    return bool(
        details is not None
        and details.cancel_requested
        and not (details.worker_shutdown or details.paused or details.reset)
    )
