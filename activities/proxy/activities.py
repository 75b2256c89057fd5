"""The proxy activities: ``worker_queue`` (shared queue), ``hold_proxy`` and ``proxy_ready`` (this worker's queue).

``hold_proxy`` *is* the proxy's lifetime: it starts the proxy, heartbeats while it runs, and stops it when
the activity ends for any reason (cancelled by the workflow, its heartbeat timed out, the worker shutting
down). So a dead worker means no proxy, never a stuck fault. Toxic faults on it run through ``apply_fault``
and ``revert_fault`` on the same worker's queue, which find it in :data:`activities.proxy.HELD`.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from gameday.activities import policy
from gameday.activities.proxy import HELD, FaultProxy, HeldProxy
from gameday.model.drill import Target
from gameday.model.proxy_records import ProxyHoldInput, ProxyStatus, WorkerQueue, WorkerQueueRequest

HEARTBEAT_EVERY = 0.5
"""Seconds between heartbeats of ``hold_proxy`` and ``proxy_ready``."""
READY_WITHIN = 10.0
"""How long ``proxy_ready`` waits for ``hold_proxy`` to be listening (both are scheduled at once)."""


def status(inp: ProxyHoldInput, held: HeldProxy, *, stopped: bool = False) -> ProxyStatus:
    """What ``held`` looks like now."""
    stats = held.proxy.stats
    return ProxyStatus(
        run_id=inp.run_id,
        target_name=inp.target_name,
        listen=held.proxy.address if held.proxy.running else inp.target.listen,
        upstream=inp.target.upstream,
        task_queue=held.task_queue,
        host=socket.gethostname(),
        started_at=held.started_at,
        stopped_at=datetime.now(UTC) if stopped else None,
        connections=stats.connections,
        open_connections=stats.open,
        failed_upstream=stats.failed_upstream,
        bytes_upstream=stats.bytes_upstream,
        bytes_downstream=stats.bytes_downstream,
        toxics=[t.name for t in held.proxy.toxics],
    )


@activity.defn(name="hold_proxy")
async def hold_proxy(inp: ProxyHoldInput) -> ProxyStatus:
    """Run the target's proxy until this activity is cancelled; return what passed through it.

    Raises:
        ApplicationError: ``ProxyListenError`` (non-retryable) when ``listen`` cannot be bound;
            ``ProxyAlreadyHeld`` (non-retryable) when this worker already holds that run's target;
            ``PolicyRefused`` (non-retryable) when this worker's policy refuses its upstream.
    """
    name = f"proxy {inp.target_name!r} ({inp.target.listen} → {inp.target.upstream})"
    worker_policy = policy.current()
    if refusals := worker_policy.target_refusals(inp.target_name, Target(proxy=inp.target)):
        error = policy.refused(refusals, worker_policy)
        HELD.fail(inp.run_id, inp.target_name, error.message)  # proxy_ready answers with it at once
        raise error
    if HELD.holds(inp.run_id, inp.target_name):
        raise ApplicationError(f"{name} is already held by this worker", type="ProxyAlreadyHeld", non_retryable=True)
    proxy = FaultProxy(inp.target.listen, inp.target.upstream, seed=inp.seed)
    try:
        await proxy.start()
    except OSError as err:
        reason = f"{name}: cannot listen on {inp.target.listen}: {err.strerror or err}"
        HELD.fail(inp.run_id, inp.target_name, reason)
        raise ApplicationError(reason, type="ProxyListenError", non_retryable=True) from err
    held = HELD.hold(inp.run_id, inp.target_name, proxy, activity.info().task_queue)
    activity.logger.info("holding %s on %s", name, proxy.address)
    try:
        while True:
            activity.heartbeat(status(inp, held))
            await asyncio.sleep(HEARTBEAT_EVERY)
    except asyncio.CancelledError:
        # The workflow is done with the proxy (or the worker is going): report, then stop it below.
        return status(inp, held, stopped=True)
    finally:
        HELD.release(inp.run_id, inp.target_name)
        await proxy.stop()
        activity.logger.info("stopped %s", name)


@activity.defn(name="proxy_ready")
async def proxy_ready(inp: ProxyHoldInput) -> ProxyStatus:
    """Wait until ``hold_proxy`` listens for this run's target in this worker; return its status.

    Raises:
        ApplicationError: ``ProxyListenError`` (non-retryable) when the hold could not listen;
            ``ProxyNotHeld`` (non-retryable) when no hold started here within :data:`READY_WITHIN` seconds.
    """
    waiting = asyncio.create_task(HELD.wait(inp.run_id, inp.target_name, READY_WITHIN))
    while not waiting.done():
        activity.heartbeat()
        await asyncio.wait([waiting], timeout=HEARTBEAT_EVERY)
    found = waiting.result()
    if isinstance(found, HeldProxy):
        return status(inp, found)
    if isinstance(found, str):
        raise ApplicationError(found, type="ProxyListenError", non_retryable=True)
    raise ApplicationError(
        f"no proxy for target {inp.target_name!r} of run {inp.run_id} started on task queue "
        f"{activity.info().task_queue} within {READY_WITHIN:g}s",
        type="ProxyNotHeld",
        non_retryable=True,
    )


class WorkerQueueActivities:
    """``worker_queue``: tells the workflow the task queue only this worker process polls.

    Args:
        task_queue: this process's own task queue (``worker.main`` makes one per process).
    """

    def __init__(self, task_queue: str) -> None:
        self._task_queue = task_queue

    @activity.defn(name="worker_queue")
    async def worker_queue(self, req: WorkerQueueRequest) -> WorkerQueue:
        """The task queue of this worker process, where its proxies will live."""
        return WorkerQueue(task_queue=self._task_queue, host=socket.gethostname())
