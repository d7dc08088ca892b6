"""row counts: `account_row_counts` and `invoices.line_count`, created and backfilled

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 23:00:00

The reports' exact `total` counted every matching line item on each request, so the
unfiltered count grew with the table. The writers now keep two counts (`ledgerline.row_counts`):
per account and table (invoices, line items) in `account_row_counts`, and per invoice in
`invoices.line_count`. This migration creates both and fills them with COUNT(*) of the rows
present, in the migration's transaction (writers are not running during `db upgrade`).

`line_count` is added in place with a constant default (instant on PostgreSQL; SQLite's ADD
COLUMN allows NOT NULL with a default). The (account_id, status) index of invoices becomes
(account_id, status, line_count), which serves every use of the old one and covers a status
filter's sum of line counts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "account_row_counts",
        sa.Column("account_id", BIGINT_ID, nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_account_row_counts_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "entity", name=op.f("pk_account_row_counts")),
    )
    for table in ("invoices", "line_items"):
        op.execute(
            "INSERT INTO account_row_counts (account_id, entity, row_count) "
            f"SELECT account_id, '{table}', COUNT(*) FROM {table} GROUP BY account_id"
        )
    op.add_column(
        "invoices",
        sa.Column("line_count", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.execute(
        "UPDATE invoices SET line_count = counted.n FROM (SELECT invoice_id, COUNT(*) AS n "
        "FROM line_items GROUP BY invoice_id) AS counted WHERE invoices.id = counted.invoice_id"
    )
    op.drop_index("ix_invoices_account_id_status", table_name="invoices")
    op.create_index(
        "ix_invoices_account_id_status_line_count",
        "invoices",
        ["account_id", "status", "line_count"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_invoices_account_id_status_line_count", table_name="invoices")
    op.create_index(
        "ix_invoices_account_id_status", "invoices", ["account_id", "status"], unique=False
    )
    op.drop_column("invoices", "line_count")
    op.drop_table("account_row_counts")
