"""A drill's traffic, workflow side: started once the steady state holds, windows marked as faults come and go,
stopped after verify. The load runs in one worker process (``hold_traffic``); marks are sent to the same
process (``mark_traffic``) in order, by a background task, so no fault and no rollback waits on them. If that
worker dies, the traffic is started again on another, carrying on from its last heartbeat (the lost time
recorded as a gap).

Deterministic workflow code: no I/O, activities called through their typed stubs (``workflows.activity_stubs``).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from gameday.model.data_loss import DataLoss, ReadBackInput
    from gameday.model.proxy_records import WorkerQueue, WorkerQueueRequest
    from gameday.model.records import DrillInput
    from gameday.model.traffic import Traffic, TrafficHoldInput, TrafficMark, TrafficOutcome, TrafficSummary
    from gameday.model.units import format_duration
    from gameday.workflows import activity_stubs as stubs
    from gameday.workflows.proxy_holds import FIND_WORKER, HOLD_MARGIN

MARKS_WITHIN = timedelta(seconds=10)
"""How long the end of the drill waits for the last window marks before stopping the traffic."""
RESTARTS = 3
"""Workers the traffic may lose before it is given up (the drill goes on without it)."""


class TrafficHold:
    """The traffic of one drill run."""

    def __init__(self, heartbeat: timedelta) -> None:
        self.heartbeat = heartbeat
        self.queue: str | None = None
        self._handle: workflow.ActivityHandle[TrafficOutcome] | None = None
        self._watcher: asyncio.Task[TrafficOutcome | None] | None = None
        self._marks: list[str] = []
        self._phase = "before"
        self._pumping = False
        self._pump_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._run_id = ""
        self._traffic: Traffic | None = None
        self._until: datetime | None = None

    async def start(self, inp: DrillInput, queue: str | None) -> str:
        """Start the traffic (on ``queue``, else on a worker picked now), then hold it ``baseline`` before faults."""
        drill = inp.drill
        traffic = drill.observe.traffic
        if traffic is None:
            return ""
        self._run_id, self._traffic = inp.run_id, traffic
        self._until = workflow.now() + drill.max_duration + drill.recovery.within + HOLD_MARGIN
        self.queue = queue or await self._pick_worker()
        self._handle = self._hold(None)
        self._watcher = asyncio.create_task(self._watch())
        if traffic.baseline > timedelta(0):
            await workflow.sleep(traffic.baseline, summary=f"traffic: baseline {format_duration(traffic.baseline)}")
        return f"traffic {traffic.rate:g}/s"

    def mark(self, phase: str) -> None:
        """A new window starts now; returns at once (the mark is sent in order, in the background)."""
        self._phase = phase
        if self._watcher is None or self._watcher.done():
            return
        self._marks.append(phase)
        if not self._pumping:
            self._pumping = True
            self._pump_task = asyncio.create_task(self._pump())

    async def stop(self) -> TrafficOutcome | None:
        """Stop the traffic after the last marks have landed (bounded); its outcome, or ``None`` if it was lost."""
        if self._watcher is None:
            return None
        try:
            await workflow.wait_condition(lambda: not self._pumping, timeout=MARKS_WITHIN)
        except TimeoutError:
            workflow.logger.warning("traffic window marks still pending; stopping the traffic anyway")
        self._stopping = True
        if self._handle is not None and not self._handle.done():
            self._handle.cancel()
        return await self._watcher

    async def read_back(self, summary: TrafficSummary) -> DataLoss | None:
        """Read every acknowledged write back (``read_back``, after the traffic stopped); ``None`` without one.

        Raises:
            ActivityError: the read-back failed after its retries.
        """
        traffic = self._traffic
        if traffic is None or traffic.read_back is None or summary.ids is None:
            return None
        spec, acked = traffic.read_back, summary.ids
        count = spec.to_check(acked.kept)
        return await workflow.execute_activity(
            stubs.read_back,
            ReadBackInput(run_id=self._run_id, read_back=spec, acked=acked),
            start_to_close_timeout=spec.time_budget(count),
            heartbeat_timeout=self.heartbeat,
            retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=["PolicyRefused"]),
            summary=f"data loss: read back {count} of {acked.acknowledged} acknowledged write(s)",
        )

    async def _watch(self) -> TrafficOutcome | None:
        """Await the hold; when its worker is lost, start it on another, resuming from its last heartbeat."""
        for _ in range(RESTARTS + 1):
            assert self._handle is not None
            try:
                return await self._handle
            except ActivityError as err:
                if self._stopping or not isinstance(err.cause, ActivityTimeout):
                    workflow.logger.warning("traffic lost: %s", err.cause or err)
                    return None
                resume = _summary(err.cause.last_heartbeat_details)
                workflow.logger.warning("traffic's worker lost; starting it again on another worker")
                self.queue = await self._pick_worker()
                self._handle = self._hold(resume)
        return None

    def _hold(self, resume: TrafficSummary | None) -> workflow.ActivityHandle[TrafficOutcome]:
        assert self._traffic is not None and self._until is not None
        again = " (resumed)" if resume is not None else ""
        return workflow.start_activity(
            stubs.hold_traffic,
            TrafficHoldInput(
                run_id=self._run_id, traffic=self._traffic, until=self._until, first_phase=self._phase, resume=resume
            ),
            task_queue=self.queue,
            start_to_close_timeout=self._until - workflow.now() + timedelta(minutes=1),
            schedule_to_start_timeout=FIND_WORKER,
            heartbeat_timeout=self.heartbeat,
            retry_policy=RetryPolicy(maximum_attempts=1),  # its queue died with its worker: restarted elsewhere
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"traffic: {self._traffic.rate:g}/s to {len(self._traffic.resolved())} endpoint(s){again}",
        )

    async def _pick_worker(self) -> str:
        where: WorkerQueue = await workflow.execute_activity(
            stubs.worker_queue,
            WorkerQueueRequest(run_id=self._run_id),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=3),
            summary="traffic: pick the worker that sends it",
        )
        return where.task_queue

    async def _pump(self) -> None:
        try:
            while self._marks:
                phase = self._marks.pop(0)
                try:
                    await workflow.execute_activity(
                        stubs.mark_traffic,
                        TrafficMark(run_id=self._run_id, phase=phase),
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


def _summary(details: object) -> TrafficSummary | None:
    """The summary a lost hold last heartbeated (plain JSON through the data converter), if any."""
    if not isinstance(details, list | tuple) or not details:
        return None
    last = details[0]
    if isinstance(last, TrafficSummary):
        return last
    try:
        return TrafficSummary.model_validate(last)
    except ValidationError:
        return None
