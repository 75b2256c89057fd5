"""Game days: ``gamedays``, one row per game day (who, when, how it ended) with its drills' entries as JSON
(each drill's own run is in ``runs``, keyed by the entry's ``run_id``).

Written out here, not imported from the models. Only a new table: a database at 0002 gains it empty.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gamedays",
        sa.Column("gameday_id", sa.String(), primary_key=True, nullable=False, autoincrement=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("started_by", sa.String(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("halted_by", sa.String(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
    )
    op.create_index("ix_gamedays_name", "gamedays", ["name"])
    op.create_index("ix_gamedays_team", "gamedays", ["team"])


def downgrade() -> None:
    op.drop_index("ix_gamedays_team", table_name="gamedays")
    op.drop_index("ix_gamedays_name", table_name="gamedays")
    op.drop_table("gamedays")
