"""Fault leases: a worker that cannot reach Temporal for a drill's ``fault_lease`` reverts the faults it holds.

A fault outlives its control plane otherwise: with the server (or the network to it) gone for an hour, a paused
database stays paused for an hour, since the drill's rollback is workflow code and needs Temporal to run. So each
worker process keeps, in memory, the faults it applied and has not reverted (:class:`FaultLease`, the source of
truth while the process lives: the results database may be down too), and while it holds any it asks the
frontend a cheap question every :data:`CHECK_EVERY` (``GetSystemInfo``, :data:`RPC_TIMEOUT`). A fault whose
lease has passed since the first question left unanswered is reverted here, through the same idempotent
provider ``revert`` as ``revert_fault``, newest first; the ledger row is marked reverted with
:data:`LEASE_EXPIRED` (written when the database answers). When Temporal answers again, each such run gets an
``emergency_stop`` by ``lease``: its rollback runs the revert again (a no-op) and the verdict is ``ABORTED``.

Safety rules, each a guard below:

- Only faults this process applied are held, and a fault leaves the registry when this process reverts it (a
  rollback, an early revert, a pause). Whatever another worker reverted is forgotten when the ledger says so or
  the run's workflow is closed (checked while Temporal answers); and at expiry, when the ledger answers, a fault
  it says reverted, or whose target another run now holds a lock on, is forgotten rather than reverted: the
  lease never undoes another live drill's fault.
- Apply, revert and the lease's own revert of one fault take one lock: a revert never runs beside the apply
  (an apply finishing after it would leave the fault in place), and the workflow's later revert follows the
  lease's, finding the target already restored.
- Nothing the registry holds is logged but labels and run ids: a fault's spec may carry resolved values.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from gameday.activities.faults import provider
from gameday.activities.ledger import FaultLedger
from gameday.model.budget import MAX_REASON_BYTES, clip
from gameday.model.drill import DEFAULT_FAULT_LEASE
from gameday.model.records import FaultInput, StopRequest

log = logging.getLogger("gameday.lease")

LEASE_EXPIRED = "lease expired: control plane unreachable"
"""The ledger's ``revert_reason`` of a fault its worker reverted on its own, and how the run's stop begins."""
LEASE_BY = "lease"
"""Who stopped a run whose faults a worker reverted on its own (``StopRequest.by``)."""
CHECK_EVERY = 1.0
"""Seconds between two questions to the frontend while faults are held."""
RPC_TIMEOUT = timedelta(seconds=1)
"""How long one question waits: a server that does not answer within it is not reachable."""
HOUSEKEEPING_EVERY = 5.0
"""Seconds between two looks, while Temporal answers, for held faults that another worker reverted."""
DATABASE_TIMEOUT = 2.0
"""How long the lease waits for the results database before it acts on what it holds in memory."""
REVERT_TIMEOUT = 60.0
"""How long one provider revert may take (a revert that fails is tried again at the next check)."""

_Key = tuple[str, int]


@dataclass
class HeldFault:
    """One fault this process applied and has not reverted.

    Attributes:
        input: what its revert needs (the same input the workflow's ``revert_fault`` gets).
        lease: how long without Temporal before it is reverted here.
        lease_reverted_at: when the lease reverted it (wall clock); ``None`` while it is in place.
        ledger_written: the ledger says so (retried while the database does not answer).
        signalled: its run was told (``emergency_stop`` by ``lease``), or needs no telling (closed).
    """

    input: FaultInput
    lease: timedelta
    expired_at: datetime | None = None
    """When its lease ran out: the last answer from Temporal plus the lease (wall clock)."""
    lease_reverted_at: datetime | None = None
    ledger_written: bool = False
    signalled: bool = False


@dataclass
class FaultLease:
    """The faults one worker process holds, and the loop that renews their lease or reverts them.

    Args:
        ledger: the fault ledger (``None``: memory only, as in tests of the bare activities).
        max_lease: the worker's cap on any drill's ``fault_lease`` (``GAMEDAY_MAX_FAULT_LEASE``).
        identity: this worker, in logs and the stop's reason.
    """

    ledger: FaultLedger | None = None
    max_lease: timedelta = timedelta(minutes=10)
    identity: str = ""
    unanswered_since: float | None = None
    """``time.monotonic()`` when the first question the frontend has not answered since its last answer was asked;
    ``None`` while it answers. Leases count from here, so an outage shorter than a lease never reverts anything."""
    _held: dict[_Key, HeldFault] = field(default_factory=dict)
    _locks: dict[_Key, tuple[asyncio.Lock, int]] = field(default_factory=dict)
    _housekept: float = 0.0
    _client: Client | None = None

    def lease_of(self, inp: FaultInput) -> timedelta:
        """The fault's lease here: the drill's, else the default, never above this worker's maximum."""
        return min(inp.lease or DEFAULT_FAULT_LEASE, self.max_lease)

    def held(self) -> list[HeldFault]:
        """What this process holds now, oldest first (for ``gameday workers`` and tests)."""
        return list(self._held.values())

    @asynccontextmanager
    async def applying(self, inp: FaultInput) -> AsyncIterator[HeldFault]:
        """Hold ``inp`` while (and after) it is applied: on record before the provider touches anything.

        The caller puts the applied record into the yielded :attr:`HeldFault.input` (what it changed, for the
        revert). A failed apply stays held (it may have changed something: the lease reverts it like the rollback
        would), unless the apply said it changed nothing (the caller calls :meth:`forget`).
        """
        key = (inp.run_id, inp.index)
        async with self._exclusive(key):
            before = self._held.get(key)
            if before is not None and before.lease_reverted_at is not None and not before.signalled:
                raise LeaseRevertedNotTold(
                    "this worker reverted it when its fault lease expired and has not told the drill yet"
                )
            if not self._unreverted():
                self.unanswered_since = None  # the apply's task just came from the server
            held = HeldFault(inp, self.lease_of(inp))
            self._held[key] = held
            yield held

    def forget(self, inp: FaultInput) -> None:
        """Drop ``inp``: its apply changed nothing, or its run is over."""
        self._held.pop((inp.run_id, inp.index), None)

    @asynccontextmanager
    async def reverting(self, inp: FaultInput) -> AsyncIterator[HeldFault | None]:
        """Revert ``inp`` here, after any apply or lease revert of it; yields what the lease knew of it.

        The fault leaves the registry only when the body succeeds: a failed revert stays held.
        """
        key = (inp.run_id, inp.index)
        async with self._exclusive(key):
            known = self._held.get(key)
            yield known
            if self._held.get(key) is known:
                self._held.pop(key, None)

    async def run(self, client: Client, stop: asyncio.Event | None = None) -> None:
        """Renew or expire leases until cancelled (or ``stop`` is set): a task beside the worker's pollers."""
        self._client = client
        while stop is None or not stop.is_set():
            await asyncio.sleep(CHECK_EVERY)
            try:
                await self.check(client)
            except Exception:  # never let one bad check end the loop that keeps faults from outliving Temporal
                log.exception("fault lease check failed")

    async def check(self, client: Client) -> None:
        """One turn: ask the frontend; on an answer tell runs and tidy up, else revert what has expired."""
        if not self._held:
            self.unanswered_since = None  # nothing held: nothing to renew
            return
        asked = time.monotonic()
        if await _reachable(client):
            self.unanswered_since = None
            await self._tell_runs(client)
            if time.monotonic() - self._housekept >= HOUSEKEEPING_EVERY:
                self._housekept = time.monotonic()
                await self._forget_finished(client)
        else:
            if self.unanswered_since is None:
                self.unanswered_since = asked
            await self._expire(self.unanswered_since)
        await self._write_ledger()

    # --- expiry ---------------------------------------------------------------------------------------------

    async def _expire(self, since: float) -> None:
        silent = time.monotonic() - since
        expired_at = datetime.now(UTC) - timedelta(seconds=silent)  # when it stopped answering (+ lease below)
        due = [
            h
            for h in reversed(self._held.values())
            if h.lease_reverted_at is None and silent >= h.lease.total_seconds()
        ]
        for held in due:
            inp = held.input
            if not await self._still_ours(inp):
                log.warning(
                    "fault lease: %s of run %s is no longer this drill's to revert: forgotten",
                    inp.record.label,
                    inp.run_id,
                )
                if self._held.get((inp.run_id, inp.index)) is held:  # not an apply of it begun since
                    self.forget(inp)
                continue
            async with self._exclusive((inp.run_id, inp.index)):
                if self._held.get((inp.run_id, inp.index)) is not held:
                    continue  # reverted by the drill meanwhile, or applied again: no longer this entry
                inp = held.input  # as the apply left it, if one was in flight: what it changed
                found = provider(inp.target.kind.value)
                if found is None:
                    continue
                try:
                    await asyncio.wait_for(found.revert(inp), REVERT_TIMEOUT)
                except Exception as err:
                    log.error(
                        "fault lease expired (%.0fs without Temporal) but %s of run %s could NOT be reverted (%s); "
                        "trying again",
                        silent,
                        inp.record.label,
                        inp.run_id,
                        type(err).__name__,
                    )
                    continue
                held.lease_reverted_at = datetime.now(UTC)
                held.expired_at = expired_at + held.lease
            log.warning(
                "%s: reverted %s of run %s after %.1fs without Temporal (lease %gs, unanswered since %s)",
                LEASE_EXPIRED,
                inp.record.label,
                inp.run_id,
                silent,
                held.lease.total_seconds(),
                expired_at.isoformat(timespec="seconds"),
            )

    async def _still_ours(self, inp: FaultInput) -> bool:
        """The ledger's word when it answers quickly; else what this process holds decides (it applied it)."""
        if self.ledger is None:
            return True
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self.ledger.still_held, inp.run_id, inp.index), DATABASE_TIMEOUT
            )
        except Exception:
            return True

    async def _write_ledger(self) -> None:
        if self.ledger is None:
            return
        for held in [h for h in self._held.values() if h.lease_reverted_at is not None and not h.ledger_written]:
            try:
                await asyncio.wait_for(
                    asyncio.to_thread(
                        self.ledger.mark_reverted_by_worker, held.input.run_id, held.input.index, LEASE_EXPIRED
                    ),
                    DATABASE_TIMEOUT,
                )
            except Exception:
                return  # the database is not answering either: next turn
            held.ledger_written = True

    # --- when Temporal answers again --------------------------------------------------------------------------

    async def tell(self, run_id: str) -> None:
        """Tell ``run_id`` now, if the lease reverted a fault of it and has not told it yet.

        ``revert_fault`` calls this before its result reaches the workflow, so a drill whose rollback starts before
        the next check (its observation ended during the outage) still has the stop by ``lease`` in its history
        before the revert's result: its verdict says what happened.
        """
        if self._client is not None:
            await self._tell_runs(self._client, only=run_id)

    async def _tell_runs(self, client: Client, only: str | None = None) -> None:
        """``emergency_stop`` by ``lease`` to each run whose faults the lease reverted: its verdict is ABORTED."""
        runs: dict[str, list[HeldFault]] = {}
        for held in self._held.values():
            if only is not None and held.input.run_id != only:
                continue
            if held.lease_reverted_at is not None and not held.signalled:
                runs.setdefault(held.input.run_id, []).append(held)
        for run_id, reverted in runs.items():
            labels = ", ".join(h.input.record.label for h in reverted)
            expired = min(h.expired_at for h in reverted if h.expired_at is not None)
            lease = min(h.lease for h in reverted)
            worker = f" {self.identity}" if self.identity else ""
            reason = (
                f"{LEASE_EXPIRED}: worker{worker} reverted {labels} after {lease.total_seconds():g}s without Temporal"
            )
            stop = StopRequest(reason=clip(reason, MAX_REASON_BYTES), by=LEASE_BY, sent_at=expired)
            try:
                await client.get_workflow_handle(run_id).signal("emergency_stop", stop, rpc_timeout=RPC_TIMEOUT)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    log.warning("fault lease: run %s not told yet (%s); again next check", run_id, err.status.name)
                    continue
                # Closed (or gone): nobody to tell; the sweep and the run's own record take it from here.
            except Exception as err:
                log.warning("fault lease: run %s not told yet (%s); again next check", run_id, type(err).__name__)
                continue
            for held in reverted:
                held.signalled = True

    async def _forget_finished(self, client: Client) -> None:
        """Forget held faults whose run is closed, or which the ledger says another worker reverted."""
        for run_id in {key[0] for key in self._held}:
            try:
                described = await client.get_workflow_handle(run_id).describe(rpc_timeout=RPC_TIMEOUT)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    continue
                closed = True
            except Exception:
                continue
            else:
                closed = described.raw_description.workflow_execution_info.status != (
                    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
                )
            if closed:
                for key in [
                    k for k, h in self._held.items() if k[0] == run_id and (h.signalled or h.lease_reverted_at is None)
                ]:
                    self._held.pop(key, None)
        if self.ledger is None:
            return
        for key, held in list(self._held.items()):
            if held.lease_reverted_at is not None:
                continue
            try:
                ours = await asyncio.wait_for(asyncio.to_thread(self.ledger.still_held, *key), DATABASE_TIMEOUT)
            except Exception:
                return
            if not ours and self._held.get(key) is held:
                self._held.pop(key, None)

    def _unreverted(self) -> bool:
        return any(h.lease_reverted_at is None for h in self._held.values())

    @asynccontextmanager
    async def _exclusive(self, key: _Key) -> AsyncIterator[None]:
        """One apply, revert or lease revert of a fault at a time; the lock lives while anyone uses it."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class LeaseRevertedNotTold(Exception):
    """An apply of a fault this worker's lease reverted, before its run was told: refused, nothing applied."""


async def _reachable(client: Client) -> bool:
    """Whether the frontend answers a cheap question within :data:`RPC_TIMEOUT` (any answer counts)."""
    try:
        await asyncio.wait_for(
            client.workflow_service.get_system_info(GetSystemInfoRequest(), retry=False, timeout=RPC_TIMEOUT),
            RPC_TIMEOUT.total_seconds() + 1,
        )
    except RPCError as err:
        return err.status not in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
    except Exception:
        return False
    return True
