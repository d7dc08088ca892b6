"""GET /reports/invoice_line_items/data: filters, sort, columns, paging, headers, tenancy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ledgerline.reports import columns as catalog
from tests.conftest import Api, Backend, TenantFactory, assert_problem
from tests.reports.conftest import Data, Line, at
from tests.reports.expected import DIGITS, SYMBOLS, field, major

FLAT = "/reports/invoice_line_items/data"
UTC = dt.UTC
LONDON = ZoneInfo("Europe/London")


def fetch(api: Api, path: str = FLAT, **params: Any) -> dict[str, Any]:
    response = api.get(path, params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json(parse_float=Decimal)
    return body


def ids(body: dict[str, Any]) -> list[int]:
    return [row["id"] for row in body["rows"]]


def _between(value: Any, low: Any = None, high: Any = None) -> bool:
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def _inv(name: str) -> Callable[[Line], Any]:
    return lambda line: line.invoice[name]


# (query params, predicate over a Line) — each filter alone, several combined.
FILTER_CASES: list[tuple[dict[str, str], Callable[[Line], bool]]] = [
    ({"invoice_status": "paid"}, lambda li: li.invoice["status"] == "paid"),
    (
        {"invoice_status": "paid,draft"},
        lambda li: li.invoice["status"] in ("paid", "draft"),
    ),
    (
        {"invoice_due_date_gte": "2024-07-15"},
        lambda li: _between(li.invoice["due_date"], dt.date(2024, 7, 15)),
    ),
    (
        {"invoice_due_date_lte": "2024-07-15"},
        lambda li: _between(li.invoice["due_date"], None, dt.date(2024, 7, 15)),
    ),
    (
        # exactly on both bounds: inclusive
        {"invoice_due_date_gte": "2024-07-01", "invoice_due_date_lte": "2024-07-01"},
        lambda li: li.invoice["due_date"] == dt.date(2024, 7, 1),
    ),
    (
        # 13:00 London (BST) is 12:00 UTC, exactly the first invoice's paid_at: included
        {"invoice_paid_at_lte": "2024-07-02T13:00:00"},
        lambda li: _between(li.invoice["paid_at"], None, at("2024-07-02T12:00:00")),
    ),
    (
        {"invoice_paid_at_gte": "2024-07-02T12:00:01Z"},
        lambda li: _between(li.invoice["paid_at"], at("2024-07-02T12:00:01")),
    ),
    (
        {"invoice_paid_at_lte": "2024-07-02T12:59:59"},  # 11:59:59 UTC: before the payment
        lambda li: _between(li.invoice["paid_at"], None, at("2024-07-02T11:59:59")),
    ),
    (
        # a bare date as an upper bound is that whole day in the account's timezone; the EUR
        # invoice updated at 23:00 UTC on 31 July is already 1 August in London
        {"invoice_updated_at_lte": "2024-07-31"},
        lambda li: li.invoice["updated_at"] <= dt.datetime(2024, 7, 31, 22, 59, 59, tzinfo=UTC),
    ),
    (
        {"invoice_updated_at_gte": "2024-08-01"},
        lambda li: li.invoice["updated_at"] >= dt.datetime(2024, 7, 31, 23, 0, tzinfo=UTC),
    ),
    (
        {"invoice_confirmed_at_gte": "2024-07-01T01:00:00+01:00"},
        lambda li: _between(li.invoice["confirmed_at"], at("2024-07-01T00:00:00")),
    ),
    (
        {"invoice_confirmed_at_lte": "2024-06-30T23:59:59.999999Z"},
        lambda li: _between(li.invoice["confirmed_at"], None, at("2024-06-30T23:59:59.999999")),
    ),
    (
        {
            "invoice_status": "paid,open,voided",
            "invoice_due_date_gte": "2024-07-01",
            "invoice_confirmed_at_lte": "2024-07-31T23:30:00Z",
            "invoice_updated_at_gte": "2024-07-02T13:00:00",
        },
        lambda li: (
            li.invoice["status"] in ("paid", "open", "voided")
            and _between(li.invoice["due_date"], dt.date(2024, 7, 1))
            and _between(li.invoice["confirmed_at"], None, at("2024-07-31T23:30:00"))
            and li.invoice["updated_at"] >= at("2024-07-02T12:00:00")
        ),
    ),
]


@pytest.mark.parametrize(("params", "keep"), FILTER_CASES)
def test_filters_select_exactly_the_matching_rows(
    sample: Data, params: dict[str, str], keep: Callable[[Line], bool]
) -> None:
    body = fetch(sample.api, **params)
    expected = sorted(line.id for line in sample.lines if keep(line))
    assert ids(body) == expected
    assert body["total"] == len(expected)
    assert len(expected) < len(sample.lines)  # every case leaves some rows out


def test_id_gt_filter_is_on_the_line_item_id(sample: Data) -> None:
    middle = sorted(line.id for line in sample.lines)[4]
    body = fetch(sample.api, id_gt=str(middle))
    assert ids(body) == sorted(line.id for line in sample.lines if line.id > middle)
    combined = fetch(sample.api, id_gt=str(middle), invoice_status="voided")
    assert ids(combined) == sorted(
        line.id for line in sample.lines if line.id > middle and line.invoice["status"] == "voided"
    )


def test_status_as_repeated_query_keys(sample: Data) -> None:
    response = sample.api.get(
        FLAT, params=[("invoice_status", "open"), ("invoice_status", "voided")]
    )
    assert response.status_code == 200, response.text
    assert [row["id"] for row in response.json()["rows"]] == sorted(
        line.id for line in sample.lines if line.invoice["status"] in ("open", "voided")
    )


MONEY_KEYS = tuple(
    column.key for column in catalog.CATALOGS[catalog.FLAT].columns if column.kind == "money"
)


def _sort_key(key: str, descending: bool) -> Callable[[Line], Any]:
    """NULLs sort last ascending and first descending, on every database."""

    def value(line: Line) -> Any:
        raw = field(line, key)
        if key in MONEY_KEYS:
            raw = major(raw, line.currency)  # compared as a person reads them (SPEC §4)
        if isinstance(raw, bool):
            raw = int(raw)
        missing = raw is None
        return (missing, raw if not missing else 0)

    return value


def _expected_order(lines: list[Line], sort: list[tuple[str, bool]]) -> list[int]:
    ordered = sorted(lines, key=lambda line: line.id)
    for key, descending in reversed(sort):
        getter = _sort_key(key, descending)
        ordered = sorted(ordered, key=getter, reverse=descending)
    return [line.id for line in ordered]


SORT_CASES = [
    [("id", True)],
    [("amount", False)],
    [("amount", True)],
    [("type", False), ("amount", True)],
    [("invoice.due_date", False)],
    [("invoice.due_date", True)],
    [("invoice.paid_at", False), ("id", True)],
    [("customer.name", False), ("description", True)],
    [("customer.venue.name", True), ("invoice.number", False)],
    [("invoice.is_credit_note", True), ("refund_amount", True), ("credit_amount", False)],
]


@pytest.fixture
def three_currencies(data: Data) -> Data:
    """Amounts whose raw minor units order differently from their major units: GBP (2
    digits), JPY (0) and KWD (3) in one account, with ties in major units across currencies
    and negative amounts with remainders."""
    data.invoice(
        [{"amount": a, "tax_amount": a // 10} for a in (150, 99, -250, 1200, 500)],
        currency="GBP",
    )
    data.invoice(
        [{"amount": a, "tax_amount": a // 10} for a in (2, 12, -3, 5, 1)],
        currency="JPY",
    )
    data.invoice(
        [{"amount": a, "tax_amount": a // 10} for a in (1500, 999, -2501, 4000, 12000)],
        currency="KWD",
    )
    return data


@pytest.mark.parametrize("key", ["amount", "tax_amount", "-amount", "-tax_amount"])
def test_money_sort_compares_major_units_across_currencies(
    three_currencies: Data, key: str
) -> None:
    descending = key.startswith("-")
    name = key.lstrip("-")
    body = fetch(three_currencies.api, sort=key)
    lines = sorted(three_currencies.lines, key=lambda line: line.id)
    expected = sorted(
        lines, key=lambda line: major(getattr(line, name), line.currency), reverse=descending
    )
    # Ties in major units (5 JPY, 5.00 GBP) keep id order, ascending or descending.
    expected = sorted(expected, key=lambda line: line.id)
    expected.sort(key=lambda line: major(getattr(line, name), line.currency), reverse=descending)
    assert ids(body) == [line.id for line in expected]
    values = [row[name]["decimal"] for row in body["rows"]]
    assert values == sorted(values, reverse=descending)
    # The raw minor units would have ordered them otherwise: the test can tell.
    raw = sorted(lines, key=lambda line: getattr(line, name), reverse=descending)
    assert [line.id for line in raw] != ids(body)


def test_grouped_money_sort_compares_major_units(three_currencies: Data) -> None:
    body = fetch(
        three_currencies.api, "/reports/invoice_line_items.grouped/data", sort="-total_amount"
    )
    totals: dict[str, int] = {}
    for line in three_currencies.lines:
        totals[line.currency] = totals.get(line.currency, 0) + line.amount
    expected = sorted(totals, key=lambda cur: major(totals[cur], cur), reverse=True)
    assert [row["total_amount"]["iso_currency_code"].upper() for row in body["rows"]] == expected
    # 17 JPY, 16.99 GBP, 15.998 KWD; the raw sums (15998, 1699, 17) would order them reversed.
    assert expected == ["JPY", "GBP", "KWD"]


@pytest.mark.parametrize("sort", SORT_CASES)
def test_sort_orders_rows_like_python_does(sample: Data, sort: list[tuple[str, bool]]) -> None:
    text = ",".join(("-" if descending else "") + key for key, descending in sort)
    body = fetch(sample.api, sort=text)
    assert ids(body) == _expected_order(sample.lines, sort)


def test_sort_by_alias_and_repeated_sort_keys(sample: Data) -> None:
    response = sample.api.get(FLAT, params=[("sort", "-due_date"), ("sort", "invoice_number")])
    assert response.status_code == 200, response.text
    assert [row["id"] for row in response.json()["rows"]] == _expected_order(
        sample.lines, [("invoice.due_date", True), ("invoice.number", False)]
    )


def test_column_aliases_answer_canonical_keys_nested(sample: Data) -> None:
    aliases = "invoice_id,due_date,invoice_number,customer,customer_venue_name,discount_code"
    body = fetch(sample.api, columns=aliases, sort="id")
    assert [h["key"] for h in body["column_headers"]] == [
        "invoice.id",
        "invoice.due_date",
        "invoice.number",
        "customer.id",
        "customer.venue.name",
        "invoice.discount_code.code",
    ]
    lines = sorted(sample.lines, key=lambda line: line.id)
    for row, line in zip(body["rows"], lines, strict=True):
        due = line.invoice["due_date"]
        assert row == {
            "invoice": {
                "id": line.invoice_id,
                "due_date": due.isoformat() if due else None,
                "number": line.invoice["number"],
                "discount_code": {"code": line.invoice["discount_code_code"]},
            },
            "customer": {
                "id": line.customer["id"] if line.customer else None,
                "venue": {"name": line.venue["name"] if line.venue else None},
            },
        }


def test_every_column_by_default_with_money_objects(sample: Data) -> None:
    body = fetch(sample.api)
    keys = [header["key"] for header in body["column_headers"]]
    assert keys[0] == "id"
    assert len(keys) == 24
    assert body["column_headers"][0]["sorted"] == {"order": "asc", "priority": 1}
    for header in body["column_headers"][1:]:
        assert "sorted" not in header
        assert set(header) == {"label", "key", "sortable", "holds_customer_id", "required"}
    holds = [h["key"] for h in body["column_headers"] if h["holds_customer_id"]]
    assert holds == ["customer.id"]
    by_id = {line.id: line for line in sample.lines}
    for row in body["rows"]:
        line = by_id[row["id"]]
        for money_key in MONEY_KEYS:
            minor = getattr(line, money_key)
            money = row[money_key]
            assert money["decimal"] == major(minor, line.currency)
            assert money["iso_currency_code"] == line.currency.lower()
            assert money["currency_symbol"] == SYMBOLS[line.currency]
            assert money["currency_symbol_position"] == "before"
            digits = DIGITS[line.currency]
            number = f"{abs(minor) // 10**digits:,}"
            if digits:
                number += "." + str(abs(minor) % 10**digits).zfill(digits)
            assert money["string"] == ("-" if minor < 0 else "") + SYMBOLS[line.currency] + number
        assert row["type"] == line.type
        assert row["description"] == line.description
        assert row["invoice"]["status"] == line.invoice["status"]
        assert row["invoice"]["is_credit_note"] is line.invoice["is_credit_note"]
        paid = line.invoice["paid_at"]
        got = row["invoice"]["paid_at"]
        assert (dt.datetime.fromisoformat(got) if got else None) == paid
        if line.billed_item_object:
            assert row["billed_item"] == {
                "object": line.billed_item_object,
                "id": line.billed_item_id,
            }
        else:
            assert row["billed_item"] is None
        assert row["customer"]["email"] == (line.customer["email"] if line.customer else None)


def test_money_decimal_literal_is_exact(sample: Data) -> None:
    response = sample.api.get(FLAT, params={"columns": "amount", "sort": "id", "limit": 1})
    assert '"decimal":45.5,' in response.text


def test_paging_by_limit_offset_and_page_size(sample: Data) -> None:
    everything = sorted(line.id for line in sample.lines)
    first = fetch(sample.api, limit=4, offset=0)
    second = fetch(sample.api, limit=4, offset=4)
    third = fetch(sample.api, limit=4, offset=8)
    assert ids(first) + ids(second) + ids(third) == everything
    assert len(ids(third)) == len(everything) - 8
    assert first["total"] == third["total"] == len(everything)
    response = sample.api.get(FLAT, params={"page": 2, "page_size": 3})
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["rows"]] == everything[3:6]
    default = sample.api.get(FLAT)
    assert [row["id"] for row in default.json()["rows"]] == everything  # default limit 50


def test_sorted_headers_carry_priority(sample: Data) -> None:
    body = fetch(sample.api, columns="type,amount,id", sort="-amount,type")
    headers = {h["key"]: h for h in body["column_headers"]}
    assert headers["amount"]["sorted"] == {"order": "desc", "priority": 1}
    assert headers["type"]["sorted"] == {"order": "asc", "priority": 2}
    assert "sorted" not in headers["id"]
    assert [h["label"] for h in body["column_headers"]] == ["Type", "Amount", "ID"]


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"columns": "id,nope"}, "columns"),
        ({"columns": "id,id"}, "columns"),
        ({"sort": "billed_item"}, "sort"),
        ({"sort": "-unknown"}, "sort"),
        ({"invoice_due_date_gte": "2024-13-01"}, "invoice_due_date_gte"),
        ({"invoice_due_date_lte": "yesterday"}, "invoice_due_date_lte"),
        ({"invoice_paid_at_gte": "2024-07-29T25:00:00"}, "invoice_paid_at_gte"),
        ({"invoice_updated_at_lte": "2024-02-30"}, "invoice_updated_at_lte"),
        ({"invoice_confirmed_at_gte": "1e5"}, "invoice_confirmed_at_gte"),
        ({"invoice_status": "paid,lost"}, "invoice_status"),
        ({"id_gt": "abc"}, "id_gt"),
        ({"id_gt": "99999999999999999999"}, "id_gt"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"page_size": "500"}, "page_size"),
        ({"offset": "-1"}, "offset"),
        ({"invoice_stauts": "paid"}, "invoice_stauts"),
        ({"format": "xml"}, "format"),
    ],
)
def test_bad_input_is_422_naming_the_key(sample: Data, params: dict[str, str], name: str) -> None:
    assert_problem(sample.api.get(FLAT, params=params), 422, name)


def test_another_accounts_rows_never_appear(sample: Data, other_api: Api, backend: Backend) -> None:
    other = Data(backend, other_api)
    other.invoice([{"amount": 999, "type": "flat_fee"}], status="paid")
    mine = fetch(sample.api)
    assert mine["total"] == len(sample.lines)
    assert set(ids(mine)) == {line.id for line in sample.lines}
    theirs = fetch(other_api)
    assert theirs["total"] == 1
    assert ids(theirs) == [other.lines[0].id]
    # and no filter or id_gt reaches across
    assert fetch(sample.api, id_gt="0", invoice_status="paid")["total"] == sum(
        1 for line in sample.lines if line.invoice["status"] == "paid"
    )


def test_naive_datetimes_are_read_in_the_accounts_timezone(
    backend: Backend, make_tenant: TenantFactory
) -> None:
    new_york = Data(backend, make_tenant(timezone="America/New_York"))
    utc = Data(backend, make_tenant(timezone="UTC"))
    moments = [
        "2024-01-15T12:00:00",
        "2024-01-15T16:59:59",
        "2024-01-15T17:00:00",
        "2024-01-15T18:00:00",
    ]
    for tenant in (new_york, utc):
        for moment in moments:
            tenant.invoice([{"amount": 100}], status="paid", paid_at=at(moment))
    wall_time = "2024-01-15T12:00:00"
    for tenant, zone in ((new_york, ZoneInfo("America/New_York")), (utc, ZoneInfo("UTC"))):
        bound = dt.datetime.fromisoformat(wall_time).replace(tzinfo=zone)
        body = fetch(tenant.api, invoice_paid_at_gte=wall_time)
        expected = sorted(line.id for line in tenant.lines if line.invoice["paid_at"] >= bound)
        assert ids(body) == expected
    # 12:00 in New York is 17:00 UTC: two of the four rows; in UTC all four
    assert fetch(new_york.api, invoice_paid_at_gte=wall_time)["total"] == 2
    assert fetch(utc.api, invoice_paid_at_gte=wall_time)["total"] == 4
    # an explicit offset means the same instant in any account
    explicit = "2024-01-15T17:00:00+00:00"
    assert fetch(new_york.api, invoice_paid_at_gte=explicit)["total"] == 2
    assert fetch(utc.api, invoice_paid_at_gte=explicit)["total"] == 2


def test_bracketed_array_keys_and_huge_offsets(sample: Data) -> None:
    response = sample.api.get(
        FLAT, params=[("columns[]", "amount"), ("columns[]", "id"), ("sort[]", "-id")]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [h["key"] for h in body["column_headers"]] == ["amount", "id"]
    assert [row["id"] for row in body["rows"]] == sorted(
        (line.id for line in sample.lines), reverse=True
    )
    assert_problem(sample.api.get(FLAT, params={"offset": "99999999999999999999"}), 422, "offset")
    assert_problem(
        sample.api.get(FLAT, params={"page": "99999999999999999", "page_size": "100"}), 422, "page"
    )
    far = sample.api.get(FLAT, params={"offset": "1000000"})
    assert far.status_code == 200
    assert far.json()["rows"] == []
    assert far.json()["total"] == len(sample.lines)
