"""`ledgerline serve --workers N`: N API processes answering on one listening socket.

`serve` (the supervisor) binds the socket, starts the embedded job consumer once, and runs N
children (`ledgerline api-process`), each a whole hypercorn server on an inherited copy of
the socket: the kernel hands each new connection to whichever child accepts first, and the
socket stays open in the supervisor whatever happens to a child, so no connection is ever
refused for want of a listener.

- SIGTERM / SIGINT: every child stops gracefully, then the job consumer; `serve` exits 0.
  A child told to stop stops accepting first, answers the first request of every connection
  it had accepted and finishes those in flight, up to `LEDGERLINE_HTTP_SHUTDOWN_GRACE_SECONDS`
  (`ledgerline.server.Draining`). The supervisor closes its copy of the socket as soon as
  it has told them, so once the last child stops accepting new connections are refused at
  once rather than queued for no one and reset when it exits.
- SIGHUP: a graceful restart, one child at a time: a new child starts, completes its startup
  and is accepting, then the old one is told to stop (as above: it answers every connection
  it accepted; new connections go to the others). New code and `.env` settings are read by
  the new children; the socket is never closed.
- A child that exits is started again; a child whose supervisor is gone stops by itself.

Why one shared socket and not SO_REUSEPORT: with SO_REUSEPORT each process has its own
accept queue, and connections queued to a process that is stopping are reset.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledgerline.config import Settings

log = logging.getLogger("ledgerline.api_processes")

# Set in each child's environment: the supervisor's pid, which the child watches.
PARENT_PID_ENV = "LEDGERLINE_API_PARENT_PID"
# Set in each child's environment: where prometheus_client keeps the counts of every child
# (its multiprocess mode; read when the child first imports it).
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# How long a new child may take to import the app and complete its startup.
READY_TIMEOUT_SECONDS = 120.0
# Beyond the HTTP shutdown grace, how long a stopping child may take to exit before SIGKILL.
EXIT_MARGIN_SECONDS = 5.0
# Between restarts of a child that keeps exiting.
RESPAWN_DELAY_SECONDS = 1.0
TICK_SECONDS = 0.2


class ApiProcessesError(ValueError):
    """The API processes cannot run as asked (said at start, without a traceback)."""


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def api_process_count(settings: Settings, requested: int | None) -> int:
    """How many API processes `serve` runs: `--workers`, else `LEDGERLINE_API_WORKERS`, else
    one per core in scaled mode (a PostgreSQL database) and one embedded (SQLite).

    More than one needs every process to count the same rate limits: with counters in this
    process's memory, N processes would let N times each limit through (and N times the
    failed sign-ins a guesser may try), so that is refused when asked for and not chosen by
    default (docs/decisions.md, "Issue 11: many API processes")."""
    count = requested or settings.api_workers
    shared = settings.rate_limits_shared_or_off
    if count is None:
        if not settings.resolved_database_url.startswith("postgres"):
            return 1
        if not shared:
            log.warning(
                "one API process: the rate limits are counted in this process's memory; set "
                "LEDGERLINE_RATE_LIMIT_STORAGE_URL to a redis:// URL to run one per core"
            )
            return 1
        return cpu_count()
    if count > 1 and not shared:
        raise ApiProcessesError(
            f"{count} API processes need shared rate limit counters, but they are kept in "
            "each process's memory (memory://), which would let each limit through "
            f"{count} times: set LEDGERLINE_RATE_LIMIT_STORAGE_URL to a redis:// URL (or "
            "switch the limits off), or run one API process (--workers 1)"
        )
    return count


def listening_socket(settings: Settings, host: str, port: int) -> socket.socket:
    """The socket every child accepts on: bound and listening here, inherited by each."""
    from ledgerline.server import server_config

    config = server_config(settings, host, port)
    try:
        (sock,) = config.create_sockets().insecure_sockets
    except OSError as exc:
        raise ApiProcessesError(f"cannot listen on {host}:{port}: {exc}") from exc
    sock.listen(config.backlog)
    sock.set_inheritable(True)
    return sock


class ApiProcesses:
    """The supervisor: starts `count` children, replaces any that exit, restarts them one at
    a time on SIGHUP and stops them all on SIGTERM or SIGINT."""

    def __init__(self, settings: Settings, host: str, port: int, count: int) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.count = count
        self.processes: list[subprocess.Popen[bytes]] = []
        # Told to stop (SIGTERM sent) and not yet exited: pid -> deadline for SIGKILL.
        self.retiring: dict[subprocess.Popen[bytes], float] = {}
        self._stop = False
        self._restart = False
        self._sock: socket.socket | None = None
        # prometheus_client's multiprocess mode: each child writes its counts to files here
        # and /metrics, in whichever child answers, sums every child's (those of children
        # since replaced included, so the counters never go back).
        self._metrics_dir = tempfile.mkdtemp(prefix="ledgerline-metrics-")

    # Signal handlers only set flags: the loop below acts on them (a handler that took a
    # lock could deadlock against the code it interrupted).
    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stop = True

    def _on_restart(self, signum: int, frame: FrameType | None) -> None:
        self._restart = True

    def run(self) -> None:
        """Until SIGTERM or SIGINT; raises `ApiProcessesError` if the first children do not
        start (the socket cannot be bound, the app cannot be imported)."""
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        previous = {signum: signal.getsignal(signum) for signum in handled}
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_restart)
        self._sock = listening_socket(self.settings, self.host, self.port)
        try:
            try:
                self.processes = self._start(self.count)
            except ApiProcessesError:
                if self._stop:  # told to stop while starting: not a failure
                    return
                raise
            log.info(
                "API processes ready",
                extra={"pids": [p.pid for p in self.processes], "port": self.port},
            )
            while not self._stop:
                time.sleep(TICK_SECONDS)
                if self._restart:
                    self._restart = False
                    self._rolling_restart()
                self._replace_exited()
                self._reap_retiring()
        finally:
            self._stop_all()
            self._sock.close()
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _start_one(self) -> subprocess.Popen[bytes]:
        """A new child, returned once its app has started and it is accepting connections;
        ApiProcessesError if it exits or takes longer than READY_TIMEOUT_SECONDS (it is
        killed then)."""
        return self._wait_ready(*self._spawn())

    def _start(self, count: int) -> list[subprocess.Popen[bytes]]:
        """`count` new children started at once (their imports overlap), each ready."""
        spawned = [self._spawn() for _ in range(count)]
        ready: list[subprocess.Popen[bytes]] = []
        try:
            for process, ready_read in spawned:
                ready.append(self._wait_ready(process, ready_read))
        except ApiProcessesError:
            for process, ready_read in spawned[len(ready) + 1 :]:
                os.close(ready_read)
                process.kill()
                process.wait(timeout=10)
            for process in ready:
                self._retire(process)
            raise
        return ready

    def _spawn(self) -> tuple[subprocess.Popen[bytes], int]:
        assert self._sock is not None
        fd = self._sock.fileno()
        ready_read, ready_write = os.pipe()
        env = {
            **os.environ,
            PARENT_PID_ENV: str(os.getpid()),
            METRICS_DIR_ENV: self._metrics_dir,
        }
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from ledgerline.cli import main; main()",
                    "api-process",
                    "--fd",
                    str(fd),
                    "--ready-fd",
                    str(ready_write),
                ],
                env=env,
                pass_fds=(fd, ready_write),
                # Its own process group: a ^C at the terminal reaches the supervisor only,
                # which stops the children in order (and a SIGHUP restarts them).
                process_group=0,
            )
        except BaseException:
            os.close(ready_read)
            raise
        finally:
            os.close(ready_write)
        return process, ready_read

    def _wait_ready(
        self, process: subprocess.Popen[bytes], ready_read: int
    ) -> subprocess.Popen[bytes]:
        try:
            deadline = time.monotonic() + READY_TIMEOUT_SECONDS
            while True:
                readable, _, _ = select.select([ready_read], [], [], TICK_SECONDS)
                if readable and os.read(ready_read, 1):
                    return process
                if readable or process.poll() is not None:  # EOF: it exited before ready
                    process.wait(timeout=10)
                    raise ApiProcessesError(
                        f"an API process exited ({process.returncode}) before it was ready"
                    )
                if self._stop or time.monotonic() > deadline:
                    process.kill()
                    process.wait(timeout=10)
                    raise ApiProcessesError("an API process was not ready in time")
        finally:
            os.close(ready_read)

    def _rolling_restart(self) -> None:
        """Replace each child in turn: the new one is accepting before the old one stops."""
        log.info("restarting the API processes one at a time")
        for index, old in enumerate(list(self.processes)):
            if self._stop:
                return
            try:
                new = self._start_one()
            except ApiProcessesError as exc:
                log.error("restart abandoned, the running API processes keep serving: %s", exc)
                return
            self.processes[index] = new
            self._retire(old)
        log.info("API processes restarted", extra={"pids": [p.pid for p in self.processes]})

    def _retire(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.terminate()
            self.retiring[process] = (
                time.monotonic() + self.settings.http_shutdown_grace_seconds + EXIT_MARGIN_SECONDS
            )

    def _reap_retiring(self) -> None:
        for process, deadline in list(self.retiring.items()):
            if process.poll() is not None:
                del self.retiring[process]
            elif time.monotonic() > deadline:
                log.warning("API process %s did not stop in time; killing it", process.pid)
                process.kill()
                process.wait(timeout=10)
                del self.retiring[process]

    def _replace_exited(self) -> None:
        for index, process in enumerate(self.processes):
            if process.poll() is None or self._stop:
                continue
            log.warning(
                "API process %s exited (%s); starting another", process.pid, process.returncode
            )
            try:
                self.processes[index] = self._start_one()
            except ApiProcessesError as exc:
                log.error("%s; retrying", exc)
                time.sleep(RESPAWN_DELAY_SECONDS)

    def _stop_all(self) -> None:
        """SIGTERM to every child at once, then wait for each (SIGKILL past the grace)."""
        for process in self.processes:
            self._retire(process)
        self.processes = []
        # Each child closes its copy of the socket first thing; with this one closed too, the
        # socket closes when the last child's does, and a connection made after that is
        # refused (a client or load balancer tries elsewhere) instead of waiting in a queue
        # no process accepts from, to be reset when the last child exits.
        if self._sock is not None:
            self._sock.close()
        while self.retiring:
            self._reap_retiring()
            if self.retiring:
                time.sleep(0.05)


def run_api_process(settings: Settings, fd: int, ready_fd: int) -> None:
    """`ledgerline api-process`: one child of `serve --workers N`, serving on the inherited
    listening socket `fd`; writes a byte to `ready_fd` once its app has started and it is
    accepting connections."""
    from ledgerline.app import create_app
    from ledgerline.server import run_server

    parent = os.environ.get(PARENT_PID_ENV, "")

    def started() -> None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)

    run_server(
        create_app(settings),
        settings,
        settings.host,
        settings.port,
        fd=fd,
        parent_pid=int(parent) if parent.isdigit() else None,
        on_started=started,
    )
