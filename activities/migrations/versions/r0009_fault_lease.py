"""Fault leases: a ledger row says why a worker reverted the fault on its own (``fault_ledger.revert_reason``,
``lease expired: control plane unreachable``), so the one revert of a fault whose worker lost Temporal is on record
with its reason, and the drill's own later revert (a no-op) does not overwrite it.

One column, empty on existing rows. It follows the sites revision (0008): one line of history.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A database adopted from before migrations was made by create_all of the current models: it may have it.
    online = not op.get_context().as_sql
    if online and "revert_reason" in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("fault_ledger")}:
        return
    op.add_column("fault_ledger", sa.Column("revert_reason", sa.String(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("fault_ledger") as batch:
        batch.drop_column("revert_reason")
