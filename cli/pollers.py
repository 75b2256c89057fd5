"""Is a worker there? What ``run``, ``stop`` and ``status`` say at once when nobody polls a drill's task queue.

Temporal lists a task queue's pollers with the time each last polled. A live worker long-polls without pause, and
each poll is held by the server for up to about a minute, so a live worker's last poll is never much older than
that (measured on the dev server: at most 52 s old); a worker that died stays listed, its last poll ageing,
for about five minutes. So: no poller, or none seen within :data:`LIVE_POLL_AGE`, means no worker. A worker that
died less than that ago still looks alive here: ``stop`` then also checks that the stop's workflow task was picked
up (:func:`picked_up`).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

LIVE_POLL_AGE = timedelta(seconds=90)
"""A poller whose last poll is older than this is not polling any more (a live one re-polls within ~70 s)."""

PICKUP_WAIT = 5.0
"""Seconds ``stop`` waits for a worker to pick up the stop before it warns (a live worker takes milliseconds;
a dead worker's sticky queue hands the task back to the shared queue after 2 s)."""


def _ago(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


async def no_worker(client: Client, queue: str) -> str | None:
    """Why no worker polls ``queue``, in words; ``None`` when one does, or when Temporal cannot tell us."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
    from temporalio.service import RPCError

    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    try:
        answer = await client.workflow_service.describe_task_queue(request, timeout=timedelta(seconds=5))
    except RPCError:
        return None  # not ours to decide: the command goes on as before
    if not answer.pollers:
        return f"no worker polls task queue {queue!r}"
    now = datetime.now(UTC)
    latest = max(p.last_access_time.ToDatetime(UTC) for p in answer.pollers)
    if now - latest > LIVE_POLL_AGE:
        return f"no worker polls task queue {queue!r} (the last poll was {_ago(now - latest)} ago)"
    return None


async def picked_up(client: Client, handle: WorkflowHandle[Any, Any], within: float = PICKUP_WAIT) -> bool:
    """Whether a worker starts the workflow's pending task (a stop just signalled) within ``within`` seconds."""
    from temporalio.api.enums.v1 import PendingWorkflowTaskState
    from temporalio.service import RPCError

    deadline = time.monotonic() + within
    while True:
        try:
            desc = await handle.describe(rpc_timeout=timedelta(seconds=5))
        except RPCError:
            return True  # cannot tell: say nothing rather than something false
        pending = desc.raw_description.pending_workflow_task
        if not desc.raw_description.HasField("pending_workflow_task"):
            return True
        if pending.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.1)


async def started_within(handle: WorkflowHandle[Any, Any], deadline: float) -> bool:
    """Whether a worker has looked at a just-started workflow before ``deadline`` (``time.monotonic()``)."""
    from temporalio.service import RPCError

    while True:
        try:
            desc = await handle.describe(rpc_timeout=timedelta(seconds=5))
        except RPCError:
            return True
        # Started, then its first workflow task scheduled: two events until a worker starts that task.
        if desc.raw_description.workflow_execution_info.history_length > 2 or desc.status is None:
            return True
        if desc.status.name != "RUNNING":
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(1.0)
