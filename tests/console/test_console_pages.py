"""The console's pages over HTTP: exports that are the very jobs
the API would make for the same report. (The presets' calendar is the timeframes'
one: tests/reports/test_timeframes.py.)"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from ledgerline.auth import owned
from ledgerline.console.service import format_label
from ledgerline.db import engine_for
from ledgerline.jobs.queue import JobQueue
from ledgerline.models import Job
from ledgerline.reports.query import FORMATS
from tests.conftest import Api, Backend
from tests.console.conftest import Tenant, add_invoice, csrf_of, new_account, sign_in
from tests.jobs.conftest import DIGITS, create_lines, wait_for_job
from tests.jobs.conftest import consumer as consumer  # the fixture


@pytest.mark.parametrize(
    ("report", "api_path"),
    [
        ("invoice_line_items", "/reports/invoice_line_items/export"),
        ("invoice_line_items.grouped", "/reports/invoice_line_items.grouped/export"),
    ],
)
def test_an_export_from_either_view_is_the_job_the_api_makes(
    report: str, api_path: str, backend: Backend, browser_client: TestClient
) -> None:
    tenant = Tenant(*new_account(backend), browser_client)
    add_invoice(
        tenant, "GBP", "paid", dt.datetime(2024, 7, 29, 12, tzinfo=dt.UTC), [("flat_fee", "5")]
    )
    sign_in(browser_client, tenant.token)
    query = "invoice_status=paid&invoice_paid_at_gte=2024-07-01&invoice_paid_at_lte=2024-07-31"
    view = "/report" if report == "invoice_line_items" else "/report/grouped"
    page = browser_client.get(f"{view}?{query}")
    answer = browser_client.post(
        "/exports",
        data={
            "csrf_token": csrf_of(page.text),
            "report": report,
            "query": query,
            "format": "json",
        },
    )
    assert answer.status_code == 303, answer.text
    console_job = int(answer.headers["location"].rsplit("/", 1)[1])
    api_job = tenant.post(
        api_path,
        json={
            "format": "json",
            "invoice_status": "paid",
            "invoice_paid_at_gte": "2024-07-01",
            "invoice_paid_at_lte": "2024-07-31",
        },
    ).json()["job"]
    made = tenant.get(f"/jobs/{console_job}").json()
    assert made["report"] == report
    assert made["params"] == tenant.get(f"/jobs/{api_job}").json()["params"]


def test_an_export_with_a_bad_filter_is_refused_plainly(
    backend: Backend, browser_client: TestClient
) -> None:
    tenant = Tenant(*new_account(backend), browser_client)
    sign_in(browser_client, tenant.token)
    csrf = csrf_of(browser_client.get("/report").text)
    for data in (
        {"query": "invoice_status=nope", "format": "csv"},
        # Not a format the writers have or will have (xlsx, ndjson, parquet are coming).
        {"query": "", "format": "docx"},
        {"query": "", "format": "csv", "report": "nope"},
    ):
        answer = browser_client.post("/exports", data={"csrf_token": csrf, **data})
        assert answer.status_code == 422, data
        assert "<h1>" in answer.text
    assert tenant.get("/jobs").json()["count"] == 0


def test_cancelling_a_job_that_already_ended_shows_how_it_ended(
    backend: Backend, browser_client: TestClient
) -> None:
    tenant = Tenant(*new_account(backend), browser_client)
    job = tenant.post("/reports/invoice_line_items/export", data={"format": "csv"}).json()["job"]
    with engine_for(backend.database_url).begin() as conn:
        conn.execute(
            update(Job)
            # The API answers the job's per-account public id, not the internal key.
            .where(owned(Job, tenant.account_id), Job.public_id == job)
            .values(status="failed", error_code="boom", error_message="the disk was full")
        )
    sign_in(browser_client, tenant.token)
    page = browser_client.get(f"/jobs/{job}")
    assert "The export failed: the disk was full." in page.text
    assert "Cancel export" not in page.text
    answer = browser_client.post(f"/jobs/{job}/cancel", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/jobs/{job}"
    assert tenant.get(f"/jobs/{job}").json()["status"] == "failed"


def test_the_jobs_page_names_invoices_report_exports(
    backend: Backend, browser_client: TestClient
) -> None:
    """An export of TeamUp's invoices report made through the API is listed on the jobs page
    under a name a person reads, not the report's key."""
    tenant = Tenant(*new_account(backend), browser_client)
    for path in ("/reports/invoices/export", "/reports/invoices.grouped/export"):
        made = tenant.post(path, json={"format": "csv"})
        assert made.status_code == 200, made.text
    sign_in(browser_client, tenant.token)
    page = browser_client.get("/jobs")
    assert page.status_code == 200, page.text
    assert "<td>Invoices</td>" in page.text
    assert "<td>Invoices grouped</td>" in page.text
    assert "invoices.grouped" not in page.text


OPTION = re.compile(r'<option value="([^"]+)">([^<]+)</option>')


def test_the_export_control_names_each_format_as_people_know_it(
    backend: Backend, browser_client: TestClient
) -> None:
    """Every format the API offers is an option posting its name, labelled in words; a
    format without a label yet reads as its name in capitals."""
    tenant = Tenant(*new_account(backend), browser_client)
    sign_in(browser_client, tenant.token)
    for view in ("/report", "/report/grouped"):
        page = browser_client.get(view).text
        select = page[
            page.index('<select id="format"') : page.index(
                "</select>", page.index('<select id="format"')
            )
        ]
        options = OPTION.findall(select)
        assert [value for value, _label in options] == list(FORMATS)
        assert [label for _value, label in options] == [format_label(f) for f in FORMATS]
        assert ("csv", "CSV") in options
        assert ("json", "JSON") in options
    assert format_label("ndjson") == "JSON Lines (ndjson)"
    assert format_label("xlsx") == "Excel (xlsx)"
    assert format_label("parquet") == "Parquet"
    assert format_label("avro") == "AVRO"


TOTALS_ROW = re.compile(r'<tr><th scope="row">([^<]*)</th>((?:<td class="num">[^<]*</td>)+)</tr>')


def test_a_finished_export_shows_its_control_totals(
    api: Api, browser_client: TestClient, consumer: JobQueue
) -> None:
    """The export's page shows, per currency, the rows and each money column's sum: the
    job's `result.totals`, equal to the sums of the amounts the test itself created."""
    created = create_lines(api, ("GBP", "EUR"))
    answer = api.post(
        "/reports/invoice_line_items/export", json={"columns": "id,amount", "format": "xlsx"}
    )
    job = wait_for_job(api, answer.json()["job"])
    assert job["status"] == "succeeded", job
    sign_in(browser_client, api.token)
    page = browser_client.get(f"/jobs/{job['id']}")
    assert page.status_code == 200, page.text
    assert "Control totals" in page.text
    shown = {
        currency: re.findall(r'<td class="num">([^<]*)</td>', cells)
        for currency, cells in TOTALS_ROW.findall(page.text)
    }
    counts: dict[str, int] = {}
    for line in created.lines:
        counts[line.currency] = counts.get(line.currency, 0) + 1
    expected = {
        currency: [f"{counts[currency]:,}", _major(total, DIGITS[currency])]
        for currency, total in created.totals_by_currency().items()
    }
    assert shown == expected


def _major(minor: int, digits: int) -> str:
    return f"{Decimal(minor).scaleb(-digits):f}" if digits else str(minor)
