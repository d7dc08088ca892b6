"""export schedules: `export_schedules` and `export_schedule_runs`

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 22:40:00

Two new tables and nothing else (no existing table changes), so the migration can be
re-chained past others. A schedule's `next_run_at` is the runners' claim (docs/schedules.md);
a run row per (schedule, slot), unique, links each scheduled job to its schedule and slot.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "export_schedules",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("public_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", BIGINT_ID, nullable=False),
        sa.Column("report", sa.String(length=60), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("cadence", sa.String(length=10), nullable=False),
        sa.Column("time_of_day", sa.String(length=8), nullable=True),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("day_of_month", sa.Integer(), nullable=True),
        sa.Column("cron", sa.String(length=200), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_job_id", BIGINT_ID, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_export_schedules_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["last_job_id"], ["jobs.id"], name=op.f("fk_export_schedules_last_job_id_jobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_schedules")),
    )
    op.create_index(
        op.f("ix_export_schedules_account_id_public_id"),
        "export_schedules",
        ["account_id", "public_id"],
        unique=True,
    )
    op.create_index(
        op.f("ix_export_schedules_next_run_at"), "export_schedules", ["next_run_at"], unique=False
    )
    op.create_table(
        "export_schedule_runs",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("account_id", BIGINT_ID, nullable=False),
        sa.Column("schedule_id", BIGINT_ID, nullable=False),
        sa.Column("slot_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_id", BIGINT_ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_export_schedule_runs_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["export_schedules.id"],
            name=op.f("fk_export_schedule_runs_schedule_id_export_schedules"),
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_export_schedule_runs_job_id_jobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_schedule_runs")),
        sa.UniqueConstraint(
            "schedule_id", "slot_at", name=op.f("uq_export_schedule_runs_schedule_id_slot_at")
        ),
    )
    op.create_index(
        op.f("ix_export_schedule_runs_account_id"),
        "export_schedule_runs",
        ["account_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_export_schedule_runs_job_id"), "export_schedule_runs", ["job_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("export_schedule_runs")
    op.drop_table("export_schedules")
