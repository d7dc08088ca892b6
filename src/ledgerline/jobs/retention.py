"""Export retention: expired export files are deleted and their jobs marked `expired`."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ledgerline.auth import across_accounts
from ledgerline.exports.storage import Storage
from ledgerline.models import Job

SWEEP_BATCH = 500
# Longer than any export takes: an S3 upload's age counts from its start, not its last part.
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
    for _job_id, storage_key in claimed:
        if storage_key:
            storage.delete(storage_key)
    return len(claimed)


def sweep_abandoned(
    storage: Storage, now: datetime, *, older_than: timedelta = ABANDONED_AFTER
) -> int:
    """Discard what crashed writers left behind (never-published `.part` files, incomplete
    multipart uploads) older than `older_than`; return how many. Safe to run anywhere, any
    time: nothing published is touched. Walks the whole storage, so run it rarely (hourly).
    """
    return storage.remove_abandoned(now - older_than)
