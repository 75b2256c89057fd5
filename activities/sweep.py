"""The orphan sweep: revert faults whose drill can no longer revert them, and say so in the record.

A fault is an orphan when the fault ledger has it applied (or maybe applied) and not reverted, and its drill's
workflow is closed or gone: terminated, timed out, reset away, deleted with its namespace. A workflow that is
still running is left alone: its own rollback owns its faults. ``gameday sweep`` runs this; so does every worker
at start-up, because a worker that starts is often the one that replaces a runner that died.

Reverts run here, in this process, through the same providers as ``revert_fault``, newest fault first; each is
idempotent, so two sweeps at once, or a sweep after a partial revert, do no harm.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.faults import PROVIDERS
from activities.ledger import FaultLedger
from activities.locks import TargetLocks
from activities.store import Store
from workflows.records import (
    FaultInput,
    FaultRecord,
    FaultState,
    Phase,
    RunRecord,
    StepRecord,
    StepStatus,
    Verdict,
)

log = logging.getLogger("gameday.sweep")


@dataclass
class SweptFault:
    """One orphan and what the sweep did about it."""

    run_id: str
    fault: FaultRecord
    """The fault as the ledger has it."""
    workflow: str
    """Why it is an orphan: the workflow's status (``TERMINATED``…) or ``gone``."""
    reverted: bool = False
    error: str = ""


@dataclass
class SweepReport:
    faults: list[SweptFault] = field(default_factory=list)
    locks_released: dict[str, int] = field(default_factory=dict)
    """Run id → locks released, for runs that are closed or gone."""


async def sweep(store: Store, client: Client, *, dry_run: bool = False) -> SweepReport:
    """Find orphaned faults and stale target locks; unless ``dry_run``, revert and release them and record it."""
    ledger, locks = FaultLedger(store), TargetLocks(store)
    report = SweepReport()
    pending = await asyncio.to_thread(ledger.unreverted)
    holders = await asyncio.to_thread(locks.holders)
    runs = sorted(set(pending) | {h.run_id for h in holders})
    for run_id in runs:
        status = await _workflow_status(client, run_id)
        if status == "RUNNING":
            continue
        swept = [SweptFault(run_id, fi.record, status) for fi in pending.get(run_id, [])]
        report.faults.extend(swept)
        if dry_run:
            continue
        for fi, result in zip(pending.get(run_id, []), swept, strict=True):
            await _revert(ledger, fi, result)
        if all(s.reverted for s in swept):
            released = await asyncio.to_thread(locks.release, run_id)
            if released:
                report.locks_released[run_id] = released
        if swept:
            await asyncio.to_thread(_record, store, run_id, status, swept)
    return report


async def _workflow_status(client: Client, run_id: str) -> str:
    try:
        desc = await client.get_workflow_handle(run_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return "gone"
        raise
    status = desc.status or WorkflowExecutionStatus.RUNNING
    return status.name


async def _revert(ledger: FaultLedger, fi: FaultInput, result: SweptFault) -> None:
    provider = PROVIDERS.get(fi.target.kind)
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


def _record(store: Store, run_id: str, status: str, swept: list[SweptFault]) -> None:
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
    detail = f"workflow {status}: {done}/{len(swept)} orphaned fault(s) reverted by gameday sweep"
    status_ = StepStatus.OK if done == len(swept) else StepStatus.FAILED
    step = StepRecord(phase=Phase.SWEEP, status=status_, started_at=now, ended_at=now, detail=detail)
    update: dict[str, object] = {"faults": [faults[i] for i in sorted(faults)], "steps": [*record.steps, step]}
    if record.verdict is None or done < len(swept):
        update["verdict"] = Verdict.ERROR
        update["summary"] = f"the drill ended without its rollback ({detail})"
    update["ended_at"] = record.ended_at or now
    store.save(record.model_copy(update=update))
