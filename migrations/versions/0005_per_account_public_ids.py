"""per-account public ids: `public_id` on venues, customers, invoices, line_items and jobs

Revision ID: 0005
Revises: 0004
Create Date: 2027-01-20 10:00:00

The API showed each table's global autoincrement key as a record's id, so an account could
tell how many invoices (customers, line items, exports) every other account created between
two of its own. Each of these tables gets `public_id`, numbered 1, 2, 3… per account in the
order of the existing keys (`ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY id)`), unique
per (account_id, public_id); `account_counters` holds the last number handed out per account
and table, so new rows continue from there (`ledgerline.public_ids`). Internal keys and
foreign keys do not change. Existing integer ids are renumbered: clients must re-read them.

Added in place (`ALTER TABLE ... ADD COLUMN`, no batch table copy, which on SQLite would drop
and recreate tables that foreign keys point at; see 0003). PostgreSQL then sets the column
NOT NULL. SQLite cannot add a NOT NULL column without a default, nor a CHECK that existing
rows would fail, short of that copy, so there the column stays nullable. (Triggers refusing
a NULL were tried and dropped: they made the seed's bulk insert take 40% more CPU. Every
write path runs on PostgreSQL in CI, where NOT NULL refuses a row that forgot its id.)

Jobs already written keep working under their new ids: a succeeded job's `file_name` is
renamed to carry its public id (the storage key, never shown, keeps the internal one), and an
`id_gt` filter in a job's `params` is translated to the public id that selects the same line
items (the downgrade translates back).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NUMBERED = ("venues", "customers", "invoices", "line_items", "jobs")

JOBS = sa.table(
    "jobs",
    sa.column("id", sa.BigInteger()),
    sa.column("account_id", sa.BigInteger()),
    sa.column("params", sa.JSON()),
)


def _index_name(table: str) -> str:
    return f"ix_{table}_account_id_public_id"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "account_counters",
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("last_value", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_account_counters_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "entity", name=op.f("pk_account_counters")),
    )
    for table in NUMBERED:
        op.add_column(table, sa.Column("public_id", sa.BigInteger(), nullable=True))
        # UPDATE … FROM: PostgreSQL, and SQLite since 3.33.
        op.execute(
            f"UPDATE {table} SET public_id = numbered.n FROM (SELECT id, ROW_NUMBER() OVER "
            f"(PARTITION BY account_id ORDER BY id) AS n FROM {table}) AS numbered "
            f"WHERE {table}.id = numbered.id"
        )
        op.execute(
            "INSERT INTO account_counters (account_id, entity, last_value) "
            f"SELECT account_id, '{table}', MAX(public_id) FROM {table} GROUP BY account_id"
        )
        if not sqlite:
            op.alter_column(table, "public_id", nullable=False)
        # The report's default order, tie-breaker and `id_gt` walk this index; on PostgreSQL
        # it carries the internal id, so a deep page's id walk stays index-only.
        op.create_index(
            _index_name(table),
            table,
            ["account_id", "public_id"],
            unique=True,
            postgresql_include=["id"] if table == "line_items" else [],
        )
    _rename_job_files("public_id")
    _translate_id_gt(to_public=True)


def downgrade() -> None:
    _translate_id_gt(to_public=False)
    _rename_job_files("id")
    for table in reversed(NUMBERED):
        op.drop_index(_index_name(table), table_name=table)
        # In place on both databases (SQLite 3.35+ has DROP COLUMN), as in 0004.
        op.execute(f"ALTER TABLE {table} DROP COLUMN public_id")
    op.drop_table("account_counters")


def _rename_job_files(id_column: str) -> None:
    """A finished job's file name, `<report>-<job id>.<format>`, with the id the API shows."""
    op.execute(
        f"UPDATE jobs SET file_name = \"report\" || '-' || CAST({id_column} AS VARCHAR(20)) "
        "|| '.' || \"format\" WHERE file_name IS NOT NULL"
    )


def _translate_id_gt(*, to_public: bool) -> None:
    """Rewrite each job's `id_gt` so it selects the same line items under the other id.

    Public ids follow the internal order within an account, so `id > x` selects what
    `public_id > (the highest public id at or below x)` does, and back."""
    connection = op.get_bind()
    jobs = connection.execute(sa.select(JOBS.c.id, JOBS.c.account_id, JOBS.c.params)).all()
    lines = sa.table(
        "line_items",
        sa.column("id", sa.BigInteger()),
        sa.column("public_id", sa.BigInteger()),
        sa.column("account_id", sa.BigInteger()),
    )
    given, wanted = (
        (lines.c.id, lines.c.public_id) if to_public else (lines.c.public_id, lines.c.id)
    )
    for job_id, account_id, params in jobs:
        filters = (params or {}).get("filters") or {}
        if filters.get("id_gt") is None or int(filters["id_gt"]) <= 0:
            continue  # a bound at or below zero selects every line under either id
        translated = connection.execute(
            sa.select(sa.func.coalesce(sa.func.max(wanted), 0)).where(
                lines.c.account_id == account_id, given <= int(filters["id_gt"])
            )
        ).scalar_one()
        params = {**params, "filters": {**filters, "id_gt": int(translated)}}
        connection.execute(sa.update(JOBS).where(JOBS.c.id == job_id).values(params=params))
