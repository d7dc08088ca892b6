"""GET /reports/invoice_line_items.grouped/data: totals per type and currency."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.conftest import assert_problem
from tests.reports.conftest import Data
from tests.reports.expected import major
from tests.reports.test_data import fetch

GROUPED = "/reports/invoice_line_items.grouped/data"


def _sums(data: Data, keep: Any = None) -> dict[tuple[str, str], int]:
    sums: dict[tuple[str, str], int] = {}
    for line in data.lines:
        if keep is None or keep(line):
            key = (line.type, line.currency)
            sums[key] = sums.get(key, 0) + line.amount
    return sums


def test_totals_per_type_and_currency(sample: Data) -> None:
    body = fetch(sample.api, GROUPED)
    sums = _sums(sample)
    assert body["total"] == len(sums)
    got = [
        (
            row["type"],
            row["total_amount"]["iso_currency_code"].upper(),
            row["total_amount"]["decimal"],
        )
        for row in body["rows"]
    ]
    expected = [(kind, cur, major(amount, cur)) for (kind, cur), amount in sorted(sums.items())]
    assert got == expected  # default sort: type, then currency
    assert [h["key"] for h in body["column_headers"]] == ["type", "total_amount"]
    assert body["column_headers"][0]["sorted"] == {"order": "asc", "priority": 1}
    # flat_fee exists in GBP, EUR and JPY: three rows, never one mixed total
    assert sum(1 for row in body["rows"] if row["type"] == "flat_fee") == 3


def test_only_total_amount_is_one_row_per_currency(sample: Data) -> None:
    body = fetch(sample.api, GROUPED, columns="total_amount")
    per_currency: dict[str, int] = {}
    for line in sample.lines:
        per_currency[line.currency] = per_currency.get(line.currency, 0) + line.amount
    assert body["total"] == len(per_currency) == 3
    assert [
        (row["total_amount"]["iso_currency_code"].upper(), row["total_amount"]["decimal"])
        for row in body["rows"]
    ] == [(cur, major(amount, cur)) for cur, amount in sorted(per_currency.items())]
    assert all(set(row) == {"total_amount"} for row in body["rows"])


def test_grouped_filters_and_sort_by_total(sample: Data) -> None:
    body = fetch(sample.api, GROUPED, invoice_status="paid,open,draft", sort="-total_amount")
    sums = _sums(sample, lambda line: line.invoice["status"] in ("paid", "open", "draft"))
    expected = sorted(sums.items(), key=lambda item: (-item[1], item[0][0], item[0][1]))
    assert [
        (row["type"], row["total_amount"]["iso_currency_code"].upper()) for row in body["rows"]
    ] == [key for key, _ in expected]
    assert [row["total_amount"]["decimal"] for row in body["rows"]] == [
        major(amount, cur) for (_, cur), amount in expected
    ]
    assert all(
        isinstance(row["total_amount"]["decimal"], int | Decimal) for row in body["rows"]
    )  # exact literals, never a float


def test_grouped_paging(sample: Data) -> None:
    everything = [
        (row["type"], row["total_amount"]["iso_currency_code"])
        for row in fetch(sample.api, GROUPED)["rows"]
    ]
    pages = []
    for number in (1, 2, 3):
        response = sample.api.get(GROUPED, params={"page": number, "page_size": 3})
        assert response.status_code == 200
        pages += [
            (r["type"], r["total_amount"]["iso_currency_code"]) for r in response.json()["rows"]
        ]
    assert pages == everything


def test_grouped_bad_columns_and_sort(sample: Data) -> None:
    assert_problem(sample.api.get(GROUPED, params={"columns": "amount"}), 422, "columns")
    assert_problem(
        sample.api.get(GROUPED, params={"columns": "total_amount", "sort": "type"}), 422, "sort"
    )
    assert_problem(sample.api.get(GROUPED, params={"sort": "description"}), 422, "sort")


def test_grouped_tenancy(sample: Data, other_api: Any, backend: Any) -> None:
    other = Data(backend, other_api)
    other.invoice([{"amount": 123456, "type": "flat_fee"}])
    body = fetch(sample.api, GROUPED, columns="total_amount")
    gbp = [row for row in body["rows"] if row["total_amount"]["iso_currency_code"] == "gbp"]
    assert gbp[0]["total_amount"]["decimal"] == major(
        sum(line.amount for line in sample.lines if line.currency == "GBP"), "GBP"
    )
    assert fetch(other_api, GROUPED)["total"] == 1


def test_only_type_is_one_row_per_type(sample: Data) -> None:
    """Nothing is summed, so rows are not split by a currency they do not show."""
    body = fetch(sample.api, GROUPED, columns="type", sort="-type")
    kinds = sorted({line.type for line in sample.lines}, reverse=True)
    assert [row for row in body["rows"]] == [{"type": kind} for kind in kinds]
    assert body["total"] == len(kinds)


def test_double_slash_path_and_openapi(sample: Data) -> None:
    response = sample.api.get("/api/v2//reports/invoice_line_items.grouped/data")
    assert response.status_code == 200, response.text
    assert response.json()["total"] == len(_sums(sample))
    paths = sample.api.client.get("/openapi.json").json()["paths"]
    assert "/api/v2/reports/invoice_line_items/data" in paths
    assert "/api/v2/reports/invoice_line_items.grouped/data" in paths
