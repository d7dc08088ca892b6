"""Export retention: expired export files are deleted and their jobs marked `expired`."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ledgerline.auth import across_accounts
from ledgerline.exports.storage import Storage
from ledgerline.jobs.lease import attempt_of
from ledgerline.jobs.tasks import job_of_key
from ledgerline.models import Job
from ledgerline.webhooks.events import record_job_event

SWEEP_BATCH = 500
# For partial writes under keys that name no export attempt (`sweep_partials` handles those
# that do). Longer than any export takes: an S3 upload's age counts from its start.
ABANDONED_AFTER = timedelta(hours=24)


def sweep_expired(
    session: Session, storage: Storage, now: datetime, *, limit: int = SWEEP_BATCH
) -> int:
    """Expire up to `limit` jobs whose files have outlived `expires_at`; return how many.

    One conditional `UPDATE ... WHERE status = 'succeeded' RETURNING` claims the jobs, so
    sweeps running at once in several workers never claim the same job twice. On
    PostgreSQL the batch is chosen with `FOR UPDATE SKIP LOCKED`, so concurrent sweeps take
    different batches instead of queueing on the same rows; on SQLite writers are serialised.

    Files are deleted before the caller commits: if the commit fails, the jobs stay
    `succeeded` and the next sweep deletes again (deleting is idempotent), so a job is never
    marked expired while its file remains. Call it in a transaction of its own (its first
    statement is the write); the caller commits.
    """
    # Expiry is a clock, not a principal: the sweep acts for every account at once.
    due = across_accounts(
        select(Job.id)
        .where(Job.status == "succeeded", Job.expires_at <= now)
        .order_by(Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).scalar_subquery()
    claimed = session.execute(
        across_accounts(
            update(Job)
            .where(Job.id.in_(due), Job.status == "succeeded")
            .values(status="expired")
            .returning(Job.id, Job.storage_key)
            .execution_options(synchronize_session=False)
        )
    ).all()
    for job_id, storage_key in claimed:
        record_job_event(session, job_id, "job.expired", now)
        if storage_key:
            storage.delete(storage_key)
    return len(claimed)


def sweep_abandoned(
    storage: Storage, now: datetime, *, older_than: timedelta = ABANDONED_AFTER
) -> int:
    """Discard what crashed writers left behind (never-published `.part` files, incomplete
    multipart uploads) older than `older_than`; return how many. Safe to run anywhere, any
    time: nothing published is touched. The backstop for partial writes whose key names no
    export attempt; `sweep_partials` removes an export's within seconds of its worker's death.
    """
    return storage.remove_abandoned(now - older_than)


def sweep_partials(session: Session, storage: Storage) -> int:
    """Discard every export attempt's partial write whose attempt does not hold its job's
    lease (the job is queued again, finished, failed or canceled, or another attempt runs
    it); return how many. Age plays no part, so a live attempt is kept however long it has
    not written (a long query before the first row), and a dead one goes at once.

    The partial writes are listed before the jobs are read, which makes it safe against a
    claim made meanwhile: an attempt creates its file only after its claim has committed, so
    a file listed first belongs to an attempt that had claimed before the read, and an
    attempt that is not the holder at the read never holds the job again (a lost lease is
    never regained; a retry is a new attempt with a new name).
    """
    partials = [(p, job_of_key(p.key)) for p in storage.partial_writes()]
    job_ids = {named[0] for _p, named in partials if named is not None}
    if not job_ids:
        return 0
    # The lease is the job's, whichever account owns it: the sweep acts for every account.
    holders: dict[int, str | None] = {
        job_id: owner
        for job_id, owner in session.execute(
            across_accounts(
                select(Job.id, Job.lease_owner).where(
                    Job.id.in_(sorted(job_ids)), Job.status == "running"
                )
            )
        )
    }
    removed = 0
    for partial, named in partials:
        if named is None:
            continue  # not an export attempt's: left to `sweep_abandoned`'s age rule
        job_id, attempt = named
        owner = holders.get(job_id)
        if owner is not None and attempt_of(owner) == attempt:
            continue  # the live attempt's own file
        storage.discard(partial)
        removed += 1
    return removed
