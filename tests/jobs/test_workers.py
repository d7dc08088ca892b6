"""Real worker processes: a SIGKILLed worker's job is finished by another; scaled mode.

These start `ledgerline worker` and `ledgerline serve` as processes, so they are marked slow.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ledgerline.app import create_app
from tests.conftest import (
    POSTGRES_URL,
    REDIS_URL,
    Api,
    Backend,
    TenantFactory,
    _create_postgres_database,
    require_service,
)
from tests.jobs.conftest import (
    bulk_lines,
    free_port,
    job_key,
    ledgerline_env,
    start_ledgerline,
    wait_ready,
)

pytestmark = pytest.mark.slow

FLAT = "/reports/invoice_line_items/export"


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def csv_ids_and_total(content: bytes) -> tuple[list[int], int]:
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8"))))
    ids = [int(row["ID"]) for row in rows]
    total = sum(int(Decimal(row["Amount"]) * 100) for row in rows)
    return ids, total


def json_ids_and_total(content: bytes) -> tuple[list[int], int]:
    rows = json.loads(content, parse_float=Decimal)
    ids = [int(row["id"]) for row in rows]
    total = sum(int(Decimal(row["amount"]["decimal"]) * 100) for row in rows)
    return ids, total


def test_sigkilled_worker_job_is_finished_by_another_with_every_row_once(
    backend: Backend, make_tenant: TenantFactory, tmp_path: Path
) -> None:
    """A worker killed mid-export: the lease runs out, the sweep re-queues the job, another
    worker writes the whole file; until then the download is 409, never a partial file."""
    rows = 150_000
    tenant = make_tenant()
    total = bulk_lines(backend, tenant.account_id, rows)
    queue_name = f"crash-{uuid.uuid4().hex[:8]}"
    settings = backend.settings.model_copy(update={"queue_name": queue_name})
    # The API process of this test enqueues to a queue of its own that only the worker
    # processes below consume.
    api = Api(
        TestClient(create_app(settings), raise_server_exceptions=False),
        tenant.token,
        tenant.account_id,
        tenant.currency,
        tenant.timezone,
    )
    env = ledgerline_env(
        backend, LEDGERLINE_QUEUE_NAME=queue_name, LEDGERLINE_JOB_LEASE_SECONDS="2"
    )
    log = tmp_path / "workers.log"
    first = start_ledgerline(env, "worker", "--concurrency", "1", log=log)
    second: subprocess.Popen[bytes] | None = None
    try:
        response = api.post(
            FLAT,
            json={
                "columns": ["id", "invoice.number", "type", "description", "amount", "tax_amount"],
                "sort": ["id"],
                # JSON goes through the row-by-row writer: CSV is rendered by the database
                # (COPY) so fast that it can finish before the kill lands.
                "format": "json",
            },
        )
        assert response.status_code == 200, response.text
        job_id = response.json()["job"]
        served: list[bytes] = []  # anything the download served before we saw success
        deadline = time.monotonic() + 60
        while True:
            job = api.get(f"/jobs/{job_id}").json()
            if job["status"] == "running" and 0 < job["progress"]["rows_done"] < rows:
                break
            assert job["status"] in ("queued", "running"), (
                "finished before it could be killed",
                job["started_at"],
                job["finished_at"],
            )
            early = api.get(f"/jobs/{job_id}/download")
            if early.status_code != 409:  # it succeeded between the two reads
                assert early.status_code == 200, early.text
                served.append(early.content)
            if time.monotonic() > deadline:
                pytest.fail(f"the export never showed progress: {job}")
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        # What the killed attempt leaves: its partial file, private like every export file.
        key = job_key(backend, tenant.account_id, job_id)  # the storage key's internal id
        folder = backend.data_dir / "exports" / str(tenant.account_id) / str(key)
        (dead_part,) = [p for p in folder.iterdir() if p.name.endswith(".part")]
        assert stat.S_IMODE(dead_part.stat().st_mode) == 0o600
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        second = start_ledgerline(env, "worker", "--concurrency", "1", log=log)
        deadline = time.monotonic() + 120
        while True:
            job = api.get(f"/jobs/{job_id}").json()
            if job["status"] not in ("queued", "running"):
                break
            early = api.get(f"/jobs/{job_id}/download")
            if early.status_code != 409:  # it succeeded between the two reads
                assert early.status_code == 200, early.text
                served.append(early.content)
            if time.monotonic() > deadline:
                pytest.fail(f"the job was not finished by the second worker: {job}")
            time.sleep(0.1)
        assert job["status"] == "succeeded", (job, log.read_text()[-3000:])
        assert job["attempts"] == 2
        download = api.get(f"/jobs/{job_id}/download")
        assert download.status_code == 200
        ids, amount_total = json_ids_and_total(download.content)
        assert all(content == download.content for content in served)
        assert len(ids) == rows
        assert len(set(ids)) == rows  # every row exactly once
        assert ids == sorted(ids)
        assert amount_total == total
        assert job["result"]["row_count"] == rows
        assert job["progress"] == {"rows_done": rows, "rows_total": rows, "percent": 100}
        # The dead worker's temporary file was never published, and was removed when the
        # job was handed on: the published file is all that is left.
        assert len([p for p in folder.iterdir() if not p.name.startswith(".")]) == 1
        assert len(list(folder.iterdir())) == 1
    finally:
        first.kill() if first.poll() is None else None
        if second is not None:
            stop(second)


@pytest.fixture(params=["sqlite", "postgres"])
def own_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A database and data dir of its own, migrated, that no other consumer sweeps (the
    session's in-process consumer would re-queue a lapsed job with its own attempt limit)."""
    from ledgerline.config import Settings
    from ledgerline.db import engine_for, upgrade_database

    data = tmp_path / "own-data"
    if request.param == "postgres":
        admin_url = require_service("PostgreSQL", POSTGRES_URL, "LEDGERLINE_TEST_POSTGRES_URL")
        url, drop = _create_postgres_database(admin_url)
    else:
        url = f"sqlite:///{data / 'ledgerline.db'}"

        def drop() -> None:
            engine_for(url).dispose()

    upgrade_database(url)
    settings = Settings(data_dir=data, database_url=url, secret_key="own-backend-" + "k" * 40)
    yield Backend(request.param, url, data, settings)
    drop()


def test_a_killed_workers_partial_file_goes_within_seconds_when_its_job_fails_for_good(
    own_backend: Backend, tmp_path: Path
) -> None:
    """With no attempt left, the job is failed when its lease runs out, not re-run: the dead
    attempt's partial file is removed then, by the next worker's sweep (not by an hourly
    sweep of files a day old)."""
    from ledgerline.accounts import create_account
    from ledgerline.auth import issue_token
    from ledgerline.db import transaction

    backend = own_backend
    rows = 150_000
    with transaction(backend.database_url, writes=True) as session:
        account_id = create_account(session, "Lost", "GBP", "Europe/London").id
        token = issue_token(session, account_id, ["read", "write"]).token
    bulk_lines(backend, account_id, rows)
    api = Api(
        TestClient(create_app(backend.settings), raise_server_exceptions=False),
        token,
        account_id,
        "GBP",
        "Europe/London",
    )
    env = ledgerline_env(
        backend,
        LEDGERLINE_JOB_LEASE_SECONDS="2",
        LEDGERLINE_JOB_MAX_ATTEMPTS="1",
    )
    log = tmp_path / "workers.log"
    first = start_ledgerline(env, "worker", "--concurrency", "1", log=log)
    second: subprocess.Popen[bytes] | None = None
    try:
        response = api.post(
            FLAT,
            json={
                # JSON with every money column (a money object each): the database renders
                # JSON now, so the file must be large enough to be killed mid-way (~1 KB a row).
                "columns": [
                    "id",
                    "invoice.number",
                    "customer.name",
                    "customer.email",
                    "type",
                    "description",
                    "amount",
                    "tax_amount",
                    "discount_amount",
                    "credit_amount",
                    "refund_amount",
                ],
                "sort": ["id"],
                "format": "json",
            },
        )
        assert response.status_code == 200, response.text
        job_id = response.json()["job"]
        key = job_key(backend, account_id, job_id)  # the storage key's internal id
        folder = backend.data_dir / "exports" / str(account_id) / str(key)
        deadline = time.monotonic() + 60
        while True:
            job = api.get(f"/jobs/{job_id}").json()
            if job["status"] == "running" and 0 < job["progress"]["rows_done"] < rows:
                break
            assert job["status"] in ("queued", "running"), "finished before it could be killed"
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = time.monotonic()
        assert [p.name for p in folder.iterdir() if p.name.endswith(".part")]
        second = start_ledgerline(env, "worker", "--concurrency", "1", log=log)
        while (job := api.get(f"/jobs/{job_id}").json())["status"] == "running" or (
            folder.exists() and list(folder.iterdir())
        ):
            assert time.monotonic() - killed_at < 30, (job, log.read_text()[-3000:])
            time.sleep(0.1)
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "worker_lost", job
        assert not folder.exists()  # the emptied job directory is pruned too
    finally:
        first.kill() if first.poll() is None else None
        if second is not None:
            stop(second)


# ---- scaled mode ---------------------------------------------------------------------------


def cli_json(env: dict[str, str], cwd: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", "from ledgerline.cli import main; main()", *args],
        env=env,
        cwd=str(cwd),
        capture_output=True,
        check=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture
def scaled_database() -> Iterator[str]:
    admin = require_service("PostgreSQL", POSTGRES_URL, "LEDGERLINE_TEST_POSTGRES_URL")
    url, drop = _create_postgres_database(admin)
    yield url
    drop()


def test_scaled_mode_twenty_exports_on_two_workers(scaled_database: str, tmp_path: Path) -> None:
    """PostgreSQL + Redis + `serve` without embedded workers + two `worker` processes."""
    redis_url = require_service("Redis", REDIS_URL, "LEDGERLINE_TEST_REDIS_URL")
    from tests.conftest import Backend as _Backend

    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LEDGERLINE_") or key.startswith("LEDGERLINE_TEST_")
    }
    env.update(
        LEDGERLINE_DATA_DIR=str(tmp_path / "data"),
        LEDGERLINE_DATABASE_URL=scaled_database,
        LEDGERLINE_QUEUE_URL=redis_url,
        # A queue of this run's own, so parallel runs on one Redis never share jobs.
        LEDGERLINE_QUEUE_NAME=f"scaled-{uuid.uuid4().hex[:10]}",
        LEDGERLINE_SECRET_KEY="scaled-test-secret",
        LEDGERLINE_EMBEDDED_WORKERS="0",
        LEDGERLINE_LOG_LEVEL="INFO",
        # Twenty exports of one account at once is this test's load: above the default cap
        # of active exports. Nor are the rate limits its subject: with a Redis queue they
        # would count in Redis, shared with any other run using it.
        LEDGERLINE_MAX_ACTIVE_EXPORTS_PER_ACCOUNT="0",
        LEDGERLINE_RATE_LIMIT_PER_KEY="off",
        LEDGERLINE_RATE_LIMIT_FAILED_AUTH="off",
    )
    account = cli_json(env, tmp_path, "accounts", "create", "Scaled Ltd")
    token = cli_json(env, tmp_path, "tokens", "create", "--account", str(account["id"]))["token"]
    from ledgerline.config import Settings

    backend = _Backend("postgres", scaled_database, tmp_path / "data", Settings())
    rows = 3_000
    total = bulk_lines(backend, account["id"], rows)

    log = tmp_path / "scaled.log"
    server = start_ledgerline(env, "serve", "--port", str(port), log=log)
    workers = [
        start_ledgerline(env, "worker", "--concurrency", "2", log=tmp_path / f"worker{n}.log")
        for n in (1, 2)
    ]
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Token {token}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            # generous: CI machines can be slow to start
            workers_deadline = time.monotonic() + 240
            ready = wait_ready(server, base, log, timeout=180)
            assert ready.json()["checks"]["queue"] == "ok"
            # Both workers consuming before the burst, so both get a share of it.
            for n in (1, 2):
                worker_log = tmp_path / f"worker{n}.log"
                while "Huey consumer started" not in worker_log.read_text():
                    assert workers[n - 1].poll() is None, worker_log.read_text()[-3000:]
                    if time.monotonic() > workers_deadline:
                        pytest.fail(f"worker {n} never started: {worker_log.read_text()[-3000:]}")
                    time.sleep(0.2)

            def post(n: int) -> int:
                body = {
                    "columns": ["id", "amount"],
                    "sort": ["id"],
                    "format": "csv" if n % 2 else "json",
                    "id_gt": 0,
                }
                response = http.post(f"/api/v2{FLAT}", json=body)
                assert response.status_code == 200, response.text
                job_id: int = response.json()["job"]
                return job_id

            with ThreadPoolExecutor(max_workers=20) as pool:
                job_ids = list(pool.map(post, range(20)))
            assert len(set(job_ids)) == 20
            deadline = time.monotonic() + 180
            pending = set(job_ids)
            jobs: dict[int, dict[str, Any]] = {}
            while pending:
                for job_id in list(pending):
                    job = http.get(f"/api/v2/jobs/{job_id}").json()
                    if job["status"] not in ("queued", "running"):
                        jobs[job_id] = job
                        pending.discard(job_id)
                if time.monotonic() > deadline:
                    pytest.fail(f"jobs still pending after 180 s: {sorted(pending)}")
                time.sleep(0.2)
            for job_id, job in jobs.items():
                assert job["status"] == "succeeded", job
                content = http.get(f"/api/v2/jobs/{job_id}/download").content
                if job["format"] == "csv":
                    ids, amount_total = csv_ids_and_total(content)
                else:
                    data = json.loads(content)
                    ids = [row["id"] for row in data]
                    amount_total = sum(
                        int(Decimal(str(row["amount"]["decimal"])) * 100) for row in data
                    )
                assert len(ids) == len(set(ids)) == rows
                assert amount_total == total
        # Both workers took part.
        started = [
            sum(
                1
                for line in (tmp_path / f"worker{n}.log").read_text().splitlines()
                if '"job started"' in line
            )
            for n in (1, 2)
        ]
        assert sum(started) >= 20
        assert all(count > 0 for count in started), started
    finally:
        for process in [server, *workers]:
            stop(process)


# ---- embedded mode -------------------------------------------------------------------------


def test_embedded_serve_runs_exports_in_its_child_worker_and_stops_it(tmp_path: Path) -> None:
    """`ledgerline serve` on a fresh data dir (SQLite, SQLite queue, local files): an export
    posted to it succeeds, and stopping serve stops its worker too."""
    import psutil

    from ledgerline.accounts import create_account
    from ledgerline.auth import issue_token
    from ledgerline.config import Settings
    from ledgerline.db import transaction, upgrade_database
    from tests.conftest import Backend as _Backend

    data = tmp_path / "data"
    url = f"sqlite:///{data / 'ledgerline.db'}"
    data.mkdir()
    upgrade_database(url)
    with transaction(url, writes=True) as session:
        account = create_account(session, "Embedded", "GBP", "Europe/London")
        token = issue_token(session, account.id, ["read", "write"]).token
        account_id = account.id
    total = bulk_lines(_Backend("sqlite", url, data, Settings()), account_id, 2_000)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LEDGERLINE_") or key.startswith("LEDGERLINE_TEST_")
    }
    port = free_port()
    env.update(LEDGERLINE_DATA_DIR=str(data), LEDGERLINE_LOG_LEVEL="WARNING")
    log = tmp_path / "serve.log"
    server = start_ledgerline(env, "serve", "--port", str(port), log=log)
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Token {token}"},
            timeout=30,
        ) as http:
            wait_ready(server, f"http://127.0.0.1:{port}", log)
            children = psutil.Process(server.pid).children()
            assert len(children) == 1, children
            response = http.post(
                f"/api/v2{FLAT}", json={"columns": ["id", "amount"], "format": "csv"}
            )
            assert response.status_code == 200, response.text
            job_id = response.json()["job"]
            deadline = time.monotonic() + 90
            while True:
                job = http.get(f"/api/v2/jobs/{job_id}").json()
                if job["status"] not in ("queued", "running"):
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"embedded worker never finished the job: {job}")
                time.sleep(0.1)
            assert job["status"] == "succeeded", job
            ids, amount_total = csv_ids_and_total(
                http.get(f"/api/v2/jobs/{job_id}/download").content
            )
            assert len(set(ids)) == len(ids) == 2_000
            assert amount_total == total
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
        psutil.wait_procs(children, timeout=20)
        assert not any(child.is_running() for child in children)
    finally:
        stop(server)
