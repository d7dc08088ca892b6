"""Several consumers sending at once send each attempt once: threads racing on one
database (SQLite and PostgreSQL), and `ledgerline worker` processes on a Redis queue."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledgerline.app import create_app
from ledgerline.webhooks.delivery import deliver_due, has_due
from tests.conftest import REDIS_URL, Api, Backend, require_service
from tests.jobs.conftest import create_lines, ledgerline_env, start_ledgerline, wait_for_job
from tests.jobs.test_workers import stop
from tests.webhooks.conftest import Receiver, subscribe, tenant_of, wait_until
from tests.webhooks.test_delivery import canceled_job, deliveries


def test_two_senders_racing_send_each_attempt_once(
    quiet_backend: Backend, receiver: Receiver
) -> None:
    """Thirty events to two endpoints (sixty deliveries) waiting on a database no consumer
    serves; then two senders claim them at once."""
    settings = quiet_backend.settings
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = tenant_of(quiet_backend, client)
        endpoints = [subscribe(api, receiver, ["job.canceled"]) for _ in range(2)]
        jobs = [canceled_job(api) for _ in range(30)]
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def sender() -> None:
            try:
                start.wait(timeout=30)
                while has_due(settings, dt.datetime.now(dt.UTC)):
                    deliver_due(settings)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=sender) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        for endpoint, url in endpoints:
            received = receiver.at(url)
            assert all(r.verified for r in received)
            per_event = Counter(r.headers["webhook-id"] for r in received)
            assert len(per_event) == len(jobs)
            assert set(per_event.values()) == {1}, per_event.most_common(3)
            assert sorted(r.payload["data"]["id"] for r in received) == sorted(jobs)
            logged = api.get(f"/webhook_endpoints/{endpoint['id']}/deliveries?limit=100").json()
            assert logged["count"] == len(jobs)
            assert {d["status"] for d in logged["results"]} == {"succeeded"}
            assert {d["attempt_count"] for d in logged["results"]} == {1}


@pytest.mark.slow
def test_worker_processes_on_a_redis_queue_send_each_event_once(
    hook_backend: Backend, receiver: Receiver, tmp_path: Path
) -> None:
    """Two `ledgerline worker` processes run exports from Redis and send their webhooks;
    one receiver fails its first request, so retries race too."""
    redis_url = require_service("Redis", REDIS_URL, "LEDGERLINE_TEST_REDIS_URL")
    queue_name = f"hooks-{uuid.uuid4().hex[:8]}"
    settings = hook_backend.settings.model_copy(
        update={"queue_url": redis_url, "queue_name": queue_name}
    )
    env = ledgerline_env(
        hook_backend,
        LEDGERLINE_QUEUE_URL=redis_url,
        LEDGERLINE_QUEUE_NAME=queue_name,
        LEDGERLINE_WEBHOOK_ALLOW_PRIVATE="true",
        LEDGERLINE_WEBHOOK_RETRY_BASE_SECONDS="0.05",
        LEDGERLINE_PUBLIC_URL="http://testserver",
    )
    log = tmp_path / "workers.log"
    workers: list[subprocess.Popen[bytes]] = [
        start_ledgerline(env, "worker", "--concurrency", "2", log=log) for _ in range(2)
    ]
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            api = tenant_of(hook_backend, client)
            create_lines(api)
            flaky, flaky_url = subscribe(api, receiver, ["job.succeeded"], script=[500])
            steady, steady_url = subscribe(api, receiver, ["job.succeeded"])
            jobs = [_export(api) for _ in range(8)]
            for job_id in jobs:
                assert wait_for_job(api, job_id, timeout=120)["status"] == "succeeded"

            def all_answered() -> bool:
                return all(
                    sum(r.answered == 200 for r in receiver.at(url)) >= len(jobs)
                    for url in (flaky_url, steady_url)
                )

            wait_until(all_answered, timeout=120, what="every event at both endpoints")
            for endpoint, url in ((flaky, flaky_url), (steady, steady_url)):
                received = receiver.at(url)
                assert all(r.verified for r in received)
                succeeded = Counter(r.headers["webhook-id"] for r in received if r.answered == 200)
                assert len(succeeded) == len(jobs)
                assert set(succeeded.values()) == {1}
                assert sorted(
                    r.payload["data"]["id"] for r in received if r.answered == 200
                ) == sorted(jobs)
                sent = Counter(r.headers["webhook-id"] for r in received)
                logged = {d["event_id"]: d for d in deliveries(api, endpoint["id"])}
                # Every request made is one recorded attempt, and the other way round.
                assert {key: d["attempt_count"] for key, d in logged.items()} == dict(sent)
            assert len(receiver.at(flaky_url)) == len(jobs) + 1
    finally:
        for worker in workers:
            stop(worker)


def _export(api: Api) -> Any:
    response = api.post("/reports/invoice_line_items/export", json={"format": "csv"})
    assert response.status_code == 200, response.text
    return response.json()["job"]
