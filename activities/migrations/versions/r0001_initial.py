"""The initial schema: runs with their phases, faults and probe results; the fault ledger; target locks.

Written out here, not imported from the models, so that this revision stays what it was when the models change.

It also adopts a database made before migrations (by ``create_all``; no ``alembic_version``): a table that is
there already keeps its rows and gains what it lacks, the nullable columns added before migrations existed
(``runs.time_to_safe``, ``runs.time_to_healthy``) and its indexes; a missing table is created.

Revision ID: 0001
Revises:
Create Date: 2026-05-20
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT, INT, FLOAT, BOOL, JSON = sa.String, sa.Integer, sa.Float, sa.Boolean, sa.JSON


def _col(name: str, kind: Any, *, key: bool = False, null: bool = False) -> sa.Column[Any]:
    return sa.Column(name, kind(), primary_key=key, nullable=null, autoincrement=False)


def _when(name: str, *, null: bool = False) -> sa.Column[Any]:
    # Stored in UTC and read back aware: activities.store.UTCDateTime wraps this type.
    return sa.Column(name, sa.DateTime(timezone=True), nullable=null)


def _of_run() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"])


def _runs() -> list[SchemaItem]:
    return [
        _col("run_id", TEXT, key=True),
        _col("drill_name", TEXT),
        _col("team", TEXT),
        _col("source", TEXT),
        _col("started_by", TEXT),
        _col("phase", TEXT),
        _col("verdict", TEXT, null=True),
        _when("started_at"),
        _when("ended_at", null=True),
        _col("time_to_recovery", FLOAT, null=True),
        _col("time_to_safe", FLOAT, null=True),
        _col("time_to_healthy", FLOAT, null=True),
        _col("error", TEXT),
        _col("summary", TEXT),
        _col("stop_reason", TEXT, null=True),
        _col("stop_by", TEXT, null=True),
        _when("stop_received_at", null=True),
        _when("updated_at"),
    ]


def _phases() -> list[SchemaItem]:
    return [
        _col("run_id", TEXT, key=True),
        _col("phase", TEXT, key=True),
        _col("status", TEXT),
        _when("started_at"),
        _when("ended_at", null=True),
        _col("detail", TEXT),
        _of_run(),
    ]


def _faults() -> list[SchemaItem]:
    return [
        _col("run_id", TEXT, key=True),
        _col("index", INT, key=True),
        _col("label", TEXT),
        _col("target", TEXT),
        _col("kind", TEXT),
        _col("action", TEXT),
        _col("state", TEXT),
        _when("applied_at", null=True),
        _when("reverted_at", null=True),
        _col("changed", JSON),
        _col("output", TEXT),
        _col("error", TEXT),
        _of_run(),
    ]


def _probe_results() -> list[SchemaItem]:
    return [
        _col("run_id", TEXT, key=True),
        _col("phase", TEXT, key=True),
        _col("probe", TEXT, key=True),
        _col("kind", TEXT),
        _col("samples", INT),
        _col("failures", INT),
        _col("ok", BOOL),
        _col("latency_p50", FLOAT, null=True),
        _col("latency_p95", FLOAT, null=True),
        _col("latency_max", FLOAT, null=True),
        _when("at"),
        _col("problems", JSON),
        _of_run(),
    ]


def _fault_ledger() -> list[SchemaItem]:
    # No foreign key to runs: the ledger row is written before the fault is applied, whatever else failed.
    return [
        _col("run_id", TEXT, key=True),
        _col("index", INT, key=True),
        _col("state", TEXT),
        _col("spec", JSON),
        _when("registered_at"),
        _when("updated_at"),
    ]


def _target_locks() -> list[SchemaItem]:
    return [
        _col("key", TEXT, key=True),
        _col("target", TEXT),
        _col("run_id", TEXT),
        _col("drill_name", TEXT),
        _when("acquired_at"),
    ]


TABLES: list[tuple[str, Callable[[], list[SchemaItem]], list[str]]] = [
    # name, its columns and constraints (fresh objects each call), the columns with an index. Parents first.
    ("runs", _runs, ["drill_name", "team", "verdict", "started_at"]),
    ("phases", _phases, []),
    ("faults", _faults, []),
    ("probe_results", _probe_results, []),
    ("fault_ledger", _fault_ledger, ["state"]),
    ("target_locks", _target_locks, ["run_id"]),
]


def upgrade() -> None:
    offline = op.get_context().as_sql  # `--sql` renders DDL for an empty database: nothing to inspect
    inspector = None if offline else sa.inspect(op.get_bind())
    for name, items, indexed in TABLES:
        if inspector is not None and inspector.has_table(name):
            _adopt(inspector, name, items(), indexed)
            continue
        op.create_table(name, *items())
        for column in indexed:
            op.create_index(f"ix_{name}_{column}", name, [column])


def _adopt(inspector: sa.Inspector, name: str, items: list[SchemaItem], indexed: list[str]) -> None:
    """Bring a table made by ``create_all`` before migrations up to this revision, keeping its rows."""
    present = {column["name"] for column in inspector.get_columns(name)}
    for column in items:
        if not isinstance(column, sa.Column) or column.name in present:
            continue
        if not column.nullable:
            raise RuntimeError(
                f"cannot adopt table {name!r}: it lacks the required column {column.name!r}, "
                "so it was not made by gameday (or by a version this revision does not know)"
            )
        op.add_column(name, column)
    indexes = {index["name"] for index in inspector.get_indexes(name)}
    for column_name in indexed:
        if f"ix_{name}_{column_name}" not in indexes:
            op.create_index(f"ix_{name}_{column_name}", name, [column_name])


def downgrade() -> None:
    for name, _items, _indexed in reversed(TABLES):
        op.drop_table(name)
