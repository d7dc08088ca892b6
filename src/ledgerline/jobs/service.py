"""The export job lifecycle: queued → running → succeeded | failed | canceled (→ expired).

Every change of state is one conditional UPDATE on the `jobs` row, so two workers, a sweep and
a cancel racing each other can never both win: a worker owns a running job only while its
`lease_owner` is on the row and its lease has not run out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledgerline.auth import Principal, across_accounts, get_owned_by_public_id, owned, scoped
from ledgerline.db import utcnow
from ledgerline.errors import AppError, Conflict, ValidationFailed
from ledgerline.models import JOB_STATUSES, Account, Job
from ledgerline.pagination import OffsetPage
from ledgerline.public_ids import allocate
from ledgerline.reports.filters import TIMEFRAME_SUFFIX
from ledgerline.reports.query import ReportParams
from ledgerline.webhooks.events import record_job_event

STATUSES = JOB_STATUSES
ACTIVE = ("queued", "running")
IDEMPOTENCY_KEY_MAX = 255
# The `Retry-After` of a refusal for too many active exports: a hint, since when a slot frees
# depends on the jobs ahead (a typical export finishes within seconds to a minute); a client
# that polls its jobs knows sooner.
ACTIVE_EXPORTS_RETRY_AFTER_SECONDS = 30


class JobNotCancelable(Conflict):
    code = "job-not-cancelable"


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency-key-reused"


class TooManyActiveExports(AppError):
    status, code = 429, "too-many-active-exports"


def request_hash(report: str, params: ReportParams) -> str:
    """The identity of an export request: the normalised parameters, not the raw body.

    A named timeframe stands for itself, not for the bounds it resolved to at the request's
    clock: a retry with the same `Idempotency-Key` after midnight (or a month's turn) in the
    account's zone is the same request and replays its job, which keeps the bounds of the
    first attempt."""
    identity = params.to_json()
    filters = identity["filters"]
    for key in [key for key in filters if key.endswith(TIMEFRAME_SUFFIX)]:
        prefix = key.removesuffix(TIMEFRAME_SUFFIX)
        filters.pop(f"{prefix}_gte", None)
        filters.pop(f"{prefix}_lte", None)
    canonical = json.dumps(
        {"report": report, "params": identity}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(
    session: Session, principal: Principal, idempotency_key: str, fingerprint: str
) -> Job | None:
    existing = session.execute(
        scoped(Job, principal).where(Job.idempotency_key == idempotency_key)
    ).scalar_one_or_none()
    if existing is None:
        return None
    if existing.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "Idempotency-Key was already used for a different export request.",
            errors=[
                {
                    "loc": ["header", "Idempotency-Key"],
                    "msg": "already used with different parameters",
                }
            ],
        )
    return existing


def _lock_account(session: Session, principal: Principal) -> None:
    """The account row locked to the commit (PostgreSQL; NO KEY UPDATE, as for invoice
    numbers, so inserts referencing the account are not blocked): the cap's count and the
    insert of two concurrent requests then take turns, and the second one counts the first's
    job. SQLite serialises writing requests already (`BEGIN IMMEDIATE`)."""
    session.execute(
        select(Account.id).where(Account.id == principal.account_id).with_for_update(key_share=True)
    )


def _refuse_over_cap(session: Session, principal: Principal, max_active: int) -> None:
    """429 when the account already has `max_active` export jobs queued or running."""
    active = session.execute(
        scoped(Job, principal).where(Job.status.in_(ACTIVE)).with_only_columns(func.count())
    ).scalar_one()
    if active >= max_active:
        raise TooManyActiveExports(
            f"This account has {active} export jobs queued or running; at most {max_active} "
            "may be at once. Wait for one to finish, or cancel one, and retry.",
            headers={"Retry-After": str(ACTIVE_EXPORTS_RETRY_AFTER_SECONDS)},
        )


def create_export_job(
    session: Session,
    principal: Principal,
    params: ReportParams,
    idempotency_key: str | None,
    *,
    max_active: int = 0,
    now: dt.datetime | None = None,
) -> tuple[Job, bool]:
    """The job for this request and whether it is new (a replayed key returns the first job).

    Two identical requests racing with one key: the unique (account_id, idempotency_key)
    constraint lets one insert win; the other, inside a savepoint, reads the winner's row.
    With `max_active` (> 0) a new job is refused (429) while the account has that many
    queued or running; a replayed key still returns its job, since it creates none.
    """
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_MAX:
        raise ValidationFailed.field(
            ["header", "Idempotency-Key"], f"must be 1 to {IDEMPOTENCY_KEY_MAX} characters"
        )
    fingerprint = request_hash(params.report, params)
    if max_active:
        # The lock first: a replay of a job committed while this request waited for it is
        # then found below and answered as a replay, not refused by the cap.
        _lock_account(session, principal)
    if idempotency_key is not None:
        replayed = _replay(session, principal, idempotency_key, fingerprint)
        if replayed is not None:
            return replayed, False
    if max_active:
        _refuse_over_cap(session, principal, max_active)
    job = Job(
        account_id=principal.account_id,
        type="report_export",
        report=params.report,
        format=params.format,
        params=params.to_json(),
        status="queued",
        rows_done=0,
        attempts=0,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        created_at=now if now is not None else utcnow(),
    )
    try:
        with session.begin_nested():
            # In the savepoint: a request that loses the idempotency race gives its public
            # id back with it, so the account's job ids keep no gap.
            job.public_id = allocate(session, principal.account_id, Job)
            session.add(job)
            session.flush()
    except IntegrityError:
        if idempotency_key is None:
            raise
        replayed = _replay(session, principal, idempotency_key, fingerprint)
        if replayed is None:
            raise
        return replayed, False
    return job, True


def get_job(session: Session, principal: Principal, job_id: int) -> Job:
    """The principal's job with this public id (the id the API shows), or 404."""
    return get_owned_by_public_id(session, Job, job_id, principal)


def get_job_of_account(session: Session, account_id: int, job_id: int) -> Job | None:
    """The account's job with this public id (a signed download link names both)."""
    return session.execute(
        select(Job).where(Job.public_id == job_id, owned(Job, account_id))
    ).scalar_one_or_none()


def list_jobs(
    session: Session, principal: Principal, status: str | None, window: OffsetPage
) -> tuple[int, list[Job]]:
    """The account's jobs, newest first, optionally of one status."""
    statement = scoped(Job, principal)
    if status is not None:
        if status not in STATUSES:
            raise ValidationFailed.field(
                ["query", "status"], f"must be one of {', '.join(STATUSES)}"
            )
        statement = statement.where(Job.status == status)
    count = session.execute(
        select(func.count()).select_from(statement.order_by(None).subquery())
    ).scalar_one()
    jobs = (
        session.execute(
            statement.order_by(Job.public_id.desc()).limit(window.limit).offset(window.offset)
        )
        .scalars()
        .all()
    )
    return count, list(jobs)


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def cancel_job(session: Session, principal: Principal, job_id: int) -> Job:
    """Queued or running → canceled; a running worker sees it at its next progress write."""
    job = get_job(session, principal, job_id)
    changed = _rowcount(
        session.execute(
            update(Job)
            .where(owned(Job, principal.account_id), Job.id == job.id, Job.status.in_(ACTIVE))
            .values(status="canceled", finished_at=utcnow(), lease_owner=None)
            .execution_options(synchronize_session=False)
        )
    )
    if changed:
        record_job_event(session, job.id, "job.canceled")
    session.refresh(job)
    if not changed:
        raise JobNotCancelable(f"Job {job.public_id} has already finished ({job.status}).")
    return job


# ---- the worker's side ---------------------------------------------------------------------

# A consumer holds a job by its id and its lease owner, not by a principal (the queue message
# carries only the id), and the sweep acts for every account at once: their statements are
# `across_accounts` on purpose.


def claim_job(
    session: Session,
    job_id: int,
    owner: str,
    now: dt.datetime,
    *,
    lease_seconds: int,
    max_attempts: int,
) -> Job | None:
    """Take the job if it is queued, or running under a lease that ran out; else None."""
    claimed = _rowcount(
        session.execute(
            across_accounts(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.attempts < max_attempts,
                    or_(
                        Job.status == "queued",
                        (Job.status == "running") & (Job.lease_expires_at < now),
                    ),
                )
                .values(
                    status="running",
                    attempts=Job.attempts + 1,
                    lease_owner=owner,
                    lease_expires_at=now + dt.timedelta(seconds=lease_seconds),
                    started_at=func.coalesce(Job.started_at, now),
                    rows_done=0,
                )
                .execution_options(synchronize_session=False)
            )
        )
    )
    if not claimed:
        return None
    return session.execute(across_accounts(select(Job).where(Job.id == job_id))).scalar_one()


def _held(job_id: int, owner: str) -> ColumnElement[bool]:
    """The job is running under `owner`'s lease: the condition of every write its consumer
    makes, so a consumer that lost its lease (or a canceled job) changes nothing."""
    return and_(Job.id == job_id, Job.lease_owner == owner, Job.status == "running")


def _update_held(session: Session, job_id: int, owner: str, values: dict[str, Any]) -> bool:
    """Update the job while `owner` holds it; whether it did."""
    result = session.execute(
        across_accounts(
            update(Job)
            .where(_held(job_id, owner))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    )
    return bool(_rowcount(result))


def heartbeat(
    session: Session,
    job_id: int,
    owner: str,
    now: dt.datetime,
    *,
    lease_seconds: int,
    rows_done: int,
    rows_total: int | None,
) -> bool:
    """Write progress and extend the lease; False when the job is no longer ours (canceled,
    or the lease ran out and another worker took it)."""
    values: dict[str, Any] = {
        "rows_done": rows_done,
        "lease_expires_at": now + dt.timedelta(seconds=lease_seconds),
    }
    if rows_total is not None:
        values["rows_total"] = rows_total
    return _update_held(session, job_id, owner, values)


@dataclass(frozen=True)
class ExportResult:
    file_name: str
    storage_key: str
    content_type: str
    size_bytes: int
    row_count: int
    sha256: str
    totals: list[dict[str, Any]] | None = None


def finish_job(
    session: Session,
    job_id: int,
    owner: str,
    now: dt.datetime,
    result: ExportResult,
    *,
    retention_hours: int,
) -> bool:
    """Running (and still ours) → succeeded with its file; False when it is no longer ours."""
    done = _update_held(
        session,
        job_id,
        owner,
        dict(
            status="succeeded",
            finished_at=now,
            expires_at=now + dt.timedelta(hours=retention_hours),
            lease_owner=None,
            lease_expires_at=None,
            rows_done=result.row_count,
            rows_total=result.row_count,
            file_name=result.file_name,
            storage_key=result.storage_key,
            content_type=result.content_type,
            size_bytes=result.size_bytes,
            row_count=result.row_count,
            sha256=result.sha256,
            totals=result.totals,
            error_code=None,
            error_message=None,
        ),
    )
    if done:
        record_job_event(session, job_id, "job.succeeded", now)
    return done


def fail_or_retry(
    session: Session,
    job_id: int,
    owner: str,
    now: dt.datetime,
    *,
    max_attempts: int,
    code: str,
    message: str,
) -> bool:
    """After an error: back to queued while attempts remain (True: enqueue it again), else
    failed with `{code, message}`. Does nothing if the job is no longer ours."""
    job = session.execute(
        across_accounts(select(Job).where(_held(job_id, owner)))
    ).scalar_one_or_none()
    if job is None:
        return False
    retry = job.attempts < max_attempts
    values: dict[str, Any] = {
        "lease_owner": None,
        "lease_expires_at": None,
        "error_code": code,
        "error_message": message,
    }
    if retry:
        values.update(status="queued", rows_done=0)
    else:
        values.update(status="failed", finished_at=now)
    changed = _update_held(session, job_id, owner, values)
    if changed and not retry:
        record_job_event(session, job_id, "job.failed", now)
    return retry and changed


def has_lapsed(session: Session, now: dt.datetime, *, stale_after_seconds: int) -> bool:
    """Whether `requeue_lapsed` has anything to do (a read, so idle sweeps take no lock)."""
    stale_before = now - dt.timedelta(seconds=stale_after_seconds)
    found = session.execute(
        across_accounts(
            select(Job.id)
            .where(
                or_(
                    (Job.status == "running") & (Job.lease_expires_at < now),
                    (Job.status == "queued")
                    & (Job.created_at < stale_before)
                    & or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
                )
            )
            .limit(1)
        )
    ).first()
    return found is not None


def requeue_lapsed(
    session: Session, now: dt.datetime, *, max_attempts: int, stale_after_seconds: int
) -> list[int]:
    """Jobs to hand (back) to the queue: the sweep's one query.

    - running with a lease that ran out (its worker died): back to queued, or failed once
      it has used all its attempts;
    - queued for longer than `stale_after_seconds` without being picked up (the hand-over
      after commit was lost, e.g. the queue was down): queued again, at most once per
      `stale_after_seconds` (the lease column of a queued job holds "not before").
    Each row is changed by a conditional UPDATE, so of several sweeping processes exactly
    one re-queues a given job.
    """
    requeue: list[int] = []
    lapsed = session.execute(
        across_accounts(
            select(Job.id, Job.attempts).where(Job.status == "running", Job.lease_expires_at < now)
        )
    ).all()
    for job_id, attempts in lapsed:
        guard = (Job.id == job_id) & (Job.status == "running") & (Job.lease_expires_at < now)
        if attempts >= max_attempts:
            failed = session.execute(
                across_accounts(
                    update(Job)
                    .where(guard)
                    .values(
                        status="failed",
                        finished_at=now,
                        lease_owner=None,
                        lease_expires_at=None,
                        error_code="worker_lost",
                        error_message=(
                            f"The worker running this export stopped responding {attempts} times."
                        ),
                    )
                    .execution_options(synchronize_session=False)
                )
            )
            if _rowcount(failed):
                record_job_event(session, job_id, "job.failed", now)
            continue
        changed = session.execute(
            across_accounts(
                update(Job)
                .where(guard)
                .values(
                    status="queued",
                    lease_owner=None,
                    lease_expires_at=now + dt.timedelta(seconds=stale_after_seconds),
                    rows_done=0,
                )
                .execution_options(synchronize_session=False)
            )
        )
        if _rowcount(changed):
            requeue.append(job_id)
    stale_before = now - dt.timedelta(seconds=stale_after_seconds)
    stale = (
        session.execute(
            across_accounts(
                select(Job.id).where(
                    Job.status == "queued",
                    Job.created_at < stale_before,
                    or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
                )
            )
        )
        .scalars()
        .all()
    )
    for job_id in stale:
        changed = session.execute(
            across_accounts(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.status == "queued",
                    or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
                )
                .values(lease_expires_at=now + dt.timedelta(seconds=stale_after_seconds))
                .execution_options(synchronize_session=False)
            )
        )
        if _rowcount(changed):
            requeue.append(job_id)
    return requeue
