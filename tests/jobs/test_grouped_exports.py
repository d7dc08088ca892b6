"""Exports of line items grouped by anything (issue 13): the CSV and JSON files of a grouped
request hold exactly what `/data` answers for it, through the same jobs; the account's time
zone is recorded on the job only when a period key needs it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from ledgerline.jobs.queue import JobQueue
from tests.conftest import Api, Backend, TenantFactory
from tests.jobs.conftest import csv_rows, download, json_rows, wait_for_job
from tests.reports.conftest import Data, at
from tests.reports.expected import plain
from tests.reports.test_data import fetch
from tests.reports.test_grouped_any import minor_of

GROUPED = "/reports/invoice_line_items.grouped/data"
EXPORT = "/reports/invoice_line_items.grouped/export"


@pytest.fixture
def lines(backend: Backend, make_tenant: TenantFactory) -> Data:
    """Invoices in three currencies, months and statuses, with and without customers,
    billed items, discounts, taxes and a credit note; the account in New York."""
    data = Data(backend, make_tenant(timezone="America/New_York"))
    ada = data.customer("Ada", "ada@example.com", data.venue("North hall"))
    bob = data.customer("=Bob")
    data.invoice(
        [
            {"type": "flat_fee", "amount": 4550, "tax_amount": 910},
            {
                "type": "course",
                "amount": 12000,
                "discount_amount": 500,
                "billed_item_object": "course",
                "billed_item_id": 77,
            },
        ],
        status="paid",
        customer=ada,
        due_date=dt.date(2026, 12, 31),
        paid_at=at("2027-01-01T04:59:59"),  # 31 December in New York
        confirmed_at=at("2026-12-01T00:00:00"),
    )
    data.invoice(
        [{"type": "flat_fee", "amount": 1000}, {"type": "store_order", "amount": -350}],
        status="paid",
        customer=bob,
        due_date=dt.date(2027, 1, 1),
        paid_at=at("2027-01-01T05:00:00"),  # 1 January in New York
    )
    data.invoice(
        [{"type": "flat_fee", "amount": 700, "tax_amount": 140}],
        currency="EUR",
        status="open",
        customer=ada,
        is_credit_note=True,
    )
    data.invoice([{"type": "flat_fee", "amount": 1200}], currency="JPY", status="draft")
    return data


def _at_path(row: dict[str, Any], key: str) -> Any:
    value: Any = row
    for part in key.split("."):
        value = value[part]
    return value


def _cell(value: Any) -> tuple[str, str | None]:
    """A /data value as its CSV cell, and the currency of a money value."""
    if isinstance(value, dict) and "iso_currency_code" in value:
        currency = str(value["iso_currency_code"]).upper()
        return plain(minor_of(value["decimal"], currency), currency), currency
    if isinstance(value, dict):  # billed_item
        return f"{value['object']}:{value['id']}", None
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if value is None:
        return "", None
    text = str(value)
    return ("'" + text if text[:1] in ("=", "+", "-", "@") else text), None


@pytest.mark.parametrize(
    ("columns", "sort"),
    [
        (
            "invoice.paid_at_month,customer.name,count,total_amount,total_gross_amount",
            ["-count", "paid_at_month"],
        ),
        ("invoice.status,count", ["-count"]),
        ("currency,type,total_tax_amount,total_discount_amount", ["-total_tax_amount"]),
        (
            "billed_item,invoice.is_credit_note,invoice.due_date_quarter,count",
            ["-due_date_quarter"],
        ),
        ("type,total_amount", ["type"]),
    ],
)
def test_csv_and_json_exports_equal_data(
    lines: Data, consumer: JobQueue, columns: str, sort: list[str]
) -> None:
    api = lines.api
    body = fetch(api, GROUPED, columns=columns, sort=",".join(sort))
    assert body["total"] > 1
    files = {}
    for file_format in ("json", "csv"):
        response = api.post(
            EXPORT, json={"columns": columns.split(","), "sort": sort, "format": file_format}
        )
        assert response.status_code == 200, response.text
        job = wait_for_job(api, response.json()["job"])
        assert job["status"] == "succeeded", job
        assert job["result"]["row_count"] == body["total"]
        files[file_format] = download(api, job)
    assert json_rows(files["json"]) == body["rows"]
    table = csv_rows(files["csv"])
    assert len(table) == len(body["rows"])
    labels = [header["label"] for header in body["column_headers"]]
    for row, data_row in zip(table, body["rows"], strict=True):
        cells = [_cell(_at_path(data_row, header["key"])) for header in body["column_headers"]]
        assert [row[label] for label in labels] == [cell for cell, _ in cells]
        currencies = {currency for _, currency in cells if currency}
        if currencies and "currency" not in columns.split(","):
            assert [row["Currency"]] == list(currencies)
    header = files["csv"].split(b"\r\n", 1)[0].decode()
    assert header.split(",").count("Currency") <= 1


def test_export_records_the_zone_only_for_period_keys(lines: Data, consumer: JobQueue) -> None:
    api = lines.api
    documented = api.post(EXPORT, json={"columns": ["type", "total_amount"]})
    job = wait_for_job(api, documented.json()["job"])
    assert "timezone" not in job["params"]
    periods = api.post(EXPORT, json={"columns": ["paid_at_month", "count"], "format": "json"})
    job = wait_for_job(api, periods.json()["job"])
    assert job["status"] == "succeeded", job
    assert job["params"]["timezone"] == "America/New_York"
    assert job["params"]["columns"] == ["invoice.paid_at_month", "count"]
    rows = json_rows(download(api, job))
    assert rows == fetch(api, GROUPED, columns="paid_at_month,count")["rows"]
    assert {row["invoice"]["paid_at_month"]: row["count"] for row in rows} == {
        "2026-12": "2",
        "2027-01": "2",
        None: "2",
    }


def test_count_only_export_has_no_currency_column(lines: Data, consumer: JobQueue) -> None:
    api = lines.api
    response = api.post(
        EXPORT, json={"columns": ["invoice.status", "count"], "sort": ["invoice.status"]}
    )
    job = wait_for_job(api, response.json()["job"])
    assert csv_rows(download(api, job)) == [
        {"Invoice status": "draft", "Count": "1"},
        {"Invoice status": "open", "Count": "1"},
        {"Invoice status": "paid", "Count": "4"},
    ]


def test_other_accounts_jobs_see_only_their_lines(
    lines: Data, consumer: JobQueue, other_api: Api
) -> None:
    Data(lines.backend, other_api).invoice([{"amount": 99999}], status="paid")
    response = lines.api.post(EXPORT, json={"columns": ["count", "total_amount"], "format": "json"})
    job = wait_for_job(lines.api, response.json()["job"])
    rows = json_rows(download(lines.api, job))
    assert sorted((row["total_amount"]["iso_currency_code"], row["count"]) for row in rows) == [
        ("eur", "1"),
        ("gbp", "4"),
        ("jpy", "1"),
    ]
