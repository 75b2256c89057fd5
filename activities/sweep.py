"""The orphan sweep: revert faults whose drill can no longer revert them, and say so in the record.

A fault is an orphan when the fault ledger has it applied (or maybe applied) and not reverted, and its drill's
workflow is positively known not to run it any more. The sweep acts only on runs of its own scope (the Temporal
namespace and cluster its client talks to: :mod:`activities.run_scope`), and only on a run that is:

* **closed**: described, and its status is closed (terminated, timed out, failed, completed, cancelled);
* **gone**: not found, and its rows are older than the namespace's retention, so its history was purged;
* **wedged**: running, but its workflow task has been failing for longer than ``wedged_after`` (a payload over
  Temporal's limit, a bug): no code of the drill runs, so its own rollback never will. The sweep terminates the
  workflow (so it cannot resume and apply faults behind the sweep's back), then treats it as closed, and alerts.

Everything else is left and listed with the reason: a running drill (its own rollback owns its faults), a run
not found that may still live (``unknown``), a run of another namespace or cluster sharing the results database,
a row written before gameday recorded scopes. A fault whose target lock is now held by another run that is not
known to be closed is left too: reverting it could undo that live drill's fault. A completed drill whose own
result says the fault was reverted only has its stale ledger row brought up to date: nothing is reverted and its
record is not rewritten.

Reverts run here, in this process, through the same providers as ``revert_fault``, newest fault first; each is
idempotent, so two sweeps at once, or a sweep after a partial revert, do no harm.

Sites (issue 14): a ledger row of a host-local fault names the site whose worker applied it. A worker's start-up
sweep (``own_site``) reverts only its own site's rows and rows without a site, and leaves the others listed (a pid
or a path means something on its own host only). ``gameday sweep`` (``task_queue``) sends each site's revert to
that site's queue through ``SiteRevertWorkflow``, and refuses at once when the site has no live worker.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from gameday.activities.faults import provider as fault_provider
from gameday.activities.ledger import FaultLedger, LedgerEntry
from gameday.activities.locks import TargetLocks
from gameday.activities.notify.alert import AlertActivities
from gameday.activities.run_scope import RunScope, scope_of
from gameday.activities.sites import site_has_worker
from gameday.activities.store import Store
from gameday.activities.sweep_judge import DEFAULT_WEDGED_AFTER, RPC_TIMEOUT, RunFate, RunJudge, RunState
from gameday.activities.tables import LockRow
from gameday.model.locks import lock_key
from gameday.model.records import AlertInput, FaultRecord, FaultState, Phase, RunRecord, StepRecord, StepStatus, Verdict
from gameday.model.sites import SITE_REVERT_WINDOW, SITE_REVERT_WORKFLOW, SiteRevert

log = logging.getLogger("gameday.sweep")


@dataclass
class SweptFault:
    """One orphan and what the sweep did about it."""

    run_id: str
    fault: FaultRecord
    """The fault as the ledger has it."""
    workflow: str
    """Why it is an orphan: the workflow's status (``TERMINATED``…), ``gone`` or ``WEDGED``."""
    reverted: bool = False
    error: str = ""


@dataclass
class LeftItem:
    """Something the sweep found and did not touch: a fault, or a run's target locks, and why."""

    run_id: str
    what: str
    """A fault's label, or ``N target lock(s)``."""
    reason: str


@dataclass
class SweepReport:
    scope: RunScope | None = None
    """The namespace and cluster this sweep acted in."""
    faults: list[SweptFault] = field(default_factory=list)
    """Orphans reverted (or that a ``dry_run`` would revert, or that could not be reverted)."""
    locks_released: dict[str, int] = field(default_factory=dict)
    """Run id → locks released, for runs that are closed or gone."""
    left: list[LeftItem] = field(default_factory=list)
    """What was found and left alone, with the reason."""
    reconciled: list[SweptFault] = field(default_factory=list)
    """Stale ledger rows of faults the drill itself reported reverted: marked, not reverted."""
    terminated: list[str] = field(default_factory=list)
    """Wedged runs whose workflow the sweep terminated."""


async def sweep(
    store: Store,
    client: Client,
    *,
    dry_run: bool = False,
    wedged_after: timedelta | None = DEFAULT_WEDGED_AFTER,
    alerts: AlertActivities | None = None,
    own_site: str | None = None,
    task_queue: str | None = None,
) -> SweepReport:
    """Find orphaned faults and stale target locks; unless ``dry_run``, revert and release them and record it.

    Args:
        store: the results database (ledger, locks, run records).
        client: the Temporal client; its namespace and cluster are the sweep's scope.
        dry_run: list only, touch nothing.
        wedged_after: a running drill whose workflow task has failed for longer is lost; ``None``: never.
        alerts: where a wedged drill or a fault that could not be reverted is reported (log only when ``None``).
        own_site: a worker's start-up sweep: faults of other sites are left to their own workers.
        task_queue: the shared task queue: a fault of a site is reverted by a worker there (``SiteRevertWorkflow``);
            ``None``: every revert runs in this process.
    """
    ledger, locks = FaultLedger(store), TargetLocks(store)
    scope = await scope_of(client)
    report = SweepReport(scope=scope)
    entries = await asyncio.to_thread(ledger.pending)
    held = await asyncio.to_thread(locks.rows)
    pending: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        pending.setdefault(entry.input.run_id, []).append(entry)
    held_by: dict[str, list[LockRow]] = {}
    for row in held:
        held_by.setdefault(row.run_id, []).append(row)
    judge = RunJudge(client, scope, wedged_after)
    fates = {
        run_id: await judge.fate(run_id, pending.get(run_id, []), held_by.get(run_id, []))
        for run_id in sorted(set(pending) | set(held_by))
    }
    ctx = _Context(ledger, locks, held, fates, report, own_site, task_queue)
    for run_id, fate in fates.items():
        run_pending, run_locks = pending.get(run_id, []), held_by.get(run_id, [])
        if not fate.acted_on:
            report.left.extend(LeftItem(run_id, e.input.record.label, fate.reason()) for e in run_pending)
            if run_locks:
                report.left.append(LeftItem(run_id, f"{len(run_locks)} target lock(s)", fate.reason()))
            continue
        await _sweep_run(store, client, run_id, fate, run_pending, ctx, dry_run)
        if fate.state == RunState.WEDGED and not dry_run:
            await _alert_wedged(alerts, store, run_id, fate, [s for s in report.faults if s.run_id == run_id])
    wedged = {run_id for run_id, fate in fates.items() if fate.state == RunState.WEDGED}
    failed = [s for s in report.faults if s.error and s.run_id not in wedged]
    if failed and not dry_run:
        await _alert(alerts, "fault_not_reverted", "gameday sweep could NOT revert a fault: act now", failed, store)
    return report


@dataclass
class _Context:
    ledger: FaultLedger
    locks: TargetLocks
    held: list[LockRow]
    fates: dict[str, RunFate]
    report: SweepReport
    own_site: str | None = None
    task_queue: str | None = None


async def _sweep_run(
    store: Store,
    client: Client,
    run_id: str,
    fate: RunFate,
    run_pending: list[LedgerEntry],
    ctx: _Context,
    dry_run: bool,
) -> None:
    report = ctx.report
    to_revert: list[LedgerEntry] = []
    left = 0
    reported_reverted = await _reverted_by_the_drill(client, run_id) if fate.workflow == "COMPLETED" else set()
    for entry in run_pending:
        label = entry.input.record.label
        if entry.input.index in reported_reverted:
            report.reconciled.append(SweptFault(run_id, entry.input.record, fate.workflow, reverted=True))
            if not dry_run:
                await asyncio.to_thread(ctx.ledger.mark, run_id, entry.input.index, FaultState.REVERTED)
            continue
        if ctx.own_site is not None and entry.site is not None and entry.site != ctx.own_site:
            report.left.append(LeftItem(run_id, label, f"a fault of site {entry.site}: only a worker there reverts it"))
            left += 1
            continue
        holder = _live_holder(entry, run_id, ctx.held, ctx.fates)
        if holder is not None:
            why = (
                f"its target is now locked by run {holder.run_id} (drill {holder.drill_name}, "
                f"{ctx.fates[holder.run_id].reason()}): reverting could undo that drill's fault"
            )
            report.left.append(LeftItem(run_id, label, why))
            left += 1
            continue
        to_revert.append(entry)
    swept = [SweptFault(run_id, e.input.record, fate.workflow) for e in to_revert]
    report.faults.extend(swept)
    if dry_run:
        return
    if fate.state == RunState.WEDGED:
        await _terminate(client, run_id, fate, report)
    for entry, result in zip(to_revert, swept, strict=True):
        await _revert(ctx, client, entry, result)
    if not left and all(s.reverted for s in swept):
        released = await asyncio.to_thread(ctx.locks.release, run_id)
        if released:
            report.locks_released[run_id] = released
    if swept:
        await asyncio.to_thread(_record, store, run_id, fate, swept)


def _live_holder(entry: LedgerEntry, run_id: str, held: list[LockRow], fates: dict[str, RunFate]) -> LockRow | None:
    """A lock on ``entry``'s target held by another run not known to be closed, if any."""
    keys = set(entry.lock_key.splitlines()) - {""}
    static = lock_key(entry.input.target)
    if static is not None:
        keys.add(static)
    for row in held:
        if row.run_id != run_id and row.key in keys and not fates[row.run_id].acted_on:
            return row
    return None


async def _reverted_by_the_drill(client: Client, run_id: str) -> set[int]:
    """Indexes of the faults a completed drill's own result says it reverted (stale ledger rows, not orphans)."""
    try:
        record = await client.get_workflow_handle(run_id, result_type=RunRecord).result(rpc_timeout=RPC_TIMEOUT)
    except Exception:  # not a drill's record, or unreadable: the ledger decides alone
        return set()
    if not isinstance(record, RunRecord):
        return set()
    return {f.index for f in record.faults if f.state == FaultState.REVERTED}


async def _terminate(client: Client, run_id: str, fate: RunFate, report: SweepReport) -> None:
    try:
        await client.get_workflow_handle(run_id).terminate(
            reason=f"gameday sweep: declared lost ({fate.detail}); its faults are reverted by the sweep",
            rpc_timeout=RPC_TIMEOUT,
        )
    except RPCError as err:
        log.error("sweep could not terminate wedged run %s: %s", run_id, err)
        return
    report.terminated.append(run_id)


async def _revert(ctx: _Context, client: Client, entry: LedgerEntry, result: SweptFault) -> None:
    fi = entry.input
    if entry.site is not None and ctx.task_queue is not None and entry.site != ctx.own_site:
        await _revert_on_site(client, ctx.task_queue, entry, result)
        return
    ledger = ctx.ledger
    provider = fault_provider(fi.target.kind.value)
    if provider is None:
        result.error = f"no fault provider for {fi.target.kind} targets in this worker"
        return
    try:
        await provider.revert(fi)
    except Exception as err:
        result.error = f"{type(err).__name__}: {err}"
        log.error("sweep could not revert %s of %s: %s", fi.record.label, fi.run_id, result.error)
        return
    result.reverted = True
    await asyncio.to_thread(ledger.mark, fi.run_id, fi.index, FaultState.REVERTED)
    log.warning("sweep reverted orphaned fault %s of run %s (workflow %s)", fi.record.label, fi.run_id, result.workflow)


async def _revert_on_site(client: Client, task_queue: str, entry: LedgerEntry, result: SweptFault) -> None:
    """The revert of a site's fault, run by a worker of that site (its ``revert_fault`` marks the ledger)."""
    fi, site = entry.input, entry.site
    assert site is not None
    try:
        if not await site_has_worker(client, task_queue, site):
            result.error = f"site {site} has no live worker: start one (`gameday worker --site {site}`), sweep again"
            log.error("sweep could not revert %s of %s: %s", fi.record.label, fi.run_id, result.error)
            return
        await client.execute_workflow(
            SITE_REVERT_WORKFLOW,  # by name: activities never import the workflows package
            SiteRevert(fault=fi, site=site),
            result_type=FaultRecord,
            id=f"sweep-revert-{fi.run_id}-{fi.index}-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
            execution_timeout=SITE_REVERT_WINDOW + timedelta(minutes=1),
        )
    except (RPCError, WorkflowFailureError) as err:
        result.error = f"revert on site {site} failed: {err}"
        log.error("sweep could not revert %s of %s: %s", fi.record.label, fi.run_id, result.error)
        return
    result.reverted = True
    log.warning("sweep reverted orphaned fault %s of run %s on site %s", fi.record.label, fi.run_id, site)


async def _alert_wedged(
    alerts: AlertActivities | None, store: Store, run_id: str, fate: RunFate, swept: list[SweptFault]
) -> None:
    done = sum(1 for s in swept if s.reverted)
    summary = f"drill declared lost by gameday sweep ({fate.detail}): {done}/{len(swept)} fault(s) reverted"
    await _alert(alerts, "drill_wedged", summary, swept, store, run_id=run_id)


async def _alert(
    alerts: AlertActivities | None,
    event: str,
    summary: str,
    swept: list[SweptFault],
    store: Store,
    *,
    run_id: str | None = None,
) -> None:
    """One alert per run through the worker's ``alert`` path (CRITICAL log + ``GAMEDAY_ALERT_WEBHOOK``)."""
    alerts = alerts or AlertActivities()
    runs = [run_id] if run_id is not None else sorted({s.run_id for s in swept})
    for run in runs:
        record = await asyncio.to_thread(_record_or_none, store, run)
        alert = AlertInput(
            run_id=run,
            drill_name=record.drill_name if record is not None else run,
            team=record.team if record is not None else "",
            event=event,
            summary=summary,
            faults=[s.fault for s in swept if s.run_id == run],
        )
        try:
            await alerts.alert(alert)
        except Exception as err:  # the CRITICAL line is logged before the webhook is tried
            log.error("sweep alert for run %s not delivered: %s", run, err)


def _record_or_none(store: Store, run_id: str) -> RunRecord | None:
    try:
        return store.get(run_id)
    except Exception:
        return None


def _record(store: Store, run_id: str, fate: RunFate, swept: list[SweptFault]) -> None:
    """Mark the run's faults reverted (or not) by the sweep, add a ``sweep`` step, and give it a verdict."""
    record = store.get(run_id)
    now = datetime.now(UTC)
    if record is None:
        record = RunRecord(run_id=run_id, drill_name=run_id, started_at=now)
    # The ledger knows faults the run's record may not (a drill terminated mid-inject saved none yet).
    faults = {fault.index: fault for fault in record.faults}
    for s in swept:
        base = faults.get(s.fault.index, s.fault)
        if s.reverted:
            update_fault = {"state": FaultState.REVERTED, "reverted_at": now, "output": "reverted by gameday sweep"}
        else:
            update_fault = {"state": FaultState.NOT_REVERTED, "error": s.error}
        faults[s.fault.index] = base.model_copy(update=update_fault)
    done = sum(1 for s in swept if s.reverted)
    detail = f"workflow {fate.workflow}: {done}/{len(swept)} orphaned fault(s) reverted by gameday sweep"
    if fate.state == RunState.WEDGED:
        detail += f" (declared lost: {fate.detail}; workflow terminated)"
    status_ = StepStatus.OK if done == len(swept) else StepStatus.FAILED
    step = StepRecord(phase=Phase.SWEEP, status=status_, started_at=now, ended_at=now, detail=detail)
    update: dict[str, object] = {"faults": [faults[i] for i in sorted(faults)], "steps": [*record.steps, step]}
    if record.verdict is None or done < len(swept):
        update["verdict"] = Verdict.ERROR
        update["summary"] = f"the drill ended without its rollback ({detail})"
    update["ended_at"] = record.ended_at or now
    store.save(record.model_copy(update=update))
