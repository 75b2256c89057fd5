"""The two fault activities: ``apply_fault`` and ``revert_fault``, dispatching on the target's kind.

This is the boundary where provider errors become Temporal errors (see ``activities.faults.errors``):
apply failures are never retried, revert failures always are. Both heartbeat while the provider works,
because a cancel reaches a running activity only through its heartbeat.

The worker registers :class:`FaultActivities`, which writes each fault to the SQL fault ledger before applying
it (``gameday sweep`` reverts from there if the workflow is ever lost); the bare functions are the same
activities without a ledger, for tests and one-off use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from gameday.activities import policy
from gameday.activities.fault_lease import LEASE_BY, LEASE_EXPIRED, FaultLease, LeaseRevertedNotTold
from gameday.activities.faults import FaultProvider, progress, provider
from gameday.activities.faults.errors import FaultError, NothingChanged, UnsupportedFault
from gameday.activities.ledger import FaultLedger
from gameday.activities.run_scope import ActivityScope
from gameday.model.budget import MAX_OUTPUT_BYTES, MAX_REASON_BYTES, clip
from gameday.model.records import NOT_APPLIED, FaultInput, FaultRecord, FaultState, StopRequest, TargetState
from gameday.model.sites import is_host_local

HEARTBEAT_EVERY = 0.5
"""Seconds between heartbeats; the SDK throttles what it actually sends to the server."""

_T = TypeVar("_T")


@activity.defn(name="capture_target")
async def capture_target(inp: FaultInput) -> TargetState:
    """Read (never change) the state of the fault's target that its revert will restore.

    Raises:
        ApplicationError: ``FaultCaptureError`` (non-retryable) when the target is not there or refused;
            ``UnsupportedFault`` (non-retryable); anything else (an engine blip) is retried.
    """
    provider = _provider(inp)
    try:
        facts = await _heartbeating(provider.capture(inp))
    except UnsupportedFault as err:
        raise _unsupported(f"{inp.record.label}: {err}") from err
    except FaultError as err:
        raise ApplicationError(f"{inp.record.label}: {err}", type="FaultCaptureError", non_retryable=True) from err
    except Exception as err:
        raise ApplicationError(f"{inp.record.label}: cannot read the target's state: {_describe(err)}") from err
    activity.logger.info("captured %s before %s: %s", inp.record.target, inp.record.label, facts)
    return TargetState(facts=facts)


@activity.defn(name="apply_fault")
async def apply_fault(inp: FaultInput) -> FaultRecord:
    """Apply one fault and return its record, ``APPLIED``, with what it changed.

    Raises:
        ApplicationError: ``FaultApplyError`` (non-retryable) when the fault could not be applied: its message,
            after the label, starts with ``not applied: `` when the apply failed before changing anything;
            ``UnsupportedFault`` (non-retryable) when its kind or action has no provider; ``PolicyRefused``
            (non-retryable) when this worker's policy refuses it: nothing is touched.
    """
    provider = _provider(inp)
    _refuse_by_policy(inp)
    try:
        record = await _heartbeating(provider.apply(inp))
    except UnsupportedFault as err:
        raise _unsupported(f"{inp.record.label}: {err}") from err
    except NothingChanged as err:
        message = clip(f"{inp.record.label}: {NOT_APPLIED}{err}", MAX_OUTPUT_BYTES)
        raise ApplicationError(message, type="FaultApplyError", non_retryable=True) from err
    except Exception as err:
        # Never retried: a half-applied fault is undone by the rollback's revert, not applied a second time.
        raise ApplicationError(
            clip(f"{inp.record.label}: {_describe(err)}", MAX_OUTPUT_BYTES), type="FaultApplyError", non_retryable=True
        ) from err
    activity.logger.info("applied %s: %s", inp.record.label, record.output)
    return bounded(record.model_copy(update={"state": FaultState.APPLIED, "applied_at": datetime.now(UTC)}))


@activity.defn(name="revert_fault")
async def revert_fault(inp: FaultInput) -> FaultRecord:
    """Revert one fault (from its record, else its spec) and return the record, ``REVERTED``.

    Raises:
        ApplicationError: ``FaultRevertError`` (retryable: the workflow's retry policy keeps trying) when the
            revert did not complete; ``UnsupportedFault`` (non-retryable) when its kind has no provider.
    """
    provider = _provider(inp)
    if policy.refused_before_apply(inp.record):
        # Refused before anything was touched (before the ledger, even): there is nothing to undo, and running
        # its revert would run the drill's code that the policy refused.
        output = "never applied (refused by the worker policy): nothing to revert"
        return inp.record.model_copy(update={"state": FaultState.REVERTED, "output": output})
    if inp.record.not_applied:
        # Its apply said it changed nothing (the target was not there): a revert would act on a target the fault
        # never touched. Not called reverted either: the record keeps reverted_at empty.
        output = "never applied: nothing to revert"
        return inp.record.model_copy(update={"state": FaultState.REVERTED, "output": output})
    try:
        record = await _heartbeating(provider.revert(inp))
    except UnsupportedFault as err:
        raise _unsupported(f"{inp.record.label}: {err}") from err
    except Exception as err:
        message = clip(f"{inp.record.label}: {_describe(err)}", MAX_OUTPUT_BYTES)
        raise ApplicationError(message, type="FaultRevertError") from err
    activity.logger.info("reverted %s: %s", inp.record.label, record.output)
    return bounded(record.model_copy(update={"state": FaultState.REVERTED, "reverted_at": datetime.now(UTC)}))


class FaultActivities:
    """``apply_fault`` and ``revert_fault`` with the fault ledger: on record before applied, marked when reverted.

    Args:
        ledger: the results database's fault ledger.
        scope: where the runs of this worker live, written on each row (namespace and cluster).
        site: this worker's site, written on the row of each host-local fault it applies (``model/sites.py``).
        lease: the faults this worker process holds (``activities.fault_lease``): reverted here when Temporal has
            been unreachable for their lease; ``None``, no lease (tests of the bare activities).
    """

    def __init__(
        self,
        ledger: FaultLedger,
        scope: ActivityScope | None = None,
        site: str | None = None,
        lease: FaultLease | None = None,
    ) -> None:
        self.ledger = ledger
        self.scope = scope or ActivityScope()
        self.site = site
        self.lease = lease

    @activity.defn(name="apply_fault")
    async def apply_fault(self, inp: FaultInput) -> FaultRecord:
        """Write the fault to the ledger, then apply it (see :func:`apply_fault`).

        Raises:
            ApplicationError: ``FaultApplyError`` (non-retryable), also when the ledger cannot be written: a
                fault that is not on record is not applied.
        """
        _refuse_by_policy(inp)  # before the ledger: a refused fault is not on record, nothing to sweep
        try:
            scope = await self.scope.current()
            site = self.site if is_host_local(inp.target) else None
            await asyncio.to_thread(self.ledger.register, inp, scope, site)
        except Exception as err:
            reason = self.ledger.store.redact(str(err))
            raise ApplicationError(
                f"{inp.record.label}: not applied, the fault ledger cannot be written: {reason}",
                type="FaultApplyError",
                non_retryable=True,
            ) from err
        if self.lease is None:
            record = await apply_fault(inp)
        else:
            record = await self._apply_held(inp, self.lease)
        await self._mark(inp, FaultState.APPLIED)
        return record

    async def _apply_held(self, inp: FaultInput, lease: FaultLease) -> FaultRecord:
        # Held before the provider touches anything: a lease expiring mid-apply waits for it, then reverts it.
        try:
            async with lease.applying(inp) as held:
                try:
                    record = await apply_fault(inp)
                    held.input = inp.model_copy(update={"record": record})  # what it changed, for the revert
                    return record
                except ApplicationError as err:
                    if (err.message or "").removeprefix(f"{inp.record.label}: ").startswith(NOT_APPLIED):
                        lease.forget(inp)  # it changed nothing: there is nothing for the lease to revert
                    raise
        except LeaseRevertedNotTold as err:
            message = f"{inp.record.label}: {NOT_APPLIED}{err}"
            raise ApplicationError(message, type="FaultApplyError", non_retryable=True) from err

    @activity.defn(name="revert_fault")
    async def revert_fault(self, inp: FaultInput) -> FaultRecord:
        """Revert the fault (see :func:`revert_fault`), then mark it reverted in the ledger.

        A fault this worker's lease already reverted is reverted again (idempotent: the target is as it was) and
        its record keeps the lease's revert time; its ledger row keeps the lease's revert and reason.
        """
        if self.lease is None:
            record = await revert_fault(inp)
        else:
            async with self.lease.reverting(inp) as known:
                if known is not None and known.lease_reverted_at is not None:
                    await self.lease.tell(inp.run_id)  # the stop by lease lands before this revert's result
                elif known is None:
                    await self._tell_if_another_worker_leased(inp)
                record = await revert_fault(inp)
            if known is not None and known.lease_reverted_at is not None and record.reverted_at is not None:
                said = f"reverted by this worker when its {LEASE_EXPIRED}; reverted again by the drill: {record.output}"
                update = {"reverted_at": known.lease_reverted_at, "output": clip(said, MAX_OUTPUT_BYTES)}
                record = record.model_copy(update=update)
        await self._mark(inp, FaultState.REVERTED)
        return record

    async def _tell_if_another_worker_leased(self, inp: FaultInput) -> None:
        """A rollback's revert picked up by a worker other than the one whose lease reverted the fault (the ledger
        says why): the run is told, by ``lease``, before this revert's result reaches it, as that worker would have.

        Best effort: without the database the worker that reverted it tells the run at its next check.
        """
        try:
            reason = await asyncio.to_thread(self.ledger.revert_reason, inp.run_id, inp.index)
        except Exception:
            return
        if not reason.startswith(LEASE_EXPIRED):
            return
        stop = StopRequest(reason=clip(f"{reason} (another worker)", MAX_REASON_BYTES), by=LEASE_BY)
        try:
            handle = activity.client().get_workflow_handle(inp.run_id)
            await handle.signal("emergency_stop", stop, rpc_timeout=timedelta(seconds=5))
        except (RPCError, RuntimeError) as err:
            activity.logger.warning("run %s not told of its lease revert: %s", inp.run_id, err)

    async def _mark(self, inp: FaultInput, state: FaultState) -> None:
        # Best effort: the fault itself is done. A row left stale here (the database down) is brought up to date
        # by the run's final record (``record_run`` retries until the database is back), and until then a
        # sweep never reverts it while another live run holds its target.
        try:
            await asyncio.to_thread(self.ledger.mark, inp.run_id, inp.index, state)
        except Exception:
            activity.logger.warning("fault ledger not updated for %s", inp.record.label, exc_info=True)


def bounded(record: FaultRecord) -> FaultRecord:
    """The record as it may leave the activity: its output and error cut to the payload budget.

    Providers print what they like (a command's whole output, an HTTP answer); the workflow carries every
    fault's record in each snapshot, so this is the one place where their size is capped. ``changed`` is
    never cut: the revert needs all of it (each provider keeps it small; a command's revert text is bounded
    by the drill limits).
    """
    output, error = clip(record.output, MAX_OUTPUT_BYTES), clip(record.error, MAX_OUTPUT_BYTES)
    if (output, error) == (record.output, record.error):
        return record
    return record.model_copy(update={"output": output, "error": error})


def _refuse_by_policy(inp: FaultInput) -> None:
    """Enforce this worker's policy again at the apply (preflight did for the whole drill, maybe elsewhere).

    Reverts are never refused: they undo what some worker applied, and a fault must not stay.
    """
    current = policy.current()
    found = current.target_refusals(inp.target_name, inp.target) + current.fault_refusals(inp.index, inp.fault)
    if found:
        raise policy.refused(found, current)


def _provider(inp: FaultInput) -> FaultProvider:
    found = provider(inp.target.kind.value)
    if found is None:
        raise _unsupported(f"{inp.record.label}: no fault provider for {inp.target.kind} targets")
    return found


def _unsupported(message: str) -> ApplicationError:
    return ApplicationError(clip(message, MAX_OUTPUT_BYTES), type="UnsupportedFault", non_retryable=True)


def _describe(err: Exception) -> str:
    return str(err) if isinstance(err, FaultError) else f"{type(err).__name__}: {err}"


async def _heartbeating(work: Awaitable[_T]) -> _T:
    # The provider's progress so far (``progress.report``) rides on every heartbeat: a bare heartbeat would
    # replace it with nothing.
    beating = asyncio.create_task(_beat(progress.holder()))
    try:
        return await work
    finally:
        beating.cancel()


async def _beat(details: list[dict[str, str]]) -> None:
    while True:
        activity.heartbeat(*details)
        await asyncio.sleep(HEARTBEAT_EVERY)
