"""group attributes: tax categories and Sequence's revenue fields on line-item groups

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 19:45:00

`tax_categories` is an account's own `{id, name}` list, so a group's `taxCategoryId` names
something real. The new group columns are all nullable with no default: existing groups keep
"not given" for each, and the columns are added in place (`ALTER TABLE ... ADD COLUMN`, the
foreign key inline) rather than by recreating the table, because on SQLite, with foreign keys
enforced, dropping the old `line_item_groups` would run `ON DELETE SET NULL` on every line item
and ungroup them all.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tax_categories",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("public_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", BIGINT_ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_tax_categories_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tax_categories")),
        sa.UniqueConstraint("public_id", name=op.f("uq_tax_categories_public_id")),
    )
    with op.batch_alter_table("tax_categories", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tax_categories_account_id_id"), ["account_id", "id"], unique=False
        )

    # Plain ALTERs (no batch table copy), for the reason in the docstring. Alembic cannot add
    # a column with a foreign key in place on SQLite, but SQLite itself can, inline.
    fk_name = op.f("fk_line_item_groups_tax_category_id_tax_categories")
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE line_item_groups ADD COLUMN tax_category_id INTEGER "
            f"CONSTRAINT {fk_name} REFERENCES tax_categories (id)"
        )
    else:
        op.add_column("line_item_groups", sa.Column("tax_category_id", BIGINT_ID, nullable=True))
        op.create_foreign_key(
            fk_name, "line_item_groups", "tax_categories", ["tax_category_id"], ["id"]
        )
    op.add_column(
        "line_item_groups",
        sa.Column("revenue_recognition_method", sa.String(length=20), nullable=True),
    )
    op.add_column(
        "line_item_groups", sa.Column("revenue_classification", sa.String(length=20), nullable=True)
    )
    op.add_column("line_item_groups", sa.Column("service_period_start", sa.Date(), nullable=True))
    op.add_column("line_item_groups", sa.Column("service_period_end", sa.Date(), nullable=True))


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # Dropping a foreign-key column recreates the table on SQLite, whose DROP would
        # ungroup every line item (see the docstring): keep the grouping aside meanwhile.
        op.execute(
            "CREATE TEMP TABLE saved_line_groups AS "
            "SELECT id, group_id FROM line_items WHERE group_id IS NOT NULL"
        )
    with op.batch_alter_table("line_item_groups", schema=None) as batch_op:
        batch_op.drop_column("service_period_end")
        batch_op.drop_column("service_period_start")
        batch_op.drop_column("revenue_classification")
        batch_op.drop_column("revenue_recognition_method")
        if not sqlite:  # SQLite does not report an inline constraint's name; the copy drops it
            batch_op.drop_constraint(
                batch_op.f("fk_line_item_groups_tax_category_id_tax_categories"),
                type_="foreignkey",
            )
        batch_op.drop_column("tax_category_id")
    if sqlite:
        op.execute(
            "UPDATE line_items SET group_id = (SELECT saved.group_id FROM saved_line_groups saved "
            "WHERE saved.id = line_items.id) WHERE id IN (SELECT id FROM saved_line_groups)"
        )
        op.execute("DROP TABLE saved_line_groups")
    with op.batch_alter_table("tax_categories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tax_categories_account_id_id"))
    op.drop_table("tax_categories")
