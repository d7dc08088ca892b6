"""Running one export job: claim the row, write the file inside one snapshot, publish it.

The queue message carries only the job id. A worker that cannot claim the row (already
finished, canceled, or running under someone else's live lease) does nothing, so a message
delivered twice, or re-queued by the sweep, never produces two files.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import BinaryIO, cast

from ledgerline.config import Settings
from ledgerline.db import engine_for, utcnow
from ledgerline.jobs import service

log = logging.getLogger("ledgerline.jobs.tasks")

# Progress and the lease are written at least this often while a job runs.
HEARTBEAT_SECONDS = 0.5


class JobAborted(Exception):
    """The job stopped being ours while it ran (canceled, or its lease was taken over)."""


class HashingWriter(io.RawIOBase):
    """Passes bytes through to the storage writer, counting them and hashing them on the way."""

    def __init__(self, target: BinaryIO) -> None:
        super().__init__()
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = bytes(data)
        self.target.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)
        return len(chunk)

    def close(self) -> None:
        # The storage writer is closed (and published) by its own context manager.
        super().close()


class Heartbeat:
    """A thread that writes progress and renews the lease every second in short transactions.

    It runs beside the export rather than from the per-batch callback, so the lease stays
    alive even while one batch (or the count) takes longer than a second.
    """

    def __init__(self, settings: Settings, job_id: int, owner: str) -> None:
        self.settings = settings
        self.job_id = job_id
        self.owner = owner
        self.rows_done = 0
        self.rows_total: int | None = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"ledgerline-heartbeat-{job_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def beat(self) -> None:
        with service.job_transaction(self.settings.resolved_database_url) as session:
            ours = service.heartbeat(
                session,
                self.job_id,
                self.owner,
                utcnow(),
                lease_seconds=self.settings.job_lease_seconds,
                rows_done=self.rows_done,
                rows_total=self.rows_total,
            )
        if not ours:
            self.lost.set()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self.beat()
            except Exception:
                # A missed beat is not fatal: the lease outlives several of them.
                log.warning("job heartbeat failed", exc_info=True, extra={"job": self.job_id})
            if self.lost.is_set():
                return

    def on_progress(self, rows_done: int) -> None:
        """The writer's per-batch callback: record progress, stop if the job is not ours."""
        self.rows_done = rows_done
        if self.lost.is_set():
            raise JobAborted


def worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def run_export(settings: Settings, job_id: int, requeue: Callable[[int], None]) -> None:
    """The export task: claim, snapshot, count, stream to storage, publish, record.

    `requeue` hands the job to the queue again when a failed attempt may be retried (the
    queue passes its own `enqueue`; the task needs nothing else of it)."""
    from ledgerline.exports.storage import storage_from_settings
    from ledgerline.exports.writers import (
        CONTENT_TYPES,
        FILE_EXTENSIONS,
        open_snapshot,
        write_export,
    )
    from ledgerline.reports.columns import GROUPED
    from ledgerline.reports.query import ReportParams, count_rows

    owner = worker_id()
    with service.job_transaction(settings.resolved_database_url) as session:
        job = service.claim_job(
            session,
            job_id,
            owner,
            utcnow(),
            lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.job_max_attempts,
        )
        if job is None:
            log.info("job not claimable; skipped", extra={"job": job_id})
            return
        account_id, report, export_format = job.account_id, job.report, job.format
        raw_params = dict(job.params)
        attempt = job.attempts
    log.info("job started", extra={"job": job_id, "attempt": attempt, "owner": owner})

    extension = FILE_EXTENSIONS[export_format]
    file_name = f"{report}-{job_id}.{extension}"
    # Each attempt writes its own object: a slow worker that lost its lease can never
    # overwrite or delete the file of the worker that took over.
    storage_key = f"{account_id}/{job_id}/{owner.rsplit(':', 1)[1]}-{file_name}"
    storage = storage_from_settings(settings)
    engine = engine_for(settings.resolved_database_url)
    try:
        params = ReportParams.from_json(raw_params)
        with Heartbeat(settings, job_id, owner) as heartbeat, open_snapshot(engine) as conn:
            if params.report != GROUPED:
                # Progress needs a total up front. A grouped report's count would run its whole
                # GROUP BY a second time (doubling the job), and it has a handful of rows that
                # are written at once, so its total is recorded when the job finishes.
                heartbeat.rows_total = count_rows(conn, account_id, params)
                heartbeat.beat()
                if heartbeat.lost.is_set():
                    raise JobAborted
            with storage.writer(storage_key) as out:
                hashing = HashingWriter(out)
                row_count = write_export(
                    conn, account_id, params, cast(BinaryIO, hashing), heartbeat.on_progress
                )
                if heartbeat.lost.is_set():
                    raise JobAborted
        result = service.ExportResult(
            file_name=file_name,
            storage_key=storage_key,
            content_type=CONTENT_TYPES[export_format],
            size_bytes=hashing.size,
            row_count=row_count,
            sha256=hashing.digest.hexdigest(),
        )
        with service.job_transaction(settings.resolved_database_url) as session:
            finished = service.finish_job(
                session,
                job_id,
                owner,
                utcnow(),
                result,
                retention_hours=settings.export_retention_hours,
            )
        if not finished:
            # Canceled (or taken over) between the last heartbeat and now: not our file.
            storage.delete(storage_key)
            log.info("job no longer ours at the end; file discarded", extra={"job": job_id})
            return
        log.info(
            "job succeeded",
            extra={"job": job_id, "rows": row_count, "bytes": result.size_bytes},
        )
    except JobAborted:
        log.info(
            "job canceled or taken over while running; nothing published", extra={"job": job_id}
        )
    except Exception as exc:
        log.exception("job attempt failed", extra={"job": job_id, "attempt": attempt})
        with service.job_transaction(settings.resolved_database_url) as session:
            retry = service.fail_or_retry(
                session,
                job_id,
                owner,
                utcnow(),
                max_attempts=settings.job_max_attempts,
                code="export_failed",
                message=(
                    f"The export could not be written ({type(exc).__name__}) after "
                    f"{attempt} attempt{'s' if attempt != 1 else ''}."
                ),
            )
        if retry:
            requeue(job_id)
