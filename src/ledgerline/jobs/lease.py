"""A worker's lease on one export job: claim it, keep it alive, and end it once.

The lease is the pair (job_id, owner) on the `jobs` row (see `jobs/service.py`). Each call is
one short IMMEDIATE write transaction of its own, so the worker holds no write lock between
calls; the export itself reads through a separate snapshot connection.
"""

from __future__ import annotations

import os
import socket
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from ledgerline.config import Settings
from ledgerline.db import transaction, utcnow
from ledgerline.jobs import service


def worker_id() -> str:
    """host:pid:random, unique per attempt (the random part names the attempt's file)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def attempt_of(owner: str) -> str:
    """The random part of a lease owner: the attempt, as named in its file's storage key."""
    return owner.rsplit(":", 1)[1]


@dataclass(frozen=True)
class ClaimedJob:
    """What an attempt needs of the row it claimed, read inside the claim's transaction."""

    account_id: int
    public_id: int  # the id the account sees (in the file's name); the lease holds `id`
    report: str
    format: str
    params: dict[str, Any]
    attempt: int


@dataclass(frozen=True)
class JobLease:
    """One attempt's hold on one job. Every method after `claim` is a no-op on the row (and
    says so by returning False) once the job is no longer ours: canceled, or its lease ran
    out and another worker took it over."""

    settings: Settings
    job_id: int
    owner: str = field(default_factory=worker_id)

    @property
    def lease_seconds(self) -> int:
        return self.settings.job_lease_seconds

    @property
    def attempt_key(self) -> str:
        """The owner's random part: unique to this attempt, so it can name the attempt's file."""
        return attempt_of(self.owner)

    def _write(self) -> AbstractContextManager[Session]:
        # Each call reads the row, then writes it: IMMEDIATE on SQLite (see db._sqlite_begin).
        return transaction(self.settings.resolved_database_url, writes=True)

    def claim(self) -> ClaimedJob | None:
        """Take the job (queued, or running under a lapsed lease); None when it is not ours
        to take: finished, canceled, out of attempts, or under someone else's live lease."""
        with self._write() as session:
            job = service.claim_job(
                session,
                self.job_id,
                self.owner,
                utcnow(),
                lease_seconds=self.lease_seconds,
                max_attempts=self.settings.job_max_attempts,
            )
            if job is None:
                return None
            return ClaimedJob(
                job.account_id,
                job.public_id,
                job.report,
                job.format,
                dict(job.params),
                job.attempts,
            )

    def beat(self, rows_done: int, rows_total: int | None) -> bool:
        """Record progress and renew the lease; whether the job is still ours."""
        with self._write() as session:
            return service.heartbeat(
                session,
                self.job_id,
                self.owner,
                utcnow(),
                lease_seconds=self.lease_seconds,
                rows_done=rows_done,
                rows_total=rows_total,
            )

    def finish(self, result: service.ExportResult) -> bool:
        """Mark the job succeeded with its file; False when it is no longer ours (the caller
        then discards the file)."""
        with self._write() as session:
            return service.finish_job(
                session,
                self.job_id,
                self.owner,
                utcnow(),
                result,
                retention_hours=self.settings.export_retention_hours,
            )

    def fail(self, code: str, message: str, *, permanent: bool = False) -> bool:
        """Give the attempt up after an error: True when attempts remain and the job is
        queued again (the caller enqueues it), False when it failed for good or is no
        longer ours. `permanent`: no other attempt could succeed; fail the job now."""
        with self._write() as session:
            return service.fail_or_retry(
                session,
                self.job_id,
                self.owner,
                utcnow(),
                max_attempts=0 if permanent else self.settings.job_max_attempts,
                code=code,
                message=message,
            )
