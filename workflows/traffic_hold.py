"""A drill's traffic, workflow side: started once the steady state holds, windows marked as faults come and go,
stopped after verify. The load runs in one worker process (``hold_traffic``); marks are sent to the same
process (``mark_traffic``) in order, by a background task, so no fault and no rollback waits on them.

Deterministic workflow code: no I/O, activities called by name.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.proxy_holds import FIND_WORKER, HOLD_MARGIN
    from workflows.proxy_records import WorkerQueue, WorkerQueueRequest
    from workflows.records import DrillInput
    from workflows.traffic import TrafficHoldInput, TrafficMark, TrafficOutcome
    from workflows.units import format_duration

MARKS_WITHIN = timedelta(seconds=10)
"""How long the end of the drill waits for the last window marks before stopping the traffic."""


class TrafficHold:
    """The traffic of one drill run."""

    def __init__(self, heartbeat: timedelta) -> None:
        self.heartbeat = heartbeat
        self.queue: str | None = None
        self._handle: workflow.ActivityHandle[TrafficOutcome] | None = None
        self._marks: list[str] = []
        self._pumping = False
        self._pump_task: asyncio.Task[None] | None = None
        self._run_id = ""

    async def start(self, inp: DrillInput, queue: str | None) -> str:
        """Start the traffic (on ``queue``, else on a worker picked now), then hold it ``baseline`` before faults."""
        drill = inp.drill
        traffic = drill.observe.traffic
        if traffic is None:
            return ""
        self._run_id = inp.run_id
        if queue is None:
            where = await workflow.execute_activity(
                "worker_queue",
                WorkerQueueRequest(run_id=inp.run_id),
                result_type=WorkerQueue,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary="preflight: pick the worker that sends the traffic",
            )
            queue = where.task_queue
        self.queue = queue
        hold_for = drill.max_duration + drill.recovery.within + HOLD_MARGIN
        endpoints = len(traffic.resolved())
        self._handle = workflow.start_activity(
            "hold_traffic",
            TrafficHoldInput(run_id=inp.run_id, traffic=traffic, until=workflow.now() + hold_for),
            result_type=TrafficOutcome,
            task_queue=queue,
            start_to_close_timeout=hold_for + timedelta(minutes=1),
            schedule_to_start_timeout=FIND_WORKER,
            heartbeat_timeout=self.heartbeat,
            retry_policy=RetryPolicy(maximum_attempts=1),  # its worker is gone: so is the load it sent
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"traffic: {traffic.rate:g}/s to {endpoints} endpoint(s)",
        )
        if traffic.baseline > timedelta(0):
            await workflow.sleep(traffic.baseline, summary=f"traffic: baseline {format_duration(traffic.baseline)}")
        return f"traffic {traffic.rate:g}/s"

    def mark(self, phase: str) -> None:
        """A new window starts now; returns at once (the mark is sent in order, in the background)."""
        if self._handle is None or self._handle.done():
            return
        self._marks.append(phase)
        if not self._pumping:
            self._pumping = True
            self._pump_task = asyncio.create_task(self._pump())

    async def stop(self) -> TrafficOutcome | None:
        """Stop the traffic after the last marks have landed (bounded); its outcome, or ``None`` if it was lost."""
        if self._handle is None:
            return None
        try:
            await workflow.wait_condition(lambda: not self._pumping, timeout=MARKS_WITHIN)
        except TimeoutError:
            workflow.logger.warning("traffic window marks still pending; stopping the traffic anyway")
        if not self._handle.done():
            self._handle.cancel()
        try:
            return await self._handle
        except ActivityError as err:
            workflow.logger.warning("traffic lost (its worker ended?): %s", err.cause or err)
            return None

    async def _pump(self) -> None:
        try:
            while self._marks:
                phase = self._marks.pop(0)
                try:
                    await workflow.execute_activity(
                        "mark_traffic",
                        TrafficMark(run_id=self._run_id, phase=phase),
                        result_type=bool,
                        task_queue=self.queue,
                        schedule_to_start_timeout=FIND_WORKER,
                        start_to_close_timeout=timedelta(seconds=10),
                        retry_policy=RetryPolicy(maximum_attempts=1),
                        summary=f"traffic: window {phase}",
                    )
                except ActivityError as err:
                    workflow.logger.warning("traffic window %r not marked: %s", phase, err.cause or err)
        finally:
            self._pumping = False
