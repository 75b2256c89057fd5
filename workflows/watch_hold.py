"""A drill's watch, workflow side: ``observe.watch`` probes (and the alerts of ``observe.expect.alerts``) sampled
by one background activity from the first fault to the end of verify, then judged (``model/watch.py``).

Input-based: a drill without ``watch`` or ``alerts`` schedules nothing here, so older histories replay unchanged.
The activity is retried by Temporal when its worker dies, and the new attempt resumes from the last heartbeat.
When alerts must resolve after recovery and have not yet, a second, bounded watch (alerts only) waits for them,
at most ``resolve_within`` past the recovery.

Deterministic workflow code: no I/O, activities called through their typed stubs (``workflows.activity_stubs``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from gameday.model.records import DrillInput, ExpectationResult, WatchInput
    from gameday.model.units import format_duration
    from gameday.model.watch import Judged, WatchProgress, judge_alerts, judge_detect, judge_sequence
    from gameday.workflows import activity_stubs as stubs

MARGIN = timedelta(minutes=1)
"""Past the drill's own bounds, the watch's safety cap (it is cancelled long before)."""


class WatchHold:
    """The watch of one drill run."""

    def __init__(self, heartbeat: timedelta) -> None:
        self.heartbeat = heartbeat
        self._handle: workflow.ActivityHandle[WatchProgress] | None = None
        self._inp: DrillInput | None = None
        self._route: dict[str, Any] = {}

    @staticmethod
    def wanted(inp: DrillInput) -> bool:
        observe = inp.drill.observe
        return bool(observe.watch) or (observe.expect is not None and observe.expect.alerts is not None)

    def start(self, inp: DrillInput, route: dict[str, Any]) -> None:
        """Start watching now (just before the first fault); returns at once."""
        if self._handle is not None or not self.wanted(inp):
            return
        drill, self._inp, self._route = inp.drill, inp, route
        expect = drill.observe.expect
        alerts = expect.alerts if expect is not None else None
        tail = alerts.resolve_within if alerts is not None and alerts.resolve_within else timedelta(0)
        until = workflow.now() + drill.max_duration + drill.recovery.within + tail + MARGIN
        what = f"{len(drill.observe.watch)} probe(s)" + (", alerts" if alerts is not None else "")
        self._handle = workflow.start_activity(
            stubs.watch,
            WatchInput(
                run_id=inp.run_id,
                probes=list(drill.observe.watch),
                interval=drill.observe.interval,
                until=until,
                alerts=alerts.from_ if alerts is not None else None,
            ),
            start_to_close_timeout=until - workflow.now() + MARGIN,
            heartbeat_timeout=self.heartbeat,
            retry_policy=RetryPolicy(maximum_attempts=5),  # a retried attempt resumes from its heartbeat
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"watch: {what} every {format_duration(drill.observe.interval)}",
            **route,
        )

    async def stop(self, healthy_at: datetime | None) -> WatchProgress | None:
        """End the watch (after verify) and return what it saw; ``None`` if it never started or was lost."""
        if self._handle is None or self._inp is None:
            return None
        if not self._handle.done():
            self._handle.cancel()
        try:
            progress = await self._handle
        except ActivityError as err:
            if not is_cancelled_exception(err):
                workflow.logger.warning("watch lost: %s", err.cause or err)
            return None
        expect = self._inp.drill.observe.expect
        alerts = expect.alerts if expect is not None else None
        if alerts is None or alerts.resolve_within is None or healthy_at is None:
            return progress
        until = healthy_at + alerts.resolve_within
        if until <= workflow.now() or progress.resolved(alerts.fire):
            return progress
        try:
            return await workflow.execute_activity(
                stubs.watch,
                WatchInput(
                    run_id=self._inp.run_id,
                    interval=self._inp.drill.observe.interval,
                    until=until,
                    alerts=alerts.from_,
                    until_resolved=list(alerts.fire),
                    resume=progress,
                ),
                start_to_close_timeout=until - workflow.now() + MARGIN,
                heartbeat_timeout=self.heartbeat,
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary=f"watch: alerts resolved within {format_duration(alerts.resolve_within)} of recovery",
                **self._route,
            )
        except ActivityError as err:
            workflow.logger.warning("alerts' resolution not watched: %s", err.cause or err)
            return progress


def judged(
    inp: DrillInput, progress: WatchProgress | None, origin: datetime | None, healthy_at: datetime | None
) -> tuple[list[ExpectationResult], float | None]:
    """``observe.expect``'s ``sequence``, ``detect`` and ``alerts`` judged on the watch, and the time to detect."""
    expect = inp.drill.observe.expect
    if expect is None:
        return [], None
    found: list[Judged] = []
    time_to_detect = None
    if expect.sequence is not None:
        found.append(judge_sequence(expect.sequence, progress, origin))
    if expect.detect is not None:
        line, time_to_detect = judge_detect(expect.detect, progress, origin, progress.last_at if progress else None)
        found.append(line)
    if expect.alerts is not None:
        found.append(judge_alerts(expect.alerts, progress, origin, healthy_at))
    results = [
        ExpectationResult(name=j.name, held=j.held, expected=j.expected, actual=j.actual, miss=j.miss) for j in found
    ]
    return results, time_to_detect
