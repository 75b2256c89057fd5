"""The fault ledger: every fault written to SQL *before* it is applied, with what it takes to revert it.

The workflow keeps the registered reverts in its own state, which is enough while its history lives. The ledger
is for the day it does not: a terminated workflow, a deleted namespace, a drill whose worker died and whose
history was reset. ``gameday sweep`` reads the rows that were applied (or may have been) but never reverted and
whose workflow is closed or gone, and reverts them from the stored :class:`~workflows.records.FaultInput`.

Rows are keyed by (run, fault index) and written by the fault activities themselves, so there is no extra
Temporal round trip and no window between "applied" and "on record".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, Session, SQLModel, col, select

from activities.store import RunRow, Store, UTCDateTime
from workflows.records import FaultInput, FaultState, Phase


class LedgerRow(SQLModel, table=True):
    """One fault as the worker that touched it last saw it."""

    __tablename__ = "fault_ledger"

    run_id: str = Field(primary_key=True)
    index: int = Field(primary_key=True)
    state: str = Field(index=True)
    """``registered`` (about to be applied, or was: a crash mid-apply), ``applied`` or ``reverted``."""
    spec: dict[str, Any] = Field(sa_type=JSON)
    """The :class:`FaultInput` as JSON: target, fault and record, all a revert needs."""
    registered_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class FaultLedger:
    """Reads and writes the ``fault_ledger`` table of one results database.

    Args:
        store: the results database (its engine and schema rules are shared).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_tables(LedgerRow)

    def register(self, inp: FaultInput) -> None:
        """Record ``inp`` as about to be applied. Creates the run's header row if the run is not on record yet."""
        now = datetime.now(UTC)
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
            if row is None:
                session.add(
                    LedgerRow(
                        run_id=inp.run_id,
                        index=inp.index,
                        state=FaultState.REGISTERED.value,
                        spec=spec,
                        registered_at=now,
                        updated_at=now,
                    )
                )
            else:
                # Registered again: a fault reverted while its drill was paused is about to be applied again.
                row.state, row.spec, row.updated_at = FaultState.REGISTERED.value, spec, now

    def mark(self, run_id: str, index: int, state: FaultState) -> None:
        """Move one fault to ``state`` (``applied`` or ``reverted``); a row already reverted stays reverted."""
        with Session(self.store.engine) as session, session.begin():
            row = session.get(LedgerRow, (run_id, index))
            if row is None or row.state == FaultState.REVERTED.value:
                return
            row.state, row.updated_at = state.value, datetime.now(UTC)

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

    def state(self, run_id: str, index: int) -> FaultState | None:
        with Session(self.store.engine) as session:
            row = session.get(LedgerRow, (run_id, index))
            return None if row is None else FaultState(row.state)
