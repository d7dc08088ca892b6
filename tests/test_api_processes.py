"""`ledgerline serve --workers N` (issue 11): real `serve` processes over real databases.

Which API process answered is read from the operating system, never from an answer: each
test keeps one keep-alive connection per API process and asks psutil which child holds the
server end of it (its client port), so "created through one, read through the other" is
shown, not assumed, and nothing about the processes reaches a client.

Rate limits are counted in Redis under a key prefix of this run's own (deleted afterwards);
with `CI=true` a missing PostgreSQL or Redis fails these tests rather than skipping them.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import random
import signal
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ledgerline.api_processes import ApiProcessesError, api_process_count, cpu_count
from ledgerline.config import Settings
from tests.conftest import REDIS_URL, Backend, TenantFactory
from tests.console.conftest import csrf_of
from tests.jobs.conftest import bulk_lines, free_port, ledgerline_env, start_ledgerline, wait_ready
from tests.jobs.test_workers import cli_json
from tests.test_rate_limits_redis import reachable_redis

pytestmark = pytest.mark.slow

PER_KEY = 40
FLAT_EXPORT = "/api/v2/reports/invoice_line_items/export"


# ---- how many processes -------------------------------------------------------------------


def test_process_count_defaults_and_refusals(tmp_path: Path) -> None:
    sqlite: dict[str, Any] = {"data_dir": tmp_path}
    postgres: dict[str, Any] = {**sqlite, "database_url": "postgresql://db.example/ledgerline"}
    redis: dict[str, Any] = {"rate_limit_storage_url": "redis://cache.example:6379/0"}
    off: dict[str, Any] = {"rate_limit_per_key": "off", "rate_limit_failed_auth": "off"}
    # Embedded (SQLite): one unless asked for more.
    assert api_process_count(Settings(**sqlite), None) == 1
    assert api_process_count(Settings(**sqlite, **redis), 3) == 3
    assert api_process_count(Settings(**sqlite, **redis, api_workers=2), None) == 2
    # Scaled (PostgreSQL) with shared or no limits: one per core.
    assert api_process_count(Settings(**postgres, **redis), None) == cpu_count()
    assert api_process_count(Settings(**postgres, **off), None) == cpu_count()
    # Counters in one process's memory: one by default, and more are refused, named.
    assert api_process_count(Settings(**postgres), None) == 1
    for settings in (Settings(**sqlite), Settings(**postgres), Settings(**sqlite, api_workers=2)):
        assert api_process_count(settings, 1) == 1
        with pytest.raises(ApiProcessesError, match="LEDGERLINE_RATE_LIMIT_STORAGE_URL"):
            api_process_count(settings, 2)
    # The command says so and stops, without a traceback.
    data = tmp_path / "data"
    env = ledgerline_env(
        Backend("sqlite", f"sqlite:///{data / 'ledgerline.db'}", data, Settings()),
        LEDGERLINE_RATE_LIMIT_PER_KEY="100/minute",
        LEDGERLINE_SECRET_KEY="count-test",
    )
    log = tmp_path / "refused.log"
    server = start_ledgerline(env, "serve", "--workers", "2", "--port", str(free_port()), log=log)
    assert server.wait(timeout=120) == 2
    output = " ".join(log.read_text().split())
    assert "2 API processes need shared rate limit counters" in output, output
    assert "Traceback" not in output


# ---- pinned connections -------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Pinned:
    """One keep-alive connection, and the pid of the API process at its other end."""

    conn: http.client.HTTPConnection
    pid: int
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, body: Any = None
    ) -> Answer:
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if isinstance(body, dict):
            sent["Content-Type"] = "application/json"
            body = json.dumps(body)
        self.conn.request(method, path, body=body, headers=sent)
        response = self.conn.getresponse()
        answer = Answer(response.status, response.msg, response.read())
        # The connection was not closed under us: the same process answered.
        assert self.conn.sock is not None, "the server closed the pinned connection"
        return answer

    def local_port(self) -> int:
        assert self.conn.sock is not None
        port: int = self.conn.sock.getsockname()[1]
        return port


def server_side(pids: list[int], client_port: int) -> int | None:
    """The pid of the process holding the accepted end of the client's connection."""
    for pid in pids:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == client_port:
                return pid
    return None


def pin_connections(port: int, pids: list[int], *, seconds: float = 180) -> dict[int, Pinned]:
    """A live connection to each API process in `pids` (the kernel decides which process
    accepts: connections are opened, eight at a time, until each has one; a process still
    starting accepts none yet)."""
    pinned: dict[int, Pinned] = {}
    spare: list[http.client.HTTPConnection] = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            batch = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(8)]
            for conn in batch:
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                assert response.status == 200
                response.read()
            for conn in batch:
                assert conn.sock is not None
                pid = server_side(pids, conn.sock.getsockname()[1])
                if pid is not None and pid not in pinned:
                    pinned[pid] = Pinned(conn, pid)
                else:
                    spare.append(conn)
            if len(pinned) == len(pids):
                return pinned
        pytest.fail(f"connections reached only {sorted(pinned)} of {pids}")
    finally:
        for conn in spare:
            conn.close()


def _children_running(server_pid: int, word: str) -> list[psutil.Process]:
    """The children of `serve` whose command line holds `word`; a child that has exited
    (a zombie until `serve` reaps it) is not one."""
    found = []
    for child in psutil.Process(server_pid).children():
        with suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE and word in child.cmdline():
                found.append(child)
    return found


def api_children(server_pid: int) -> list[psutil.Process]:
    return _children_running(server_pid, "api-process")


def job_workers(server_pid: int) -> list[psutil.Process]:
    return _children_running(server_pid, "worker")


@contextmanager
def serve(env: dict[str, str], log: Path, *args: str) -> Iterator[tuple[Any, int]]:
    """A `ledgerline serve` with `args`, ready: the process and its port. Stopped (SIGTERM)
    and waited for on leaving; its children must be gone too."""
    port = free_port()
    server = start_ledgerline(env, "serve", "--port", str(port), *args, log=log)
    descendants: list[psutil.Process] = []
    try:
        wait_ready(server, f"http://127.0.0.1:{port}", log, timeout=180)
        descendants = psutil.Process(server.pid).children(recursive=True)
        yield server, port
    finally:
        with suppress(psutil.Error):
            descendants += psutil.Process(server.pid).children(recursive=True)
        server.terminate()
        try:
            server.wait(timeout=60)
        finally:
            _gone, alive = psutil.wait_procs(descendants, timeout=15)
            for process in alive:
                process.kill()
        assert not alive, f"left running after serve stopped: {alive}"


# ---- two API processes share everything ---------------------------------------------------


def test_two_api_processes_share_jobs_rate_limits_and_console_sessions(
    backend: Backend, make_tenant: TenantFactory, tmp_path: Path
) -> None:
    """`serve --workers 2`, and a second `serve` on another port (another machine behind the
    same load balancer), over one database and one Redis: a job created through one API
    process is read and downloaded through the other and through the other machine; a key's
    rate limit is counted once across all three; a console session signed in through one is
    used through the other."""
    store = reachable_redis()
    prefix = f"ledgerline-test-workers-{uuid.uuid4().hex}"
    env = ledgerline_env(
        backend,
        LEDGERLINE_RATE_LIMIT_PER_KEY=f"{PER_KEY}/minute",
        LEDGERLINE_RATE_LIMIT_FAILED_AUTH="30/minute",
        LEDGERLINE_RATE_LIMIT_STORAGE_URL=str(REDIS_URL),
        LEDGERLINE_RATE_LIMIT_KEY_PREFIX=prefix,
        LEDGERLINE_MAX_ACTIVE_EXPORTS_PER_ACCOUNT="10",
        # The pinned connections stay open between the test's steps.
        LEDGERLINE_HTTP_IDLE_TIMEOUT_SECONDS="300",
    )
    exporter, limited, browser = make_tenant(), make_tenant(), make_tenant()
    rows = 500
    total = bulk_lines(backend, exporter.account_id, rows)
    other_machine = {**env, "LEDGERLINE_EMBEDDED_WORKERS": "0"}
    try:
        with (
            serve(env, tmp_path / "serve.log", "--workers", "2") as (server, port),
            serve(other_machine, tmp_path / "other.log", "--workers", "1") as (_other, other_port),
        ):
            api = api_children(server.pid)
            assert len(api) == 2, psutil.Process(server.pid).children()
            # Exactly one job consumer, whatever the number of API processes; none on the
            # machine told to run none.
            assert len(job_workers(server.pid)) == 1
            assert not psutil.Process(_other.pid).children()
            pinned = pin_connections(port, [p.pid for p in api])
            one, two = pinned.values()
            assert one.pid != two.pid
            machine_b = Pinned(http.client.HTTPConnection("127.0.0.1", other_port, timeout=60), 0)

            _job_through_one_read_through_the_others(exporter.token, one, two, machine_b, total)
            _one_rate_limit_across_processes(limited.token, [one, two, machine_b])
            _console_session_across_processes(browser.token, one, two)
            _metrics_count_every_process(one, two)

            # Every step above really ran on the process each connection was pinned to.
            for conn in (one, two):
                assert server_side([p.pid for p in api], conn.local_port()) == conn.pid
    finally:
        for key in store.scan_iter(f"{prefix}:*"):
            store.delete(key)
        store.close()


def _job_through_one_read_through_the_others(
    token: str, one: Pinned, two: Pinned, machine_b: Pinned, total: int
) -> None:
    auth = {"Authorization": f"Token {token}"}
    body = {"columns": ["id", "amount"], "sort": ["id"], "format": "csv", "id_gt": 0}
    created = one.request("POST", FLAT_EXPORT, headers=auth, body=body)
    assert created.status == 200, created.body
    job_id = created.json()["job"]
    # The same Idempotency-Key through another process replays the same job.
    keyed = {**auth, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    first = two.request("POST", FLAT_EXPORT, headers=keyed, body=body)
    again = machine_b.request("POST", FLAT_EXPORT, headers=keyed, body=body)
    assert first.status == again.status == 200, (first.body, again.body)
    assert first.json()["job"] == again.json()["job"] != job_id

    deadline = time.monotonic() + 120
    while True:
        read = two.request("GET", f"/api/v2/jobs/{job_id}", headers=auth)
        assert read.status == 200, read.body
        job = read.json()
        if job["status"] not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, job
        time.sleep(1)
    assert job["status"] == "succeeded", job
    # The other machine reads the same job (its download link is signed afresh, for it).
    elsewhere = machine_b.request("GET", f"/api/v2/jobs/{job_id}", headers=auth).json()
    unsigned = ("download_url", "download_url_expires_at")
    assert {k: v for k, v in elsewhere.items() if k not in ("result", "result_url")} == {
        k: v for k, v in job.items() if k not in ("result", "result_url")
    }
    assert {k: v for k, v in elsewhere["result"].items() if k not in unsigned} == {
        k: v for k, v in job["result"].items() if k not in unsigned
    }

    downloaded = two.request("GET", f"/api/v2/jobs/{job_id}/download", headers=auth)
    assert downloaded.status == 200, downloaded.body
    lines = list(csv.DictReader(io.StringIO(downloaded.body.decode())))
    assert len({line["ID"] for line in lines}) == len(lines) == 500
    assert sum(int(Decimal(line["Amount"]) * 100) for line in lines) == total
    # The signed link one process made is honoured by the others (one secret key).
    link = urllib.parse.urlsplit(job["result"]["download_url"])
    target = link.path + ("?" + link.query if link.query else "")
    for other in (one, machine_b):
        by_link = other.request("GET", target)
        assert by_link.status == 200, by_link.body
        assert by_link.body == downloaded.body


def _healthz_answered(conn: Pinned) -> int:
    """GET /healthz answered 200, as the /metrics read through `conn` counts them."""
    answer = conn.request("GET", "/metrics")
    assert answer.status == 200
    count = 0
    for family in text_string_to_metric_families(answer.body.decode()):
        if family.name != "ledgerline_http_requests":
            continue
        for sample in family.samples:
            labels = sample.labels
            if sample.name.endswith("_total") and (
                labels["method"],
                labels["route"],
                labels["status"],
            ) == ("GET", "/healthz", "200"):
                count += int(sample.value)
    return count


def _metrics_count_every_process(one: Pinned, two: Pinned) -> None:
    """/metrics counts the requests every API process answered, whichever one is asked
    (one process's own counts would hide the others' from a scraper)."""
    for asked, answering in ((one, two), (two, one)):
        before = _healthz_answered(asked)
        for _ in range(3):
            assert answering.request("GET", "/healthz").status == 200
        # A request is counted once its answer has been sent (the middleware's `finally`),
        # so the last one may land a moment after the client has read it.
        deadline = time.monotonic() + 5
        while (counted := _healthz_answered(asked)) < before + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert counted == before + 3


def _one_rate_limit_across_processes(token: str, connections: list[Pinned]) -> None:
    auth = {"Authorization": f"Token {token}"}
    remaining = []
    for n in range(PER_KEY):
        answer = connections[n % len(connections)].request("GET", "/api/v2/customers", headers=auth)
        assert answer.status == 200, answer.body
        remaining.append(int(answer.headers["RateLimit-Remaining"]))
    # One count: each answer, from whichever process, says one fewer remains.
    assert remaining == list(range(PER_KEY - 1, -1, -1))
    for conn in connections:
        refused = conn.request("GET", "/api/v2/customers", headers=auth)
        assert refused.status == 429, refused.body
        assert f"at most {PER_KEY} requests per minute" in refused.json()["detail"]


def _console_session_across_processes(token: str, one: Pinned, two: Pinned) -> None:
    form = one.request("GET", "/sign-in")
    assert form.status == 200
    _keep_cookies(one, form)
    signed_in = one.request(
        "POST",
        "/sign-in",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=urllib.parse.urlencode(
            {"token": token, "csrf_token": csrf_of(form.body.decode()), "next": "/report"}
        ),
    )
    assert signed_in.status == 303, signed_in.body
    assert signed_in.headers["Location"] == "/report"
    _keep_cookies(one, signed_in)
    assert "ledgerline_console" in one.cookies
    # Without the cookie the other process sends the browser to sign in...
    assert two.request("GET", "/report").status == 303
    # ...with it, the session signed in through the first process is live there.
    two.cookies = dict(one.cookies)
    page = two.request("GET", "/report")
    assert page.status == 200, page.body[:2000]
    assert b'name="token"' not in page.body


def _keep_cookies(conn: Pinned, answer: Answer) -> None:
    for header in answer.headers.get_all("Set-Cookie") or []:
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for name, morsel in jar.items():
            conn.cookies[name] = morsel.value


# ---- graceful restart and stop ------------------------------------------------------------


class Hammer:
    """A thread sending requests, each on a new connection, until stopped: every one must be
    answered 200 (a refused or reset connection is recorded as a failure). With `send_after`,
    each client connects, then waits that long (at random, up to it) before it sends its
    request, as a slow client or a congested network would: a process that stops in that
    moment must still answer it."""

    def __init__(self, port: int, *, send_after: float = 0.0) -> None:
        self.port = port
        self.send_after = send_after
        self.answered = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.send_after:
                answer = Unsent(self.port).ask(after=random.uniform(0, self.send_after))
                if answer.startswith(b"HTTP/1.1 200"):
                    self.answered += 1
                else:
                    self.failures.append(f"sent late: {answer[:200]!r}")
                continue
            try:
                response = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=30)
                if response.status_code == 200:
                    self.answered += 1
                else:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))
            time.sleep(0.01)

    def __enter__(self) -> Hammer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


class Unsent:
    """A connection opened (and so accepted, by whichever API process the kernel gives it
    to) whose request is not sent yet."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)

    @property
    def client_port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    def ask(self, *, after: float = 0.0) -> bytes:
        """GET /healthz, sent `after` seconds from now: the answer's head, or what went
        wrong (an empty answer: closed without one)."""
        received = b""
        try:
            time.sleep(after)
            self.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            while b"\r\n\r\n" not in received:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except OSError as exc:
            received += repr(exc).encode()
        finally:
            self.sock.close()
        return received


class SlowRequest:
    """A POST whose body arrives in two parts: in flight from its head until it is sent
    whole; on the API process that accepted it."""

    def __init__(self, port: int, token: str) -> None:
        body = json.dumps({"name": "Slow " + uuid.uuid4().hex[:6]}).encode()
        self.rest = body[len(body) // 2 :]
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        head = (
            "POST /api/v2/customers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Token {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.sock.sendall(head + body[: len(body) // 2])

    @property
    def client_port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    def finish(self) -> bytes:
        self.sock.sendall(self.rest)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            received += chunk
        self.sock.close()
        return received


def _owner_of(sock_port: int, server_pid: int) -> int:
    deadline = time.monotonic() + 30
    while True:
        pid = server_side([p.pid for p in api_children(server_pid)], sock_port)
        if pid is not None:
            return pid
        assert time.monotonic() < deadline, "no API process accepted the connection"
        time.sleep(0.1)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sighup_restarts_one_at_a_time_and_a_stop_lets_requests_finish(
    tmp_path: Path, stop: int
) -> None:
    """SIGHUP: both API processes are replaced while requests keep being answered (none
    refused), and a request in flight on an old process is answered by it. SIGTERM or
    SIGINT: a request in flight is answered, then serve exits 0 leaving no process.

    Embedded (SQLite) with the rate limits off, which is what lets two processes run
    without Redis; the process handling is the same on PostgreSQL."""
    data = tmp_path / "data"
    env = ledgerline_env(
        Backend("sqlite", f"sqlite:///{data / 'ledgerline.db'}", data, Settings()),
        LEDGERLINE_SECRET_KEY="restart-test",
    )
    account = cli_json(env, tmp_path, "accounts", "create", "Restart Ltd")
    token = cli_json(env, tmp_path, "tokens", "create", "--account", str(account["id"]))["token"]
    port = free_port()
    log = tmp_path / "serve.log"
    server = start_ledgerline(env, "serve", "--port", str(port), "--workers", "2", log=log)
    everyone: list[psutil.Process] = []
    try:
        wait_ready(server, f"http://127.0.0.1:{port}", log, timeout=180)
        old_processes = api_children(server.pid)
        old = {p.pid for p in old_processes}
        assert len(old) == 2
        everyone = psutil.Process(server.pid).children(recursive=True)

        with Hammer(port) as hammer, Hammer(port, send_after=0.3) as late:
            slow = SlowRequest(port, token)
            slow_owner = _owner_of(slow.client_port, server.pid)
            assert slow_owner in old
            answered_before = hammer.answered
            server.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 240
            while True:
                current = {p.pid for p in api_children(server.pid)}
                new = current - old
                if len(new) == 2:
                    break
                assert server.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, (old, current, log.read_text()[-3000:])
                time.sleep(0.2)
            everyone += psutil.Process(server.pid).children(recursive=True)
            # The old process with the request in flight is still there to answer it.
            assert psutil.pid_exists(slow_owner)
            answer = slow.finish()
            assert answer.startswith(b"HTTP/1.1 201"), answer
            # The second old process is told to stop once the second new one has started,
            # which on a loaded machine (CI, two cores) takes tens of seconds.
            _gone, alive = psutil.wait_procs(old_processes, timeout=180)
            assert not alive, "an old API process did not stop after the restart"
            time.sleep(1)  # the new processes answer alone for a while
        assert hammer.failures == [], hammer.failures[:5]
        assert late.failures == [], late.failures[:5]
        assert hammer.answered > answered_before + 10
        assert late.answered > 10

        # Stop: a request in flight is finished before the process exits.
        slow = SlowRequest(port, token)
        owner = _owner_of(slow.client_port, server.pid)
        assert owner in new
        server.send_signal(stop)
        time.sleep(1)
        assert psutil.pid_exists(owner)
        answer = slow.finish()
        assert answer.startswith(b"HTTP/1.1 201"), answer
        assert server.wait(timeout=60) == 0, log.read_text()[-3000:]
        _gone, alive = psutil.wait_procs(everyone, timeout=15)
        assert not alive, f"left running after serve stopped: {alive}"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        for process in everyone:
            with suppress(psutil.Error):
                process.kill()


def listening(pid: int, port: int) -> bool:
    """Whether process `pid` (alive) holds a socket listening on `port`."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return any(
            conn.status == psutil.CONN_LISTEN and conn.laddr.port == port
            for conn in process.net_connections(kind="tcp")
        )
    except psutil.Error:
        return False


def unsent_on_each(port: int, server_pid: int, pids: set[int]) -> dict[int, list[Unsent]]:
    """Connections, their requests not sent, until each API process in `pids` has accepted
    at least two (the kernel decides which accepts each)."""
    held: dict[int, list[Unsent]] = {pid: [] for pid in pids}
    deadline = time.monotonic() + 120
    while any(len(conns) < 2 for conns in held.values()):
        assert time.monotonic() < deadline, {pid: len(conns) for pid, conns in held.items()}
        conn = Unsent(port)
        owner = _owner_of(conn.client_port, server_pid)
        assert owner in pids, (owner, pids)
        held[owner].append(conn)
    return held


def test_connections_accepted_before_a_restart_or_a_stop_are_answered(tmp_path: Path) -> None:
    """A connection an API process accepted before it was told to stop, whose request had not
    arrived yet, is answered by it (SIGHUP restart and SIGTERM alike): the process stops
    accepting first and waits for each connection's request before its shutdown closes the
    idle ones. Before, it closed them unanswered ("Server disconnected without sending a
    response"). Once every process has stopped accepting on SIGTERM, the port refuses new
    connections at once rather than queueing them to be reset."""
    data = tmp_path / "data"
    env = ledgerline_env(
        Backend("sqlite", f"sqlite:///{data / 'ledgerline.db'}", data, Settings()),
        LEDGERLINE_SECRET_KEY="unsent-test",
        # The connections stay unsent while the new processes start.
        LEDGERLINE_HTTP_IDLE_TIMEOUT_SECONDS="300",
        LEDGERLINE_HTTP_SHUTDOWN_GRACE_SECONDS="60",
    )
    port = free_port()
    log = tmp_path / "serve.log"
    server = start_ledgerline(env, "serve", "--port", str(port), "--workers", "2", log=log)
    everyone: list[psutil.Process] = []
    try:
        wait_ready(server, f"http://127.0.0.1:{port}", log, timeout=180)
        deadline = time.monotonic() + 120
        while len(api_children(server.pid)) < 2:  # the second may still be starting
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        old_processes = api_children(server.pid)
        everyone = psutil.Process(server.pid).children(recursive=True)

        def answers_once_not_listening(held: dict[int, list[Unsent]]) -> list[bytes]:
            """Each process's connections asked once it has stopped accepting (or exited)."""
            answers: list[bytes] = []
            waiting = set(held)
            deadline = time.monotonic() + 240
            while waiting:
                assert time.monotonic() < deadline, (waiting, log.read_text()[-3000:])
                for pid in sorted(waiting):
                    if not listening(pid, port):
                        time.sleep(0.3)  # well into its stop
                        answers += [conn.ask() for conn in held[pid]]
                        waiting.discard(pid)
                time.sleep(0.05)
            return answers

        held = unsent_on_each(port, server.pid, {p.pid for p in old_processes})
        server.send_signal(signal.SIGHUP)
        answers = answers_once_not_listening(held)
        for answer in answers:
            assert answer.startswith(b"HTTP/1.1 200"), answers
            # Said by a process on its way out: no client reuses the connection.
            assert b"\r\nconnection: close\r\n" in answer.lower(), answer
        _gone, alive = psutil.wait_procs(old_processes, timeout=60)
        assert not alive, "an old API process did not stop after the restart"
        new = {p.pid for p in api_children(server.pid)}
        assert len(new) == 2
        assert not new & {p.pid for p in old_processes}
        everyone += psutil.Process(server.pid).children(recursive=True)

        held = unsent_on_each(port, server.pid, new)
        server.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        while any(listening(pid, port) for pid in [server.pid, *new]):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        # Nothing accepts any more, and nothing is left queued for no one: refused.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        answers = answers_once_not_listening(held)
        for answer in answers:
            assert answer.startswith(b"HTTP/1.1 200"), answers
        assert server.wait(timeout=60) == 0, log.read_text()[-3000:]
        _gone, alive = psutil.wait_procs(everyone, timeout=15)
        assert not alive, f"left running after serve stopped: {alive}"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        for process in everyone:
            with suppress(psutil.Error):
                process.kill()


def test_api_processes_stop_when_serve_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves `serve` no chance to stop its children: each notices its supervisor is
    gone and stops by itself (the API processes and the job worker alike)."""
    data = tmp_path / "data"
    env = ledgerline_env(
        Backend("sqlite", f"sqlite:///{data / 'ledgerline.db'}", data, Settings()),
        LEDGERLINE_SECRET_KEY="orphan-test",
    )
    port = free_port()
    log = tmp_path / "serve.log"
    server = start_ledgerline(env, "serve", "--port", str(port), "--workers", "2", log=log)
    children: list[psutil.Process] = []
    try:
        wait_ready(server, f"http://127.0.0.1:{port}", log, timeout=180)
        deadline = time.monotonic() + 120
        while len(api_children(server.pid)) < 2:  # the second may still be starting
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        children = psutil.Process(server.pid).children(recursive=True)
        assert len(api_children(server.pid)) == 2
        assert len(job_workers(server.pid)) == 1
        server.kill()
        server.wait(timeout=10)
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"still running after serve was killed: {alive}"
        # Nothing listens on the port any more.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        for process in children:
            with suppress(psutil.Error):
                process.kill()
