"""Traffic measurements of a run: ``traffic_runs`` (one row per run that sent ``observe.traffic``: its start,
rate, the per-second timeline as one columnar JSON value, the gaps) and ``traffic_windows`` (one row per
measurement window, ``before``, ``during …``, ``rollback``, ``after``, and one for the total: counts by outcome,
latency percentiles in seconds, the encoded HDR histogram).

Written out here, not imported from the models, so that this revision stays what it was when they change.
Only new tables: a database at 0001 gains them empty, its runs untouched.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT, INT, BIGINT, FLOAT, BOOL, JSON = sa.String, sa.Integer, sa.BigInteger, sa.Float, sa.Boolean, sa.JSON


def _col(name: str, kind: Any, *, key: bool = False, null: bool = False) -> sa.Column[Any]:
    return sa.Column(name, kind(), primary_key=key, nullable=null, autoincrement=False)


def upgrade() -> None:
    op.create_table(
        "traffic_runs",
        _col("run_id", TEXT, key=True),
        # Stored in UTC and read back aware: activities.store.UTCDateTime wraps this type.
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        _col("rate", FLOAT),
        _col("elapsed", FLOAT),
        _col("finished", BOOL),
        _col("timeline", JSON),
        _col("gaps", JSON),
        _col("open_seconds", JSON),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
    )
    op.create_table(
        "traffic_windows",
        _col("run_id", TEXT, key=True),
        _col("kind", TEXT, key=True),
        _col("position", INT, key=True),
        _col("name", TEXT),
        _col("start_offset", FLOAT),
        _col("end_offset", FLOAT, null=True),
        # BIGINT: a long drill at a high rate passes 2**31 requests.
        *(_col(name, BIGINT) for name in ("sent", "ok", "status_4xx", "status_5xx", "timeouts", "connection_errors")),
        _col("late", BIGINT),
        *(_col(f"latency_{name}", FLOAT, null=True) for name in ("p50", "p90", "p95", "p99", "max")),
        _col("histogram", TEXT),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
    )


def downgrade() -> None:
    op.drop_table("traffic_windows")
    op.drop_table("traffic_runs")
