"""Runs keep their drill's ``observe.expect`` (``runs.expect``, JSON): the reports show the thresholds beside the
figures the traffic measured.

Written out here, not imported from the models. One nullable column: rows of earlier runs keep ``NULL`` (their
reports show the figures without thresholds, as before).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A database adopted from before migrations was made by create_all of the current models: it may have it.
    online = not op.get_context().as_sql
    if online and "expect" in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("runs")}:
        return
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("expect", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("expect")
