"""A timeframe export (issue 13): the job keeps the bounds resolved when it was created, so a
job created on 1 March with `last_month` exports February whenever the worker runs it (here:
long after, on the real clock)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from ledgerline.jobs.queue import JobQueue
from tests.conftest import Backend, TenantFactory
from tests.jobs.conftest import csv_rows, download, json_rows, wait_for_job
from tests.reports.conftest import Data

UTC = dt.UTC
CREATED = dt.datetime(2026, 3, 1, 0, 30, tzinfo=UTC)  # 00:30 on 1 March in London (GMT)


@pytest.mark.parametrize("file_format", ["json", "csv"])
def test_export_job_keeps_the_resolved_bounds_and_exports_them(
    backend: Backend,
    make_tenant: TenantFactory,
    fix_clock: Callable[[dt.datetime], None],
    consumer: JobQueue,
    file_format: str,
) -> None:
    api = make_tenant(timezone="Europe/London")
    data = Data(backend, api)
    february_first = dt.datetime(2026, 2, 1, tzinfo=UTC)  # GMT: local midnight is UTC's
    march_first = dt.datetime(2026, 3, 1, tzinfo=UTC)
    tick = dt.timedelta(microseconds=1)
    inside = []
    for paid_at, due in (
        (february_first - tick, dt.date(2026, 1, 31)),
        (february_first, dt.date(2026, 2, 1)),
        (march_first - tick, dt.date(2026, 2, 28)),
        (march_first, dt.date(2026, 3, 1)),
    ):
        lines = data.invoice([{"amount": 100}], status="paid", paid_at=paid_at, due_date=due)
        if february_first <= paid_at < march_first:
            inside += [line.id for line in lines]
    fix_clock(CREATED)
    response = api.post(
        "/reports/invoice_line_items/export",
        json={
            "invoice_paid_at_timeframe": "last_month",
            "columns": ["id"],
            "format": file_format,
        },
    )
    assert response.status_code == 200, response.text
    job = wait_for_job(api, response.json()["job"])
    assert job["status"] == "succeeded", job
    assert dt.datetime.fromisoformat(job["created_at"]) == CREATED
    assert job["params"]["filters"] == {
        "invoice_paid_at_gte": "2026-02-01T00:00:00+00:00",
        "invoice_paid_at_lte": "2026-02-28T23:59:59.999999+00:00",
        "invoice_paid_at_timeframe": "last_month",
    }
    content = download(api, job)
    if file_format == "json":
        exported = [row["id"] for row in json_rows(content)]
    else:
        exported = [int(row["ID"]) for row in csv_rows(content)]
    assert exported == sorted(inside)
    assert job["result"]["row_count"] == 2


def test_a_retry_after_the_period_turned_replays_the_job_with_its_first_bounds(
    make_tenant: TenantFactory, fix_clock: Callable[[dt.datetime], None]
) -> None:
    """A client retries with the same Idempotency-Key just after the account's month has
    turned: the same request (same timeframe), so the first job comes back, not a
    key-reused 422 and not a second job over other bounds."""
    api = make_tenant(timezone="Europe/London")
    body = {"invoice_paid_at_timeframe": "last_month", "format": "csv"}
    headers = {"Idempotency-Key": "month-end-retry"}
    fix_clock(dt.datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC))  # still February in London
    first = api.post("/reports/invoice_line_items/export", json=body, headers=headers)
    assert first.status_code == 200, first.text
    fix_clock(dt.datetime(2026, 3, 1, 0, 0, 1, tzinfo=UTC))  # March has begun
    retry = api.post("/reports/invoice_line_items/export", json=body, headers=headers)
    assert retry.status_code == 200, retry.text
    assert retry.json() == first.json()
    job = api.get(f"/jobs/{first.json()['job']}").json()
    assert job["params"]["filters"]["invoice_paid_at_gte"] == "2026-01-01T00:00:00+00:00"
    assert api.get("/jobs").json()["count"] == 1
    # Another request under the key (another timeframe) is still refused.
    other = api.post(
        "/reports/invoice_line_items/export",
        json={**body, "invoice_paid_at_timeframe": "this_month"},
        headers=headers,
    )
    assert other.status_code == 422, other.text
