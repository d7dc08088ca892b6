"""job.failed and job.expired come from the consumers' sweep (a job whose worker stopped
responding on its last attempt; a file past its retention), recorded with the state change."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import update

from ledgerline.db import engine_for, transaction
from ledgerline.exports.storage import storage_from_settings
from ledgerline.jobs.queue import EmbeddedWorkers
from ledgerline.jobs.retention import sweep_expired
from ledgerline.models import Job
from tests.conftest import Api, Backend
from tests.jobs.conftest import the_job, wait_for_job
from tests.webhooks.conftest import Receiver, subscribe, tenant_of, wait_until
from tests.webhooks.test_delivery import without_links


def test_a_job_whose_worker_died_on_its_last_attempt_sends_job_failed(
    hook_backend: Backend,
    hook_workers: EmbeddedWorkers,
    idle_client: TestClient,
    receiver: Receiver,
) -> None:
    api = tenant_of(hook_backend, idle_client)
    _endpoint, url = subscribe(api, receiver, ["job.failed"])
    job_id = api.post("/reports/invoice_line_items/export", json={}).json()["job"]
    # As a worker that claimed it for the last time and then died leaves it.
    lapsed = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    with engine_for(hook_backend.database_url).begin() as conn:
        conn.execute(
            update(Job)
            .where(the_job(api.account_id, job_id))
            .values(
                status="running",
                attempts=hook_backend.settings.job_max_attempts,
                lease_owner="gone:1:abc",
                lease_expires_at=lapsed,
                started_at=lapsed,
            )
        )
    job = wait_for_job(api, job_id)
    assert job["status"] == "failed"
    wait_until(lambda: len(receiver.at(url)) == 1, what="the job.failed webhook")
    (request,) = receiver.at(url)
    assert request.verified
    assert request.payload["type"] == "job.failed"
    assert request.payload["data"] == api.get(f"/jobs/{job_id}").json()
    assert request.payload["data"]["error"]["code"] == "worker_lost"


def test_a_file_past_its_retention_sends_job_expired(
    hook_backend: Backend,
    hook_api: Api,
    hook_workers: EmbeddedWorkers,
    receiver: Receiver,
) -> None:
    _endpoint, url = subscribe(hook_api, receiver, ["job.expired", "job.succeeded"])
    job_id = hook_api.post("/reports/invoice_line_items/export", json={}).json()["job"]
    succeeded = wait_for_job(hook_api, job_id)
    assert succeeded["status"] == "succeeded"
    wait_until(lambda: len(receiver.at(url)) == 1, what="the job.succeeded webhook")
    now = dt.datetime.now(dt.UTC)
    with engine_for(hook_backend.database_url).begin() as conn:
        conn.execute(
            update(Job)
            .where(the_job(hook_api.account_id, job_id))
            .values(expires_at=now - dt.timedelta(seconds=1))
        )
    with transaction(hook_backend.database_url, writes=True) as session:
        sweep_expired(session, storage_from_settings(hook_backend.settings), now)
    wait_until(lambda: len(receiver.at(url)) == 2, what="the job.expired webhook")
    first, second = receiver.at(url)
    assert [first.payload["type"], second.payload["type"]] == ["job.succeeded", "job.expired"]
    assert second.verified
    assert first.headers["webhook-id"] != second.headers["webhook-id"]
    expired = hook_api.get(f"/jobs/{job_id}").json()
    assert expired["status"] == "expired"
    assert without_links(second.payload["data"]) == without_links(expired)
