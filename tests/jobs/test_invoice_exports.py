"""Exports of TeamUp's invoices report (issue 13): the files hold exactly the /data rows, CSV
(the database-rendered fast path and the generic writer) and JSON, flat and grouped; a
timeframe export keeps the bounds it resolved to."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from ledgerline.db import engine_for
from ledgerline.exports.writers import open_snapshot, write_export
from ledgerline.jobs.queue import JobQueue
from ledgerline.reports.query import count_rows, parse_report_params
from tests.conftest import Api, Backend, TenantFactory
from tests.jobs.conftest import download, json_rows, wait_for_job
from tests.reports.conftest import Data
from tests.reports.expected import DIGITS, guarded
from tests.reports.test_invoices import make_invoices

UTC = dt.UTC

FLAT_PARAMS: dict[str, str] = {"sort": "-total_amount,customer.name"}
GROUPED_PARAMS: dict[str, str] = {
    "columns": "status,customer.name,purchase_type,due_date_month,due_date_year,"
    "payment_month,payment_year,count,total_amount,subtotal_amount,discount_amount,"
    "tax_amount,credit_amount,expected_payment_amount,refund_amount",
    "status": "paid,open,draft,voided,pending",
}
CASES = [
    ("/reports/invoices", FLAT_PARAMS),
    ("/reports/invoices", {"columns": "id,purchase_type", "purchase_types": "membership,class"}),
    ("/reports/invoices", {"columns": "number"}),
    ("/reports/invoices.grouped", GROUPED_PARAMS),
    ("/reports/invoices.grouped", {"columns": "payment_year,count"}),
]


def _cell(value: Any) -> str:
    """A /data value as its CSV cell (docs/reports.md, "Export files")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) and "decimal" in value:
        digits = DIGITS[value["iso_currency_code"].upper()]
        return f"{Decimal(value['decimal']):.{digits}f}"
    if isinstance(value, int):
        return str(value)
    return guarded(value)


def _csv_from_data(body: dict[str, Any]) -> list[list[str]]:
    headers = body["column_headers"]
    labels = [header["label"] for header in headers]
    money = False
    records = []
    for row in body["rows"]:
        cells, currency = [], None
        for header in headers:
            value: Any = row
            for part in header["key"].split("."):
                value = value[part]
            if isinstance(value, dict) and "decimal" in value:
                money, currency = True, value["iso_currency_code"].upper()
            cells.append(_cell(value) if header["key"] != "count" else str(value))
        records.append([*cells, currency] if currency else cells)
    return [[*labels, "Currency"] if money else labels, *records]


@pytest.mark.parametrize("file_format", ["csv", "json"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_an_export_file_holds_the_data_rows(
    backend: Backend, api: Api, consumer: JobQueue, case: int, file_format: str
) -> None:
    make_invoices(Data(backend, api))
    path, params = CASES[case]
    response = api.get(f"{path}/data", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    body = response.json(parse_float=Decimal)
    assert body["rows"]
    created = api.post(f"{path}/export", json={**params, "format": file_format})
    assert created.status_code == 200, created.text
    job = wait_for_job(api, created.json()["job"])
    assert job["status"] == "succeeded", job
    assert job["result"]["row_count"] == len(body["rows"])
    content = download(api, job)
    if file_format == "json":
        assert json_rows(content) == body["rows"]
    else:
        assert list(csv.reader(io.StringIO(content.decode()))) == _csv_from_data(body)


def test_a_timeframe_export_keeps_its_bounds(
    backend: Backend,
    make_tenant: TenantFactory,
    fix_clock: Callable[[dt.datetime], None],
    consumer: JobQueue,
) -> None:
    """`paid_at_timeframe=last_month` at 00:30 on 1 March in London exports February's paid
    invoices, and the job records the bounds; `due_date_timeframe` gives dates."""
    api: Api = make_tenant(timezone="Europe/London")
    data = Data(backend, api)
    tick = dt.timedelta(microseconds=1)
    february = dt.datetime(2026, 2, 1, tzinfo=UTC)
    march = dt.datetime(2026, 3, 1, tzinfo=UTC)
    for paid_at in (february - tick, february, march - tick, march):
        data.invoice([{"amount": 100}], status="paid", paid_at=paid_at, due_date=paid_at.date())
    inside = [f["id"] for f in data.invoices if february <= f["paid_at"] < march]
    fix_clock(dt.datetime(2026, 3, 1, 0, 30, tzinfo=UTC))
    created = api.post(
        "/reports/invoices/export",
        json={"paid_at_timeframe": "last_month", "columns": ["id"], "format": "json"},
    )
    assert created.status_code == 200, created.text
    job = wait_for_job(api, created.json()["job"])
    assert job["status"] == "succeeded", job
    assert job["params"]["filters"] == {
        "paid_at_gte": "2026-02-01T00:00:00+00:00",
        "paid_at_lte": "2026-02-28T23:59:59.999999+00:00",
        "paid_at_timeframe": "last_month",
    }
    assert [row["id"] for row in json_rows(download(api, job))] == inside
    due = api.get(
        "/reports/invoices/data", params={"due_date_timeframe": "last_month", "columns": "id"}
    ).json()
    assert [row["id"] for row in due["rows"]] == [
        f["id"]
        for f in data.invoices
        if dt.date(2026, 2, 1) <= f["due_date"] <= dt.date(2026, 2, 28)
    ]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_the_database_rendered_csv_equals_the_generic_writer(
    backend: Backend, api: Api, case: int
) -> None:
    """Byte for byte, the fast path (SQLite's records, PostgreSQL's COPY, the sums' CTE and
    the zone parameter inlined) against the Python writer, with the row count and total."""
    make_invoices(Data(backend, api))
    path, raw = CASES[case]
    report = path.removeprefix("/reports/")
    params = parse_report_params(report, raw, timezone=api.timezone, for_export=True)
    files = []
    for fast in (True, False):
        out = io.BytesIO()
        with open_snapshot(engine_for(backend.database_url)) as conn:
            total = count_rows(conn, api.account_id, params)
            written = write_export(conn, api.account_id, params, out, lambda _: None, fast=fast)
        assert written == total
        files.append(out.getvalue())
    assert files[0] == files[1]
