"""Exports sorted by a money column order rows by major units across currencies, in both
file formats and on both databases (PostgreSQL's CSV comes from COPY, SQLite's from SQL
records: each renders the same ORDER BY)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledgerline.jobs.queue import JobQueue
from tests.conftest import Api
from tests.factories import add_line_item, create_invoice
from tests.jobs.conftest import csv_rows, download, json_rows, wait_for_job

AMOUNTS = {
    "GBP": ["1.50", "0.99", "-2.50", "12.00", "5.00"],
    "JPY": ["2", "12", "-3", "5", "1"],
    "KWD": ["1.500", "0.999", "-2.501", "4.000", "12.000"],
}


@pytest.mark.parametrize(("fmt", "sort"), [("csv", "-amount"), ("json", "amount")])
def test_export_sorted_by_amount_uses_major_units(
    api: Api, consumer: JobQueue, fmt: str, sort: str
) -> None:
    lines: list[tuple[int, Decimal]] = []
    for currency, amounts in AMOUNTS.items():
        invoice = create_invoice(api, currency=currency)
        for amount in amounts:
            line = add_line_item(api, invoice["id"], type="flat_fee", amount=amount)
            lines.append((line["id"], Decimal(amount)))
    response = api.post(
        "/reports/invoice_line_items/export",
        json={"columns": ["id", "amount"], "sort": [sort], "format": fmt},
    )
    assert response.status_code == 200, response.text
    job = wait_for_job(api, response.json()["job"])
    assert job["status"] == "succeeded", job
    content = download(api, job)
    descending = sort.startswith("-")
    expected = [i for i, _ in sorted(sorted(lines), key=lambda p: p[1], reverse=descending)]
    if fmt == "csv":
        got = [int(row["ID"]) for row in csv_rows(content)]
    else:
        got = [row["id"] for row in json_rows(content)]
    assert got == expected
    # Not simply id order, nor the raw minor units (12000 KWD-thousandths first).
    assert [i for i, _ in sorted(lines)] != got
    minor = {"GBP": 100, "JPY": 1, "KWD": 1000}
    by_raw = sorted(
        ((i, amount * minor[c]) for c, (i, amount) in zip(_currencies(), lines, strict=True)),
        key=lambda p: p[1],
        reverse=descending,
    )
    assert [i for i, _ in by_raw] != got


def _currencies() -> list[str]:
    return [currency for currency, amounts in AMOUNTS.items() for _ in amounts]
