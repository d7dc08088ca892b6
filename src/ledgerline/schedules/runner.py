"""Running due schedules: what every consumer's sweep does each second (docs/schedules.md).

A schedule is due when its `next_run_at` is at or before `now` (the sweep's clock, passed in
so tests can drive it). One write transaction per due schedule:

1. the claim: `UPDATE export_schedules SET next_run_at = <first slot after now> WHERE id = …
   AND next_run_at = <the value read>`. Of any number of runners, exactly one changes the
   row; on PostgreSQL the others wait for its row lock and then find the value moved, on
   SQLite writers take turns (`BEGIN IMMEDIATE`) and the later ones read it moved;
2. in the same transaction, the export job (`jobs.service.create_export_job`, as an export
   request makes it) for the slot: the latest slot at or before `now`, so a runner back
   after downtime makes one catch-up run for the most recent missed slot, not one per slot;
3. the run record, unique per (schedule, slot).

Only after the commit is the job handed to the queue (`enqueue`); a hand-over lost in a
crash is re-queued by the sweep like any job left queued.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from ledgerline.auth import Principal, across_accounts
from ledgerline.db import transaction
from ledgerline.errors import AppError
from ledgerline.jobs.service import create_export_job
from ledgerline.models import Account, ExportSchedule, ExportScheduleRun
from ledgerline.schedules.service import cadence_of, report_params

log = logging.getLogger("ledgerline.schedules")

# Due schedules one sweep takes on at most; the rest wait for the next second.
BATCH = 100


def due_schedules(
    session: Session, now: dt.datetime, limit: int = BATCH
) -> list[tuple[int, dt.datetime]]:
    """(id, next_run_at) of schedules due at `now`, the longest due first. A read, so an idle
    sweep takes no write lock."""
    rows = session.execute(
        across_accounts(
            select(ExportSchedule.id, ExportSchedule.next_run_at)
            .where(ExportSchedule.next_run_at <= now)
            .order_by(ExportSchedule.next_run_at, ExportSchedule.id)
            .limit(limit)
        )
    ).all()
    return [(int(row[0]), row[1]) for row in rows if row[1] is not None]


def run_schedule(
    session: Session, schedule_id: int, expected: dt.datetime, now: dt.datetime
) -> int | None:
    """Claim the schedule's due slot and create its job (the internal job id), in the
    caller's transaction; None when another runner claimed it first, or when the slot made
    no job (its parameters are no longer valid: recorded as `last_error`)."""
    schedule = session.execute(
        across_accounts(
            select(ExportSchedule).where(
                ExportSchedule.id == schedule_id, ExportSchedule.next_run_at == expected
            )
        )
    ).scalar_one_or_none()
    if schedule is None:
        return None
    cadence = cadence_of(schedule)
    latest = cadence.latest_at_or_before(now)
    slot = latest if latest is not None and latest >= expected else expected
    claimed = session.execute(
        across_accounts(
            update(ExportSchedule)
            .where(
                ExportSchedule.id == schedule_id,
                ExportSchedule.next_run_at == expected,
                ExportSchedule.enabled.is_(True),
            )
            .values(next_run_at=cadence.next_after(now), last_run_at=slot)
            .execution_options(synchronize_session=False)
        )
    )
    assert isinstance(claimed, CursorResult)
    if claimed.rowcount != 1:
        return None
    # Read again under the claim's row lock: a change committed between the first read and
    # the claim (a new report or parameters, same slots) is what this slot runs.
    session.refresh(schedule)
    try:
        params = report_params(
            schedule.report, schedule.parameters, schedule.format, schedule.timezone, slot
        )
    except AppError as exc:
        _record(session, schedule_id, last_error=exc.detail)
        log.warning(
            "scheduled export made no job", extra={"schedule": schedule_id, "error": exc.detail}
        )
        return None
    currency = session.execute(
        select(Account.currency).where(Account.id == schedule.account_id)
    ).scalar_one()
    principal = Principal(
        account_id=schedule.account_id,
        key_id=f"schedule:{schedule.public_id}",
        scopes=frozenset({"read", "write"}),
        timezone=schedule.timezone,
        currency=currency,
    )
    job, _ = create_export_job(session, principal, params, None, now=now)
    session.add(
        ExportScheduleRun(
            account_id=schedule.account_id,
            schedule_id=schedule_id,
            slot_at=slot,
            job_id=job.id,
            created_at=now,
        )
    )
    session.flush()
    _record(session, schedule_id, last_job_id=job.id, last_error=None)
    return job.id


def _record(session: Session, schedule_id: int, **values: object) -> None:
    session.execute(
        across_accounts(
            update(ExportSchedule)
            .where(ExportSchedule.id == schedule_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    )


def run_due_schedules(
    database_url: str, now: dt.datetime, enqueue: Callable[[int], None]
) -> list[int]:
    """Run every schedule due at `now`: one transaction each, its job handed to `enqueue`
    after the commit. The internal ids of the jobs created. A schedule that fails is logged
    and left due, so the next sweep tries again; it never stops the others."""
    with transaction(database_url, writes=False) as session:
        due = due_schedules(session, now)
    created: list[int] = []
    for schedule_id, expected in due:
        try:
            with transaction(database_url, writes=True) as session:
                job_id = run_schedule(session, schedule_id, expected, now)
        except Exception:
            log.exception("scheduled export failed; will retry", extra={"schedule": schedule_id})
            continue
        if job_id is None:
            continue
        created.append(job_id)
        try:
            enqueue(job_id)
        except Exception:
            log.exception("could not enqueue job; the sweep will retry", extra={"job": job_id})
    return created
