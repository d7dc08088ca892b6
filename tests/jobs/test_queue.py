"""Queue modes, readiness, retries and the idempotency race, each on a queue of its own."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledgerline.app import create_app
from ledgerline.config import Settings
from ledgerline.jobs.queue import EmbeddedWorkers, QueueConfigError, build_huey
from tests.conftest import REDIS_URL, Api, Backend, TenantFactory, assert_problem
from tests.jobs.conftest import create_lines, download, wait_for_job

GROUPED = "/reports/invoice_line_items.grouped/export"


@contextmanager
def deployment(
    backend: Backend, tenant: Api, *, workers: bool = True, **overrides: Any
) -> Iterator[Api]:
    """The app and (optionally) a consumer with `overrides` applied, on a queue of their own."""
    settings = backend.settings.model_copy(
        update={"queue_name": f"t-{uuid.uuid4().hex[:10]}", **overrides}
    )
    consumer = EmbeddedWorkers(settings, 1) if workers else None
    if consumer is not None:
        consumer.start()
    try:
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        yield Api(client, tenant.token, tenant.account_id, tenant.currency, tenant.timezone)
    finally:
        if consumer is not None:
            consumer.stop()


def test_postgresql_queue_runs_exports(backend: Backend, make_tenant: TenantFactory) -> None:
    if backend.name != "postgres":
        pytest.skip("the PostgreSQL queue needs the PostgreSQL backend")
    tenant = make_tenant()
    with deployment(backend, tenant, queue_url=backend.database_url) as api:
        ready = api.client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["queue"] == "ok"
        created = create_lines(api, ("GBP",))
        response = api.post(GROUPED, json={"columns": ["total_amount"], "format": "json"})
        job = wait_for_job(api, response.json()["job"], timeout=30)
        assert job["status"] == "succeeded", job
        (row,) = json.loads(download(api, job))
        assert row["total_amount"]["string"].startswith("£")
        assert sum(line.amount for line in created.lines) == int(
            Decimal(str(row["total_amount"]["decimal"])) * 100
        )


def test_redis_queue_runs_exports(backend: Backend, make_tenant: TenantFactory) -> None:
    if REDIS_URL is None:
        pytest.skip("LEDGERLINE_TEST_REDIS_URL not set (the scaled test fails in CI without it)")
    tenant = make_tenant()
    with deployment(backend, tenant, queue_url=REDIS_URL) as api:
        assert api.client.get("/readyz").json()["checks"]["queue"] == "ok"
        create_lines(api, ("GBP",))
        job = wait_for_job(api, api.post(GROUPED, json={}).json()["job"], timeout=30)
        assert job["status"] == "succeeded", job


def test_unreachable_or_unknown_queue_makes_readyz_503(
    backend: Backend, make_tenant: TenantFactory
) -> None:
    tenant = make_tenant()
    for url in ("redis://127.0.0.1:1/0", "amqp://127.0.0.1/"):
        with deployment(backend, tenant, workers=False, queue_url=url) as api:
            assert_problem(api.client.get("/readyz"), 503, "queue")
    with pytest.raises(QueueConfigError, match="not supported"):
        build_huey("amqp://127.0.0.1/", "x")


def test_failing_export_is_retried_then_failed_without_internals(
    backend: Backend, make_tenant: TenantFactory
) -> None:
    """Storage that cannot be written: each attempt fails, the job is re-queued until
    LEDGERLINE_JOB_MAX_ATTEMPTS, then `failed` with a code and a message for humans."""
    tenant = make_tenant()
    with deployment(
        backend, tenant, storage_url="file:///dev/null/exports", job_max_attempts=2
    ) as api:
        create_lines(api, ("GBP",))
        job_id = api.post(GROUPED, json={}).json()["job"]
        job = wait_for_job(api, job_id, timeout=30)
        assert job["status"] == "failed", job
        assert job["attempts"] == 2
        assert job["result"] is None
        assert job["error"]["code"] == "export_failed"
        message = job["error"]["message"]
        assert "2 attempts" in message
        assert "Traceback" not in message
        assert "/dev/null" not in message
        assert_problem(api.get(f"/jobs/{job_id}/download"), 409)
        assert api.get("/jobs", params={"status": "failed"}).json()["count"] == 1


def test_concurrent_requests_with_one_idempotency_key_make_one_job(
    backend: Backend, make_tenant: TenantFactory
) -> None:
    tenant = make_tenant()
    with deployment(backend, tenant, workers=False) as api:
        headers = {"Idempotency-Key": f"race-{uuid.uuid4().hex}"}

        def post(_: int) -> Any:
            return api.post(GROUPED, json={"format": "json"}, headers=headers)

        with ThreadPoolExecutor(max_workers=8) as pool:
            responses = list(pool.map(post, range(8)))
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        assert len({r.json()["job"] for r in responses}) == 1
        assert api.get("/jobs").json()["count"] == 1


def test_settings_default_queue_is_sqlite_in_the_data_dir(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_queue_url == f"sqlite:///{tmp_path.resolve() / 'queue.db'}"
    huey = build_huey(settings.resolved_queue_url, "ledgerline")
    assert huey.pending_count() == 0
    assert (tmp_path / "queue.db").exists()
