"""The Jobs API: reading, listing, canceling, downloading; tenancy and signed links."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from sqlalchemy import insert, update

from ledgerline.db import engine_for
from ledgerline.exports.links import sign_download
from ledgerline.jobs.queue import JobQueue
from ledgerline.models import Job
from ledgerline.public_ids import allocate
from tests.conftest import Api, Backend, TenantFactory, assert_problem
from tests.factories import beyond
from tests.jobs.conftest import (
    DIGITS,
    bulk_lines,
    create_lines,
    csv_rows,
    download,
    job_key,
    the_job,
    wait_for_job,
)
from tests.openapi_check import assert_matches_openapi

GROUPED = "/reports/invoice_line_items.grouped/export"
FLAT = "/reports/invoice_line_items/export"
JOB_KEYS = {
    "id",
    "object",
    "result_url",
    "total_items",
    "complete_items",
    "type",
    "report",
    "format",
    "params",
    "status",
    "progress",
    "attempts",
    "created_at",
    "started_at",
    "finished_at",
    "expires_at",
    "result",
    "error",
}


def export(api: Api, path: str = GROUPED, **body: Any) -> int:
    response = api.post(path, json=body)
    assert response.status_code == 200, response.text
    job_id: int = response.json()["job"]
    return job_id


def set_job(backend: Backend, api: Api, job_id: int, **values: Any) -> None:
    with engine_for(backend.database_url).begin() as conn:
        conn.execute(update(Job).where(the_job(api.account_id, job_id)).values(**values))


def test_job_shape_and_download_with_header_or_signed_url(
    api: Api, consumer: JobQueue, backend: Backend
) -> None:
    made = create_lines(api)
    job_id = export(api, columns=["type", "total_amount"], format="json")
    job = wait_for_job(api, job_id)
    assert set(job) == JOB_KEYS
    assert job["object"] == "job"
    assert job["status"] == "succeeded"
    assert job["attempts"] == 1
    assert job["error"] is None
    assert job["params"]["columns"] == ["type", "total_amount"]
    created = dt.datetime.fromisoformat(job["created_at"])
    started = dt.datetime.fromisoformat(job["started_at"])
    finished = dt.datetime.fromisoformat(job["finished_at"])
    expires = dt.datetime.fromisoformat(job["expires_at"])
    assert created <= started <= finished < expires
    retention = backend.settings.export_retention_hours
    assert abs((expires - finished) - dt.timedelta(hours=retention)) < dt.timedelta(seconds=1)
    result = job["result"]
    assert set(result) == {
        "file_name",
        "content_type",
        "size_bytes",
        "row_count",
        "sha256",
        "totals",
        "download_url",
        "download_url_expires_at",
    }
    # Control totals: per currency, the groups (one per type) and the sum of total_amount.
    groups = {(line.currency, line.type) for line in made.lines}
    assert result["totals"] == [
        {
            "currency": currency,
            "rows": sum(1 for code, _type in groups if code == currency),
            "sums": {"total_amount": f"{Decimal(total).scaleb(-DIGITS[currency]):f}"},
        }
        for currency, total in sorted(made.totals_by_currency().items())
    ]
    assert result["download_url"].startswith("http")
    assert f"/api/v2/jobs/{job_id}/download?token=" in result["download_url"]

    by_link = download(api, job)
    by_header = api.get(f"/jobs/{job_id}/download")
    assert by_header.status_code == 200
    assert by_header.content == by_link
    assert by_header.headers["content-type"].startswith("application/json")
    assert f'filename="{result["file_name"]}"' in by_header.headers["content-disposition"]
    assert hashlib.sha256(by_link).hexdigest() == result["sha256"]
    assert len(by_link) == result["size_bytes"]

    # A fresh link on every read.
    time.sleep(1.1)
    again = api.get(f"/jobs/{job_id}").json()
    assert again["result"]["download_url"] != result["download_url"]
    assert api.client.get(again["result"]["download_url"]).content == by_link


def test_teamup_job_fields_on_every_job_object(
    app: FastAPI, api: Api, consumer: JobQueue, backend: Backend
) -> None:
    """TeamUp's job object: `result_url` (the signed link once succeeded, null before),
    `total_items` and `complete_items`, on GET /jobs/{id}, GET /jobs and the cancel answer."""
    created = create_lines(api, ("GBP", "EUR"))
    job_id = export(api, FLAT, columns=["id", "amount"], format="csv")
    job = wait_for_job(api, job_id)
    assert job["status"] == "succeeded"
    assert job["object"] == "job"
    lines = len(created.lines)
    assert job["result"]["row_count"] == lines
    assert job["total_items"] == job["complete_items"] == lines
    assert job["result_url"] is not None
    assert f"/api/v2/jobs/{job_id}/download?token=" in job["result_url"]
    # The TeamUp link and ours fetch the same bytes, with no credentials.
    by_result_url = api.client.get(job["result_url"])
    assert by_result_url.status_code == 200
    assert by_result_url.content == download(api, job)
    assert hashlib.sha256(by_result_url.content).hexdigest() == job["result"]["sha256"]
    assert_matches_openapi(app, "GET", "/api/v2/jobs/{job_id}", 200, job)
    listing = api.get("/jobs").json()
    assert_matches_openapi(app, "GET", "/api/v2/jobs", 200, listing)
    listed = {j["id"]: j for j in listing["results"]}
    assert set(listed[job_id]) == JOB_KEYS
    assert listed[job_id]["total_items"] == lines
    assert api.client.get(listed[job_id]["result_url"]).content == by_result_url.content

    # Before success: no link, nothing counted yet (TeamUp's integers are never null).
    pending = insert_queued_job(backend, api, job)
    queued = api.get(f"/jobs/{pending}").json()
    assert set(queued) == JOB_KEYS
    assert (queued["result_url"], queued["total_items"], queued["complete_items"]) == (None, 0, 0)
    assert_matches_openapi(app, "GET", "/api/v2/jobs/{job_id}", 200, queued)
    canceled = api.post(f"/jobs/{pending}/cancel").json()
    assert_matches_openapi(app, "POST", "/api/v2/jobs/{job_id}/cancel", 200, canceled)
    assert set(canceled) == JOB_KEYS
    assert canceled["status"] == "canceled"
    assert (canceled["result_url"], canceled["total_items"]) == (None, 0)
    # Counted but not finished: total_items is the count, complete_items the rows written.
    set_job(backend, api, pending, rows_total=7, rows_done=3)
    assert {
        k: api.get(f"/jobs/{pending}").json()[k] for k in ("total_items", "complete_items")
    } == {
        "total_items": 7,
        "complete_items": 3,
    }


def test_list_jobs_newest_first_with_status_filter_and_paging(
    api: Api, consumer: JobQueue, backend: Backend
) -> None:
    create_lines(api, ("GBP",))
    ids = [export(api) for _ in range(3)]
    for job_id in ids:
        wait_for_job(api, job_id)
    canceled = export(api)
    set_job(backend, api, canceled, status="canceled")
    listed = api.get("/jobs").json()
    assert listed["count"] == 4
    assert [job["id"] for job in listed["results"]] == sorted([*ids, canceled], reverse=True)
    succeeded = api.get("/jobs", params={"status": "succeeded"}).json()
    assert [job["id"] for job in succeeded["results"]] == sorted(ids, reverse=True)
    assert api.get("/jobs", params={"status": "canceled"}).json()["count"] == 1
    first_page = api.get("/jobs", params={"limit": 2}).json()
    assert len(first_page["results"]) == 2
    assert first_page["previous"] is None
    second_page = api.client.get(
        first_page["next"], headers={"Authorization": f"Token {api.token}"}
    ).json()
    assert [job["id"] for job in first_page["results"] + second_page["results"]] == [
        job["id"] for job in listed["results"]
    ]
    assert_problem(api.get("/jobs", params={"status": "done"}), 422, "status")


def test_other_accounts_jobs_are_invisible(
    api: Api, other_api: Api, consumer: JobQueue, backend: Backend
) -> None:
    create_lines(api, ("GBP",))
    job_id = export(api)
    job = wait_for_job(api, job_id)
    assert job["status"] == "succeeded"
    assert_problem(other_api.get(f"/jobs/{job_id}"), 404)
    assert_problem(other_api.get(f"/jobs/{job_id}/download"), 404)
    assert_problem(other_api.post(f"/jobs/{job_id}/cancel"), 404)
    assert other_api.get("/jobs").json()["count"] == 0
    # The other account's own job, fetched with this account's signed link's token moved
    # onto its URL: the signature no longer matches.
    # (Ids are per account: their job gets an id this account has no job under.)
    create_lines(other_api, ("GBP",))
    theirs = beyond([job_id], lambda: wait_for_job(other_api, export(other_api)))
    token = job["result"]["download_url"].split("token=", 1)[1]
    moved = api.client.get(f"/api/v2/jobs/{theirs['id']}/download?token={token}")
    assert moved.status_code in (403, 404)
    assert moved.content != download(other_api, theirs)
    # Their link presented with our credentials: still 404 for our account.
    assert_problem(api.get(f"/jobs/{theirs['id']}/download"), 404)


def test_altered_and_expired_links_never_serve_the_file(
    api: Api, consumer: JobQueue, backend: Backend
) -> None:
    create_lines(api, ("GBP",))
    first = wait_for_job(api, export(api))
    second = wait_for_job(api, export(api, format="json"))
    url = first["result"]["download_url"]
    altered = url.replace(f"/jobs/{first['id']}/", f"/jobs/{second['id']}/")
    response = api.client.get(altered)
    assert response.status_code in (403, 404), response.text
    tampered = api.client.get(url[:-2] + ("AA" if not url.endswith("AA") else "BB"))
    assert tampered.status_code in (403, 404)
    assert api.client.get(url.split("?")[0]).status_code == 401  # no token, no header
    secret = backend.settings.secret_key or ""
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    expired_token = sign_download(secret, api.account_id, first["id"], past)
    expired = api.client.get(f"/api/v2/jobs/{first['id']}/download?token={expired_token}")
    assert expired.status_code in (403, 410), expired.text


def test_download_is_409_before_success_and_410_after_expiry(
    api: Api, consumer: JobQueue, backend: Backend
) -> None:
    from ledgerline.db import transaction
    from ledgerline.exports.storage import storage_from_settings
    from ledgerline.jobs.retention import sweep_expired

    create_lines(api, ("GBP",))
    job_id = export(api)
    job = wait_for_job(api, job_id)
    assert job["status"] == "succeeded"
    # Before success: 409 (a queued job that no worker has taken).
    pending = export(api)
    set_job(backend, api, pending, status="canceled")
    assert_problem(api.get(f"/jobs/{pending}/download"), 409)
    # Past its retention: 410 at once, and the sweep removes the file and marks it expired.
    set_job(backend, api, job_id, expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    assert_problem(api.get(f"/jobs/{job_id}/download"), 410)
    with transaction(backend.database_url, writes=True) as session:
        assert (
            sweep_expired(session, storage_from_settings(backend.settings), dt.datetime.now(dt.UTC))
            >= 1
        )
    expired = api.get(f"/jobs/{job_id}").json()
    assert expired["status"] == "expired"
    assert expired["result"] is None
    assert_problem(api.get(f"/jobs/{job_id}/download"), 410)
    assert_problem(api.client.get(job["result"]["download_url"]), 410)


def insert_queued_job(backend: Backend, api: Api, like: dict[str, Any]) -> int:
    """A queued job whose hand-over to the queue has not happened yet; its (public) id."""
    with engine_for(backend.database_url).begin() as conn:
        job_id = allocate(conn, api.account_id, Job)
        conn.execute(
            insert(Job).values(
                account_id=api.account_id,
                public_id=job_id,
                type="report_export",
                report=like["report"],
                format=like["format"],
                params=like["params"],
                status="queued",
                rows_done=0,
                attempts=0,
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    return job_id


def test_cancel_queued_job_is_never_run(api: Api, consumer: JobQueue, backend: Backend) -> None:
    create_lines(api, ("GBP",))
    model = wait_for_job(api, export(api))
    job_id = insert_queued_job(backend, api, model)
    assert api.get(f"/jobs/{job_id}").json()["status"] == "queued"
    assert_problem(api.get(f"/jobs/{job_id}/download"), 409)
    canceled = api.post(f"/jobs/{job_id}/cancel")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    assert canceled.json()["finished_at"] is not None
    # A late or duplicate message (it carries the internal id): the claim refuses it.
    consumer.enqueue(job_key(backend, api.account_id, job_id))
    time.sleep(1)
    job = api.get(f"/jobs/{job_id}").json()
    assert job["status"] == "canceled"
    assert job["attempts"] == 0
    assert job["result"] is None
    assert_problem(api.get(f"/jobs/{job_id}/download"), 409)
    assert_problem(api.post(f"/jobs/{job_id}/cancel"), 409)


def test_lost_hand_over_is_picked_up_by_the_sweep(
    api: Api, consumer: JobQueue, backend: Backend
) -> None:
    """A job committed but never enqueued (queue down at that moment) still runs."""
    create_lines(api, ("GBP",))
    model = wait_for_job(api, export(api))
    job_id = insert_queued_job(backend, api, model)
    set_job(backend, api, job_id, created_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    job = wait_for_job(api, job_id, timeout=20)
    assert job["status"] == "succeeded"
    assert download(api, job) == download(api, model)


def test_cancel_finished_job_is_409(api: Api, consumer: JobQueue) -> None:
    create_lines(api, ("GBP",))
    job_id = export(api)
    assert wait_for_job(api, job_id)["status"] == "succeeded"
    assert_problem(api.post(f"/jobs/{job_id}/cancel"), 409)
    assert api.get(f"/jobs/{job_id}").json()["status"] == "succeeded"
    assert_problem(api.post("/jobs/99999999/cancel"), 404)


def test_cancel_running_export_publishes_nothing_and_progress_is_sane(
    make_tenant: TenantFactory, consumer: JobQueue, backend: Backend
) -> None:
    api = make_tenant()
    bulk_lines(backend, api.account_id, 60_000)
    job_id = export(api, FLAT, columns=["id", "description", "amount"], sort=["-amount", "id"])
    running = wait_for_job(api, job_id, ("running", "succeeded"), timeout=60)
    if running["status"] == "running":
        progress = running["progress"]
        assert progress["rows_total"] in (None, 60_000)
        assert 0 <= progress["rows_done"] <= 60_000
        assert 0 <= progress["percent"] <= 100
    canceled = api.post(f"/jobs/{job_id}/cancel")
    if canceled.status_code == 409:
        # Finished before the cancel arrived: then the file must be whole.
        job = api.get(f"/jobs/{job_id}").json()
        assert job["status"] == "succeeded"
        assert job["progress"] == {"rows_done": 60_000, "rows_total": 60_000, "percent": 100}
        return
    assert canceled.status_code == 200
    time.sleep(3)  # the worker notices within a heartbeat and abandons the file
    job = api.get(f"/jobs/{job_id}").json()
    assert job["status"] == "canceled"
    assert job["result"] is None
    assert_problem(api.get(f"/jobs/{job_id}/download"), 409)
    folder = backend.data_dir / "exports" / str(api.account_id) / str(job_id)
    published = (
        [p for p in folder.glob("*") if not p.name.startswith(".")] if folder.exists() else []
    )
    assert published == []


def test_bad_ids_tokens_and_keys_are_client_errors(api: Api) -> None:
    for path in ("/jobs/99999999999999999999", "/jobs/0", "/jobs/abc", "/jobs/-1/download"):
        response = api.get(path)
        assert response.status_code in (404, 422), (path, response.text)
    assert_problem(api.post("/jobs/99999999999999999999/cancel"), 422)
    assert api.client.get("/api/v2/jobs/1/download?token=garbage").status_code == 403
    assert api.client.get("/api/v2/jobs/1/download?token=").status_code in (401, 403)
    assert_problem(api.get("/jobs", params={"limit": 0}), 422, "limit")
    too_long = {"Idempotency-Key": "k" * 256}
    assert_problem(api.post(GROUPED, json={}, headers=too_long), 422, "Idempotency-Key")
    assert api.get("/jobs").json()["count"] == 0


# Every start a spreadsheet runs as a formula (issue 10 item 8), each followed by a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def test_exported_csv_guards_every_formula_start(api: Api, consumer: JobQueue) -> None:
    invoice = api.post("/invoices", json={"currency": "GBP"}).json()
    items = [
        {"type": "flat_fee", "amount": "1", "description": start + "HYPERLINK(1)"}
        for start in FORMULA_STARTS
    ]
    added = api.post(f"/invoices/{invoice['id']}/line_items", json={"items": items})
    assert added.status_code == 201, added.text
    job_id = export(api, FLAT, format="csv", columns="id,description", sort="id")
    job = wait_for_job(api, job_id)
    assert job["status"] == "succeeded", job
    rows = csv_rows(download(api, job))
    # Line breaks inside a cell are written CRLF; the guard comes before the text itself.
    written = {"\r": "\r\n", "\n": "\r\n"}
    assert [row["Description"] for row in rows] == [
        "'" + written.get(start, start) + "HYPERLINK(1)" for start in FORMULA_STARTS
    ]
