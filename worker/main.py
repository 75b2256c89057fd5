"""Wiring: which workflows and activities run on which task queue, and a worker that stops cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.faults.activities import apply_fault, revert_fault
from activities.probes.activities import check_hypothesis, observe, verify_recovery
from activities.store import Store, StoreActivities
from worker.client import connect
from worker.config import GamedayConfig
from workflows.drill_workflow import DrillWorkflow

log = logging.getLogger("gameday.worker")

HEARTBEAT_THROTTLE = timedelta(milliseconds=200)
"""Heartbeats reach the server at least this often, so a stop reaches a running activity this fast."""


def build_worker(client: Client, task_queue: str, store: Store, *, fail_on_workflow_bug: bool = False) -> Worker:
    """A worker with every gameday workflow and activity registered on ``task_queue``.

    Args:
        client: connected with the pydantic data converter (``worker.client.connect``).
        task_queue: where drills are started.
        store: the results database the ``record_run`` activity writes to.
        fail_on_workflow_bug: fail a workflow whose code raises unexpectedly, instead of retrying its task
            until a fixed worker is deployed (the production behaviour). Tests set it to fail fast.
    """
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[DrillWorkflow],
        activities=[
            check_hypothesis,
            observe,
            verify_recovery,
            apply_fault,
            revert_fault,
            StoreActivities(store).record_run,
        ],
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        graceful_shutdown_timeout=timedelta(seconds=10),
        workflow_failure_exception_types=[Exception] if fail_on_workflow_bug else [],
    )


async def run_worker(config: GamedayConfig, stop: asyncio.Event | None = None, *, wait_ready: float = 0.0) -> None:
    """Run a worker until ``stop`` is set or the process gets SIGTERM/SIGINT; then shut down cleanly.

    In-flight activities get the graceful-shutdown window to finish; whatever they leave, Temporal hands
    to the next worker, which is how a drill survives its worker.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    store = Store(config.resolved_database_url)
    client = await connect(config, wait_ready=wait_ready)
    worker = build_worker(client, config.task_queue, store)
    log.info("worker polling task queue %r on %s", config.task_queue, config.temporal_address)
    async with worker:
        await stop.wait()
        log.info("worker shutting down")
