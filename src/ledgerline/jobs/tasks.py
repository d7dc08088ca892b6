"""Running one export job: claim the row, write the file inside one snapshot, publish it.

The queue message carries only the job id. A worker that cannot claim the row (already
finished, canceled, or running under someone else's live lease) does nothing, so a message
delivered twice, or re-queued by the sweep, never produces two files.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from ledgerline.config import Settings
from ledgerline.db import engine_for
from ledgerline.jobs.lease import ClaimedJob, JobLease
from ledgerline.jobs.service import ExportResult

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ledgerline.exports.storage import Storage
    from ledgerline.reports.query import ReportParams

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
    """A thread that writes progress and renews the lease every HEARTBEAT_SECONDS.

    It runs beside the export rather than from the per-batch callback, so the lease stays
    alive even while one batch (or the count) takes longer than a second.
    """

    def __init__(self, lease: JobLease) -> None:
        self.lease = lease
        self.rows_done = 0
        self.rows_total: int | None = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"ledgerline-heartbeat-{lease.job_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def beat(self) -> None:
        if not self.lease.beat(self.rows_done, self.rows_total):
            self.lost.set()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self.beat()
            except Exception:
                # A missed beat is not fatal: the lease outlives several of them.
                log.warning("job heartbeat failed", exc_info=True, extra={"job": self.lease.job_id})
            if self.lost.is_set():
                return

    def on_progress(self, rows_done: int) -> None:
        """The writer's per-batch callback: record progress, stop if the job is not ours."""
        self.rows_done = rows_done
        self.raise_if_lost()

    def raise_if_lost(self) -> None:
        if self.lost.is_set():
            raise JobAborted


def run_export(settings: Settings, job_id: int, requeue: Callable[[int], None]) -> None:
    """The export task: claim, snapshot, count, stream to storage, publish, record.

    `requeue` hands the job to the queue again when a failed attempt may be retried (the
    queue passes its own `enqueue`; the task needs nothing else of it)."""
    from ledgerline.exports.refusals import ExportRefused
    from ledgerline.exports.storage import storage_from_settings
    from ledgerline.exports.writers import file_type
    from ledgerline.reports.query import ReportParams

    lease = JobLease(settings, job_id)
    job = lease.claim()
    if job is None:
        log.info("job not claimable; skipped", extra={"job": job_id})
        return
    log.info("job started", extra={"job": job_id, "attempt": job.attempt, "owner": lease.owner})

    params = ReportParams.from_json(job.params)
    extension, content_type = file_type(params)
    # The name users see carries the job id they know (its public id); the storage key
    # keeps the internal id, which the sweeps map back to the row (`job_of_key`).
    file_name = f"{job.report}-{job.public_id}.{extension}"
    storage_key = export_key(job.account_id, job_id, lease.attempt_key, file_name)
    storage = storage_from_settings(settings)
    engine = engine_for(settings.resolved_database_url)
    try:
        written = _write_file(engine, lease, job, params, storage, storage_key)
        result = ExportResult(
            file_name=file_name,
            storage_key=storage_key,
            content_type=content_type,
            size_bytes=written.hashing.size,
            row_count=written.row_count,
            sha256=written.hashing.digest.hexdigest(),
            totals=written.totals,
        )
        if not lease.finish(result):
            # Canceled (or taken over) between the last heartbeat and now: not our file.
            storage.delete(storage_key)
            log.info("job no longer ours at the end; file discarded", extra={"job": job_id})
            return
        log.info(
            "job succeeded",
            extra={"job": job_id, "rows": result.row_count, "bytes": result.size_bytes},
        )
    except ExportRefused as refused:
        # Nothing another attempt could change: the job fails now, saying what to do.
        log.info("export refused", extra={"job": job_id, "code": refused.code})
        storage.delete(storage_key)
        lease.fail(refused.code, refused.message, permanent=True)
    except JobAborted:
        log.info(
            "job canceled or taken over while running; nothing published", extra={"job": job_id}
        )
    except Exception as exc:
        log.exception("job attempt failed", extra={"job": job_id, "attempt": job.attempt})
        if lease.fail("export_failed", _failure_message(exc, job.attempt)):
            requeue(job_id)


def export_key(account_id: int, job_id: int, attempt: str, file_name: str) -> str:
    """Where an attempt writes: each attempt its own object, so a slow worker that lost its
    lease can never overwrite or delete the file of the worker that took over, and the
    sweep can tell a dead attempt's partial file from a live one's (`job_of_key`)."""
    return f"{account_id}/{job_id}/{attempt}-{file_name}"


def job_of_key(key: str) -> tuple[int, str] | None:
    """(job id, attempt) of a key made by `export_key`; None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    attempt, dash, _file_name = parts[2].partition("-")
    if not dash or not attempt:
        return None
    return int(parts[1]), attempt


@dataclass(frozen=True)
class WrittenFile:
    row_count: int
    hashing: HashingWriter
    totals: list[dict[str, Any]]


def _write_file(
    engine: Engine,
    lease: JobLease,
    job: ClaimedJob,
    params: ReportParams,
    storage: Storage,
    storage_key: str,
) -> WrittenFile:
    """Stream the report from one snapshot to storage under a live lease, then take its
    control totals in the same snapshot. Raises JobAborted as soon as the job stops being
    ours, ExportRefused when the format cannot hold the report."""
    from ledgerline.exports.refusals import XLSX_MAX_ROWS, too_many_rows
    from ledgerline.exports.totals import control_totals
    from ledgerline.exports.writers import open_snapshot, write_export
    from ledgerline.reports.query import count_rows

    with Heartbeat(lease) as heartbeat, open_snapshot(engine) as conn:
        if not params.catalog.grouped:
            # Progress needs a total up front. A grouped report's count would run its whole
            # GROUP BY a second time (doubling the job), and it has a handful of rows that
            # are written at once, so its total is recorded when the job finishes.
            heartbeat.rows_total = count_rows(conn, job.account_id, params)
            heartbeat.beat()
            heartbeat.raise_if_lost()
            if params.format == "xlsx" and heartbeat.rows_total > XLSX_MAX_ROWS:
                raise too_many_rows(heartbeat.rows_total)
        with storage.writer(storage_key) as out:
            hashing = HashingWriter(out)
            row_count = write_export(
                conn, job.account_id, params, cast(BinaryIO, hashing), heartbeat.on_progress
            )
            heartbeat.raise_if_lost()
        totals = control_totals(conn, job.account_id, params, row_count)
    return WrittenFile(row_count, hashing, totals)


def _failure_message(exc: Exception, attempt: int) -> str:
    return (
        f"The export could not be written ({type(exc).__name__}) after "
        f"{attempt} attempt{'s' if attempt != 1 else ''}."
    )
