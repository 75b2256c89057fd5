"""Runs keep what the read-back of their writes found (``runs.data_loss``, JSON: acknowledged, checked, lost,
duplicated, sampled, seconds, the first lost ids), so a report read from SQL shows it (issue 15).

Written out here, not imported from the models. One nullable column: rows of earlier runs keep ``NULL``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A database adopted from before migrations was made by create_all of the current models: it may have it.
    online = not op.get_context().as_sql
    if online and "data_loss" in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("runs")}:
        return
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("data_loss", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("data_loss")
