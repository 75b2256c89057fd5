"""The fault proxies a drill holds: started in preflight, used by inject and rollback, let go at the very end.

A proxy is sockets in one worker process, so everything about it runs on that process's own task queue
(``worker_queue`` names it): the ``hold_proxy`` activity that owns it for the whole drill, and the
``apply_fault`` / ``revert_fault`` of its toxics. If that worker dies, the proxy and its toxics die with it:
a revert that finds no worker there within :data:`FIND_WORKER` counts the toxic as gone, not as stuck.

Deterministic workflow code: no I/O, activities called through their typed stubs (``workflows.activity_stubs``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType

with workflow.unsafe.imports_passed_through():
    from gameday.model.kinds import registry
    from gameday.model.proxy_records import ProxyHoldInput, ProxyStatus, WorkerQueueRequest
    from gameday.model.records import DrillInput, FaultInput
    from gameday.model.units import format_duration
    from gameday.workflows import activity_stubs as stubs

FIND_WORKER = timedelta(seconds=10)
"""How long an activity for a proxy may wait for the worker holding it before that worker counts as gone."""
HOLD_MARGIN = timedelta(minutes=5)
"""A hold outlives the drill's cap plus its recovery window by this much, then Temporal ends it anyway."""


class ProxyHolds:
    """The proxies of one drill run, by target name."""

    def __init__(self, heartbeat: timedelta) -> None:
        self.heartbeat = heartbeat
        self.queue: str | None = None
        self.handles: dict[str, workflow.ActivityHandle[ProxyStatus]] = {}

    async def start(self, inp: DrillInput) -> str:
        """Start a proxy for every ``proxy`` target, all in one worker, and wait until each listens.

        Raises:
            ActivityError: a proxy could not be started (its listen address is taken…).
        """
        drill = inp.drill
        targets = {name: t.proxy for name, t in drill.targets.items() if t.proxy is not None}
        if not targets:
            return ""
        where = await workflow.execute_activity(
            stubs.worker_queue,
            WorkerQueueRequest(run_id=inp.run_id),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=3),
            summary="preflight: pick the worker that holds the proxies",
        )
        self.queue = where.task_queue
        hold_for = drill.max_duration + drill.recovery.within + HOLD_MARGIN
        for name, spec in targets.items():
            hold = ProxyHoldInput(run_id=inp.run_id, target_name=name, target=spec)
            self.handles[name] = workflow.start_activity(
                stubs.hold_proxy,
                hold,
                task_queue=self.queue,
                start_to_close_timeout=hold_for,
                heartbeat_timeout=self.heartbeat,
                retry_policy=RetryPolicy(maximum_attempts=1),  # a proxy restarted elsewhere is a new proxy
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                summary=f"hold proxy {name}: {spec.listen} → {spec.upstream} (up to {format_duration(hold_for)})",
            )
            await workflow.execute_activity(
                stubs.proxy_ready,
                hold,
                task_queue=self.queue,
                schedule_to_start_timeout=FIND_WORKER,
                start_to_close_timeout=timedelta(seconds=15),
                retry_policy=RetryPolicy(maximum_attempts=1),
                summary=f"preflight: proxy {name} listening on {spec.listen}",
            )
        return f"{len(targets)} proxy(ies) listening on {where.host}; "

    def route(self, fi: FaultInput) -> dict[str, Any]:
        """Extra ``execute_activity`` options for a fault: a toxic goes to the worker holding its proxy."""
        if not _held_by_worker(fi) or self.queue is None:
            return {}
        return {"task_queue": self.queue, "schedule_to_start_timeout": FIND_WORKER}

    def gone(self, fi: FaultInput) -> bool:
        """The fault's proxy is no longer held (its hold ended): its toxics went with it."""
        handle = self.handles.get(fi.target_name)
        return _held_by_worker(fi) and (handle is None or handle.done())

    @staticmethod
    def worker_gone(err: ActivityError) -> bool:
        """The activity found no worker on the proxy's queue: that worker, and the proxy, are gone."""
        cause = err.cause
        return isinstance(cause, TimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_START

    async def release(self) -> list[str]:
        """Stop every proxy (after verify: the system under test talks through them until then)."""
        lines = []
        for name, handle in self.handles.items():
            if not handle.done():
                handle.cancel()
            try:
                status = await handle
            except ActivityError as err:
                lines.append(f"proxy {name}: ended early ({err.cause or err})")
                continue
            lines.append(
                f"proxy {name}: {status.connections} connection(s), {status.bytes_downstream} B down, "
                f"{status.bytes_upstream} B up"
            )
        self.handles.clear()
        return lines


def _held_by_worker(fi: FaultInput) -> bool:
    """Whether the fault's target kind lives in one worker process (a proxy), so its faults go to that worker."""
    kind = registry.target_kind(fi.target.kind.value)
    return kind is not None and kind.held_by_worker
