"""Runs keep what ``observe.watch`` and ``observe.expect``'s ``sequence``/``detect``/``alerts`` found (issue 15):
``runs.time_to_detect`` (seconds), ``runs.expectations`` (the judged expectations, JSON text), ``runs.watch`` (the
watched probes' collapsed values and the alerts seen, JSON text); ``probe_results.recorded``, a probe's ``record``.

Written out here, not imported from the models. Nullable columns: rows of earlier runs keep ``NULL``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS: dict[str, list[tuple[str, sa.types.TypeEngine[Any]]]] = {
    "runs": [("time_to_detect", sa.Float()), ("expectations", sa.String()), ("watch", sa.String())],
    "probe_results": [("recorded", sa.String())],
}


def upgrade() -> None:
    # A database adopted from before migrations was made by create_all of the current models: it may have them.
    online = not op.get_context().as_sql
    for table, columns in COLUMNS.items():
        have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)} if online else set()
        missing = [(name, kind) for name, kind in columns if name not in have]
        if missing:
            with op.batch_alter_table(table) as batch:
                for name, kind in missing:
                    batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, _ in columns:
                batch.drop_column(name)
