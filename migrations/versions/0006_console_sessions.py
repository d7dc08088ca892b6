"""console sessions: `console_sessions` and `console_links`, for the web console's sign-in

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 17:00:00

Two new tables and nothing else, so the migration can be renumbered past another without
touching an existing table. Only SHA-256 hashes of session ids and link tokens are stored
(each is 256 random bits; see console/service.py), unique so that a lookup is one index probe.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _columns(hash_column: str) -> list[sa.Column[object]]:
    return [
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("account_id", BIGINT_ID, nullable=False),
        sa.Column(hash_column, sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    ]


def _constraints(name: str, hash_column: str) -> list[sa.Constraint]:
    return [
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f(f"fk_{name}_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        sa.UniqueConstraint(hash_column, name=op.f(f"uq_{name}_{hash_column}")),
    ]


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        *_columns("session_hash"),
        sa.Column("scopes", sa.String(length=100), nullable=False),
        sa.Column("api_key_id", BIGINT_ID, nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        *_constraints("console_sessions", "session_hash"),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_console_sessions_api_key_id_api_keys")
        ),
    )
    op.create_table(
        "console_links",
        *_columns("token_hash"),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        *_constraints("console_links", "token_hash"),
    )
    for name in ("console_sessions", "console_links"):
        op.create_index(op.f(f"ix_{name}_account_id"), name, ["account_id"], unique=False)


def downgrade() -> None:
    op.drop_table("console_links")
    op.drop_table("console_sessions")
