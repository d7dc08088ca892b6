"""The huey queue behind export jobs, its consumers, and the sweep every consumer runs.

The queue only carries job ids; the `jobs` row is the truth (see `jobs/tasks.py`). The queue
URL picks the storage: `sqlite:///…` (embedded; its own file), `redis://…` (blocking pops, so
an idle worker picks a job up the moment it is queued) or `postgresql://…` (huey's own
PostgreSQL storage over psycopg 3, woken by LISTEN/NOTIFY).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import PostgresHuey, RedisHuey, SqliteHuey
from huey.api import Huey
from huey.consumer import Consumer

from ledgerline.config import Settings, touch_private

log = logging.getLogger("ledgerline.jobs.queue")

# A polling (SQLite) worker sleeps between empty reads from POLL_INITIAL_DELAY, growing by
# POLL_BACKOFF up to POLL_MAX_DELAY: a job queued to an idle worker starts within ~25 ms.
# huey's defaults (0.1 s growing to 10 s) would let an idle worker wait up to 10 s. An empty
# read is one indexed SELECT on the queue's own small file (tens of microseconds), so 40 of
# them a second cost an idle worker well under 1% of a core (docs/performance.md).
POLL_INITIAL_DELAY = 0.01
POLL_BACKOFF = 1.15
POLL_MAX_DELAY = 0.025
# A blocking pop (Redis, PostgreSQL) returns as soon as a job arrives; the timeout only bounds
# how long a stopping worker takes to notice.
BLOCKING_READ_TIMEOUT = 1
SWEEP_INTERVAL_SECONDS = 1.0
RETENTION_INTERVAL_SECONDS = 60.0
# The lease-aware pass over partial writes also runs right after any lease lapses.
PARTIALS_INTERVAL_SECONDS = 60.0
ABANDONED_INTERVAL_SECONDS = 3600.0


class QueueConfigError(ValueError):
    """LEDGERLINE_QUEUE_URL names no queue we can run."""


def build_huey(url: str, name: str) -> Huey:
    """The huey instance for a queue URL (results off: the jobs table keeps the outcome)."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        # Job ids only, but in the data dir beside the database: private like it (0600).
        touch_private(path)
        return SqliteHuey(name, filename=str(path), results=False, utc=True)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(
            name, url=url, blocking=True, read_timeout=BLOCKING_READ_TIMEOUT, results=False
        )
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            dsn = "postgresql://" + url[len(prefix) :]
            return PostgresHuey(
                name,
                dsn=dsn,
                blocking=True,
                read_timeout=BLOCKING_READ_TIMEOUT,
                table_prefix="huey",
                results=False,
            )
    raise QueueConfigError(
        f"LEDGERLINE_QUEUE_URL {url.split('://', 1)[0]}://… is not supported; "
        "use sqlite:///path, redis://host:port/db or postgresql://…"
    )


class _QuietConsumer(Consumer):  # type: ignore[misc]
    """A consumer that leaves the process's signal handlers alone (uvicorn owns them)."""

    def _set_signal_handlers(self) -> None:
        pass


class JobQueue:
    """One huey queue with the export task registered on it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.resolved_queue_url
        self.huey = build_huey(self.url, settings.queue_name)
        self._export_task = self.huey.task(name="ledgerline.run_export")(self._run_export)

    def _run_export(self, job_id: int) -> None:
        from ledgerline.jobs.tasks import run_export

        run_export(self.settings, job_id, requeue=self.enqueue)

    def enqueue(self, job_id: int) -> None:
        self._export_task(job_id)

    def check(self) -> None:
        """Raise when the queue's storage is unreachable (for /readyz)."""
        self.huey.pending_count()

    def pending(self) -> int:
        return int(self.huey.pending_count())

    def consumer(self, workers: int, *, own_signals: bool) -> Consumer:
        blocking = bool(self.huey.storage.blocking)
        options: dict[str, Any] = {
            "workers": workers,
            "worker_type": "thread",
            "periodic": False,
            "initial_delay": POLL_INITIAL_DELAY,
            "backoff": POLL_BACKOFF,
            "max_delay": POLL_MAX_DELAY if not blocking else 1.0,
            "check_worker_health": True,
            "health_check_interval": 5,
            "shutdown_timeout": 10,
        }
        consumer_class = Consumer if own_signals else _QuietConsumer
        return consumer_class(self.huey, **options)


_queues: dict[tuple[str, str, str], JobQueue] = {}
_queues_lock = threading.Lock()


def queue_for(settings: Settings) -> JobQueue:
    """The process's one `JobQueue` for these settings (tasks are registered once)."""
    key = (settings.resolved_queue_url, settings.queue_name, settings.resolved_database_url)
    with _queues_lock:
        queue = _queues.get(key)
        if queue is None:
            queue = _queues[key] = JobQueue(settings)
        return queue


class Sweeper:
    """The thread every consumer process runs beside its workers.

    Every second it hands jobs whose lease ran out (their worker died) back to the queue,
    first removing the partial file the dead attempt left (so a job is re-run only once
    that is gone); every minute it removes the files of jobs past their retention.
    """

    def __init__(self, queue: JobQueue, stop: threading.Event | None = None) -> None:
        self.queue = queue
        self.stop_event = stop or threading.Event()
        self.thread = threading.Thread(target=self._run, name="ledgerline-sweep", daemon=True)
        self._next_retention = 0.0
        self._next_abandoned = 0.0
        self._next_partials = 0.0
        self.parent_pid: int | None = None
        self.on_orphaned: Callable[[], None] | None = None

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=5)

    def sweep_once(self) -> list[int]:
        from ledgerline.db import transaction, utcnow
        from ledgerline.jobs import service

        settings = self.queue.settings
        url = settings.resolved_database_url
        stale_after = max(settings.job_lease_seconds, 30)
        ids: list[int] = []
        with transaction(url, writes=False) as session:
            due = service.has_lapsed(session, utcnow(), stale_after_seconds=stale_after)
        if due:
            with transaction(url, writes=True) as session:
                ids = service.requeue_lapsed(
                    session,
                    utcnow(),
                    max_attempts=settings.job_max_attempts,
                    stale_after_seconds=stale_after,
                )
        if due or time.monotonic() >= self._next_partials:
            self._next_partials = time.monotonic() + PARTIALS_INTERVAL_SECONDS
            self._sweep_partials()
        for job_id in ids:
            self.queue.enqueue(job_id)
        from ledgerline.schedules.runner import run_due_schedules  # due export schedules' jobs

        run_due_schedules(url, utcnow(), self.queue.enqueue)
        if time.monotonic() >= self._next_retention:
            self._next_retention = time.monotonic() + RETENTION_INTERVAL_SECONDS
            from ledgerline.exports.storage import storage_from_settings
            from ledgerline.jobs.retention import sweep_expired

            storage = storage_from_settings(settings)
            with transaction(url, writes=True) as session:
                removed = sweep_expired(session, storage, utcnow())
            if removed:
                log.info("expired export files removed", extra={"jobs": removed})
        from ledgerline.webhooks.delivery import deliver_in_background

        deliver_in_background(settings)  # due webhooks, on a thread of their own
        if time.monotonic() >= self._next_abandoned:
            # Partial writes under keys that name no export attempt, by age (a backstop:
            # `_sweep_partials` handles every export's).
            self._next_abandoned = time.monotonic() + ABANDONED_INTERVAL_SECONDS
            from ledgerline.exports.storage import storage_from_settings
            from ledgerline.jobs.retention import sweep_abandoned

            abandoned = sweep_abandoned(storage_from_settings(settings), utcnow())
            if abandoned:
                log.info("abandoned partial uploads removed", extra={"count": abandoned})
        return ids

    def _sweep_partials(self) -> None:
        """Remove dead attempts' partial files; a failure (storage unreachable) is logged and
        must not keep the lapsed jobs from being handed on."""
        from ledgerline.db import transaction
        from ledgerline.exports.storage import storage_from_settings
        from ledgerline.jobs.retention import sweep_partials

        settings = self.queue.settings
        try:
            with transaction(settings.resolved_database_url, writes=False) as session:
                removed = sweep_partials(session, storage_from_settings(settings))
        except Exception:
            log.exception("removing dead attempts' partial files failed; will retry")
            return
        if removed:
            log.info("dead attempts' partial files removed", extra={"count": removed})

    def _run(self) -> None:
        while not self.stop_event.is_set():
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                log.warning("parent process gone; worker stopping")
                if self.on_orphaned is not None:
                    self.on_orphaned()
                return
            try:
                requeued = self.sweep_once()
                if requeued:
                    log.info("jobs with a lapsed lease re-queued", extra={"jobs": requeued})
            except Exception:
                log.exception("job sweep failed; will retry")
            self.stop_event.wait(SWEEP_INTERVAL_SECONDS)


class EmbeddedWorkers:
    """A consumer and its sweep as threads of the calling process, started and stopped by it."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.queue = queue_for(settings)
        self.consumer = self.queue.consumer(workers, own_signals=False)
        self.sweeper = Sweeper(self.queue)

    def start(self) -> None:
        self.consumer.start()
        self.sweeper.start()

    def stop(self) -> None:
        self.sweeper.stop()
        self.consumer.stop(graceful=True)


def run_worker(settings: Settings, concurrency: int) -> None:
    """`ledgerline worker`: a consumer with `concurrency` worker threads and the sweep, until
    SIGINT (finish running jobs, up to 10 s) or SIGTERM (stop now; leases hand them on)."""
    from ledgerline import db

    # Exports stream: a small SQLite page cache and file-backed sort space keep the worker's
    # resident set flat whatever the export's size (docs/performance.md).
    db.configure_engines(settings, sqlite_cache_kib=WORKER_SQLITE_CACHE_KIB)
    queue = queue_for(settings)
    try:
        queue.check()
    except Exception as exc:
        raise QueueConfigError(
            f"the queue at {settings.resolved_queue_url.split('://', 1)[0]}://… is unreachable: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    consumer = queue.consumer(concurrency, own_signals=True)
    sweeper = Sweeper(queue)
    parent = os.environ.get(PARENT_PID_ENV)
    if parent and parent.isdigit():
        # Started by `serve`: stop if it dies without stopping us (e.g. SIGKILL).
        sweeper.parent_pid = int(parent)
        sweeper.on_orphaned = lambda: os.kill(os.getpid(), signal.SIGTERM)
    sweeper.start()
    try:
        consumer.run()
    finally:
        sweeper.stop()


PARENT_PID_ENV = "LEDGERLINE_WORKER_PARENT_PID"
# A worker's SQLite page cache per connection, whatever LEDGERLINE_SQLITE_CACHE_KIB says for
# the API: an export's scan was measured with it (docs/performance.md, export worker memory).
WORKER_SQLITE_CACHE_KIB = 8192
# How long a stopping `serve` waits for its child worker after SIGTERM before SIGKILL.
CHILD_STOP_SECONDS = 3.0


class ChildWorker:
    """The embedded consumer as a child process (`ledgerline worker`) of `serve`."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watch = threading.Thread(target=self._watchdog, name="ledgerline-worker-watch")
        self._watch.daemon = True

    def start(self) -> None:
        self._spawn()
        self._watch.start()

    def _watchdog(self) -> None:
        # A worker that died (killed, out of memory) is started again; its jobs' leases
        # run out and the new one's sweep re-queues them.
        while not self._stopping.wait(2):
            process = self.process
            if process is not None and process.poll() is not None and not self._stopping.is_set():
                log.warning("embedded worker exited (%s); restarting", process.returncode)
                self._spawn()

    def _spawn(self) -> None:
        env = {**os.environ, PARENT_PID_ENV: str(os.getpid())}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from ledgerline.cli import main; main()",
                "worker",
                "--concurrency",
                str(self.workers),
            ],
            env=env,
        )

    def stop(self, timeout: float = CHILD_STOP_SECONDS) -> None:
        """Stop the child now: SIGTERM (huey stops at once; a job it was running keeps its
        lease, which lapses and hands it to the next worker), SIGKILL after `timeout`."""
        self._stopping.set()
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("embedded worker did not stop in %ss; killing it", timeout)
            process.kill()
            process.wait(timeout=5)


class NoWorkers:
    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def embedded_workers(settings: Settings) -> EmbeddedWorkers | ChildWorker | NoWorkers:
    """What `serve` runs beside the API: nothing (scaled), a child process, or threads.

    Raises `QueueConfigError` for a queue URL no process could use, so `serve` stops at once.
    """
    queue_for(settings)
    if settings.embedded_workers == 0:
        return NoWorkers()
    if settings.embedded_worker_mode == "thread":
        return EmbeddedWorkers(settings, settings.embedded_workers)
    return ChildWorker(settings, settings.embedded_workers)
