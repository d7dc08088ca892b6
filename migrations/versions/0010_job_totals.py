"""job totals: a succeeded export's control totals (`jobs.totals`)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 03:00:00

One nullable JSON column: per currency, the file's row count and the sum of each money
column (`exports.totals`). Jobs that succeeded before it have none (null).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("totals", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("totals")
