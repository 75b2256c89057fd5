"""Target locks in SQL: a drill holds its targets from preflight until its rollback is done.

A lock is a row keyed by a resolved target key (``activities.resolve``); taking it is an INSERT, so two
workers racing for one target cannot both win, on SQLite or PostgreSQL. The rollback path releases it; a drill
whose workflow vanished without releasing is cleaned up by ``gameday sweep``. Each lock also records where its
run lives (namespace and cluster, :mod:`activities.run_scope`): a sweep releases only the locks of runs of its
own scope that it has seen closed, and never reverts a fault on a target another live run holds.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, col, delete, select
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from gameday.activities.run_scope import ActivityScope, RunScope
from gameday.activities.store import Store
from gameday.activities.tables import LockRow
from gameday.model.locks import LockHolder, LockInput


class TargetLocks:
    """Take, release and list target locks in one results database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_tables(LockRow)

    def acquire(self, inp: LockInput, scope: RunScope | None = None) -> list[LockHolder]:
        """Take every key of ``inp`` for its run, all or none; returns the other runs' locks in the way.

        Taking a lock the run already holds is a no-op, so a retried attempt succeeds. ``scope`` is where the run
        lives (``None``: not recorded, and no sweep will release the lock).
        """
        now = datetime.now(UTC)
        scope = scope or RunScope("", "")
        try:
            with Session(self.store.engine) as session, session.begin():
                taken = {row.key: row for row in session.exec(select(LockRow).where(col(LockRow.key).in_(inp.keys)))}
                blocking = [row for row in taken.values() if row.run_id != inp.run_id]
                if blocking:
                    return [_holder(row) for row in blocking]
                for key, target in inp.keys.items():
                    if key not in taken:
                        session.add(
                            LockRow(
                                key=key,
                                target=target,
                                run_id=inp.run_id,
                                drill_name=inp.drill_name,
                                acquired_at=now,
                                namespace=scope.namespace,
                                cluster=scope.cluster,
                            )
                        )
        except IntegrityError:
            # Another run inserted one of the keys between our read and our write: report it as a holder.
            return [h for h in self.holders() if h.key in inp.keys and h.run_id != inp.run_id]
        return []

    def release(self, run_id: str) -> int:
        """Drop every lock of ``run_id``; returns how many there were."""
        with Session(self.store.engine) as session, session.begin():
            result = session.exec(delete(LockRow).where(col(LockRow.run_id) == run_id))
            return int(result.rowcount or 0)

    def holders(self) -> list[LockHolder]:
        return [_holder(row) for row in self.rows()]

    def rows(self) -> list[LockRow]:
        """Every lock held, oldest first, with the scope of its run (what the sweep reads)."""
        with Session(self.store.engine) as session:
            return list(session.exec(select(LockRow).order_by(col(LockRow.acquired_at))))


def _refusals(inp: LockInput, blocking: list[LockHolder]) -> list[str]:
    """One line per target and holding run, with the resource keys they share (a pidfile and its process…)."""
    shared: dict[tuple[str, str], list[LockHolder]] = {}
    for h in blocking:
        shared.setdefault((inp.keys[h.key], h.run_id), []).append(h)
    return [
        f"target '{target}' is held by run {run_id} (drill {held[0].drill_name}, since "
        f"{held[0].acquired_at:%Y-%m-%d %H:%M:%SZ}): {', '.join(h.key for h in held)}"
        for (target, run_id), held in shared.items()
    ]


def _holder(row: LockRow) -> LockHolder:
    return LockHolder.model_validate(row, from_attributes=True)


class LockActivities:
    """``acquire_targets`` / ``release_targets``, bound to one :class:`TargetLocks`."""

    def __init__(self, locks: TargetLocks, scope: ActivityScope | None = None) -> None:
        self.locks = locks
        self.scope = scope or ActivityScope()

    @activity.defn(name="acquire_targets")
    async def acquire_targets(self, inp: LockInput) -> None:
        """Take the drill's target locks.

        Raises:
            ApplicationError: ``TargetLocked`` (retryable, benign: the workflow's retry policy is the wait)
                naming the run holding each target; ``StoreUnavailable`` when the database is down.
        """
        scope = await self.scope.current()
        try:
            blocking = await asyncio.to_thread(self.locks.acquire, inp, scope)
        except DBAPIError as exc:
            raise self.locks.store.unavailable(exc) from exc
        if blocking:
            raise ApplicationError(
                "; ".join(_refusals(inp, blocking)) + "; if that run is gone, `gameday sweep` releases it",
                type="TargetLocked",
                category=ApplicationErrorCategory.BENIGN,
            )

    @activity.defn(name="release_targets")
    async def release_targets(self, inp: LockInput) -> int:
        """Release the run's locks (idempotent); returns how many were held."""
        try:
            return await asyncio.to_thread(self.locks.release, inp.run_id)
        except DBAPIError as exc:
            raise self.locks.store.unavailable(exc) from exc
