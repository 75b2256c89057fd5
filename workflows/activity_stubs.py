"""Typed stubs of every activity the workflows call: the name, the one argument and the result, nothing else.

The workflows pass these to ``workflow.execute_activity`` / ``start_activity`` instead of a string name, so a
reader and mypy can follow a call to its activity and its types (no hand-written ``result_type``), while the
activities' own modules (httpx, docker, sqlmodel…) stay out of the workflow sandbox. Temporal sends the name
only: the names and payloads are exactly those of the string calls they replace, so running drills replay
unchanged. ``tests/workflows/test_activity_stubs.py`` checks each stub against the activity the worker
registers under its name (same argument and result types).
"""

from __future__ import annotations

from temporalio import activity

from gameday.model.data_loss import DataLoss, ReadBackInput
from gameday.model.freeze_records import FreezeCheck
from gameday.model.gameday import GameDayRecord
from gameday.model.locks import LockInput, ResolvedTarget, ResolveInput
from gameday.model.notify_records import NotifyEvent, NotifyResult
from gameday.model.proxy_records import ProxyHoldInput, ProxyStatus, WorkerQueue, WorkerQueueRequest
from gameday.model.records import (
    AlertInput,
    BlackoutCheck,
    DrillInput,
    FaultInput,
    FaultRecord,
    ObserveInput,
    ObserveResult,
    ProbeInput,
    ProbeResult,
    RunRecord,
    TargetState,
    VerifyInput,
    VerifyResult,
    WatchInput,
)
from gameday.model.sites import SitesAnswer, SitesCheck
from gameday.model.traffic import TrafficHoldInput, TrafficMark, TrafficOutcome
from gameday.model.watch import WatchProgress


def _stub(name: str) -> NotImplementedError:
    return NotImplementedError(f"{name} is a stub: the worker registers the activity (see worker/main.py)")


@activity.defn(name="check_blackout")
async def check_blackout(check: BlackoutCheck) -> str:
    """``activities/blackout.py``: the blackout window now falls in, or ``""``."""
    raise _stub("check_blackout")


@activity.defn(name="check_freeze")
async def check_freeze(check: FreezeCheck) -> str:
    """``activities/freeze.py``: why a run of ``check.team`` must not start (``frozen: …``), or ``""``."""
    raise _stub("check_freeze")


@activity.defn(name="check_policy")
async def check_policy(inp: DrillInput) -> str:
    """``activities/policy.py``: refuses a drill this worker's policy does not allow."""
    raise _stub("check_policy")


@activity.defn(name="check_sites")
async def check_sites(check: SitesCheck) -> SitesAnswer:
    """``activities/sites.py``: where each host-local target runs; refuses missing or ambiguous sites."""
    raise _stub("check_sites")


@activity.defn(name="check_hypothesis")
async def check_hypothesis(request: ProbeInput) -> list[ProbeResult]:
    """``activities/probes/activities.py``: each probe's samples, judged."""
    raise _stub("check_hypothesis")


@activity.defn(name="observe")
async def observe(request: ObserveInput) -> ObserveResult:
    """``activities/probes/activities.py``: the observation window, one heartbeating activity."""
    raise _stub("observe")


@activity.defn(name="watch")
async def watch(request: WatchInput) -> WatchProgress:
    """``activities/probes/watch.py``: ``observe.watch`` and the alerts, sampled until cancelled."""
    raise _stub("watch")


@activity.defn(name="verify_recovery")
async def verify_recovery(request: VerifyInput) -> VerifyResult:
    """``activities/probes/activities.py``: waits for the hypothesis to hold again."""
    raise _stub("verify_recovery")


@activity.defn(name="resolve_targets")
async def resolve_targets(inp: ResolveInput) -> list[ResolvedTarget]:
    """``activities/resolve.py``: what each target is on the worker now, as lock keys."""
    raise _stub("resolve_targets")


@activity.defn(name="acquire_targets")
async def acquire_targets(inp: LockInput) -> None:
    """``activities/locks.py``: takes the drill's target locks."""
    raise _stub("acquire_targets")


@activity.defn(name="release_targets")
async def release_targets(inp: LockInput) -> int:
    """``activities/locks.py``: lets the drill's target locks go."""
    raise _stub("release_targets")


@activity.defn(name="capture_target")
async def capture_target(inp: FaultInput) -> TargetState:
    """``activities/faults/activities.py``: reads the target's state a revert restores."""
    raise _stub("capture_target")


@activity.defn(name="apply_fault")
async def apply_fault(inp: FaultInput) -> FaultRecord:
    """``activities/faults/activities.py``: applies one fault (on record in the fault ledger first)."""
    raise _stub("apply_fault")


@activity.defn(name="revert_fault")
async def revert_fault(inp: FaultInput) -> FaultRecord:
    """``activities/faults/activities.py``: reverts one fault, idempotently."""
    raise _stub("revert_fault")


@activity.defn(name="alert")
async def alert(inp: AlertInput) -> None:
    """``activities/notify/alert.py``: a fault left in place, loudly."""
    raise _stub("alert")


@activity.defn(name="record_run")
async def record_run(record: RunRecord) -> None:
    """``activities/store.py``: upserts the run into the results database."""
    raise _stub("record_run")


@activity.defn(name="record_gameday")
async def record_gameday(record: GameDayRecord) -> None:
    """``activities/gameday_store.py``: upserts the game day."""
    raise _stub("record_gameday")


@activity.defn(name="notify_slack")
async def notify_slack(event: NotifyEvent) -> NotifyResult:
    """``activities/notify/activities.py``: one Slack message of the drill's thread."""
    raise _stub("notify_slack")


@activity.defn(name="notify_webhook")
async def notify_webhook(event: NotifyEvent) -> NotifyResult:
    """``activities/notify/activities.py``: one webhook POST."""
    raise _stub("notify_webhook")


NOTIFIERS = {"notify_slack": notify_slack, "notify_webhook": notify_webhook}
"""The notification activities by name (a drill's ``notify`` says which run)."""


@activity.defn(name="worker_queue")
async def worker_queue(req: WorkerQueueRequest) -> WorkerQueue:
    """``activities/proxy/activities.py``: the task queue of the worker that answers."""
    raise _stub("worker_queue")


@activity.defn(name="hold_proxy")
async def hold_proxy(inp: ProxyHoldInput) -> ProxyStatus:
    """``activities/proxy/activities.py``: holds a fault proxy for the whole drill."""
    raise _stub("hold_proxy")


@activity.defn(name="proxy_ready")
async def proxy_ready(inp: ProxyHoldInput) -> ProxyStatus:
    """``activities/proxy/activities.py``: answers once the proxy listens."""
    raise _stub("proxy_ready")


@activity.defn(name="hold_traffic")
async def hold_traffic(inp: TrafficHoldInput) -> TrafficOutcome:
    """``activities/traffic/activities.py``: sends and measures ``observe.traffic``."""
    raise _stub("hold_traffic")


@activity.defn(name="mark_traffic")
async def mark_traffic(mark: TrafficMark) -> bool:
    """``activities/traffic/activities.py``: starts the traffic's next measurement window."""
    raise _stub("mark_traffic")


@activity.defn(name="read_back")
async def read_back(inp: ReadBackInput) -> DataLoss:
    """``activities/traffic/read_back.py``: reads the acknowledged writes back after recovery."""
    raise _stub("read_back")


ALL = (
    check_blackout,
    check_freeze,
    check_policy,
    check_sites,
    check_hypothesis,
    observe,
    watch,
    verify_recovery,
    resolve_targets,
    acquire_targets,
    release_targets,
    capture_target,
    apply_fault,
    revert_fault,
    alert,
    record_run,
    record_gameday,
    notify_slack,
    notify_webhook,
    worker_queue,
    hold_proxy,
    proxy_ready,
    hold_traffic,
    mark_traffic,
    read_back,
)
"""Every stub: what the workflows may call."""
