"""Line items grouped by anything (issue 13): attribute keys, period keys in the account's time
zone, the currency, and the aggregates `count`, `total_amount`, `total_tax_amount`,
`total_discount_amount`, `total_gross_amount`.

Every expected row is computed here from the test's own `Line` values (grouped and summed in
Python, periods by zoneinfo), never by report code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import Api, Backend, TenantFactory, assert_problem
from tests.reports.conftest import Data, Line, at
from tests.reports.expected import field, major
from tests.reports.test_csv_fast_path import _both, _params
from tests.reports.test_data import fetch

GROUPED = "/reports/invoice_line_items.grouped/data"
EXPORT = "/reports/invoice_line_items.grouped/export"
UTC = dt.UTC
MONEY_SUMS: dict[str, Callable[[Line], int]] = {
    "total_amount": lambda line: line.amount,
    "total_tax_amount": lambda line: line.tax_amount,
    "total_discount_amount": lambda line: line.discount_amount,
    "total_gross_amount": lambda line: line.amount + line.tax_amount,
}
AGGREGATES = ("count", *MONEY_SUMS)
QUARTER = {month: (month - 1) // 3 + 1 for month in range(1, 13)}


# --- the test's own grouping ------------------------------------------------------------------


def period(value: Any, unit: str, zone: str) -> str | None:
    """A date's or an instant's local period, by zoneinfo."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.astimezone(ZoneInfo(zone))
    if unit == "month":
        return f"{value.year:04d}-{value.month:02d}"
    if unit == "quarter":
        return f"{value.year:04d}-Q{QUARTER[value.month]}"
    return f"{value.year:04d}"


def key_value(line: Line, key: str, zone: str) -> Any:
    """A grouping key's value for a line as JSON shows it."""
    for unit in ("month", "quarter", "year"):
        if key.endswith("_" + unit):
            return period(field(line, key.removesuffix("_" + unit)), unit, zone)
    if key == "currency":
        return line.currency
    if key == "billed_item":
        if line.billed_item_object is None:
            return None
        return {"object": line.billed_item_object, "id": line.billed_item_id}
    value = field(line, key)
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def expected_groups(
    lines: list[Line], keys: list[str], aggregates: list[str], zone: str = "Europe/London"
) -> list[dict[str, Any]]:
    """One dict per group: key values, the currency when split, each aggregate (count as
    an int, money in minor units). Split by currency whenever a money total is requested."""
    split = any(name in MONEY_SUMS for name in aggregates)
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for line in lines:
        values = [key_value(line, key, zone) for key in keys]
        identity = tuple(repr(value) for value in values) + ((line.currency,) if split else ())
        group = groups.setdefault(
            identity,
            {
                **dict(zip(keys, values, strict=True)),
                **({"@currency": line.currency} if split else {}),
                **dict.fromkeys(aggregates, 0),
            },
        )
        for name in aggregates:
            group[name] += 1 if name == "count" else MONEY_SUMS[name](line)
    return list(groups.values())


def _at_path(row: dict[str, Any], key: str) -> Any:
    value: Any = row
    for part in key.split("."):
        value = value[part]
    return value


def decoded(body: dict[str, Any], keys: list[str], aggregates: list[str]) -> list[dict[str, Any]]:
    """The answer's rows in the shape of `expected_groups`; every money object of a row
    must be in the row's one currency."""
    rows = []
    for row in body["rows"]:
        group: dict[str, Any] = {key: _at_path(row, key) for key in keys}
        currencies = set()
        for name in aggregates:
            value = _at_path(row, name)
            if name == "count":
                assert isinstance(value, str), value  # TeamUp publishes count as a string
                group[name] = int(value)
            else:
                currency = value["iso_currency_code"].upper()
                currencies.add(currency)
                assert major(minor_of(value["decimal"], currency), currency) == value["decimal"]
                group[name] = minor_of(value["decimal"], currency)
        assert len(currencies) <= 1, row
        if currencies:
            group["@currency"] = currencies.pop()
        rows.append(group)
    return rows


def minor_of(decimal: Any, currency: str) -> int:
    scaled = Decimal(decimal) * 10 ** {"GBP": 2, "EUR": 2, "JPY": 0, "KWD": 3}[currency]
    assert scaled == scaled.to_integral_value(), decimal
    return int(scaled)


def canonical(groups: list[dict[str, Any]]) -> list[str]:
    return sorted(repr(sorted(group.items())) for group in groups)


def grouped(api: Api, keys: list[str], aggregates: list[str], **params: Any) -> dict[str, Any]:
    return fetch(api, GROUPED, columns=",".join([*keys, *aggregates]), **params)


# --- data ---------------------------------------------------------------------------------------


@pytest.fixture
def varied(sample: Data) -> Data:
    """The report sample plus: one customer's invoices in two currencies and months, a
    discount code shared by two invoices, taxes and discounts."""
    dee = sample.customer("Dee", "dee@example.com")
    sample.invoice(
        [
            {"type": "flat_fee", "amount": 999, "tax_amount": 200, "discount_amount": 1},
            {"type": "course", "amount": 5000, "tax_amount": 1000, "discount_amount": 250},
        ],
        status="paid",
        customer=dee,
        due_date=dt.date(2024, 9, 30),
        confirmed_at=at("2024-09-01T10:00:00"),
        paid_at=at("2024-09-30T23:30:00"),  # 1 October in London (BST)
        updated_at=at("2024-09-30T23:30:00"),
        discount_code=("Summer", "SUMMER10"),
    )
    sample.invoice(
        [{"type": "flat_fee", "amount": 1500, "tax_amount": 300}],
        currency="EUR",
        status="paid",
        customer=dee,
        due_date=dt.date(2024, 12, 31),
        confirmed_at=at("2024-12-01T10:00:00"),
        paid_at=at("2024-12-31T23:59:59"),
        updated_at=at("2024-12-31T23:59:59"),
    )
    return sample


# Keys each grouped alone with every aggregate; then a few combinations.
SINGLE_KEYS = [
    "type",
    "invoice.id",
    "invoice.number",
    "invoice.status",
    "invoice.is_credit_note",
    "invoice.due_date",
    "invoice.paid_at",
    "invoice.confirmed_at",
    "invoice.updated_at",
    "invoice.discount_code.name",
    "invoice.discount_code.code",
    "customer.id",
    "customer.name",
    "customer.email",
    "customer.venue.id",
    "customer.venue.name",
    "billed_item",
    "description",
    "currency",
    *(
        f"invoice.{date}_{unit}"
        for date in ("due_date", "paid_at", "confirmed_at", "updated_at")
        for unit in ("month", "quarter", "year")
    ),
]


@pytest.mark.parametrize("key", SINGLE_KEYS)
def test_each_key_with_every_aggregate(varied: Data, key: str) -> None:
    body = grouped(varied.api, [key], list(AGGREGATES))
    expected = expected_groups(varied.lines, [key], list(AGGREGATES))
    assert canonical(decoded(body, [key], list(AGGREGATES))) == canonical(expected)
    assert body["total"] == len(expected)
    assert [h["key"] for h in body["column_headers"]] == [key, *AGGREGATES]


@pytest.mark.parametrize(
    ("keys", "aggregates"),
    [
        (["invoice.status", "customer.name"], ["total_amount", "count"]),
        (["invoice.paid_at_month", "type"], ["total_gross_amount"]),
        (["customer.venue.name", "currency"], ["count", "total_tax_amount"]),
        (["customer.id", "invoice.due_date_year"], ["total_discount_amount", "total_amount"]),
        ([], ["count", "total_amount", "total_gross_amount"]),
    ],
)
def test_several_keys(varied: Data, keys: list[str], aggregates: list[str]) -> None:
    body = grouped(varied.api, keys, aggregates)
    expected = expected_groups(varied.lines, keys, aggregates)
    assert canonical(decoded(body, keys, aggregates)) == canonical(expected)
    assert body["total"] == len(expected)


def test_aliases_name_the_same_columns(varied: Data) -> None:
    by_alias = grouped(varied.api, ["paid_at_month", "invoice_status", "customer"], ["count"])
    by_key = grouped(
        varied.api, ["invoice.paid_at_month", "invoice.status", "customer.id"], ["count"]
    )
    assert by_alias == by_key
    assert [h["key"] for h in by_alias["column_headers"]] == [
        "invoice.paid_at_month",
        "invoice.status",
        "customer.id",
        "count",
    ]


def test_count_alone_is_not_split_by_currency(varied: Data) -> None:
    """A count adds line items, not money: one row per key value across currencies."""
    body = grouped(varied.api, ["type"], ["count"])
    counts: dict[str, int] = {}
    for line in varied.lines:
        counts[line.type] = counts.get(line.type, 0) + 1
    assert body["rows"] == [{"type": kind, "count": str(n)} for kind, n in sorted(counts.items())]
    # flat_fee is in three currencies: still one row
    assert len({line.currency for line in varied.lines if line.type == "flat_fee"}) == 3
    everything = grouped(varied.api, [], ["count"])
    assert everything["rows"] == [{"count": str(len(varied.lines))}]
    assert everything["total"] == 1


def test_nothing_matching(data: Data) -> None:
    """No line items: a count alone is one row of "0" (SQL's aggregate without GROUP BY);
    money totals, split by currency, are no rows; keys are no rows."""
    assert grouped(data.api, [], ["count"]) | {"column_headers": []} == {
        "total": 1,
        "column_headers": [],
        "rows": [{"count": "0"}],
    }
    for keys, aggregates in (([], ["total_amount", "count"]), (["paid_at_month"], ["count"])):
        body = grouped(data.api, keys, aggregates)
        assert (body["total"], body["rows"]) == (0, [])


def test_money_totals_are_split_by_currency(varied: Data) -> None:
    body = grouped(varied.api, ["customer.name"], ["total_gross_amount"])
    dee = [row for row in body["rows"] if row["customer"]["name"] == "Dee"]
    assert sorted(row["total_gross_amount"]["iso_currency_code"] for row in dee) == ["eur", "gbp"]
    assert {
        row["total_gross_amount"]["iso_currency_code"]: row["total_gross_amount"]["decimal"]
        for row in dee
    } == {"gbp": Decimal("71.99"), "eur": Decimal("18")}


# --- sorting ------------------------------------------------------------------------------------


def test_sort_by_aggregates(varied: Data) -> None:
    body = grouped(varied.api, ["type"], ["count", "total_amount"], sort="-count,-total_amount")
    got = [(row["type"], int(row["count"])) for row in body["rows"]]
    assert [count for _, count in got] == sorted((count for _, count in got), reverse=True)
    by_count = grouped(varied.api, ["invoice.status"], ["count"], sort="count")
    counts = [int(row["count"]) for row in by_count["rows"]]
    assert counts == sorted(counts)
    assert by_count["column_headers"][1]["sorted"] == {"order": "asc", "priority": 1}


def test_sort_by_period_keys_puts_nulls_where_the_flat_report_does(varied: Data) -> None:
    """Unpaid invoices have no paid_at_month: null, last ascending and first descending."""
    ascending = grouped(varied.api, ["invoice.paid_at_month"], ["count"])
    months = [row["invoice"]["paid_at_month"] for row in ascending["rows"]]
    expected = sorted(
        {key_value(line, "invoice.paid_at_month", "Europe/London") for line in varied.lines},
        key=lambda month: (month is None, month or ""),
    )
    assert months == expected
    assert months[-1] is None
    descending = grouped(varied.api, ["paid_at_month"], ["count"], sort="-paid_at_month")
    assert [row["invoice"]["paid_at_month"] for row in descending["rows"]] == [
        None,
        *reversed(expected[:-1]),
    ]
    # the flat report sorts the same NULLs the same way
    flat = fetch(varied.api, sort="invoice.paid_at", columns="invoice.paid_at")
    assert flat["rows"][-1]["invoice"]["paid_at"] is None


def test_sort_by_money_total_then_key(varied: Data) -> None:
    body = grouped(
        varied.api, ["invoice.status"], ["total_gross_amount"], sort="-total_gross_amount"
    )
    values = [row["total_gross_amount"]["decimal"] for row in body["rows"]]
    assert values == sorted(values, reverse=True)


# --- periods across boundaries in the account's zone ----------------------------------------


@pytest.mark.parametrize(
    ("zone", "instants"),
    [
        (
            "Europe/London",
            [
                at("2026-03-29T00:59:59"),  # GMT: still 29 March 00:59
                at("2026-03-29T01:00:00"),  # BST from here
                at("2026-03-31T22:59:59"),  # 23:59:59 BST, March
                at("2026-03-31T23:00:00"),  # 00:00 BST, 1 April (Q2)
                at("2026-12-31T23:59:59"),
                at("2027-01-01T00:00:00"),
            ],
        ),
        (
            "Europe/Berlin",
            [at("2026-12-31T22:59:59"), at("2026-12-31T23:30:00"), at("2026-10-25T00:59:59")],
        ),
        (
            "America/New_York",
            [
                at("2027-01-01T04:59:59"),  # 2026-12-31 23:59:59 EST
                at("2027-01-01T05:00:00"),  # 2027-01-01 00:00 EST
                at("2026-03-08T06:59:59"),  # the spring change at 07:00Z
                at("2026-03-08T07:00:00"),
                at("2026-04-01T03:59:59"),  # 31 March 23:59:59 EDT
                at("2026-04-01T04:00:00"),  # 1 April EDT
            ],
        ),
    ],
)
def test_period_keys_in_the_account_zone(
    backend: Backend, make_tenant: TenantFactory, zone: str, instants: list[dt.datetime]
) -> None:
    api = make_tenant(timezone=zone)
    data = Data(backend, api)
    for number, instant in enumerate(instants):
        data.invoice(
            [{"amount": 100 + number, "tax_amount": number}],
            status="paid",
            paid_at=instant,
            confirmed_at=instant,
            updated_at=instant,
            due_date=instant.date(),
        )
    data.invoice([{"amount": 7}], status="open", updated_at=instants[0])  # no paid_at: null
    for date in ("paid_at", "confirmed_at", "updated_at", "due_date"):
        keys = [f"invoice.{date}_{unit}" for unit in ("month", "quarter", "year")]
        body = grouped(api, keys, ["count", "total_gross_amount"])
        expected = expected_groups(data.lines, keys, ["count", "total_gross_amount"], zone)
        assert canonical(decoded(body, keys, ["count", "total_gross_amount"])) == canonical(
            expected
        ), date


# --- filters ------------------------------------------------------------------------------------


def test_filters_apply_as_in_the_flat_report(varied: Data) -> None:
    keep = [line for line in varied.lines if line.invoice["status"] in ("paid", "draft")]
    body = grouped(
        varied.api, ["customer.name"], ["count", "total_amount"], invoice_status="paid,draft"
    )
    assert canonical(decoded(body, ["customer.name"], ["count", "total_amount"])) == canonical(
        expected_groups(keep, ["customer.name"], ["count", "total_amount"])
    )
    paid_2024_07 = [
        line
        for line in varied.lines
        if line.invoice["paid_at"] is not None
        and at("2024-07-01T00:00:00") <= line.invoice["paid_at"] <= at("2024-07-31T00:00:00")
    ]
    body = grouped(
        varied.api,
        ["invoice.paid_at_month"],
        ["count"],
        invoice_paid_at_gte="2024-07-01T00:00:00Z",
        invoice_paid_at_lte="2024-07-31T00:00:00Z",
    )
    assert canonical(decoded(body, ["invoice.paid_at_month"], ["count"])) == canonical(
        expected_groups(paid_2024_07, ["invoice.paid_at_month"], ["count"])
    )


def test_timeframe_filter(
    backend: Backend, make_tenant: TenantFactory, fix_clock: Callable[[dt.datetime], None]
) -> None:
    api = make_tenant(timezone="Europe/London")
    data = Data(backend, api)
    for paid_at in (
        at("2026-01-31T23:59:59"),
        at("2026-02-01T00:00:00"),
        at("2026-03-01T00:00:00"),
    ):
        data.invoice([{"amount": 100}], status="paid", paid_at=paid_at)
    fix_clock(dt.datetime(2026, 3, 1, 0, 30, tzinfo=UTC))
    body = grouped(api, ["paid_at_month"], ["count"], invoice_paid_at_timeframe="last_month")
    assert body["rows"] == [{"invoice": {"paid_at_month": "2026-02"}, "count": "1"}]


# --- paging -------------------------------------------------------------------------------------


def test_paging_and_total(varied: Data) -> None:
    everything = grouped(varied.api, ["invoice.id"], ["count"])["rows"]
    pages = []
    for number in (1, 2, 3, 4):
        response = varied.api.get(
            GROUPED, params={"columns": "invoice.id,count", "page": number, "page_size": 2}
        )
        assert response.status_code == 200
        assert response.json()["total"] == len(everything)
        pages += response.json()["rows"]
    assert pages == everything
    past = varied.api.get(GROUPED, params={"columns": "invoice.id,count", "offset": 100})
    assert past.json() | {"column_headers": None} == {
        "total": len(everything),
        "column_headers": None,
        "rows": [],
    }


# --- the CSV fast path ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        {"columns": key}
        for key in [*SINGLE_KEYS, "count", "total_gross_amount", "total_refund_amount"]
    ]
    + [
        {"columns": f"{key},{','.join(AGGREGATES)}", "sort": f"-{key}"}
        for key in ("invoice.paid_at_month", "customer.name", "currency")
    ]
    + [
        {"columns": "billed_item,invoice.is_credit_note,count,total_tax_amount"},
        {"columns": "currency,total_amount,count", "sort": "-count"},
        {"columns": "invoice.updated_at_quarter,type,total_amount", "invoice_status": "paid"},
    ],
)
def test_grouped_csv_fast_path_bytes_equal_the_generic_writer(
    varied: Data, raw: dict[str, str]
) -> None:
    """The database-rendered CSV of every new key and aggregate equals the generic writer's."""
    fast, generic, written = _both(varied, _params("invoice_line_items.grouped", **raw))
    assert fast == generic
    assert written >= 1


# --- bad requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "named", "word"),
    [
        ({"columns": "invoice.paid_at_week"}, "columns", "invoice.paid_at_week"),
        ({"columns": "paid_at_fortnight,count"}, "columns", "paid_at_fortnight"),
        ({"columns": "invoice.status_month,count"}, "columns", "invoice.status_month"),
        ({"columns": "type,total_bogus"}, "columns", "total_bogus"),
        ({"columns": "type,sum_amount"}, "columns", "sum_amount"),
        ({"columns": "type,amount"}, "columns", "amount"),
        ({"columns": "type,count,count"}, "columns", "count"),
        ({"columns": "type,count", "sort": "-total_amount"}, "sort", "total_amount"),
        ({"columns": "type,count", "sort": "paid_at_month"}, "sort", "paid_at_month"),
        ({"columns": "paid_at_month,count", "sort": "paid_at_week"}, "sort", "paid_at_week"),
        ({"columns": "billed_item,count", "sort": "billed_item"}, "sort", "billed_item"),
        ({"columns": "type,count", "sort": "-bogus"}, "sort", "bogus"),
    ],
)
def test_bad_keys_are_422_naming_them_and_create_no_job(
    varied: Data, params: dict[str, str], named: str, word: str
) -> None:
    api = varied.api
    problem = assert_problem(api.get(GROUPED, params=params), 422, named)
    assert word in str(problem), problem
    body = {key: value.split(",") for key, value in params.items()}
    problem = assert_problem(api.post(EXPORT, json=body), 422, named)
    assert word in str(problem), problem
    assert api.get("/jobs").json()["count"] == 0


# --- tenancy ------------------------------------------------------------------------------------


def test_other_accounts_lines_are_never_counted(varied: Data, other_api: Api) -> None:
    other = Data(varied.backend, other_api)
    other.invoice(
        [{"amount": 777777, "type": "flat_fee", "tax_amount": 1}],
        status="paid",
        paid_at=at("2024-07-02T12:00:00"),
        customer=other.customer("Ada", "ada@example.com"),
    )
    keys, aggregates = ["invoice.paid_at_month", "customer.name", "type"], list(AGGREGATES)
    body = grouped(varied.api, keys, aggregates)
    assert canonical(decoded(body, keys, aggregates)) == canonical(
        expected_groups(varied.lines, keys, aggregates)
    )
    everything = grouped(other_api, [], ["count", "total_amount"])
    assert [(row["count"], row["total_amount"]["decimal"]) for row in everything["rows"]] == [
        ("1", Decimal("7777.77"))
    ]
