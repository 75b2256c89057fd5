"""Game-day records in SQL: one ``gamedays`` row each (migration 0003), the drills' own runs being in ``runs``."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import DBAPIError
from sqlmodel import Session
from temporalio import activity

from gameday.activities.store import Store
from gameday.activities.tables import GameDayRow
from gameday.model.gameday import GameDayRecord


class GameDays:
    """Save and read game-day records (idempotent upsert by id)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_tables(GameDayRow)

    def save(self, record: GameDayRecord) -> None:
        row = GameDayRow(
            gameday_id=record.gameday_id,
            name=record.name,
            team=record.team,
            source=record.source,
            started_by=record.started_by,
            started_at=record.started_at,
            ended_at=record.ended_at,
            outcome=record.outcome,
            halted_by=record.halted_by,
            record=record.model_dump(mode="json"),
        )
        with Session(self.store.engine) as session, session.begin():
            current = session.get(GameDayRow, record.gameday_id)
            if current is None:
                session.add(row)
            else:
                current.sqlmodel_update(row.model_dump())

    def get(self, gameday_id: str) -> GameDayRecord | None:
        with Session(self.store.engine) as session:
            row = session.get(GameDayRow, gameday_id)
            return None if row is None else GameDayRecord.model_validate(row.record)


class GameDayActivities:
    """``record_gameday``, bound to one results database."""

    def __init__(self, gamedays: GameDays) -> None:
        self.gamedays = gamedays

    @activity.defn(name="record_gameday")
    async def record_gameday(self, record: GameDayRecord) -> None:
        """Save the game day's record; retryable ``StoreUnavailable`` while the database is down."""
        try:
            await asyncio.to_thread(self.gamedays.save, record)
        except DBAPIError as exc:
            raise self.gamedays.store.unavailable(exc) from exc
