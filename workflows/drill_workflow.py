"""DrillWorkflow: preflight → inject → observe → rollback → verify → record, durable and always reverting.

Reading guide. ``run`` is the phase list. The risky part (preflight, inject, observe) runs as one task,
``_hold``, so that a stop signal, a cancellation or ``max_duration`` can interrupt it wherever it is. The
safe part (rollback, verify, record) then runs as another task awaited through ``asyncio.shield`` in a
loop: a second cancellation cannot interrupt a rollback that is already running.

Determinism rules: no I/O and no clock but ``workflow.now()`` here; activities are called through their typed
stubs (``workflows.activity_stubs``), so their modules (httpx, sqlmodel…) never enter the sandbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from gameday.model.budget import MAX_OUTPUT_BYTES, clip
    from gameday.model.data_loss import LossBound
    from gameday.model.drill import Drill, Fault, Probe, Target
    from gameday.model.freeze_records import FREEZE_PATCH, FROZEN_BY
    from gameday.model.kinds import registry
    from gameday.model.locks import LockInput, ResolvedTarget, ResolveInput, keys_of, lockable_targets, resolved_keys
    from gameday.model.notify_records import DrillFinished, DrillStarted, DrillStopped, PhaseDone
    from gameday.model.records import (
        NOT_APPLIED,
        AlertInput,
        Approve,
        BlackoutCheck,
        Coverage,
        DrillInput,
        DrillStatus,
        FaultInput,
        FaultRecord,
        FaultState,
        ObserveInput,
        ObserveResult,
        Phase,
        ProbeInput,
        ProbeResult,
        RunRecord,
        StepRecord,
        StepStatus,
        StopRequest,
        VerifyInput,
        data_loss_expectation,
        partial_output,
        service_levels_unjudged,
    )
    from gameday.model.sites import SitesCheck, host_local_targets, placed_probes, site_queue
    from gameday.model.traffic import TrafficSummary
    from gameday.model.units import format_duration
    from gameday.model.verdict import Outcome, judge, time_to_safe
    from gameday.workflows import activity_stubs as stubs
    from gameday.workflows import pausing, search
    from gameday.workflows.freeze_check import freeze_refusal
    from gameday.workflows.notify_sender import NotifyPolicy, NotifySender
    from gameday.workflows.proxy_holds import ProxyHolds
    from gameday.workflows.recovery import last_faulted, recovery_probes, time_to_recovery
    from gameday.workflows.traffic_hold import TrafficHold
    from gameday.workflows.watch_hold import WatchHold, judged

HEARTBEAT = timedelta(seconds=5)
"""Heartbeat timeout of every long activity: a dead worker is noticed, and a cancel delivered, this fast."""

LOCKS_PATCH = "target-locks"
"""Drills started before target locks existed replay without them (``workflow.patched``)."""

RECORD_GIVE_UP = timedelta(days=7)
"""How long the final record keeps trying to reach the results database before the run ends "not recorded"."""

RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=2)
)
"""The final record's retries: backoff doubling up to one attempt every 2 minutes, until :data:`RECORD_GIVE_UP`."""
GIVE_UP = f"{RECORD_GIVE_UP.days} days"

PICKUP_NOTABLE = timedelta(seconds=5)
"""A wait this long between submission and a worker's first look is recorded as a ``pending`` step."""

POLICY_PATCH = "worker-policy"
"""Drills started before the worker policy check replay without it (apply and probes still enforce it)."""

RESOLVED_LOCKS_PATCH = "resolved-target-locks"
"""Drills started before ``resolve_targets`` existed replay with the static keys of ``model/locks.py``."""

CAPTURE_PATCH = "capture-target"
"""Drills started before ``capture_target`` existed replay without it: their reverts have no before-state."""

SITES_PATCH = "sites"
"""Drills started before sites existed replay without ``check_sites``; their host-local activities used the shared
queue."""

SITE_PICKUP = timedelta(seconds=10)
"""A rollback's revert on a site's queue not taken by a worker within this long alerts that the site has none."""

SITE_WAIT = timedelta(minutes=5)
"""How long preflight's ``check_sites`` may keep failing to read Temporal before the drill is refused."""

PARTIAL_OUTPUT_PATCH = "partial-output"
"""A fault whose worker died mid-apply keeps the output its apply last heartbeated (a Chaos Toolkit method's entries
done); drills started before replay without it."""

LEASE_PATCH = "fault-lease"
"""Drills started before fault leases existed replay without ``FaultInput.lease`` (their worker's default then)."""

REVERT_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=10)
)
"""Reverts retry until they succeed or their schedule-to-close window ends: a fault must not stay."""


def _error_text(err: BaseException) -> str:
    """The most telling message in a failure chain: the innermost application error's, else the first cause's."""
    cause = err.cause if isinstance(err, ActivityError) and err.cause is not None else err
    inner: BaseException | None = cause
    while inner is not None:
        if isinstance(inner, ApplicationError):
            return inner.message or inner.type or "application error"
        inner = getattr(inner, "cause", None)
    return str(cause) or type(cause).__name__


def _failure_type(err: BaseException) -> str | None:
    """The type of the innermost application error in a failure chain (behind a timeout, the last attempt's)."""
    inner: BaseException | None = err
    while inner is not None:
        if isinstance(inner, ApplicationError):
            return inner.type
        inner = getattr(inner, "cause", None)
    return None


def _non_retryable(err: BaseException) -> bool:
    """Whether the innermost application error in a failure chain says retrying cannot help."""
    inner: BaseException | None = err
    while inner is not None:
        if isinstance(inner, ApplicationError):
            return inner.non_retryable
        inner = getattr(inner, "cause", None)
    return False


def _probe_budget(probes: list[Probe]) -> timedelta:
    """Worst case for one pass over the hypothesis: each probe's samples at their timeout (probes run together)."""
    slowest = max((p.samples * _probe_timeout(p) for p in probes), default=timedelta(0))
    return slowest + timedelta(seconds=10)


def _probe_timeout(probe: Probe) -> timedelta:
    # Through the registry, never an assertion: a probe kind this workflow does not know gets a default budget.
    return registry.probe_timeout(probe.kind.value, probe.spec)


def _notify_policy(drill: Drill) -> NotifyPolicy | None:
    if drill.notify is None:
        return None
    give_up = drill.notify.give_up_after
    return NotifyPolicy(start_to_close=min(give_up, timedelta(seconds=30)), schedule_to_close=give_up, flush=give_up)


def _apply_budget(fault: Fault) -> timedelta:
    """How long one apply may take: the fault's own time limit (command, request, container stop…) plus slack,
    as its kind module says (``apply_budget``)."""
    return fault.apply_budget()


@workflow.defn(name="DrillWorkflow")
class DrillWorkflow:
    """One drill run. Query ``status``; signal ``emergency_stop``; the result is the full :class:`RunRecord`."""

    def __init__(self) -> None:
        self._record: RunRecord | None = None
        self._phase = Phase.PENDING
        self._stop: StopRequest | None = None
        self._stop_signals = 0
        """``emergency_stop`` signals received (a stop after the first still ends a read-back in flight)."""
        self._faults: list[FaultInput] = []
        self._applying: int | None = None
        self._early: dict[int, asyncio.Task[None]] = {}
        self._early_reverting: set[int] = set()
        self._not_steady = False
        self._not_recovered = False
        self._deviated = False
        self._errors: list[str] = []
        self._last: list[ProbeResult] = []
        self._healthy_at: datetime | None = None
        self._rolled_back = False
        self._approved: Approve | None = None
        self._paused: Approve | None = None
        self._resumed_by = ""
        self._proxies = ProxyHolds(HEARTBEAT)
        self._traffic = TrafficHold(HEARTBEAT)
        self._watch = WatchHold(HEARTBEAT)
        self._expect_misses: list[str] = []
        self._notify = NotifySender("", "", "", None)
        self._notify_since: datetime | None = None
        self._coverage: Coverage | None = None
        self._observed: ObserveResult | None = None
        self._placed: dict[str, str] = {}
        """Host-local target name → its site (``check_sites``, preflight): where its activities run."""
        self._probe_site: str | None = None
        """The site the hypothesis probes run from (``from:``, a command probe's host); ``None``: anywhere."""

    # --- the phase list ------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: DrillInput) -> RunRecord:
        if not inp.run_id:  # a Temporal Schedule's run: its id is the schedule's, suffixed with the start time
            inp = inp.model_copy(update={"run_id": workflow.info().workflow_id})
        drill = inp.drill
        # The drill's clock starts when it was submitted, not when a worker first looked at it: a drill that
        # waited for a worker must neither hide the wait nor get its whole max_duration again.
        submitted = workflow.info().workflow_start_time
        self._record = RunRecord(
            run_id=inp.run_id,
            drill_name=drill.name,
            team=drill.team,
            source=inp.source,
            started_by=inp.started_by,
            started_at=submitted,
            expect=drill.observe.expect,
        )
        # Input-based: a drill without ``notify`` schedules no notification at all (old histories replay as is).
        self._notify = NotifySender(inp.run_id, drill.name, drill.team, drill.notify, _notify_policy(drill))
        self._notify.send(
            DrillStarted(
                kind="started",
                description=drill.description,
                started_by=inp.started_by,
                targets=[f"{name} ({t.kind.value})" for name, t in drill.targets.items()],
                faults=[f.label for f in drill.faults],
                approval=drill.approval is not None,
            )
        )
        self._check_picked_up(inp, submitted)
        await self._save_progress()
        if inp.blackouts and self._stop is None:
            await self._check_blackout(inp)
        if self._stop is None and workflow.patched(FREEZE_PATCH):
            await self._check_freeze(inp)  # the kill switch: before any policy check, lock, probe or fault
        hold = asyncio.create_task(self._hold(inp))
        left = drill.max_duration - (workflow.now() - submitted)
        try:
            if left <= timedelta(0):
                raise TimeoutError  # max_duration passed before a worker picked the drill up
            await workflow.wait_condition(
                lambda: hold.done() or self._stop is not None,
                timeout=left,
                timeout_summary=f"max_duration {format_duration(drill.max_duration)} from submission",
            )
        except TimeoutError:
            self._request_stop(StopRequest(reason="max_duration reached: rollback forced", by="gameday"))
        except asyncio.CancelledError:
            self._request_stop(StopRequest(reason="workflow cancellation requested", by="temporal"))
        safe = asyncio.create_task(self._rollback_verify_record(inp, hold))
        while True:
            try:
                return await asyncio.shield(safe)
            except asyncio.CancelledError:
                if safe.done():
                    # The safe path itself was cancelled: only an eviction from the worker's cache does that (it
                    # cancels every task). Let it go: looping here would never yield, and the eviction would hang.
                    raise
                # A further cancel while the rollback runs: keep going, the rollback must finish.
                self._request_stop(StopRequest(reason="workflow cancellation requested", by="temporal"))

    def _check_picked_up(self, inp: DrillInput, submitted: datetime) -> None:
        """A drill no worker picked up within ``start_deadline`` ends ABORTED and touches nothing.

        Without this, a drill submitted to a queue nobody polls would inject whenever a worker appears, maybe
        days later, into a system nobody is watching. A notable wait is recorded as a ``pending`` step.
        """
        now = workflow.now()
        waited = now - submitted
        deadline = inp.drill.start_deadline
        late = waited > deadline
        if waited >= PICKUP_NOTABLE or late:
            step = StepRecord(
                phase=Phase.PENDING,
                status=StepStatus.INTERRUPTED if late else StepStatus.OK,
                started_at=submitted,
                ended_at=now,
                detail=f"waited {format_duration(_whole_seconds(waited))} for a worker to pick it up",
            )
            self._add_step(step)
        if late:
            reason = f"no worker picked it up within {format_duration(deadline)}: nothing was touched"
            self._request_stop(StopRequest(reason=reason, by="gameday"))

    def _check_preflight_deadline(self, inp: DrillInput) -> None:
        """Picked up in time but still not in preflight at ``start_deadline`` (a slow start): do not start late."""
        assert self._record is not None
        deadline = inp.drill.start_deadline
        if workflow.now() - self._record.started_at > deadline:
            reason = f"not in preflight within {format_duration(deadline)} of its submission: nothing was touched"
            self._request_stop(StopRequest(reason=reason, by="gameday"))
        self._raise_if_stopping()

    async def _check_blackout(self, inp: DrillInput) -> None:
        """A scheduled run inside a blackout window records itself skipped (a stop by ``schedule``) and does nothing."""
        window = await workflow.execute_activity(
            stubs.check_blackout,
            BlackoutCheck(blackouts=inp.blackouts, time_zone=inp.time_zone),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=3),
            summary="schedule: blackout window?",
        )
        if window:
            self._request_stop(StopRequest(reason=f"skipped: now is in blackout {window}", by="schedule"))

    async def _check_freeze(self, inp: DrillInput) -> None:
        """A drill started during a freeze of its team (or of all) records itself skipped by the freeze.

        Fail closed (``workflows/freeze_check.py``): when the freeze state cannot be read, the drill does not
        start either (``ABORTED``, nothing touched).
        """
        frozen = await freeze_refusal(
            inp.drill.team,
            summary="preflight: frozen?",
            not_started="not started, nothing touched (fail closed)",
            why=_error_text,
        )
        if frozen is None:
            self._request_stop(StopRequest(reason="workflow cancellation requested", by="temporal"))
        elif frozen:
            self._request_stop(StopRequest(reason=frozen, by=FROZEN_BY))

    async def _hold(self, inp: DrillInput) -> None:
        """Preflight, then inject, then observe: the part a stop interrupts."""
        self._raise_if_stopping()  # a skipped scheduled run, a drill picked up too late: nothing at all
        self._check_preflight_deadline(inp)
        if not await self._phase_step(Phase.PREFLIGHT, self._preflight(inp)):
            return
        await self._pause_point(inp)
        if inp.drill.approval is not None and not await self._phase_step(Phase.APPROVAL, self._await_approval(inp)):
            return
        await self._pause_point(inp)
        if not await self._phase_step(Phase.INJECT, self._inject(inp)):
            return
        await self._save_progress()
        self._raise_if_stopping()
        await self._pause_point(inp)
        await self._phase_step(Phase.OBSERVE, self._observe(inp))

    async def _await_approval(self, inp: DrillInput) -> str:
        """The go/no-go gate: wait for ``approve``; without it in time, end safely with nothing injected."""
        approval = inp.drill.approval
        assert approval is not None
        within = format_duration(approval.timeout)
        try:
            await workflow.wait_condition(
                lambda: self._approved is not None or self._stop is not None,
                timeout=approval.timeout,
                timeout_summary=f"approval: waiting up to {within} for gameday approve",
            )
        except TimeoutError:
            self._request_stop(StopRequest(reason=f"no approval within {within}: nothing injected", by="gameday"))
            raise _PhaseInterrupted(f"no approval within {within}") from None
        self._raise_if_stopping()
        assert self._approved is not None
        note = f": {self._approved.note}" if self._approved.note else ""
        return f"approved by {self._approved.by}{note}"

    async def _pause_point(self, inp: DrillInput) -> None:
        """Between phases: if paused, hold here until resumed (faults held, or reverted and applied again)."""
        if self._paused is None:
            return
        revert = inp.drill.pause.faults == "revert"
        in_place = any(fi.record.state == FaultState.APPLIED for fi in self._faults)
        started = workflow.now()
        previous = self._phase
        self._phase = Phase.PAUSED
        reverted = (
            [fi.index for fi in reversed(self._faults) if fi.record.state == FaultState.APPLIED] if revert else []
        )
        for index in reverted:
            await self._revert(inp, index, "pause")
        self._traffic.mark("paused")
        await workflow.wait_condition(lambda: self._paused is None or self._stop is not None)
        self._raise_if_stopping()
        ended = []
        for index in reversed(reverted):
            if index in self._early_reverting:  # its own duration ended while paused: it stays reverted
                ended.append(index)
                continue
            await self._reapply(inp, index)
        self._mark_traffic()
        held = ("faults reverted" if revert else "faults held") if in_place else "no fault applied yet"
        again = f"; {len(reverted)} fault(s) reverted while paused and applied again" if reverted else ""
        if ended:
            again = f"; {len(reverted)} fault(s) reverted while paused, {len(reverted) - len(ended)} applied again"
            again += f" ({len(ended)} reached the end of its duration)"
        step = StepRecord(
            phase=Phase.PAUSED,
            status=StepStatus.OK,
            started_at=started,
            ended_at=workflow.now(),
            detail=f"paused ({held}), resumed by {self._resumed_by}{again}",
        )
        self._add_step(step)
        self._phase = previous

    async def _reapply(self, inp: DrillInput, index: int) -> None:
        fi = self._faults[index]
        fresh = fi.record.model_copy(update={"state": FaultState.REGISTERED, "reverted_at": None})
        self._set_fault(index, fresh)
        self._applying = index
        try:
            record = await workflow.execute_activity(
                stubs.apply_fault,
                self._faults[index],
                start_to_close_timeout=_apply_budget(fi.fault),
                heartbeat_timeout=HEARTBEAT,
                retry_policy=RetryPolicy(maximum_attempts=1),
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                summary=f"resume: apply {fi.record.label} again",
                **self._route(fi),
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            error = _error_text(err)
            # Applied once already: whatever the apply says now, its revert runs (the record keeps applied_at).
            self._set_fault(index, fresh.model_copy(update={"state": FaultState.FAILED, "error": error}))
            reason = error.removeprefix(f"{fi.record.label}: ")
            failed = f"applying '{fi.record.label}' again failed: {reason}"
            raise _PhaseFailed(failed, orchestration_error=True) from err
        finally:
            self._applying = None
        self._set_fault(index, record)

    async def _rollback_verify_record(self, inp: DrillInput, hold: asyncio.Task[None]) -> RunRecord:
        """The safe path, run on every exit: interrupt the hold, revert everything, verify, record."""
        if not hold.done():
            hold.cancel()
            if self._applying is not None:
                # The in-flight apply must end before its revert runs, or the fault could land after it.
                await workflow.wait([hold])
        self._traffic.mark("rollback")
        await self._phase_step(Phase.ROLLBACK, self._rollback(inp))
        self._rolled_back = True
        self._traffic.mark("after")
        await self._alert_if_not_reverted(inp)
        if self._uses_locks(inp):
            await self._release_targets(inp)
        if not hold.done():
            await workflow.wait([hold])  # collects the interrupted observation's partial results
        failure = None if hold.cancelled() else hold.exception()
        if failure is not None and not is_cancelled_exception(failure):
            # Phases report through workflow state; anything else escaping the hold is an orchestration error.
            self._errors.append(f"orchestration error: {_error_text(failure)}")
        if self._faults and not self._not_steady:
            await self._phase_step(Phase.VERIFY, self._verify(inp))
        for line in await self._proxies.release():
            workflow.logger.info("%s", line)
        await self._stop_traffic(inp)
        await self._stop_watch(inp)
        self._finish()
        self._set_verdict_attribute()
        await self._notify_finished()
        await self._save_final()
        self._phase = Phase.DONE
        assert self._record is not None
        return self._record

    # --- phases ---------------------------------------------------------------------------------------------

    async def _preflight(self, inp: DrillInput) -> str:
        await self._check_policy(inp)  # first: before any lock, proxy, probe, traffic or fault
        placed = await self._check_sites(inp)  # before anything a site's worker would do
        locked = placed + await self._lock_targets(inp) if self._uses_locks(inp) else ""
        try:
            locked += await self._proxies.start(inp)
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            raise _PhaseFailed(f"proxy not started: {_error_text(err)}", orchestration_error=True) from err
        probes = inp.drill.probes_for("before")
        if not probes:
            return locked + "no hypothesis probes run before the faults" + await self._start_traffic(inp)
        results = await workflow.execute_activity(
            stubs.check_hypothesis,
            ProbeInput(run_id=inp.run_id, phase=Phase.PREFLIGHT, probes=probes),
            start_to_close_timeout=_probe_budget(probes),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=RetryPolicy(maximum_attempts=3),
            summary=f"preflight: {len(probes)} probe(s)",
            **self._probe_route(),
        )
        self._add_probes(results)
        failing = [r for r in results if not r.ok]
        if failing:
            self._not_steady = True
            raise _PhaseFailed("steady state does not hold: " + "; ".join(_describe(r) for r in failing))
        return locked + f"steady state holds ({len(results)} probe(s))" + await self._start_traffic(inp)

    async def _check_sites(self, inp: DrillInput) -> str:
        """Which site each host-local target is on, each with a live worker: else ``ERROR``, nothing touched.

        Input-based and patch-gated: drills started before sites replay without it (their activities went to
        the shared queue, and still do).
        """
        targets, probes = host_local_targets(inp.drill), placed_probes(inp.drill)
        if not (targets or probes) or not workflow.patched(SITES_PATCH):
            return ""
        try:
            answer = await workflow.execute_activity(
                stubs.check_sites,
                SitesCheck(task_queue=workflow.info().task_queue, targets=targets, probes=probes),
                start_to_close_timeout=timedelta(seconds=15),
                schedule_to_close_timeout=SITE_WAIT,
                retry_policy=RetryPolicy(
                    maximum_interval=timedelta(seconds=5), non_retryable_error_types=["SiteMissing", "SiteNotNamed"]
                ),
                summary=f"preflight: sites of {', '.join(sorted(targets) + sorted(probes))}",
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            raise _PhaseFailed(f"sites: {_error_text(err)}", orchestration_error=True) from err
        self._placed, self._probe_site = dict(answer.placed), answer.probe_site
        said = [f"{name} on {site}" for name, site in sorted(self._placed.items())]
        said += [f"probes from {answer.probe_site}"] if answer.probe_site is not None else []
        return "sites: " + ", ".join(said) + "; "

    def _site_route(self, target_name: str) -> dict[str, Any]:
        """Extra ``execute_activity`` options for a host-local target: its site's queue (none before sites)."""
        site = self._placed.get(target_name)
        return {} if site is None else {"task_queue": site_queue(workflow.info().task_queue, site)}

    def _probe_route(self) -> dict[str, Any]:
        """Extra ``execute_activity`` options for the hypothesis probes: their site's queue, when they have one."""
        site = self._probe_site
        return {} if site is None else {"task_queue": site_queue(workflow.info().task_queue, site)}

    def _route(self, fi: FaultInput) -> dict[str, Any]:
        """Where a fault's capture, apply and revert run: its proxy's worker, its site, or anywhere."""
        return self._proxies.route(fi) or self._site_route(fi.target_name)

    async def _check_policy(self, inp: DrillInput) -> None:
        """Does the worker's policy (its own configuration, never the drill's) accept the whole drill?

        A refusal ends the drill here, ``ERROR`` with nothing touched; apply, probes, traffic and proxies enforce
        the same policy again on whichever worker runs them.
        """
        if not workflow.patched(POLICY_PATCH):
            return
        try:
            await workflow.execute_activity(
                stubs.check_policy,
                inp,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=["PolicyRefused"]),
                summary="preflight: worker policy",
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            why = "" if _failure_type(err) == "PolicyRefused" else "worker policy not checked: "
            raise _PhaseFailed(why + _error_text(err), orchestration_error=True) from err

    async def _start_traffic(self, inp: DrillInput) -> str:
        """Start the traffic once the steady state holds; ``"; traffic 50/s"`` for the preflight line, or ``""``."""
        try:
            started = await self._traffic.start(inp, self._proxies.queue)
            return f"; {started}" if started else ""
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            raise _PhaseFailed(f"traffic not started: {_error_text(err)}", orchestration_error=True) from err

    def _mark_traffic(self) -> None:
        """A new traffic window named after the faults in place now."""
        active = [f.record.label for f in self._faults if f.record.state == FaultState.APPLIED]
        self._traffic.mark("during " + ", ".join(active) if active else "observe, no fault")

    async def _lock_targets(self, inp: DrillInput) -> str:
        """Hold every faulted target for this run, waiting up to ``lock_wait`` for another drill to let go.

        The keys are the resources the targets resolve to now (``resolve_targets``), not their spelling.
        """
        drill = inp.drill
        if workflow.patched(RESOLVED_LOCKS_PATCH):
            resolved = await self._resolve_targets(inp)
            keys = resolved_keys(resolved)
            locked = "locked " + ", ".join(f"{r.name} ({', '.join(r.keys)})" for r in resolved) + "; "
        else:
            keys = keys_of(drill)
            locked = f"{len(keys)} target(s) locked; "
        wait = drill.lock_wait
        try:
            await workflow.execute_activity(
                stubs.acquire_targets,
                LockInput(run_id=inp.run_id, drill_name=drill.name, keys=keys),
                start_to_close_timeout=timedelta(seconds=10),
                schedule_to_close_timeout=wait + timedelta(seconds=30) if wait else timedelta(seconds=60),
                # Retried after a lost worker or an unreachable database (taking a lock the run holds is a no-op);
                # "held by another run" is retried only while lock_wait lasts.
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=500),
                    backoff_coefficient=1.5,
                    maximum_interval=timedelta(seconds=5),
                    non_retryable_error_types=[] if wait else ["TargetLocked"],
                ),
                summary=f"preflight: lock {', '.join(sorted(set(keys.values())))}"
                + (f" (wait up to {format_duration(wait)})" if wait else ""),
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            why = "refused" if _failure_type(err) == "TargetLocked" else "target locks not taken"
            raise _PhaseFailed(f"{why}: {_error_text(err)}", orchestration_error=True) from err
        return locked

    async def _resolve_targets(self, inp: DrillInput) -> list[ResolvedTarget]:
        """What each faulted target is on the worker now: a missing target fails preflight, nothing injected."""
        everything = lockable_targets(inp.drill)
        # A host-local target is resolved on its own site (a pid or a path means something on one host only),
        # and its keys name that site: the same pidfile on two sites is two resources.
        groups: dict[str | None, dict[str, Target]] = {}
        for name, target in everything.items():
            groups.setdefault(self._placed.get(name), {})[name] = target
        resolved: list[ResolvedTarget] = []
        for site, targets in groups.items():
            found = await self._resolve_on(inp, targets, site)
            if site is not None:
                found = [r.model_copy(update={"keys": [f"site:{site}/{k}" for k in r.keys]}) for r in found]
            resolved += found
        return resolved

    async def _resolve_on(self, inp: DrillInput, targets: dict[str, Target], site: str | None) -> list[ResolvedTarget]:
        wait = inp.drill.lock_wait
        route: dict[str, Any] = {} if site is None else {"task_queue": site_queue(workflow.info().task_queue, site)}
        try:
            resolved: list[ResolvedTarget] = await workflow.execute_activity(
                stubs.resolve_targets,
                ResolveInput(targets=targets),
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=wait + timedelta(seconds=30) if wait else timedelta(minutes=2),
                heartbeat_timeout=HEARTBEAT,
                # An engine or resolver that does not answer is asked again. A target that is not there fails at
                # once, nothing touched (a wrong drill file or worker), unless the drill waits for its targets
                # (lock_wait): another drill's fault may have taken it down (a kill before its restart).
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=500),
                    backoff_coefficient=1.5,
                    maximum_interval=timedelta(seconds=5),
                    maximum_attempts=0 if wait else 3,
                    non_retryable_error_types=[] if wait else ["TargetUnresolved"],
                ),
                summary=f"preflight: resolve {', '.join(targets)}"
                + (f" (wait up to {format_duration(wait)})" if wait else "")
                + (f" on site {site}" if site is not None else ""),
                **route,
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            raise _PhaseFailed(f"target not resolved: {_error_text(err)}", orchestration_error=True) from err
        return resolved

    def _uses_locks(self, inp: DrillInput) -> bool:
        # Input-based and patch-gated: the same answer on every replay of the same history.
        return bool(keys_of(inp.drill)) and workflow.patched(LOCKS_PATCH)

    async def _alert_if_not_reverted(self, inp: DrillInput) -> None:
        """A fault left in place is an incident: alert now, before verify and record take their time."""
        left = [f.record for f in self._faults if f.record.state == FaultState.NOT_REVERTED]
        if not left:
            return
        await self._send_alert(
            inp,
            event="fault_not_reverted",
            summary="a fault could NOT be reverted: act now",
            faults=left,
            label=f"NOT REVERTED {', '.join(f.label for f in left)}",
            within=timedelta(minutes=2),
            undelivered="alert for NOT REVERTED faults",
            cancel_propagates=False,  # on the shielded safe path: a cancel must not skip what follows
        )

    async def _send_alert(
        self,
        inp: DrillInput,
        *,
        event: str,
        summary: str,
        faults: list[FaultRecord],
        label: str,
        within: timedelta,
        undelivered: str,
        cancel_propagates: bool,
    ) -> None:
        """Send one alert about this drill's ``faults``, retried for ``within``; an alert not delivered is logged.

        ``cancel_propagates``: a cancellation of the alert is raised (else it is logged as not delivered).
        """
        alert = AlertInput(
            run_id=inp.run_id,
            drill_name=inp.drill.name,
            team=inp.drill.team,
            event=event,
            summary=summary,
            faults=faults,
        )
        try:
            await workflow.execute_activity(
                stubs.alert,
                alert,
                start_to_close_timeout=timedelta(seconds=15),
                schedule_to_close_timeout=within,
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
                summary=f"alert: {label}",
            )
        except ActivityError as err:
            if cancel_propagates and is_cancelled_exception(err):
                raise
            workflow.logger.error("%s not delivered: %s", undelivered, _error_text(err))

    async def _release_targets(self, inp: DrillInput) -> None:
        """Let other drills have the targets again, unless a fault is still on one of them."""
        if any(f.record.state == FaultState.NOT_REVERTED for f in self._faults):
            return  # the lock keeps other drills off a broken target until `gameday sweep` reverts it
        try:
            await workflow.execute_activity(
                stubs.release_targets,
                LockInput(run_id=inp.run_id, drill_name=inp.drill.name, keys=keys_of(inp.drill)),
                start_to_close_timeout=timedelta(seconds=10),
                schedule_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
                summary="rollback: release target locks",
            )
        except ActivityError as err:
            workflow.logger.warning("target locks not released (gameday sweep will): %s", _error_text(err))

    async def _inject(self, inp: DrillInput) -> str:
        drill = inp.drill
        if drill.faults:
            # Input-based: only a drill with observe.watch (or expected alerts) starts one, just before its first fault.
            self._watch.start(inp, self._probe_route())
        for index, fault in enumerate(drill.faults):
            self._raise_if_stopping()
            target = drill.targets[fault.target]
            # The revert is registered before the fault is applied: whatever happens next, rollback sees it.
            fi = FaultInput(
                run_id=inp.run_id,
                index=index,
                target_name=fault.target,
                target=target,
                fault=fault,
                record=FaultRecord(
                    index=index, label=fault.label, target=fault.target, kind=target.kind.value, action=fault.action
                ),
                # The worker holding the fault reverts it on its own after this long without reaching Temporal.
                lease=drill.fault_lease if workflow.patched(LEASE_PATCH) else None,
            )
            self._faults.append(fi)
            self._applying = index
            read = False
            try:
                if workflow.patched(CAPTURE_PATCH):
                    await self._capture(index)
                read = True
                record = await workflow.execute_activity(
                    stubs.apply_fault,
                    self._faults[index],
                    start_to_close_timeout=_apply_budget(fault),
                    heartbeat_timeout=HEARTBEAT,
                    retry_policy=RetryPolicy(maximum_attempts=1),  # never apply twice; rollback covers a failure
                    cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                    summary=f"inject: {fault.label}",
                    **self._route(fi),
                )
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise
                error = _error_text(err)
                if not read:  # the capture only reads the target: a fault whose capture failed was never applied
                    error = f"{fault.label}: {NOT_APPLIED}{error.removeprefix(f'{fault.label}: ')}"
                failed_update: dict[str, Any] = {"state": FaultState.FAILED, "error": error}
                # Its worker died mid-apply: what it had done, as last heartbeated, goes to its revert.
                partial = (
                    partial_output(err.cause.last_heartbeat_details) if isinstance(err.cause, ActivityTimeout) else None
                )
                if partial is not None and workflow.patched(PARTIAL_OUTPUT_PATCH):
                    failed_update["output"] = clip(partial, MAX_OUTPUT_BYTES)
                self._set_fault(index, fi.record.model_copy(update=failed_update))
                reason = error.removeprefix(f"{fault.label}: ")  # the step names the fault once
                if self._faults[index].record.not_applied:
                    failed = f"'{fault.label}' {reason}; nothing was changed"
                else:
                    failed = f"applying '{fault.label}' failed: {reason}"
                raise _PhaseFailed(failed, orchestration_error=True) from err
            finally:
                self._applying = None
            self._set_fault(index, record)
            self._mark_traffic()
            if fault.duration is not None:
                self._early[index] = asyncio.create_task(self._revert_early(inp, index, fault.duration))
        return f"{len(drill.faults)} fault(s) applied"

    async def _capture(self, index: int) -> None:
        """Read the target's state before its apply, into workflow state (and so the ledger): a revert restores
        that state, whatever an interrupted apply did or did not change. Read-only, so retrying it is safe."""
        fi = self._faults[index]
        before = await workflow.execute_activity(
            stubs.capture_target,
            fi,
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=["FaultCaptureError"]),
            summary=f"inject: read the state of {fi.record.target} before {fi.record.label}",
            **self._site_route(fi.target_name),
        )
        self._faults[index] = fi.model_copy(update={"before": before.facts})

    async def _observe(self, inp: DrillInput) -> str:
        observe = inp.drill.observe
        probes = inp.drill.probes_for("during")
        span = format_duration(observe.duration)
        if observe.duration <= timedelta(0):
            return "no observation window (duration 0s)"
        if not probes and not observe.guardrails:
            await workflow.sleep(observe.duration, summary=f"observe: hold faults {span}")
            return f"faults held {span} (no probes to run)"
        guards = f", {len(observe.guardrails)} guardrail(s)" if observe.guardrails else ""
        handle = workflow.start_activity(
            stubs.observe,
            ObserveInput(
                run_id=inp.run_id,
                probes=probes,
                interval=observe.interval,
                ends_at=workflow.now() + observe.duration,
                guardrails=observe.guardrails,
                duration=observe.duration,
                recovery_probes=recovery_probes(inp.drill, probes),
            ),
            start_to_close_timeout=observe.duration + _probe_budget(probes),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=RetryPolicy(maximum_attempts=5),  # a retried attempt resumes from its heartbeat
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"observe: {span} every {format_duration(observe.interval)}{guards}",
            **self._probe_route(),
        )
        result = await handle
        self._observed = result
        self._add_probes(result.results)
        self._deviated = result.deviated
        if result.coverage is not None:
            self._coverage = result.coverage.model_copy(update={"min_coverage": observe.min_coverage})
        if result.breach is not None:
            breach = result.breach
            reason = f"guardrail '{breach.guardrail}' breached: {breach.detail}"
            self._request_stop(StopRequest(reason=reason, by="guardrail", received_at=breach.at))
        held = "expectations broken under fault" if result.deviated else "expectations held"
        seen = f"{result.ticks} tick(s)" if self._coverage is None else self._coverage.describe()
        if result.interrupted:
            raise _PhaseInterrupted(f"{self._interrupt_reason()} after {seen}: {held}")
        return f"observed {seen}: {held}"

    async def _rollback(self, inp: DrillInput) -> str:
        # A fault's own `duration` timer still sleeping is cancelled (its fault is reverted here); an early revert
        # already under way carries on as its own task, beside the others.
        sleeping = [task for index, task in self._early.items() if index not in self._early_reverting]
        for task in sleeping:
            task.cancel()
        if sleeping:
            await workflow.wait(sleeping)
        retrying: list[asyncio.Task[Any]] = [
            task for index, task in self._early.items() if index in self._early_reverting and not task.done()
        ]
        busy = {index for index, task in self._early.items() if task in retrying}
        reverting: list[int] = []
        for fi in reversed(self._faults):
            if fi.index in busy or self._faults[fi.index].record.state == FaultState.REVERTED:
                continue
            reverting.append(fi.index)
            # Each revert's first attempt in reverse order; one that fails is retried in a task of its own, so a
            # revert that keeps failing never holds the faults before it (theirs take milliseconds).
            if not await self._revert(inp, fi.index, "rollback", first_attempt_only=True):
                retrying.append(asyncio.create_task(self._revert(inp, fi.index, "rollback: retry")))
        if retrying:
            await workflow.wait(retrying)
        left = [f.record.label for f in self._faults if f.record.state == FaultState.NOT_REVERTED]
        if left:
            raise _PhaseFailed("NOT REVERTED: " + ", ".join(left))
        # Only what was really undone is called reverted: a fault whose apply changed nothing was not.
        records = [self._faults[index].record for index in reverting]
        undone = sum(1 for record in records if record.reverted_at is not None)
        never = [record.label for record in records if record.reverted_at is None]
        said = [f"{undone} fault(s) reverted"] if undone else []
        said += [f"never applied, nothing to revert: {', '.join(never)}"] if never else []
        return "; ".join(said) or "nothing to revert"

    async def _verify(self, inp: DrillInput) -> str:
        probes = inp.drill.probes_for("after")
        if not probes:
            return "no hypothesis probes run after the faults"
        recovery = inp.drill.recovery
        since = last_faulted([f.record for f in self._faults])
        result = await workflow.execute_activity(
            stubs.verify_recovery,
            VerifyInput(
                run_id=inp.run_id,
                probes=probes,
                within=recovery.within,
                interval=recovery.interval,
                consecutive=recovery.consecutive,
                since=since,
            ),
            start_to_close_timeout=recovery.within + _probe_budget(probes),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=RetryPolicy(maximum_attempts=3),
            summary=f"verify: hypothesis within {format_duration(recovery.within)}",
            **self._probe_route(),
        )
        self._add_probes(result.results)
        assert self._record is not None
        recovered_in = time_to_recovery(since, self._observed, result, recovery.consecutive)
        self._record = self._record.model_copy(update={"time_to_recovery": recovered_in})
        self._healthy_at = result.healthy_at
        if not result.recovered:
            self._not_recovered = True
            failing = [r for r in result.results if not r.ok]
            raise _PhaseFailed(
                f"not recovered within {format_duration(recovery.within)}: " + "; ".join(_describe(r) for r in failing)
            )
        return f"recovered in {recovered_in or 0:.2f}s after {result.attempts} check(s)"

    # --- faults ---------------------------------------------------------------------------------------------

    async def _revert_early(self, inp: DrillInput, index: int, after: timedelta) -> None:
        await workflow.sleep(after, summary=f"hold '{self._faults[index].record.label}' {format_duration(after)}")
        # Its duration may end while a resumed drill applies it again: revert after that apply, never beside it
        # (a revert racing the apply could land first, and its "reverted" hide the fault the apply then left).
        await workflow.wait_condition(lambda: self._applying != index)
        self._early_reverting.add(index)
        await self._revert(inp, index, "early revert")
        self._mark_traffic()

    async def _revert(self, inp: DrillInput, index: int, why: str, *, first_attempt_only: bool = False) -> bool:
        """Revert one fault; returns whether it is done with (reverted, or given up on).

        ``first_attempt_only``: one attempt, and a retryable failure returns ``False`` with the fault's state
        unchanged (its error noted), for the caller to retry it on its own task.
        """
        fi = self._faults[index]
        gone = {
            "state": FaultState.REVERTED,
            "reverted_at": workflow.now(),
            "output": "its proxy is gone (the worker holding it ended): the toxic went with it",
        }
        if self._proxies.gone(fi):
            self._set_fault(index, fi.record.model_copy(update=gone))
            return True
        site = self._placed.get(fi.target_name)
        # A rollback's first attempt on a site's queue: if no worker of the site takes it soon, people hear at once.
        pickup: dict[str, Any] = {"schedule_to_start_timeout": SITE_PICKUP} if site and first_attempt_only else {}
        try:
            record = await workflow.execute_activity(
                stubs.revert_fault,
                fi,
                start_to_close_timeout=timedelta(seconds=60),
                schedule_to_close_timeout=self._revert_window(inp),
                heartbeat_timeout=HEARTBEAT,
                retry_policy=RetryPolicy(maximum_attempts=1) if first_attempt_only else REVERT_RETRY,
                summary=f"{why}: revert {fi.record.label}",
                **self._route(fi),
                **pickup,
            )
        except ActivityError as err:
            if site is not None and ProxyHolds.worker_gone(err):
                # No worker of the site took it: alert, and let the retry wait on the site's queue for one.
                await self._alert_site_without_worker(inp, site, fi.record)
                waiting = f"no live worker at site {site}: the revert waits for one"
                self._set_fault(index, fi.record.model_copy(update={"error": waiting}))
                return False
            if ProxyHolds.worker_gone(err):
                record = fi.record.model_copy(update=gone)
            elif first_attempt_only and not _non_retryable(err) and not is_cancelled_exception(err):
                retry_update: dict[str, Any] = {"error": _error_text(err)}
                # Its worker died mid-revert: what it had done goes to the retry (rollbacks done are not run again).
                partial = (
                    partial_output(err.cause.last_heartbeat_details) if isinstance(err.cause, ActivityTimeout) else None
                )
                if partial is not None and workflow.patched(PARTIAL_OUTPUT_PATCH):
                    retry_update["output"] = clip(partial, MAX_OUTPUT_BYTES)
                self._set_fault(index, fi.record.model_copy(update=retry_update))
                return False
            else:
                record = fi.record.model_copy(update={"state": FaultState.NOT_REVERTED, "error": _error_text(err)})
        if fi.record.state == FaultState.FAILED and record.state == FaultState.REVERTED:
            record = record.model_copy(update={"state": FaultState.FAILED})  # keep "apply failed" visible
        self._set_fault(index, record)
        return True

    async def _alert_site_without_worker(self, inp: DrillInput, site: str, fault: FaultRecord) -> None:
        """A site holds a fault of this drill and has no live worker to revert it: people must start one now."""
        await self._send_alert(
            inp,
            event="site_without_worker",
            summary=f"site {site} has faults and no live worker: start `gameday worker --site {site}`; "
            f"the revert waits for it",
            faults=[fault],
            label=f"site {site} has faults and no worker",
            within=timedelta(minutes=1),
            undelivered=f"alert for site {site} without a worker",
            cancel_propagates=True,
        )

    def _revert_window(self, inp: DrillInput) -> timedelta:
        """A failing revert is retried until ``max_duration`` + ``revert_grace`` from the start of the run.

        Never less than the grace itself: a worker back from a long outage still gets a full try.
        """
        assert self._record is not None
        drill = inp.drill
        deadline = self._record.started_at + drill.max_duration + drill.revert_grace
        return max(deadline - workflow.now(), drill.revert_grace)

    def _set_fault(self, index: int, record: FaultRecord) -> None:
        self._faults[index] = self._faults[index].model_copy(update={"record": record})

    # --- bookkeeping ----------------------------------------------------------------------------------------

    async def _phase_step(self, phase: Phase, body: Awaitable[str]) -> bool:
        """Run one phase, keeping its StepRecord; returns whether it succeeded."""
        self._phase = phase
        step = StepRecord(phase=phase, status=StepStatus.OK, started_at=workflow.now())
        ok = True
        try:
            detail = await body
        except _PhaseFailed as failed:
            ok, detail = False, str(failed)
            step = step.model_copy(update={"status": StepStatus.FAILED})
            if failed.orchestration_error:
                self._errors.append(detail)
        except _PhaseInterrupted as interrupted:
            ok, detail = False, str(interrupted)
            step = step.model_copy(update={"status": StepStatus.INTERRUPTED})
        except asyncio.CancelledError:
            self._add_step(self._interrupted(step))
            raise
        except ActivityError as err:
            if is_cancelled_exception(err):
                self._add_step(self._interrupted(step))
                raise asyncio.CancelledError() from err
            ok, detail = False, f"{phase.value} failed: {_error_text(err)}"
            self._errors.append(detail)
            step = step.model_copy(update={"status": StepStatus.FAILED})
        self._add_step(step.model_copy(update={"ended_at": workflow.now(), "detail": detail}))
        return ok

    def _interrupted(self, step: StepRecord) -> StepRecord:
        update = {"status": StepStatus.INTERRUPTED, "ended_at": workflow.now(), "detail": self._interrupt_reason()}
        return step.model_copy(update=update)

    def _raise_if_stopping(self) -> None:
        # An activity that finished despite a cancel request hands its result back instead of raising,
        # so the hold checks the stop flag itself before starting anything new.
        if self._stop is not None:
            raise asyncio.CancelledError()

    def _interrupt_reason(self) -> str:
        return f"interrupted: {self._stop.reason}" if self._stop else "interrupted"

    def _add_step(self, step: StepRecord) -> None:
        assert self._record is not None
        self._record = self._record.model_copy(update={"steps": [*self._record.steps, step], "phase": step.phase})
        if step.phase not in (Phase.RECORD, Phase.NOTIFY):
            what = PhaseDone(
                kind="phase", phase=step.phase, status=step.status, detail=step.detail, seconds=step.seconds
            )
            self._notify.send(what)

    def _set_verdict_attribute(self) -> None:
        """``DrillVerdict`` for the Web UI and visibility queries, on runs started with gameday's attributes."""
        assert self._record is not None and self._record.verdict is not None
        if workflow.info().typed_search_attributes.get(search.DRILL_NAME) is not None:
            workflow.upsert_search_attributes([search.VERDICT.value_set(self._record.verdict.value)])

    async def _stop_traffic(self, inp: DrillInput) -> None:
        """Stop the load (after verify: the ``after`` window is the recovery under load) and judge observe.expect."""
        outcome = await self._traffic.stop()
        expect = inp.drill.observe.expect
        if outcome is None:
            if (unjudged := service_levels_unjudged(expect)) is not None:
                assert self._record is not None
                self._record = self._record.model_copy(update={"expectations": [*self._record.expectations, unjudged]})
            if expect is not None and expect.data_loss is not None:
                await self._check_data_loss(expect.data_loss, None)
            return
        assert self._record is not None
        # The acknowledged ids are the read-back's input, not the record's: data_loss keeps what was found.
        self._record = self._record.model_copy(update={"traffic": outcome.summary.model_copy(update={"ids": None})})
        if expect is not None and outcome.during is not None:
            self._expect_misses = expect.misses(outcome.during)
            self._deviated = self._deviated or bool(self._expect_misses)
        if expect is not None and expect.data_loss is not None:
            await self._check_data_loss(expect.data_loss, outcome.summary)

    async def _check_data_loss(self, bound: LossBound, summary: TrafficSummary | None) -> None:
        """Read the acknowledged writes back (the system recovered) and judge ``observe.expect.data_loss``."""
        assert self._record is not None
        loss, why_not = None, ""
        if summary is None:
            why_not = "not read back: no traffic ran to the end (not started, or its worker was lost)"
        elif self._not_recovered:
            why_not = "not read back: the system did not recover"
        else:
            # Faults are reverted by now, but a long read-back must still end on a person's stop.
            stops = self._stop_signals
            reading = asyncio.create_task(self._traffic.read_back(summary))
            await workflow.wait_condition(lambda: reading.done() or self._stop_signals > stops)
            if not reading.done():
                reading.cancel()
            try:
                loss = await reading
            except (ActivityError, asyncio.CancelledError) as err:
                if self._stop_signals > stops:
                    reason = self._stop.reason if self._stop is not None else "stopped"
                    why_not = f"not read back: stopped during the read-back ({reason})"
                else:
                    why_not = f"not read back: {_error_text(err)}"
        result = data_loss_expectation(bound, loss, why_not)
        expectations = [*self._record.expectations, result]
        self._record = self._record.model_copy(update={"data_loss": loss, "expectations": expectations})
        if result.held is False:
            self._expect_misses = [*self._expect_misses, result.miss]
            self._deviated = True

    async def _stop_watch(self, inp: DrillInput) -> None:
        """Stop the watch (after verify) and judge observe.expect's sequence, detect and alerts on it."""
        if not WatchHold.wanted(inp):
            return
        progress = await self._watch.stop(self._healthy_at)
        applied = [f.record.applied_at for f in self._faults if f.record.applied_at is not None]
        results, detected_in = judged(inp, progress, min(applied, default=None), self._healthy_at)
        assert self._record is not None
        self._record = self._record.model_copy(
            update={
                "expectations": [*self._record.expectations, *results],
                "time_to_detect": detected_in,
                "watch": progress.probes if progress is not None else [],
                "alerts": progress.alerts if progress is not None else [],
            }
        )
        misses = [r.miss for r in results if r.held is False and r.miss]
        self._expect_misses = [*self._expect_misses, *misses]
        self._deviated = self._deviated or bool(misses)

    async def _notify_finished(self) -> None:
        """The verdict to Slack/webhook, then a bounded wait for the queue; what failed becomes a ``notify`` step.

        After rollback and verify, before the record: a notification outage costs the record at most the
        sender's flush bound, and never the safety path.
        """
        record = self._record
        assert record is not None and record.verdict is not None
        faults = [f.record for f in self._faults]
        self._notify.send(
            DrillFinished(
                kind="finished",
                verdict=record.verdict,
                summary=record.summary,
                time_to_recovery=record.time_to_recovery,
                time_to_safe=record.time_to_safe,
                faults_reverted=sum(1 for f in faults if f.reverted_at is not None),
                faults_total=len(faults),
                coverage=record.coverage.describe() if record.coverage is not None else "",
            )
        )
        started = workflow.now()
        # The verdict is known from here on: `run --wait` and `status` see phase notify and need not wait for it.
        self._phase = Phase.NOTIFY
        self._notify_since = started
        await self._notify.flush()
        if self._notify.failures:
            failed = StepRecord(
                phase=Phase.NOTIFY,
                status=StepStatus.FAILED,
                started_at=started,
                ended_at=workflow.now(),
                detail="; ".join(self._notify.failures),
            )
            self._add_step(failed)

    def _add_probes(self, results: list[ProbeResult]) -> None:
        assert self._record is not None
        self._last = results
        self._record = self._record.model_copy(update={"probes": [*self._record.probes, *results]})

    def _request_stop(self, stop: StopRequest) -> None:
        if self._stop is None:
            # A guardrail brings the moment it measured the breach; a person's stop is timed on arrival.
            self._stop = stop.model_copy(update={"received_at": stop.received_at or workflow.now()})
            self._notify.send(DrillStopped(kind="stopped", reason=stop.reason, by=stop.by))

    def _finish(self) -> None:
        assert self._record is not None
        faults = [f.record for f in self._faults]
        verdict, why = judge(
            Outcome(
                faults=faults,
                not_steady=self._not_steady,
                not_recovered=self._not_recovered,
                stop=self._stop,
                errors=self._errors,
                deviated=self._deviated,
                expect_misses=self._expect_misses,
                coverage=self._coverage,
                unjudged=[f"{e.name} ({e.actual})" for e in self._record.expectations if e.held is None],
            )
        )
        self._record = self._record.model_copy(
            update={
                "verdict": verdict,
                "summary": why,
                "faults": faults,
                "stop": self._stop,
                "error": "; ".join(self._errors),
                "ended_at": workflow.now(),
                "coverage": self._coverage,
                **self._time_to_safe(faults),
            }
        )

    def _time_to_safe(self, faults: list[FaultRecord]) -> dict[str, float | None]:
        """Stop → last revert done → first healthy check (``model.verdict.time_to_safe``); only for stopped runs."""
        return time_to_safe(self._stop, faults, self._healthy_at)

    async def _save_progress(self) -> None:
        """Best effort: a progress write never holds up the drill; the final record is the one that must land."""
        assert self._record is not None
        snapshot = self._record.model_copy(update={"faults": [f.record for f in self._faults], "phase": self._phase})
        try:
            await workflow.execute_activity(
                stubs.record_run,
                snapshot,
                start_to_close_timeout=timedelta(seconds=5),
                retry_policy=RetryPolicy(maximum_attempts=2),
                summary=f"record: progress ({self._phase.value})",
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise asyncio.CancelledError() from err
            workflow.logger.warning("progress record not saved: %s", _error_text(err))

    async def _save_final(self) -> None:
        """The record phase: its own step is part of what it writes, so SQL holds the whole drill log."""
        assert self._record is not None
        self._phase = Phase.RECORD
        now = workflow.now()
        step = StepRecord(phase=Phase.RECORD, status=StepStatus.OK, started_at=now, ended_at=now)
        self._add_step(step.model_copy(update={"detail": f"verdict {self._record.verdict} recorded"}))
        try:
            # Every row must land once the database is back (or `gameday db upgrade` has run): retried with a
            # bounded backoff for RECORD_GIVE_UP. Meanwhile the verdict is already known to `run --wait`, `status`
            # and `report` through the ``record`` query, so nobody waits on the database.
            await workflow.execute_activity(
                stubs.record_run,
                self._record,
                start_to_close_timeout=timedelta(seconds=15),
                schedule_to_close_timeout=RECORD_GIVE_UP,
                retry_policy=RECORD_RETRY,
                summary=f"record: {self._record.verdict}",
            )
        except ActivityError as err:
            failed = step.model_copy(
                update={
                    "status": StepStatus.FAILED,
                    "ended_at": workflow.now(),
                    "detail": f"not recorded: {_error_text(err)}",
                }
            )
            self._record = self._record.model_copy(update={"steps": [*self._record.steps[:-1], failed]})

    def _steps_now(self) -> list[StepRecord]:
        """The steps as a person should see them now: while the final record is being saved, its step is running."""
        if self._record is None:
            return []
        steps = self._record.steps
        if self._phase == Phase.NOTIFY and self._notify_since is not None:
            failed = self._notify.failures
            sending = "; ".join(failed) + " so far" if failed else "sending the verdict"
            step = StepRecord(phase=Phase.NOTIFY, status=StepStatus.OK, started_at=self._notify_since, detail=sending)
            return [*steps, step]
        if self._phase != Phase.RECORD or not steps or steps[-1].phase != Phase.RECORD:
            return steps
        saving = f"verdict {self._record.verdict}: saving to the results database (retried for up to {GIVE_UP})"
        return [*steps[:-1], steps[-1].model_copy(update={"ended_at": None, "detail": saving})]

    # --- messages -------------------------------------------------------------------------------------------

    @workflow.signal(name="emergency_stop")
    def emergency_stop(self, stop: StopRequest) -> None:
        """Stop now: interrupt the running phase, revert every fault in reverse order, verify, record ABORTED."""
        self._stop_signals += 1
        self._request_stop(stop)

    @workflow.signal(name="approve")
    def approve(self, approval: Approve) -> None:
        """The go/no-go gate's go: the drill injects its faults (once its steady state holds)."""
        if self._approved is None:
            self._approved = approval

    @workflow.signal(name="pause")
    def pause(self, request: Approve) -> None:
        """Hold the drill at the next phase boundary before the observation (rollback is never paused)."""
        self._paused = request

    @workflow.update(name="request_pause")
    def request_pause(self, request: Approve) -> str:
        """``gameday pause``: hold at the next pause point; answers when that is (refused once none is left)."""
        if self._phase == Phase.PAUSED:
            return "already paused"
        self._paused = request
        return f"holds {pausing.takes_effect(self._phase)}"

    @request_pause.validator
    def _pause_can_take_effect(self, request: Approve) -> None:
        # A validator's refusal leaves no trace in history: a pause that could never hold is not recorded at all.
        if self._stop is not None:
            raise ApplicationError(f"it is being stopped ({self._stop.reason})", type="PauseRefused")
        if self._phase != Phase.PAUSED and pausing.takes_effect(self._phase) is None:
            raise ApplicationError(pausing.refusal(self._phase), type="PauseRefused")

    @workflow.signal(name="resume")
    def resume(self, request: Approve) -> None:
        """Continue a paused drill at the step where it was held."""
        if self._paused is not None:
            self._paused, self._resumed_by = None, request.by

    @workflow.update(name="wait_rolled_back")
    async def wait_rolled_back(self) -> DrillStatus:
        """Returns once every fault has been reverted (or given up on): ``gameday stop --wait``.

        An update rather than polling the query: the caller is answered the moment rollback ends, with the
        time-to-safe of each revert. It needs a live worker; the stop itself is the durable signal.
        """
        await workflow.wait_condition(lambda: self._rolled_back)
        return self.status()

    @workflow.query(name="record")
    def record(self) -> RunRecord | None:
        """The run's record as the workflow holds it now: final once ``verdict`` is set, even before SQL has it.

        What ``gameday run --wait``, ``status`` and ``report`` read while the results database is unreachable.
        """
        if self._record is None or self._phase != Phase.RECORD:
            return self._record
        return self._record.model_copy(update={"steps": self._steps_now()})

    @workflow.query(name="status")
    def status(self) -> DrillStatus:
        faults = [f.record for f in self._faults]
        verdict = self._record.verdict if self._record else None
        return DrillStatus(
            run_id=self._record.run_id if self._record else "",
            phase=self._phase,
            faults_active=[f.label for f in faults if f.state in (FaultState.APPLIED, FaultState.REGISTERED)],
            last_measurements=self._last,
            steps=self._steps_now(),
            stop=self._stop,
            verdict=verdict,
            faults=faults,
            rolled_back=self._rolled_back,
            time_to_safe=self._time_to_safe(faults).get("time_to_safe") if self._rolled_back else None,
            time_to_healthy=self._record.time_to_healthy if self._record and verdict else None,
        )


def _whole_seconds(span: timedelta) -> timedelta:
    return timedelta(seconds=round(span.total_seconds()))


class _PhaseFailed(Exception):
    """A phase ended without success: a finding about the system (steady state broken, not recovered) or,
    with ``orchestration_error``, a failure of the drill itself (a fault could not be applied)."""

    def __init__(self, detail: str, *, orchestration_error: bool = False) -> None:
        super().__init__(detail)
        self.orchestration_error = orchestration_error


class _PhaseInterrupted(Exception):
    """A phase was cut short by a stop but still handed back what it measured."""


def _describe(result: ProbeResult) -> str:
    return f"{result.probe}: {', '.join(result.problems) or f'{result.failures}/{result.samples} failed'}"
