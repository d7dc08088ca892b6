"""The grouped view's "Group by" over HTTP (SQLite and PostgreSQL): each grouping's table and
bars equal the grouped report's `/data` for the same columns and an independent sum of the
test's own line items; an unknown grouping is a 422 beside its control; the export from a
grouped page is the job the API makes for the same columns."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from ledgerline.money import currency_digits, decimal_to_scaled
from tests.conftest import Backend
from tests.console.conftest import Tenant, add_invoice, csrf_of, new_account, sign_in

AGGREGATES = "count,total_amount,total_tax_amount,total_gross_amount"
# What each grouping asks the grouped report for, written out here, not read from the console.
COLUMNS = {
    "status": f"invoice.status,{AGGREGATES}",
    "paid_month": f"invoice.paid_at_month,{AGGREGATES}",
    "customer": f"customer.id,customer.name,currency,{AGGREGATES}",
}
KEY_OF = {"status": "status", "paid_month": "paid_month", "customer": "customer"}
LONDON = ZoneInfo("Europe/London")
ROW = re.compile(
    r'<tr (?:data-type="[^"]*" )?data-group="([^"]*)" data-currency="([A-Z]{3})">(.*?)</tr>', re.S
)
CELL = re.compile(r'<td class="num" data-key="(\w+)"(?: data-minor="(-?\d+)")?>([^<]*)</td>')
SVG = re.compile(r'<svg class="chart" data-currency="([A-Z]{3})".*?</svg>', re.S)
BAR = re.compile(r'<g class="bar[^"]*" data-group="([^"]*)" data-minor="(-?\d+)">')


@dataclass(frozen=True)
class Line:
    status: str
    paid_month: str  # the local month of paid_at in London, "" when unpaid
    customer: str  # the customer's public id
    currency: str
    amount: int  # minor units
    tax: int


def minor(text: str, currency: str) -> int:
    return decimal_to_scaled(Decimal(text), currency_digits(currency))


def make_data(tenant: Tenant) -> list[Line]:
    """Invoices on both sides of a month's edge in London (23:30 UTC on 31 July is already
    August there), an unpaid one, two customers of the same name, three currencies; prices
    whose 20% tax is exact in minor units."""
    made: list[Line] = []

    def invoice(
        currency: str, status: str, paid: dt.datetime, lines: list[tuple[str, str]], **kw: Any
    ) -> None:
        body = add_invoice(tenant, currency, status, paid, lines, **kw)
        customer = tenant.get(f"/invoices/{body['id']}").json()["customer"]
        customer_id = str(customer["id"] if isinstance(customer, dict) else customer)
        month = "" if kw.get("unpaid") else paid.astimezone(LONDON).strftime("%Y-%m")
        for _kind, price in lines:
            amount = minor(price, currency)
            tax = minor(str(Decimal(price) * Decimal("0.20")), currency)
            made.append(Line(status, month, customer_id, currency, amount, tax))

    utc = dt.UTC
    invoice(
        "GBP",
        "paid",
        dt.datetime(2024, 7, 31, 22, 30, tzinfo=utc),
        [("flat_fee", "45.50"), ("course", "12")],
    )
    invoice("GBP", "paid", dt.datetime(2024, 7, 31, 23, 30, tzinfo=utc), [("flat_fee", "10")])
    invoice(
        "EUR",
        "open",
        dt.datetime(2024, 8, 10, 9, tzinfo=utc),
        [("course", "8.40"), ("service_fee", "-3.25")],
        customer_name="Grace Hopper",
        unpaid=True,
    )
    invoice(
        "JPY",
        "paid",
        dt.datetime(2024, 8, 15, 3, tzinfo=utc),
        [("store_order", "1200")],
        customer_name="Grace Hopper",
    )
    invoice(
        "GBP", "draft", dt.datetime(2024, 6, 1, 9, tzinfo=utc), [("flat_fee", "99")], unpaid=True
    )
    return made


def own_sums(lines: list[Line], group_by: str) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    """(group, currency) -> (count, amount, tax, gross), from the test's own lines."""
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for line in lines:
        group = getattr(line, KEY_OF[group_by])
        entry = sums[(group, line.currency)]
        entry[0] += 1
        entry[1] += line.amount
        entry[2] += line.tax
        entry[3] += line.amount + line.tax
    return {key: (a, b, c, d) for key, (a, b, c, d) in sums.items()}


def page_table(text: str) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    table: dict[tuple[str, str], tuple[int, int, int, int]] = {}
    for group, currency, cells in ROW.findall(text):
        found = {
            key: (int(m) if m else int(t.replace(",", ""))) for key, m, t in CELL.findall(cells)
        }
        table[(html.unescape(group), currency)] = (
            found["count"],
            found["total_amount"],
            found["total_tax_amount"],
            found["total_gross_amount"],
        )
    return table


def page_bars(text: str) -> dict[tuple[str, str], int]:
    bars: dict[tuple[str, str], int] = {}
    for svg in SVG.finditer(text):
        for group, value in BAR.findall(svg.group(0)):
            bars[(html.unescape(group), svg.group(1))] = int(value)
    return bars


def api_sums(
    tenant: Tenant, columns: str, **filters: str
) -> tuple[list[Any], dict[tuple[str, str], tuple[int, int, int, int]]]:
    answer = tenant.get(
        "/reports/invoice_line_items.grouped/data",
        params={"columns": columns, "limit": 100, **filters},
    )
    assert answer.status_code == 200, answer.text
    rows: list[Any] = json.loads(answer.text, parse_float=Decimal)["rows"]
    key = columns.split(",")[0].split(".")
    sums: dict[tuple[str, str], tuple[int, int, int, int]] = {}
    for row in rows:
        value: Any = row
        for part in key:
            value = value[part]
        currency = row["total_amount"]["iso_currency_code"].upper()
        amount, tax, gross = (
            minor(str(row[k]["decimal"]), currency)
            for k in ("total_amount", "total_tax_amount", "total_gross_amount")
        )
        sums[("" if value is None else str(value), currency)] = (
            int(row["count"]),
            amount,
            tax,
            gross,
        )
    return rows, sums


@pytest.mark.parametrize("group_by", ["status", "paid_month", "customer"])
def test_each_grouping_shows_the_apis_groups_and_the_tests_own_sums(
    group_by: str, backend: Backend, browser_client: TestClient
) -> None:
    tenant = Tenant(*new_account(backend), browser_client)
    lines = make_data(tenant)
    sign_in(browser_client, tenant.token)
    page = browser_client.get("/report/grouped", params={"group_by": group_by})
    assert page.status_code == 200, page.text
    expected = own_sums(lines, group_by)
    # Customers (a bounded grouping): by currency, then largest first, as the API sorts.
    sort = {"sort": "currency,-total_amount"} if group_by == "customer" else {}
    _rows, from_api = api_sums(tenant, COLUMNS[group_by], **sort)
    assert from_api == expected
    shown = page_table(page.text)
    assert shown == expected
    # The table is in the API's order (periods chronologically, the unpaid last).
    order = [(group, currency) for group, currency, _ in ROW.findall(page.text)]
    assert order == list(from_api)
    # One chart per currency; each bar is its group's total amount.
    assert page_bars(page.text) == {key: sums[1] for key, sums in expected.items()}
    if group_by == "paid_month":
        assert order[-2:] == [("", "EUR"), ("", "GBP")]  # the unpaid last
        assert [g for g, _ in order if g] == sorted(g for g, _ in order if g)
        assert ("2024-07", "GBP") in shown
        assert ("2024-08", "GBP") in shown
        assert "Not paid" in page.text
        assert ">Jul 2024</text>" in page.text
        assert ">Aug 2024</text>" in page.text
        assert "<h1>Line items by month paid</h1>" in page.text
    if group_by == "customer":
        # Two customers of one name are two groups, told apart by their ids.
        assert len([k for k in shown if k[1] == "GBP"]) == 3
        assert "Ada Lovelace (#" in page.text


def test_the_default_grouping_is_the_page_it_was(
    backend: Backend, browser_client: TestClient
) -> None:
    tenant = Tenant(*new_account(backend), browser_client)
    make_data(tenant)
    sign_in(browser_client, tenant.token)
    default = browser_client.get("/report/grouped")
    by_type = browser_client.get("/report/grouped?group_by=type")
    assert default.status_code == by_type.status_code == 200
    assert "<h1>Line items by type</h1>" in default.text
    assert 'data-key="count"' not in default.text
    strip = re.compile(
        r'name="csrf_token" value="[^"]+"|<input type="hidden" name="query" value="[^"]*">'
    )
    assert strip.sub("", default.text) == strip.sub("", by_type.text)


@pytest.mark.parametrize("value", ["week", "TYPE", "customer.name"])
def test_an_unknown_grouping_is_a_422_beside_its_control(
    value: str, backend: Backend, browser_client: TestClient
) -> None:
    tenant = Tenant(*new_account(backend), browser_client)
    sign_in(browser_client, tenant.token)
    answer = browser_client.get("/report/grouped", params={"group_by": value})
    assert answer.status_code == 422
    assert 'id="group_by-error"' in answer.text
    assert 'aria-invalid="true" aria-describedby="group_by-error"' in answer.text
    assert "is not a grouping" in answer.text
    assert '<svg class="chart"' not in answer.text
    # An export of it is refused and makes no job.
    refused = browser_client.post(
        "/exports",
        data={
            "csrf_token": csrf_of(answer.text),
            "report": "invoice_line_items.grouped",
            "query": f"group_by={value}",
            "format": "csv",
        },
    )
    assert refused.status_code == 422
    assert "group_by" in refused.text
    assert tenant.get("/jobs").json()["count"] == 0
    # The flat report has no such control: the problem is said at the foot of its filters.
    flat = browser_client.get("/report", params={"group_by": value})
    assert flat.status_code == 422
    assert 'id="group_by-error"' in flat.text


@pytest.mark.parametrize("group_by", ["paid_month", "customer", "status"])
def test_the_export_from_a_grouped_page_has_the_pages_columns(
    group_by: str, backend: Backend, browser_client: TestClient
) -> None:
    tenant = Tenant(*new_account(backend), browser_client)
    make_data(tenant)
    sign_in(browser_client, tenant.token)
    query = f"group_by={group_by}&invoice_status=paid"
    page = browser_client.get(f"/report/grouped?{query}")
    hidden = re.search(r'<input type="hidden" name="query" value="([^"]*)">', page.text)
    assert hidden is not None
    assert html.unescape(hidden.group(1)) == query
    answer = browser_client.post(
        "/exports",
        data={
            "csrf_token": csrf_of(page.text),
            "report": "invoice_line_items.grouped",
            "query": html.unescape(hidden.group(1)),
            "format": "json",
        },
    )
    assert answer.status_code == 303, answer.text
    job = tenant.get(f"/jobs/{answer.headers['location'].rsplit('/', 1)[1]}").json()
    assert job["params"]["columns"] == COLUMNS[group_by].split(",")
    # The very job the API makes for the same columns (and sort).
    request = {"format": "json", "invoice_status": "paid", "columns": COLUMNS[group_by]}
    if group_by == "customer":
        request["sort"] = "currency,-total_amount"
    api_job = tenant.post("/reports/invoice_line_items.grouped/export", json=request).json()["job"]
    assert job["params"] == tenant.get(f"/jobs/{api_job}").json()["params"]


def test_customers_show_the_50_largest_of_each_currency_and_say_the_export_has_all(
    backend: Backend, browser_client: TestClient
) -> None:
    tenant = Tenant(*new_account(backend), browser_client)
    paid = dt.datetime(2024, 7, 1, 12, tzinfo=dt.UTC)
    for index in range(53):
        price = f"{index + 1}.05"
        add_invoice(
            tenant,
            "GBP",
            "paid",
            paid,
            [("flat_fee", price)],
            customer_name=f"Customer {index:02d}",
        )
    # Large in yen's major units, yet no reason to push a pound customer off the page.
    for price in ("100000", "5"):
        add_invoice(tenant, "JPY", "paid", paid, [("store_order", price)], customer_name="Kenji")
    sign_in(browser_client, tenant.token)
    page = browser_client.get("/report/grouped?group_by=customer")
    assert page.status_code == 200
    shown = page_table(page.text)
    pounds = [sums[1] for (_, currency), sums in shown.items() if currency == "GBP"]
    yen = [sums[1] for (_, currency), sums in shown.items() if currency == "JPY"]
    # The largest first: 53.05, 52.05, … 4.05; the three smallest are left to the export.
    assert pounds == [100 * n + 5 for n in range(53, 3, -1)]
    assert yen == [100000, 5]
    _rows, from_api = api_sums(tenant, COLUMNS["customer"], sort="currency,-total_amount")
    api = list(from_api.items())
    assert list(shown.items()) == api[:50] + api[53:]
    assert "Showing the 50 largest customer groups of each currency" in page.text
    assert "GBP: 50 of 53" in page.text
    assert "The export has all 55 groups" in page.text


@pytest.mark.parametrize(
    "group_by",
    [
        "type",
        "status",
        "customer",
        "venue",
        "currency",
        "paid_month",
        "paid_quarter",
        "paid_year",
        "due_month",
    ],
)
def test_every_grouping_adds_up_to_each_currencys_lines(
    group_by: str, backend: Backend, browser_client: TestClient
) -> None:
    """Whatever the grouping, its groups of one currency hold every line of that currency
    once: the counts and totals add up to the test's own per-currency sums."""
    tenant = Tenant(*new_account(backend), browser_client)
    lines = make_data(tenant)
    sign_in(browser_client, tenant.token)
    page = browser_client.get("/report/grouped", params={"group_by": group_by})
    assert page.status_code == 200, page.text
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in lines:
        expected[line.currency][0] += 1
        expected[line.currency][1] += line.amount
    added: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _group, currency, cells in ROW.findall(page.text):
        found = {key: (m, t) for key, m, t in CELL.findall(cells)}
        if group_by != "type":
            added[currency][0] += int(found["count"][1])
        added[currency][1] += int(found["total_amount"][0])
    assert {c: v[1] for c, v in added.items()} == {c: v[1] for c, v in expected.items()}
    if group_by != "type":
        assert {c: v[0] for c, v in added.items()} == {c: v[0] for c, v in expected.items()}
    if group_by == "venue":
        assert "No venue" in page.text  # no customer of these has a venue
    if group_by == "paid_quarter":
        assert ">Q3 2024</text>" in page.text
