"""The fault ledger: every fault written to SQL *before* it is applied, with what it takes to revert it.

The workflow keeps the registered reverts in its own state, which is enough while its history lives. The ledger
is for the day it does not: a terminated workflow, a deleted namespace, a drill whose worker died and whose
history was reset. ``gameday sweep`` reads the rows that were applied (or may have been) but never reverted and
whose workflow is closed or gone, and reverts them from the stored :class:`~model.records.FaultInput`.

Rows are keyed by (run, fault index) and written by the fault activities themselves, so there is no extra
Temporal round trip and no window between "applied" and "on record". Each row also says where its run lives
(namespace and cluster, :mod:`activities.run_scope`), so a sweep never judges a run it cannot see, and which
target lock the run held for the fault, so a sweep never reverts a fault on a target another drill now holds.

A row left ``applied`` by a revert whose ledger write failed (the database was down) is brought up to date by
the run's final record: ``record_run`` retries until the database is back and then :meth:`FaultLedger.reconcile`
marks every fault the record says reverted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from gameday.activities.run_scope import RunScope
from gameday.activities.store import Store
from gameday.activities.tables import LedgerRow, LockRow, RunRow
from gameday.model.locks import lock_key
from gameday.model.records import FaultInput, FaultState, Phase, RunRecord


@dataclass(frozen=True)
class LedgerEntry:
    """One unreverted ledger row, as the sweep reads it.

    Attributes:
        input: what the revert needs.
        state: ``registered`` or ``applied``.
        scope: where the run lives.
        lock_key: the keys of the run's locks on the fault's target, one per line, or empty.
        updated_at: when a worker last wrote the row.
        site: the site whose workers alone may revert it; ``None``: any worker.
    """

    input: FaultInput
    state: FaultState
    scope: RunScope
    lock_key: str
    updated_at: datetime
    site: str | None = None


class FaultLedger:
    """Reads and writes the ``fault_ledger`` table of one results database.

    Args:
        store: the results database (its engine and schema rules are shared).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_tables(LedgerRow)

    def register(self, inp: FaultInput, scope: RunScope | None = None, site: str | None = None) -> None:
        """Record ``inp`` as about to be applied. Creates the run's header row if the run is not on record yet.

        Args:
            inp: the fault.
            scope: where the run lives; ``None`` writes none, and no sweep will ever act on the row.
            site: the site of the worker applying a host-local fault; ``None`` for a fault any worker may revert.
        """
        now = datetime.now(UTC)
        scope = scope or RunScope("", "")
        with Session(self.store.engine) as session, session.begin():
            if session.get(RunRow, inp.run_id) is None:
                # The workflow's first progress write is best effort; the ledger is not.
                session.add(
                    RunRow(
                        run_id=inp.run_id,
                        drill_name=inp.run_id,
                        phase=Phase.INJECT.value,
                        started_at=now,
                        updated_at=now,
                    )
                )
                session.flush()
            row = session.get(LedgerRow, (inp.run_id, inp.index))
            spec = inp.model_dump(mode="json")
            # The locks the run took in preflight for this target (a resolved target may hold several keys: a
            # pidfile's path and the process's pid + start time), one per line.
            locks = session.exec(
                select(LockRow).where(col(LockRow.run_id) == inp.run_id, col(LockRow.target) == inp.target_name)
            ).all()
            lock_key = "\n".join(sorted(lock.key for lock in locks))
            if row is None:
                session.add(
                    LedgerRow(
                        run_id=inp.run_id,
                        index=inp.index,
                        state=FaultState.REGISTERED.value,
                        spec=spec,
                        registered_at=now,
                        updated_at=now,
                        namespace=scope.namespace,
                        cluster=scope.cluster,
                        lock_key=lock_key,
                        site=site,
                    )
                )
            else:
                # Registered again: a fault reverted while its drill was paused is about to be applied again.
                row.state, row.spec, row.updated_at = FaultState.REGISTERED.value, spec, now
                row.namespace, row.cluster, row.lock_key = scope.namespace, scope.cluster, lock_key
                row.site = site
                row.revert_reason = ""

    def mark(self, run_id: str, index: int, state: FaultState) -> None:
        """Move one fault to ``state`` (``applied`` or ``reverted``); a row already reverted stays reverted."""
        with Session(self.store.engine) as session, session.begin():
            row = session.get(LedgerRow, (run_id, index))
            if row is None or row.state == FaultState.REVERTED.value:
                return
            row.state, row.updated_at = state.value, datetime.now(UTC)

    def mark_reverted_by_worker(self, run_id: str, index: int, reason: str) -> bool:
        """Record that a worker reverted the fault on its own (its fault lease expired), with ``reason``.

        Returns whether the row changed: a row already reverted (the drill's own revert came first) keeps its
        revert, so a fault is on record as reverted once.
        """
        with Session(self.store.engine) as session, session.begin():
            row = session.get(LedgerRow, (run_id, index))
            if row is None or row.state == FaultState.REVERTED.value:
                return False
            row.state, row.revert_reason, row.updated_at = FaultState.REVERTED.value, reason, datetime.now(UTC)
            return True

    def still_held(self, run_id: str, index: int) -> bool:
        """Whether the fault may still be in place for its run and nobody else holds its target now.

        ``False`` when the row says it is reverted (another worker's revert) or a lock on one of the keys the
        run took for the target now belongs to another run: a worker's own revert must never touch what another
        drill holds. Raises when the database cannot be read (the caller decides from what it knows).
        """
        with Session(self.store.engine) as session:
            row = session.get(LedgerRow, (run_id, index))
            if row is None or row.state == FaultState.REVERTED.value:
                return False
            keys = {key for key in row.lock_key.splitlines() if key}
            static = lock_key(FaultInput.model_validate(row.spec).target)
            if static is not None:
                keys.add(static)
            if not keys:
                return True
            holders = session.exec(select(LockRow).where(col(LockRow.key).in_(keys))).all()
            return all(lock.run_id == run_id for lock in holders)

    def revert_reason(self, run_id: str, index: int) -> str:
        """Why a worker reverted the fault on its own; empty when none did."""
        with Session(self.store.engine) as session:
            row = session.get(LedgerRow, (run_id, index))
            return "" if row is None else row.revert_reason

    def unreverted(self) -> dict[str, list[FaultInput]]:
        """Faults applied (or maybe applied) and never reverted, by run, each run's in reverse order."""
        query = (
            select(LedgerRow)
            .where(col(LedgerRow.state) != FaultState.REVERTED.value)
            .order_by(col(LedgerRow.run_id), col(LedgerRow.index).desc())
        )
        found: dict[str, list[FaultInput]] = {}
        with Session(self.store.engine) as session:
            for row in session.exec(query).all():
                found.setdefault(row.run_id, []).append(FaultInput.model_validate(row.spec))
        return found

    def pending(self) -> list[LedgerEntry]:
        """Every unreverted row with its scope, by run, each run's newest fault first (the order of reverts)."""
        query = (
            select(LedgerRow)
            .where(col(LedgerRow.state) != FaultState.REVERTED.value)
            .order_by(col(LedgerRow.run_id), col(LedgerRow.index).desc())
        )
        with Session(self.store.engine) as session:
            return [
                LedgerEntry(
                    input=FaultInput.model_validate(row.spec),
                    state=FaultState(row.state),
                    scope=RunScope(row.namespace, row.cluster),
                    lock_key=row.lock_key,
                    updated_at=row.updated_at,
                    site=row.site,
                )
                for row in session.exec(query).all()
            ]

    def reconcile(self, record: RunRecord) -> int:
        """Mark reverted every fault the final ``record`` says is reverted; returns how many rows changed.

        Only a final record (with a verdict) is trusted: a progress snapshot saved late could say "reverted" of a
        fault that a resumed drill has applied again since.
        """
        if record.verdict is None:
            return 0
        reverted = {f.index for f in record.faults if f.state == FaultState.REVERTED}
        if not reverted:
            return 0
        now, changed = datetime.now(UTC), 0
        with Session(self.store.engine) as session, session.begin():
            query = select(LedgerRow).where(
                col(LedgerRow.run_id) == record.run_id,
                col(LedgerRow.index).in_(reverted),
                col(LedgerRow.state) != FaultState.REVERTED.value,
            )
            for row in session.exec(query).all():
                row.state, row.updated_at = FaultState.REVERTED.value, now
                changed += 1
        return changed

    def state(self, run_id: str, index: int) -> FaultState | None:
        with Session(self.store.engine) as session:
            row = session.get(LedgerRow, (run_id, index))
            return None if row is None else FaultState(row.state)
