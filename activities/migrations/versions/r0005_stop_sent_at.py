"""Stops keep when they were sent: ``runs.stop_sent_at`` (time to safe counts from the stop sent, not handled).

Written out here, not imported from the models. One nullable column: rows of earlier runs keep ``NULL``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A database adopted from before migrations was made by create_all of the current models: it may have it.
    # (Offline, `--sql` for review, there is no database to look at: the DDL is the plain one.)
    online = not op.get_context().as_sql
    if online and "stop_sent_at" in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("runs")}:
        return
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("stop_sent_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("stop_sent_at")
