"""Sweep scope: every fault ledger row and target lock says where its run lives (``namespace``, ``cluster``), and
each ledger row which target lock its run held for the fault (``lock_key``).

Only new columns, empty on existing rows: a sweep lists such rows ("no recorded namespace/cluster") and never
acts on them, since nothing says which Temporal cluster could tell whether their drill still runs. A column (or
the index) already there is left alone, as the initial revision adopts a database made by ``create_all``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=False, server_default="")


def upgrade() -> None:
    offline = op.get_context().as_sql  # `--sql` renders DDL for a database at 0003: nothing to inspect
    inspector = None if offline else sa.inspect(op.get_bind())
    for table, columns in (
        ("fault_ledger", ("namespace", "cluster", "lock_key")),
        ("target_locks", ("namespace", "cluster")),
    ):
        present = set() if inspector is None else {c["name"] for c in inspector.get_columns(table)}
        for column in columns:
            if column not in present:
                op.add_column(table, _text(column))
    indexes = set() if inspector is None else {i["name"] for i in inspector.get_indexes("fault_ledger")}
    if "ix_fault_ledger_namespace" not in indexes:
        op.create_index("ix_fault_ledger_namespace", "fault_ledger", ["namespace"])


def downgrade() -> None:
    with op.batch_alter_table("target_locks") as batch:
        batch.drop_column("cluster")
        batch.drop_column("namespace")
    op.drop_index("ix_fault_ledger_namespace", table_name="fault_ledger")
    with op.batch_alter_table("fault_ledger") as batch:
        batch.drop_column("lock_key")
        batch.drop_column("cluster")
        batch.drop_column("namespace")
