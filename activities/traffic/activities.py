"""The traffic activities: ``hold_traffic`` sends a drill's load for the whole drill, ``mark_traffic`` starts a
new measurement window in it.

Both run on the queue of one worker process (as the proxies do, ``workflows/proxy_holds.py``): the load is a
thread and sockets in that process, and a mark must reach the very :class:`TrafficRun` that sends it. If that
worker dies the traffic dies with it; the summary then lacks what followed (no fault is left by it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from temporalio import activity

from gameday.activities import policy
from gameday.activities.traffic.guards import DrillHandle, TrafficGuards, stop_the_drill
from gameday.activities.traffic.run import TrafficRun
from gameday.activities.traffic.windows import merge
from gameday.model.traffic import SecondStats, TrafficHoldInput, TrafficMark, TrafficOutcome

HEARTBEAT_EVERY = 0.5
"""Seconds between heartbeats (a cancel arrives through them)."""
SNAPSHOT_EVERY = 2.0
"""Seconds between heartbeats that carry the summary so far: ``gameday status`` reads the latest one."""
FIND_RUN_WITHIN = 5.0
"""Seconds a mark waits for its hold to start sending (both may be scheduled at nearly the same moment)."""


class TrafficActivities:
    """``hold_traffic`` and ``mark_traffic``, sharing the runs of this worker process."""

    def __init__(self) -> None:
        self._runs: dict[str, TrafficRun] = {}
        self._started = asyncio.Condition()

    def all(self) -> list[Callable[..., Awaitable[object]]]:
        """The activities, for the worker's own queue."""
        return [self.hold_traffic, self.mark_traffic]

    @activity.defn(name="hold_traffic")
    async def hold_traffic(self, inp: TrafficHoldInput) -> TrafficOutcome:
        """Send ``inp.traffic`` until cancelled, then return what it measured, by window and per second.

        Raises:
            ApplicationError: ``PolicyRefused`` (non-retryable) when this worker's policy refuses a host.
        """
        worker_policy = policy.current()
        if refusals := worker_policy.traffic_refusals(inp.traffic):
            raise policy.refused(refusals, worker_policy)
        run = TrafficRun(inp.traffic, phase=inp.first_phase, resume=inp.resume)
        guards = TrafficGuards(list(inp.traffic.guardrails), run.phase_at)
        drill = DrillHandle.current()
        stopping: list[asyncio.Task[bool]] = []

        def on_second(point: SecondStats) -> None:
            # Runs as a loop callback, outside the activity's context: everything it needs is captured above.
            if (tripped := guards.see(point)) is not None and drill is not None:
                guard, detail = tripped
                stop = stop_the_drill(drill, guard, detail, datetime.now(UTC), until=inp.until)
                task = asyncio.create_task(stop)
                task.add_done_callback(_said_if_failed)
                stopping.append(task)

        sending = asyncio.create_task(run.run(until=inp.until, on_second=on_second))
        async with self._started:
            self._runs[inp.run_id] = run
            self._started.notify_all()
        loop = asyncio.get_running_loop()
        snapshot, taken = run.snapshot(), loop.time()
        try:
            while not sending.done():
                if loop.time() - taken >= SNAPSHOT_EVERY:
                    snapshot, taken = run.snapshot(), loop.time()
                # Every heartbeat carries the latest snapshot: one without details would wipe what
                # `gameday status` reads.
                activity.heartbeat(snapshot)
                await asyncio.wait([sending], timeout=HEARTBEAT_EVERY)
        except asyncio.CancelledError:
            # The workflow is done with the traffic: stop sending, let in-flight requests finish, report.
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            run.stop()
        finally:
            self._runs.pop(inp.run_id, None)
            for task in stopping:
                task.cancel()  # the drill is past its traffic: a stop still retrying has nothing left to stop
        summary = await sending
        during = [w for w in summary.phases if w.name.startswith("during")]
        return TrafficOutcome(summary=summary, during=merge("during", during) if during else None)

    @activity.defn(name="mark_traffic")
    async def mark_traffic(self, mark: TrafficMark) -> bool:
        """Start window ``mark.phase`` now in the run's traffic; ``False`` when this worker holds no such run."""
        async with self._started:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._started.wait_for(lambda: mark.run_id in self._runs), FIND_RUN_WITHIN)
        run = self._runs.get(mark.run_id)
        if run is None:
            activity.logger.warning("no traffic of run %s on this worker to mark %r", mark.run_id, mark.phase)
            return False
        run.mark(mark.phase)
        activity.logger.info("traffic of %s: window %r from %s", mark.run_id, mark.phase, datetime.now(UTC))
        return True


def _said_if_failed(task: asyncio.Task[bool]) -> None:
    """A guardrail's stop that failed unexpectedly is logged, never lost in a task nobody awaits."""
    if not task.cancelled() and (error := task.exception()) is not None:
        logging.getLogger(__name__).error("a traffic guardrail's stop failed: %r", error)
