"""Evidence: every step of the drill log kept in order, and the observation's coverage.

``phases`` was keyed by (run, phase), so a second ``paused`` step overwrote the first, and steps with the same
timestamp read back sorted by name. It is now keyed by (run, ``seq``), the step's position in the log. The table
is rebuilt (SQLite cannot change a primary key in place): existing rows get their ``seq`` from their start time,
ties broken in pipeline order, which is the best an old database knows.

``observations`` is new, one row per run whose observation ran probes: the window, ticks expected and taken,
the share of the window covered and the gaps (JSON) with their times and cause.

Written out here, not imported from the models.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PIPELINE = ["pending", "preflight", "approval", "inject", "paused", "observe", "rollback", "verify", "notify", "record"]
"""The order of steps that share a start time, for rows written before ``seq`` existed."""


def _col(name: str, kind: Any, *, key: bool = False, null: bool = False) -> sa.Column[Any]:
    return sa.Column(name, kind(), primary_key=key, nullable=null, autoincrement=False)


def _when(name: str, *, null: bool = False) -> sa.Column[Any]:
    # Stored in UTC and read back aware: activities.store.UTCDateTime wraps this type.
    return sa.Column(name, sa.DateTime(timezone=True), nullable=null)


def _phases(name: str, *, numbered: bool) -> None:
    op.create_table(
        name,
        _col("run_id", sa.String, key=True),
        *([_col("seq", sa.Integer, key=True), _col("phase", sa.String)] if numbered else []),
        *([] if numbered else [_col("phase", sa.String, key=True)]),
        _col("status", sa.String),
        _when("started_at"),
        _when("ended_at", null=True),
        _col("detail", sa.String),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
    )


def _rank(column: str) -> str:
    cases = " ".join(f"WHEN '{phase}' THEN {n}" for n, phase in enumerate(PIPELINE))
    return f"(CASE {column} {cases} ELSE {len(PIPELINE)} END)"


def upgrade() -> None:
    _phases("phases_numbered", numbered=True)
    # seq = how many steps of the same run came before: earlier start, or the same start and earlier in the pipeline.
    op.execute(
        "INSERT INTO phases_numbered (run_id, seq, phase, status, started_at, ended_at, detail) "
        "SELECT p.run_id, (SELECT COUNT(*) FROM phases q WHERE q.run_id = p.run_id AND (q.started_at < p.started_at "
        f"OR (q.started_at = p.started_at AND ({_rank('q.phase')} < {_rank('p.phase')} "
        f"OR ({_rank('q.phase')} = {_rank('p.phase')} AND q.phase < p.phase))))), "
        "p.phase, p.status, p.started_at, p.ended_at, p.detail FROM phases p"
    )
    op.drop_table("phases")
    op.rename_table("phases_numbered", "phases")
    op.create_table(
        "observations",
        _col("run_id", sa.String, key=True),
        _when("window_start"),
        _when("window_end"),
        _col("interval", sa.Float),
        _col("ticks_expected", sa.Integer),
        _col("ticks_taken", sa.Integer),
        _col("covered", sa.Float),
        _col("gap_seconds", sa.Float),
        _col("min_coverage", sa.Float, null=True),
        _col("gaps", sa.JSON),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
    )


def downgrade() -> None:
    op.drop_table("observations")
    _phases("phases_by_name", numbered=False)
    # Back to one row per (run, phase): the last of each phase wins, as it did before.
    op.execute(
        "INSERT INTO phases_by_name (run_id, phase, status, started_at, ended_at, detail) "
        "SELECT p.run_id, p.phase, p.status, p.started_at, p.ended_at, p.detail FROM phases p "
        "WHERE p.seq = (SELECT MAX(q.seq) FROM phases q WHERE q.run_id = p.run_id AND q.phase = p.phase)"
    )
    op.drop_table("phases")
    op.rename_table("phases_by_name", "phases")
