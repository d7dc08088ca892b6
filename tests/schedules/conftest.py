"""Schedule test helpers: the runner driven on an injected clock, and reading its records.

Schedules here are placed in years ahead of the real clock (2030), so the sweep of any real
consumer running during the suite never finds them due; each test's schedules are paused when
it ends, so a later test driving the clock forward never runs an earlier test's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from ledgerline.auth import across_accounts
from ledgerline.db import engine_for
from ledgerline.models import ExportSchedule, ExportScheduleRun, Job
from ledgerline.schedules.runner import run_due_schedules
from tests.conftest import Backend

UTC = dt.UTC


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(autouse=True)
def pause_schedules_after(backend: Backend) -> Iterator[None]:
    yield
    with engine_for(backend.database_url).begin() as conn:
        conn.execute(
            across_accounts(update(ExportSchedule).values(enabled=False, next_run_at=None))
        )


def drive(backend: Backend, start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> list[int]:
    """Run due schedules at each instant from `start` to `end` (inclusive), as the sweep
    would with that clock; the jobs created (internal ids), handed to no queue."""
    created: list[int] = []
    now = start
    while now <= end:
        created += run_due_schedules(backend.database_url, now, lambda _job: None)
        now += step
    return created


def runs_of(backend: Backend, account_id: int, schedule_public_id: int) -> list[dict[str, Any]]:
    """The schedule's runs, oldest slot first: slot, job (public id) and the job's creation."""
    with engine_for(backend.database_url).begin() as conn:
        rows = conn.execute(
            across_accounts(
                select(ExportScheduleRun.slot_at, Job.public_id, Job.created_at)
                .join(Job, Job.id == ExportScheduleRun.job_id)
                .join(ExportSchedule, ExportSchedule.id == ExportScheduleRun.schedule_id)
                .where(
                    ExportSchedule.account_id == account_id,
                    ExportSchedule.public_id == schedule_public_id,
                )
                .order_by(ExportScheduleRun.slot_at)
            )
        ).all()
    return [{"slot": row[0], "job": row[1], "job_created_at": row[2]} for row in rows]
