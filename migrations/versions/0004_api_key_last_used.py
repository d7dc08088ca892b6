"""api key last use: `api_keys.last_used_at`, for `ledgerline tokens list`

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-10 10:00:00

Nullable with no default: a key not used since the upgrade shows `null`. Recorded at most once
per `auth.LAST_USED_GRANULARITY` per key (see auth.py), so it costs no write per request.
Added in place (`ALTER TABLE ... ADD COLUMN`, no batch copy of the table) on both databases;
the downgrade drops it in place too (SQLite 3.35+ has `DROP COLUMN`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE api_keys DROP COLUMN last_used_at")
