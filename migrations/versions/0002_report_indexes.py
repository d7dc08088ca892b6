"""report indexes: covering indexes for the grouped report and its totals

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 17:40:00

`(account_id, type, currency, amount)` answers the grouped report (and the export's
`GROUP BY type, currency`) from the index alone, already in group order.
`(account_id, type)` stays: PostgreSQL's B-tree deduplication keeps it the smallest index
on any data, so the exact report `total` is an index-only scan of it.
`(account_id, currency, amount)` does the same for a grouped report of `total_amount` alone
(`GROUP BY currency`). See docs/performance.md, "Indexes and counts".
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("line_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_line_items_account_id_type_currency_amount"),
            ["account_id", "type", "currency", "amount"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_line_items_account_id_currency_amount"),
            ["account_id", "currency", "amount"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("line_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_line_items_account_id_currency_amount"))
        batch_op.drop_index(batch_op.f("ix_line_items_account_id_type_currency_amount"))
