"""Sites (issue 14): every fault ledger row says which site's worker applied it (``fault_ledger.site``), so a
worker's start-up sweep reverts only its own site's faults and ``gameday sweep`` sends each revert to its site.

One nullable column: rows written before sites keep ``NULL``, and are swept as before (any worker). A column
already there is left alone, as the initial revision adopts a database made by ``create_all``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    online = not op.get_context().as_sql  # `--sql` renders DDL for a database at 0007: nothing to inspect
    if online and "site" in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("fault_ledger")}:
        return
    with op.batch_alter_table("fault_ledger") as batch:
        batch.add_column(sa.Column("site", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fault_ledger") as batch:
        batch.drop_column("site")
