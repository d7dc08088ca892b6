"""TeamUp's invoices report (issue 13): /reports/invoices/data and the grouped variant.

Every expectation is computed here from the test's own invoices and lines (conftest `Data`),
never by report code: each column, filter and sort, each grouped cut with `count`, the
reconciliation with the line items report, bad input, tenancy and the page's SQL.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.dialects import postgresql, sqlite

from ledgerline.reports.columns import INVOICES
from ledgerline.reports.query import page_statement, parse_report_params
from tests.conftest import Api, Backend, TenantFactory, assert_problem
from tests.openapi_check import assert_matches_openapi
from tests.reports.conftest import Data, at
from tests.reports.expected import DIGITS, SYMBOLS, major

DATA = "/reports/invoices/data"
GROUPED = "/reports/invoices.grouped/data"
EXPORT = "/reports/invoices/export"
GROUPED_EXPORT = "/reports/invoices.grouped/export"
UTC = dt.UTC

# TeamUp's purchase types and the line types each stands for, in TeamUp's order: an
# invoice's purchase type is the first of these its lines stand for (docs/reports.md).
PURCHASE_ORDER = {
    "class": {"event_registration"},
    "course": {"course"},
    "course_session": {"course_session"},
    "membership": {
        "pack_membership",
        "prepaid_plan_membership",
        "recurring_plan_membership",
        "membership_purchase",
    },
    "store": {"store_order"},
}
AMOUNT_KEYS = (
    "total_amount",
    "subtotal_amount",
    "discount_amount",
    "tax_amount",
    "credit_amount",
    "adjustment_amount",
    "expected_payment_amount",
    "refund_amount",
)
DEFAULT_COLUMNS = (
    "id",
    "due_date",
    "confirmed_at",
    "paid_at",
    "status",
    "is_credit_note",
    "number",
    "customer.id",
    "customer.name",
    "customer.email",
    "customer.venue.id",
    "customer.venue.name",
    "total_amount",
    "subtotal_amount",
    "discount_amount",
    "tax_amount",
    "credit_amount",
    "adjustment_amount",
    "expected_payment_amount",
    "refund_amount",
    "discount_code.name",
    "discount_code.code",
    "purchase_type",
    "updated_at",
)


# --- the test's own view of each invoice ------------------------------------------------------


def facts(data: Data) -> list[dict[str, Any]]:
    """Each invoice with its sums and derived values, from the test's inputs."""
    found = []
    for invoice in data.invoices:
        lines = [line for line in data.lines if line.invoice_id == invoice["id"]]
        amount = sum(line.amount for line in lines)
        tax = sum(line.tax_amount for line in lines)
        discount = sum(line.discount_amount for line in lines)
        credit = sum(line.credit_amount for line in lines)
        refund = sum(line.refund_amount for line in lines)
        types = {line.type for line in lines}
        purchase = next((name for name, of in PURCHASE_ORDER.items() if types & of), None)
        found.append(
            {
                **invoice,
                "money": {
                    "total_amount": amount + tax,
                    "subtotal_amount": amount + discount,
                    "discount_amount": discount,
                    "tax_amount": tax,
                    "credit_amount": credit,
                    "adjustment_amount": 0,
                    "expected_payment_amount": amount + tax - credit - refund,
                    "refund_amount": refund,
                },
                "purchase_type": purchase,
                "discount_applied": any(line.discount_amount != 0 for line in lines),
                "credit_applied": any(line.credit_amount != 0 for line in lines),
            }
        )
    return found


def money(minor: int, currency: str) -> dict[str, Any]:
    digits = DIGITS[currency]
    whole, fraction = divmod(abs(minor), 10**digits)
    sign = "-" if minor < 0 else ""
    shown = f"{sign}{SYMBOLS[currency]}{whole:,}" + (f".{fraction:0{digits}d}" if digits else "")
    return {
        "decimal": major(minor, currency),
        "string": shown,
        "iso_currency_code": currency.lower(),
        "currency_symbol": SYMBOLS[currency],
        "currency_symbol_position": "before",
    }


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).isoformat()
    return value.isoformat()


def value_of(fact: dict[str, Any], key: str) -> Any:
    """A column's raw value for an invoice (money in minor units)."""
    customer = fact["customer"]
    venue = customer["venue"] if customer else None
    if key in fact["money"]:
        return fact["money"][key]
    if key.startswith("customer.venue."):
        return venue[key.rsplit(".", 1)[1]] if venue else None
    if key.startswith("customer."):
        return customer[key.split(".")[1]] if customer else None
    if key == "discount_code.name":
        return fact["discount_code_name"]
    if key == "discount_code.code":
        return fact["discount_code_code"]
    return fact[key]


def expected_row(fact: dict[str, Any]) -> dict[str, Any]:
    currency = fact["currency"]
    customer = fact["customer"]
    venue = customer["venue"] if customer else None
    return {
        "id": fact["id"],
        "due_date": _iso(fact["due_date"]),
        "confirmed_at": _iso(fact["confirmed_at"]),
        "paid_at": _iso(fact["paid_at"]),
        "status": fact["status"],
        "is_credit_note": fact["is_credit_note"],
        "number": fact["number"],
        "customer": {
            "id": customer["id"] if customer else None,
            "name": customer["name"] if customer else None,
            "email": customer["email"] if customer else None,
            "venue": {
                "id": venue["id"] if venue else None,
                "name": venue["name"] if venue else None,
            },
        },
        **{key: money(fact["money"][key], currency) for key in AMOUNT_KEYS},
        "discount_code": {"name": fact["discount_code_name"], "code": fact["discount_code_code"]},
        "purchase_type": fact["purchase_type"],
        "updated_at": _iso(fact["updated_at"]),
    }


def fetch(api: Api, path: str = DATA, **params: Any) -> dict[str, Any]:
    response = api.get(path, params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json(parse_float=Decimal)
    return body


def ids(body: dict[str, Any]) -> list[int]:
    return [row["id"] for row in body["rows"]]


@pytest.fixture
def invoices(data: Data) -> Data:
    return make_invoices(data)


def make_invoices(data: Data) -> Data:
    """Invoices in GBP, EUR and JPY; customers with and without venue or email; every way an
    invoice's purchase type is derived; an invoice without lines; discounts, credits, refunds."""
    north = data.venue("North hall")
    ada = data.customer("Ada", "ada@example.com", north)
    bob = data.customer("Bob", None, None)
    cat = data.customer("=Cat", "cat@example.com", data.venue("@South"))
    data.invoice(
        [
            {"type": "flat_fee", "amount": 4550, "tax_amount": 910},
            {
                "type": "recurring_plan_membership",
                "amount": 12000,
                "discount_amount": 500,
                "tax_amount": 2400,
            },
            {"type": "store_order", "amount": -350},
        ],
        status="paid",
        customer=ada,
        due_date=dt.date(2024, 7, 1),
        confirmed_at=at("2024-06-20T09:00:00"),
        paid_at=at("2024-07-02T12:00:00"),
        updated_at=at("2024-07-02T12:00:00"),
        discount_code=("Summer", "SUMMER10"),
    )
    data.invoice(
        [
            {"type": "event_registration", "amount": 1000},
            {"type": "gift_card", "amount": 2500, "refund_amount": 2500},
            {"type": "course", "amount": 700, "credit_amount": 100},
        ],
        status="open",
        customer=bob,
        due_date=dt.date(2024, 7, 15),
        confirmed_at=at("2024-07-01T00:00:00"),
        updated_at=at("2024-07-10T08:30:00"),
    )
    data.invoice(
        [
            {"type": "course_session", "amount": 300, "credit_amount": 100},
            {"type": "flat_fee", "amount": 700},
        ],
        currency="EUR",
        status="draft",
        customer=cat,
        updated_at=at("2024-07-31T23:00:00"),
        is_credit_note=True,
    )
    data.invoice(
        [{"type": "store_order", "amount": 5}, {"type": "flat_fee", "amount": 1200}],
        currency="JPY",
        status="voided",
        due_date=dt.date(2024, 8, 1),
        confirmed_at=at("2024-07-31T23:30:00"),
        updated_at=at("2024-08-01T00:00:00"),
    )
    data.invoice(
        [],
        status="paid",
        customer=ada,
        due_date=dt.date(2024, 8, 10),
        confirmed_at=at("2024-08-01T09:00:00"),
        paid_at=at("2024-08-15T10:00:00"),
        updated_at=at("2024-08-15T10:00:00"),
    )
    data.invoice(
        [{"type": "joining_fee", "amount": 2000, "tax_amount": 400, "discount_amount": 100}],
        status="pending",
        customer=bob,
        due_date=dt.date(2025, 1, 5),
        confirmed_at=at("2024-12-31T23:30:00"),
        paid_at=at("2025-01-01T00:30:00"),
        updated_at=at("2025-01-01T00:30:00"),
    )
    return data


# --- columns -----------------------------------------------------------------------------------


def test_every_column_matches_the_invoices_own_values(invoices: Data, app: FastAPI) -> None:
    body = fetch(invoices.api)
    raw = invoices.api.get(DATA).json()
    assert_matches_openapi(app, "GET", "/api/v2" + DATA, 200, raw)
    grouped = invoices.api.get(GROUPED, params={"columns": ",".join((*GROUP_KEYS, "count"))})
    assert_matches_openapi(app, "GET", "/api/v2" + GROUPED, 200, grouped.json())
    expected = [expected_row(fact) for fact in sorted(facts(invoices), key=lambda f: f["id"])]
    assert body["total"] == len(expected) == 6
    assert [header["key"] for header in body["column_headers"]] == list(DEFAULT_COLUMNS)
    assert body["rows"] == expected
    # The invoice without lines has zeros in its own currency and no purchase type.
    empty = next(row for row in body["rows"] if row["total_amount"]["decimal"] == 0)
    assert empty["purchase_type"] is None
    assert empty["expected_payment_amount"]["string"] == "£0.00"


@pytest.mark.parametrize(
    ("alias", "key"),
    [
        ("customer_id", "customer.id"),
        ("customer", "customer.id"),
        ("customer_name", "customer.name"),
        ("customer_email", "customer.email"),
        ("customer_venue_id", "customer.venue.id"),
        ("customer.venue", "customer.venue.id"),
        ("customer_venue_name", "customer.venue.name"),
        ("discount_code_name", "discount_code.name"),
        ("discount_code", "discount_code.code"),
    ],
)
def test_aliases_name_their_column(invoices: Data, alias: str, key: str) -> None:
    by_alias = fetch(invoices.api, columns=f"id,{alias}")
    by_key = fetch(invoices.api, columns=f"id,{key}")
    assert by_alias == by_key
    assert by_alias["column_headers"][1]["key"] == key


def test_headers_mark_the_customer_id_and_the_sort(invoices: Data) -> None:
    body = fetch(invoices.api, columns="customer.id,total_amount", sort="-total_amount,id")
    assert body["column_headers"] == [
        {
            "label": "Customer ID",
            "key": "customer.id",
            "sortable": True,
            "holds_customer_id": True,
            "required": False,
        },
        {
            "label": "Total amount",
            "key": "total_amount",
            "sortable": True,
            "holds_customer_id": False,
            "sorted": {"order": "desc", "priority": 1},
            "required": False,
        },
    ]


def test_total_amount_is_the_invoice_gross_total(api: Api) -> None:
    """One source of truth: the report's total_amount is GET /invoices/{id}'s gross_total."""
    invoice = api.post("/invoices", json={}).json()
    for body in (
        {"type": "course", "quantity": "3", "unit_price": "10.005", "tax_rate": "0.20"},
        {"type": "flat_fee", "amount": "7.35", "discount_amount": "1.10", "tax_rate": "0.175"},
        {"type": "store_order", "amount": "-2.00", "credit_amount": "0.50"},
    ):
        created = api.post(f"/invoices/{invoice['id']}/line_items", json=body)
        assert created.status_code == 201, created.text
    shown = api.get(f"/invoices/{invoice['id']}").json(parse_float=Decimal)
    (row,) = fetch(api, columns="id,total_amount,subtotal_amount,discount_amount")["rows"]
    assert row["id"] == invoice["id"]
    assert row["total_amount"] == shown["gross_total"]
    assert row["subtotal_amount"]["decimal"] - row["discount_amount"]["decimal"] == Decimal(
        str(shown["net_total"]["decimal"])
    )


# --- filters -----------------------------------------------------------------------------------


def _between(value: Any, low: Any = None, high: Any = None) -> bool:
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value <= high)


Case = tuple[Callable[[Data], dict[str, Any]], Callable[[dict[str, Any], Data], bool]]


def _customer(data: Data, name: str) -> int:
    found: int = next(
        f["customer"]["id"]
        for f in data.invoices
        if f["customer"] and f["customer"]["name"] == name
    )
    return found


FILTER_CASES: list[Case] = [
    (lambda d: {"status": "paid"}, lambda f, d: f["status"] == "paid"),
    (lambda d: {"status": "paid,draft"}, lambda f, d: f["status"] in ("paid", "draft")),
    (
        lambda d: {"due_date_gte": "2024-07-15"},
        lambda f, d: _between(f["due_date"], dt.date(2024, 7, 15)),
    ),
    (
        lambda d: {"due_date_lte": "2024-07-15"},
        lambda f, d: _between(f["due_date"], None, dt.date(2024, 7, 15)),
    ),
    (
        lambda d: {"due_date_gte": "2024-07-01", "due_date_lte": "2024-07-01"},
        lambda f, d: f["due_date"] == dt.date(2024, 7, 1),
    ),
    (
        # 13:00 in London (BST) is 12:00 UTC, exactly the first invoice's paid_at: included
        lambda d: {"paid_at_lte": "2024-07-02T13:00:00"},
        lambda f, d: _between(f["paid_at"], None, at("2024-07-02T12:00:00")),
    ),
    (
        lambda d: {"paid_at_gte": "2024-07-02T12:00:01Z"},
        lambda f, d: _between(f["paid_at"], at("2024-07-02T12:00:01")),
    ),
    (
        # the EUR invoice updated at 23:00 UTC on 31 July is 1 August in London
        lambda d: {"updated_at_lte": "2024-07-31"},
        lambda f, d: _between(f["updated_at"], None, at("2024-07-31T22:59:59.999999")),
    ),
    (
        lambda d: {"confirmed_at_gte": "2024-07-01", "confirmed_at_lte": "2024-07-31"},
        lambda f, d: _between(
            f["confirmed_at"], at("2024-06-30T23:00:00"), at("2024-07-31T22:59:59.999999")
        ),
    ),
    (
        lambda d: {"customers": str(_customer(d, "Ada"))},
        lambda f, d: f["customer"] is not None and f["customer"]["name"] == "Ada",
    ),
    (
        lambda d: {"customers": [str(_customer(d, "Ada")), str(_customer(d, "=Cat"))]},
        lambda f, d: f["customer"] is not None and f["customer"]["name"] in ("Ada", "=Cat"),
    ),
    (
        lambda d: {"customers": f"{_customer(d, 'Bob')},{_customer(d, '=Cat')}"},
        lambda f, d: f["customer"] is not None and f["customer"]["name"] in ("Bob", "=Cat"),
    ),
    (lambda d: {"purchase_types": "membership"}, lambda f, d: f["purchase_type"] == "membership"),
    (
        lambda d: {"purchase_types": "class,store"},
        lambda f, d: f["purchase_type"] in ("class", "store"),
    ),
    (
        lambda d: {"purchase_types": ["course_session", "course"]},
        lambda f, d: f["purchase_type"] in ("course_session", "course"),
    ),
    (lambda d: {"discount_applied": "true"}, lambda f, d: f["discount_applied"]),
    (lambda d: {"discount_applied": "false"}, lambda f, d: not f["discount_applied"]),
    (lambda d: {"credit_applied": "true"}, lambda f, d: f["credit_applied"]),
    (lambda d: {"credit_applied": "false"}, lambda f, d: not f["credit_applied"]),
    (
        lambda d: {"id_gt": str(d.invoices[1]["id"])},
        lambda f, d: f["id"] > d.invoices[1]["id"],
    ),
    (
        lambda d: {"status": "paid,pending", "customers": str(_customer(d, "Ada"))},
        lambda f, d: (
            f["status"] in ("paid", "pending")
            and f["customer"] is not None
            and f["customer"]["name"] == "Ada"
        ),
    ),
    (
        lambda d: {"discount_applied": "true", "purchase_types": "membership,class"},
        lambda f, d: f["discount_applied"] and f["purchase_type"] in ("membership", "class"),
    ),
]


@pytest.mark.parametrize("case", range(len(FILTER_CASES)))
def test_each_filter_selects_what_the_invoices_say(invoices: Data, case: int) -> None:
    make_params, keep = FILTER_CASES[case]
    params = make_params(invoices)
    expected = sorted(f["id"] for f in facts(invoices) if keep(f, invoices))
    body = fetch(invoices.api, columns="id", **params)
    assert ids(body) == expected, params
    assert body["total"] == len(expected)
    # The same filter on the grouped report counts the same invoices.
    grouped = fetch(invoices.api, GROUPED, columns="count", **params)
    assert sum(int(row["count"]) for row in grouped["rows"]) == len(expected)


def test_a_json_export_body_takes_lists_and_booleans(invoices: Data) -> None:
    """The export parses its body with the same rules (and creates no job for a bad one)."""
    ada = _customer(invoices, "Ada")
    response = invoices.api.post(
        EXPORT,
        json={"customers": [ada], "discount_applied": True, "purchase_types": ["membership"]},
    )
    assert response.status_code == 200, response.text
    job = invoices.api.get(f"/jobs/{response.json()['job']}").json()
    assert job["params"]["filters"] == {
        "customers": [ada],
        "discount_applied": True,
        "purchase_types": ["membership"],
    }
    # No column here depends on the account's zone (the filters' bounds are resolved to UTC
    # instants already): the zone is recorded only for local periods.
    assert "timezone" not in job["params"]


# --- sort and paging ---------------------------------------------------------------------------

SORTABLE = [key for key in DEFAULT_COLUMNS]


def _sort_value(fact: dict[str, Any], key: str) -> Any:
    value = value_of(fact, key)
    if key in AMOUNT_KEYS:
        return major(value, fact["currency"])
    return value


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("key", SORTABLE)
def test_each_column_sorts_as_its_values(invoices: Data, key: str, descending: bool) -> None:
    """NULLs last ascending and first descending; money in major units; ties by id."""

    def order_key(fact: dict[str, Any]) -> tuple[Any, ...]:
        value = _sort_value(fact, key)
        return (1,) if value is None else (0, value)

    by_id = sorted(facts(invoices), key=lambda f: f["id"])
    expected = [f["id"] for f in sorted(by_id, key=order_key, reverse=descending)]
    sort = ("-" if descending else "") + key
    assert ids(fetch(invoices.api, columns="id", sort=sort)) == expected


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"sort": "-total_amount"},
        {"sort": "customer.name,-due_date"},
        {"purchase_types": "membership,class,store,course_session"},
        {"sort": "purchase_type", "status": "paid,open,draft,voided,pending"},
    ],
)
def test_pages_concatenate_to_the_whole_report(invoices: Data, params: dict[str, str]) -> None:
    """Whether the page's invoices are chosen before their sums (sort and filters on invoice
    columns) or after (on the sums), pages are the report, cut."""
    whole = fetch(invoices.api, **params)
    pages: list[dict[str, Any]] = []
    for page in range(1, 5):
        response = invoices.api.get(DATA, params={"page": page, "page_size": 2, **params})
        assert response.status_code == 200, response.text
        body = response.json(parse_float=Decimal)
        assert body["total"] == whole["total"]
        pages += body["rows"]
    assert pages == whole["rows"]
    offset = fetch(invoices.api, limit="3", offset="2", **params)
    assert offset["rows"] == whole["rows"][2:5]


def test_a_page_sums_only_its_own_invoices() -> None:
    """The page's invoices are chosen first; the sums are taken over their lines only, unless
    the sort (or a filter) reads the sums."""
    for dialect in (sqlite.dialect(), postgresql.dialect()):  # type: ignore[no-untyped-call]
        params = parse_report_params(INVOICES, {}, timezone="UTC", for_export=False)
        sql = str(page_statement(1, params, limit=50, offset=0).compile(dialect=dialect))
        sums = sql.split("WITH invoice_sums AS", 1)[1].split("\n SELECT invoices.public_id", 1)[0]
        assert "line_items.invoice_id IN (SELECT invoices.id" in sums, sql
        assert "LIMIT" in sums
        by_money = parse_report_params(
            INVOICES, {"sort": "-total_amount"}, timezone="UTC", for_export=False
        )
        sql = str(page_statement(1, by_money, limit=50, offset=0).compile(dialect=dialect))
        assert "line_items.invoice_id IN" not in sql


# --- the grouped report -------------------------------------------------------------------------

GROUP_KEYS = (
    "status",
    "customer.id",
    "customer.name",
    "customer.email",
    "purchase_type",
    "due_date_month",
    "due_date_year",
    "payment_month",
    "payment_year",
)
TOTALS = (
    "total_amount",
    "subtotal_amount",
    "discount_amount",
    "tax_amount",
    "credit_amount",
    "expected_payment_amount",
    "refund_amount",
)


def group_value(fact: dict[str, Any], key: str, zone: str) -> Any:
    from zoneinfo import ZoneInfo

    due: dt.date | None = fact["due_date"]
    paid: dt.datetime | None = fact["paid_at"]
    local = paid.astimezone(ZoneInfo(zone)) if paid else None
    if key == "due_date_month":
        return f"{due.year:04d}-{due.month:02d}" if due else None
    if key == "due_date_year":
        return f"{due.year:04d}" if due else None
    if key == "payment_month":
        return local.month if local else None
    if key == "payment_year":
        return local.year if local else None
    return value_of(fact, key)


def _row_value(row: dict[str, Any], key: str) -> Any:
    node: Any = row
    for part in key.split("."):
        node = node[part]
    return node


def expected_groups(
    data: Data, key: str, zone: str = "Europe/London"
) -> dict[tuple[Any, str], dict[str, Any]]:
    groups: dict[tuple[Any, str], dict[str, Any]] = defaultdict(
        lambda: {"count": 0, **{name: 0 for name in TOTALS}}
    )
    for fact in facts(data):
        group = groups[(group_value(fact, key, zone), fact["currency"])]
        group["count"] += 1
        for name in TOTALS:
            group[name] += fact["money"][name]
    return dict(groups)


@pytest.mark.parametrize("key", GROUP_KEYS)
def test_each_grouped_cut_counts_and_sums_its_invoices(invoices: Data, key: str) -> None:
    body = fetch(invoices.api, GROUPED, columns=",".join((key, "count", *TOTALS)))
    expected = expected_groups(invoices, key)
    assert body["total"] == len(expected)
    got = {}
    for row in body["rows"]:
        currency = row["total_amount"]["iso_currency_code"].upper()
        assert isinstance(row["count"], str)  # TeamUp publishes count as a string
        got[(_row_value(row, key), currency)] = {
            "count": int(row["count"]),
            **{name: row[name] for name in TOTALS},
        }
    assert got == {
        group: {
            "count": sums["count"],
            **{name: money(sums[name], group[1]) for name in TOTALS},
        }
        for group, sums in expected.items()
    }
    # Sorted by the key (NULLs last), then currency.
    order = [
        (_row_value(row, key), row["total_amount"]["iso_currency_code"]) for row in body["rows"]
    ]
    assert order == sorted(order, key=lambda g: ((1,) if g[0] is None else (0, g[0]), g[1]))


def test_wire_types_of_the_period_keys(invoices: Data) -> None:
    body = fetch(
        invoices.api,
        GROUPED,
        columns="due_date_month,due_date_year,payment_month,payment_year,count",
        paid_at_gte="2024-07-01",
        paid_at_lte="2024-07-31",
    )
    assert body["rows"] == [
        {
            "due_date_month": "2024-07",
            "due_date_year": "2024",
            "payment_month": 7,
            "payment_year": 2024,
            "count": "1",
        }
    ]


def test_count_alone_is_not_split_by_currency(invoices: Data) -> None:
    body = fetch(invoices.api, GROUPED, columns="status,count")
    counts: dict[str, int] = defaultdict(int)
    for fact in facts(invoices):
        counts[fact["status"]] += 1
    assert body["rows"] == [
        {"status": status, "count": str(count)} for status, count in sorted(counts.items())
    ]


def test_payment_periods_are_the_account_s_local_months(
    backend: Backend, make_tenant: TenantFactory
) -> None:
    """Across a month and a year boundary and a daylight-saving change, in Auckland."""
    api = make_tenant(timezone="Pacific/Auckland")
    data = Data(backend, api)
    for paid in (
        "2025-12-31T10:59:59",  # 23:59:59 NZDT on 31 December 2025
        "2025-12-31T11:00:00",  # 00:00 on 1 January 2026
        "2026-04-04T13:30:00",  # 02:30 NZDT on 5 April, the night daylight saving ends
        "2026-04-04T14:30:00",  # 02:30 NZST, the same wall time an hour later
        "2026-04-30T12:00:00",  # 00:00 NZST on 1 May
        "2026-04-30T11:59:59",  # 23:59:59 on 30 April
    ):
        data.invoice([{"amount": 100}], status="paid", paid_at=at(paid))
    body = fetch(api, GROUPED, columns="payment_year,payment_month,count")
    assert [(row["payment_year"], row["payment_month"], row["count"]) for row in body["rows"]] == [
        (2025, 12, "1"),
        (2026, 1, "1"),
        (2026, 4, "3"),
        (2026, 5, "1"),
    ]


# --- reconciliation with the line items report ---------------------------------------------------

RECONCILED = [
    {},
    {"status": "paid,open"},
    {"due_date_gte": "2024-07-10"},
    {"paid_at_lte": "2024-12-31", "updated_at_gte": "2024-07-01"},
    {"confirmed_at_gte": "2024-07-01T00:00:00Z"},
]


@pytest.mark.parametrize("filters", RECONCILED)
def test_invoice_totals_equal_the_line_items_sums(invoices: Data, filters: dict[str, str]) -> None:
    rows = fetch(invoices.api, **filters)["rows"]
    lines = fetch(
        invoices.api,
        "/reports/invoice_line_items/data",
        columns="amount,tax_amount,discount_amount,credit_amount,refund_amount",
        **{f"invoice_{key}": value for key, value in filters.items()},
    )["rows"]
    report: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        for name in AMOUNT_KEYS:
            report[row[name]["iso_currency_code"]][name] += row[name]["decimal"]
    summed: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for line in lines:
        currency = line["amount"]["iso_currency_code"]
        value = {name: line[name]["decimal"] for name in line}
        summed[currency]["total_amount"] += value["amount"] + value["tax_amount"]
        summed[currency]["subtotal_amount"] += value["amount"] + value["discount_amount"]
        summed[currency]["discount_amount"] += value["discount_amount"]
        summed[currency]["tax_amount"] += value["tax_amount"]
        summed[currency]["credit_amount"] += value["credit_amount"]
        summed[currency]["refund_amount"] += value["refund_amount"]
        summed[currency]["expected_payment_amount"] += (
            value["amount"] + value["tax_amount"] - value["credit_amount"] - value["refund_amount"]
        )
    for currency, totals in report.items():
        for name, total in totals.items():
            assert total == summed[currency][name], (currency, name)
    assert {c for c, t in summed.items() if any(t.values())} <= set(report)


# --- bad input, tenancy ------------------------------------------------------------------------

BAD_DATA: list[tuple[str, dict[str, Any], str]] = [
    (DATA, {"columns": "nope"}, "nope"),
    (DATA, {"columns": "id,payment_processor"}, "payment_processor"),
    (DATA, {"columns": "refunded_invoice"}, "refunded_invoice"),
    (DATA, {"columns": "refund_date"}, "refund_date"),
    (DATA, {"columns": "charges"}, "charges"),
    (DATA, {"columns": "legacy_mapping"}, "legacy_mapping"),
    (DATA, {"columns": "applied_credits"}, "applied_credits"),
    (DATA, {"columns": "purchase_items"}, "purchase_items"),
    (DATA, {"columns": "payout"}, "payout"),
    (DATA, {"columns": "id,id"}, "id"),
    (DATA, {"sort": "nope"}, "nope"),
    (DATA, {"sort": "-payment_processor"}, "payment_processor"),
    (DATA, {"status": "sleeping"}, "sleeping"),
    (DATA, {"due_date_gte": "2024-13-01"}, "due_date_gte"),
    (DATA, {"paid_at_lte": "soon"}, "paid_at_lte"),
    (DATA, {"updated_at_gte": "2024-07-01T25:00"}, "updated_at_gte"),
    (DATA, {"confirmed_at_lte": "x"}, "confirmed_at_lte"),
    (DATA, {"customers": "ada"}, "customers"),
    (DATA, {"purchase_types": "fee"}, "purchase_types"),
    (DATA, {"discount_applied": "maybe"}, "discount_applied"),
    (DATA, {"credit_applied": "1"}, "credit_applied"),
    (DATA, {"credit_applied": "TRUE"}, "credit_applied"),
    (DATA, {"id_gt": "x"}, "id_gt"),
    (DATA, {"due_date_timeframe": "last_fortnight"}, "due_date_timeframe"),
    (DATA, {"paid_at_timeframe": ""}, "paid_at_timeframe"),
    (DATA, {"paid_at_timeframe": "today", "paid_at_gte": "2024-01-01"}, "paid_at_timeframe"),
    (DATA, {"customer_memberships": "3"}, "customer_memberships"),
    (DATA, {"payment_processors": "2"}, "payment_processors"),
    (DATA, {"invoice_status": "paid"}, "invoice_status"),
    (GROUPED, {"columns": "payout_month,count"}, "payout_month"),
    (GROUPED, {"columns": "purchased_item"}, "purchased_item"),
    (GROUPED, {"columns": "purchase_fee_type"}, "purchase_fee_type"),
    (GROUPED, {"columns": "payment_processor"}, "payment_processor"),
    (GROUPED, {"columns": "id"}, "id"),
    (GROUPED, {"columns": "status,count", "sort": "total_amount"}, "total_amount"),
    (GROUPED, {"updated_at_timeframe": "next_year"}, "updated_at_timeframe"),
]


@pytest.mark.parametrize("case", range(len(BAD_DATA)))
def test_bad_input_is_a_422_naming_it_and_creates_no_job(api: Api, case: int) -> None:
    path, params, named = BAD_DATA[case]
    assert_problem(api.get(path, params=params), 422, named)
    export = EXPORT if path == DATA else GROUPED_EXPORT
    assert_problem(api.post(export, json=params), 422, named)
    assert_problem(api.post(export, data=params), 422, named)
    assert_problem(api.post(export, json={"format": "xml"}), 422, "format")
    assert api.get("/jobs").json()["count"] == 0


def test_more_customers_than_a_statement_may_bind_are_refused(api: Api) -> None:
    response = api.post(EXPORT, json={"customers": list(range(1, 10_002))})
    assert_problem(response, 422, "customers")
    assert api.get("/jobs").json()["count"] == 0


def test_another_account_s_invoices_never_appear(invoices: Data, other_api: Api) -> None:
    own = invoices.api
    assert fetch(other_api)["total"] == 0
    assert fetch(other_api, GROUPED)["rows"] == []
    ada = _customer(invoices, "Ada")
    other = Data(invoices.backend, other_api)
    for number in range(4):  # the other account's ids run past this account's
        other.customer(f"Nobody {number}")
    stranger = other.customer("Stranger")
    other.invoice([{"amount": 100}], customer=stranger)
    assert stranger["id"] not in {f["customer"]["id"] for f in invoices.invoices if f["customer"]}
    # Another account's customer id matches nothing here; ours matches nothing there.
    assert fetch(own, customers=str(stranger["id"]))["total"] == 0
    assert fetch(other_api, customers=str(ada))["total"] == 0
    assert fetch(other_api, customers=str(stranger["id"]))["total"] == 1
    assert fetch(own)["total"] == 6
    assert sum(int(row["count"]) for row in fetch(own, GROUPED)["rows"]) == 6


@pytest.mark.parametrize("key", ["customers", "status", "purchase_types"])
def test_a_repeated_empty_list_filter_is_not_given(invoices: Data, key: str) -> None:
    """`?customers=&customers=` (what a URL template sends for an empty list; the schema's
    items allow an empty value) filters nothing, as the parameter's absence does; an export
    with it is a job like any other."""
    everything = fetch(invoices.api)
    assert everything["total"] > 0
    empty: dict[str, Any] = {key: ["", ""]}
    assert fetch(invoices.api, **empty) == everything
    response = invoices.api.post(EXPORT, files=[(key, (None, "")), (key, (None, ""))])
    assert response.status_code == 200, response.text
    job = invoices.api.get(f"/jobs/{response.json()['job']}").json()
    assert key not in job["params"]["filters"]


def test_a_repeated_empty_status_is_not_given_on_the_line_items_report(invoices: Data) -> None:
    path = "/reports/invoice_line_items/data"
    assert fetch(invoices.api, path, invoice_status=["", ""]) == fetch(invoices.api, path)
