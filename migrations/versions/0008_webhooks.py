"""webhooks: `webhook_endpoints`, `webhook_events`, `webhook_deliveries`, `webhook_attempts`

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 22:30:00

New tables only (no existing table is touched), so the revision can be re-chained past
another one by changing `down_revision` alone.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def _account(table: str) -> list[Any]:
    return [
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("account_id", BIGINT_ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f(f"fk_{table}_account_id_accounts")
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        *_account("webhook_endpoints"),
        sa.Column("public_id", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_index(
        op.f("ix_webhook_endpoints_account_id_public_id"),
        "webhook_endpoints",
        ["account_id", "public_id"],
        unique=True,
    )
    op.create_table(
        "webhook_events",
        *_account("webhook_events"),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("job_id", BIGINT_ID, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_webhook_events_job_id_jobs")
        ),
        sa.UniqueConstraint("message_id", name=op.f("uq_webhook_events_message_id")),
    )
    op.create_index(
        op.f("ix_webhook_events_account_id"), "webhook_events", ["account_id"], unique=False
    )
    op.create_table(
        "webhook_deliveries",
        *_account("webhook_deliveries"),
        sa.Column("public_id", sa.BigInteger(), nullable=False),
        sa.Column("endpoint_id", BIGINT_ID, nullable=False),
        sa.Column("event_id", BIGINT_ID, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("round_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", WHEN, nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_expires_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["webhook_events.id"],
            name=op.f("fk_webhook_deliveries_event_id_webhook_events"),
        ),
    )
    for columns, unique in (
        (["account_id", "public_id"], True),
        (["endpoint_id", "id"], False),
        (["state", "next_attempt_at"], False),
        (["event_id"], False),
    ):
        op.create_index(
            op.f(f"ix_webhook_deliveries_{'_'.join(columns)}"),
            "webhook_deliveries",
            columns,
            unique=unique,
        )
    op.create_table(
        "webhook_attempts",
        *_account("webhook_attempts"),
        sa.Column("delivery_id", BIGINT_ID, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
        ),
    )
    op.create_index(
        op.f("ix_webhook_attempts_delivery_id_attempt"),
        "webhook_attempts",
        ["delivery_id", "attempt"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_events")
    op.drop_table("webhook_endpoints")
