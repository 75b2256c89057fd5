"""Heartbeats of the probe activities (``observe``, ``wait_until``, ``watch``): sent, resumed from, cancelled by.

A probe activity heartbeats in the background while a slow sample is in flight, so a cancel from the workflow is
delivered within :data:`HEARTBEAT_EVERY` seconds; on a cancel it tells the workflow's own (return what was seen)
from a worker shutdown, pause or reset (propagate, so Temporal retries the attempt); a retried attempt resumes
from the progress its predecessor heartbeated.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from temporalio import activity

HEARTBEAT_EVERY = 0.5
"""Seconds between heartbeats while a block is in flight: a cancel reaches the activity this fast."""

_Progress = TypeVar("_Progress", bound=BaseModel)


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


def handled_workflow_cancel() -> bool:
    """Called in ``except asyncio.CancelledError``: whether the cancel came from the activity's workflow (not a
    worker shutdown, pause or reset). If so it is marked handled (``uncancel``), for the activity answers it by
    returning what it saw; if not, the caller re-raises so that Temporal retries the attempt."""
    details = activity.cancellation_details()
    if not (
        details is not None
        and details.cancel_requested
        and not (details.worker_shutdown or details.paused or details.reset)
    ):
        return False
    current = asyncio.current_task()
    if current is not None:
        current.uncancel()
    return True


def heartbeated(model: type[_Progress]) -> _Progress | None:
    """The progress a previous attempt of the running activity heartbeated (its first detail) as ``model``, else
    ``None``.

    Untyped heartbeat details arrive from the pydantic data converter as plain JSON (a dict), so they are
    validated here; a test environment may hand over the model itself. Details that are not a ``model`` are
    logged and ignored: starting over loses the earlier samples but keeps the drill going, where failing would
    fail every retry.
    """
    details = activity.info().heartbeat_details
    if not details:
        return None
    last = details[0]
    if isinstance(last, model):
        return last.model_copy(deep=True)
    try:
        return model.model_validate(last)
    except ValidationError:
        activity.logger.warning(f"Ignoring heartbeat details that are not a {model.__name__}", exc_info=True)
        return None
