"""TeamUp's list parameters: invoices (`sort`, `status`, `fields`, `expand`) and customers
(`ids`, `query`, `autocomplete`), each honoured or refused, never ignored.

Every expected order and subset is computed here with Python's sorted() and plain string
tests over what the test created, not by calling the code under test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event

from ledgerline.db import engine_for
from tests.conftest import Api, Backend, assert_problem
from tests.factories import add_line_items, beyond, create_customer, create_invoice
from tests.invoices.expected import as_decimal, exact_json, expected_line

DUE_DATES = [
    "2024-07-01",
    "2024-07-15",
    None,
    "2024-07-01",
    "2024-06-30",
    None,
    "2024-08-01",
    "2024-07-15",
]
STATUSES = ["paid", "draft", "open", "paid", "voided", "draft", "upcoming", "paid"]
# PATCHed in this order afterwards, so updated_at orders them differently from their ids.
TOUCH_ORDER = [5, 2, 7, 0, 3, 6, 1, 4]


@pytest.fixture
def invoices(api: Api) -> list[dict[str, Any]]:
    created = [
        create_invoice(api, due_date=due, status=status)
        for due, status in zip(DUE_DATES, STATUSES, strict=True)
    ]
    for index in TOUCH_ORDER:
        response = api.patch(f"/invoices/{created[index]['id']}", json={"number": f"T-{index}"})
        assert response.status_code == 200, response.text
    return [api.get(f"/invoices/{invoice['id']}").json() for invoice in created]


def expected_order(rows: list[dict[str, Any]], sort: list[tuple[str, bool]]) -> list[int]:
    """Python's sorted(), key by key from the last: missing values last ascending and first
    descending; equal keys keep id order (sorted() is stable, also with reverse=True)."""
    ordered = sorted(rows, key=lambda row: row["id"])
    for key, descending in reversed(sort):

        def value(row: dict[str, Any], key: str = key) -> tuple[bool, Any]:
            raw = row[key]
            if key.endswith("_at"):
                raw = dt.datetime.fromisoformat(raw)
            return (raw is None, raw if raw is not None else "")

        ordered = sorted(ordered, key=value, reverse=descending)
    return [row["id"] for row in ordered]


def listed(api: Api, **params: Any) -> dict[str, Any]:
    response = api.get("/invoices", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = exact_json(response)
    return body


def result_ids(body: dict[str, Any]) -> list[int]:
    return [row["id"] for row in body["results"]]


SORTS = [
    "due_date",
    "-due_date",
    "id",
    "-id",
    "updated_at",
    "-updated_at",
    "created_at",
    "-created_at",
    "-due_date,-id",
    "due_date,-updated_at",
    "+due_date",
]


def parse_sort(text: str) -> list[tuple[str, bool]]:
    return [(part.lstrip("+-"), part.startswith("-")) for part in text.split(",")]


@pytest.mark.parametrize("sort", SORTS)
def test_invoice_sort_matches_python_sorted(
    api: Api, invoices: list[dict[str, Any]], sort: str
) -> None:
    body = listed(api, sort=sort)
    assert body["count"] == len(invoices)
    assert result_ids(body) == expected_order(invoices, parse_sort(sort))


def test_invoice_sort_repeated_and_paged(api: Api, invoices: list[dict[str, Any]]) -> None:
    expected = expected_order(invoices, [("due_date", True), ("updated_at", False)])
    repeated = api.get("/invoices", params=[("sort", "-due_date"), ("sort", "updated_at")])
    assert repeated.status_code == 200
    assert result_ids(repeated.json()) == expected
    # Page by page (following `next`, which keeps the sort) gives the same order, no repeats.
    seen: list[int] = []
    page = api.get("/invoices", params={"sort": "-due_date,updated_at", "limit": 3}).json()
    while True:
        assert page["count"] == len(invoices)
        seen.extend(result_ids(page))
        if page["next"] is None:
            break
        assert "sort=" in page["next"]
        page = api.client.get(page["next"], headers={"Authorization": f"Token {api.token}"}).json()
    assert seen == expected
    # The default stays id order.
    assert result_ids(listed(api)) == sorted(row["id"] for row in invoices)


@pytest.mark.parametrize(
    ("status", "wanted"),
    [
        ("paid", {"paid"}),
        ("paid,draft", {"paid", "draft"}),
        (["voided", "upcoming,open"], {"voided", "upcoming", "open"}),
        ("skipped", set()),
    ],
)
def test_invoice_status_filter(
    api: Api, invoices: list[dict[str, Any]], status: Any, wanted: set[str]
) -> None:
    body = listed(api, status=status, sort="-due_date")
    matching = [row for row in invoices if row["status"] in wanted]
    assert body["count"] == len(matching)
    assert result_ids(body) == expected_order(matching, [("due_date", True)])
    assert {row["status"] for row in body["results"]} == wanted


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"sort": "number"}, "number"),
        ({"sort": "-nope"}, "nope"),
        ({"sort": "due_date,-due_date"}, "due_date"),
        ({"sort": "due-date"}, "due-date"),
        ({"status": "sent"}, "sent"),
        ({"status": "paid,PAID"}, "PAID"),
        ({"expand": "customer"}, "customer"),
        ({"expand": "line_items,charges"}, "charges"),
        ({"fields": "id,total"}, "total"),
        ({"fields": "discount_code.percent"}, "discount_code.percent"),
        ({"fields": "id.value"}, "id.value"),
        ({"fields": "net_total."}, "net_total."),
        ({"fields": "line_items.nope"}, "line_items.nope"),
    ],
)
def test_unsupported_values_are_422_naming_them(
    api: Api, invoices: list[dict[str, Any]], params: dict[str, str], named: str
) -> None:
    parameter = next(iter(params))
    assert_problem(api.get("/invoices", params=params), 422, parameter, named)
    if parameter in ("fields", "expand"):
        path = f"/invoices/{invoices[0]['id']}"
        assert_problem(api.get(path, params=params), 422, parameter, named)


def test_fields_keep_only_the_named_keys(api: Api, invoices: list[dict[str, Any]]) -> None:
    full = {row["id"]: row for row in listed(api)["results"]}
    body = listed(api, fields="id,status,due_date")
    assert body["count"] == len(invoices)
    for row in body["results"]:
        assert row == {key: full[row["id"]][key] for key in ("id", "status", "due_date")}
    nested = api.get(
        "/invoices", params=[("fields", "id,gross_total.decimal"), ("fields", "discount_code")]
    ).json()
    for row in nested["results"]:
        assert row == {
            "id": row["id"],
            "gross_total": {"decimal": full[row["id"]]["gross_total"]["decimal"]},
            "discount_code": full[row["id"]]["discount_code"],
        }
    # A whole object and one of its keys: the whole object.
    path = f"/invoices/{invoices[0]['id']}"
    both = api.get(path, params={"fields": "net_total.string,net_total"}).json()
    assert both == {"net_total": invoices[0]["net_total"]}
    one = api.get(f"/invoices/{invoices[2]['id']}", params={"fields": "number,total_amount_due"})
    assert one.status_code == 200
    assert one.json() == {
        "number": invoices[2]["number"],
        "total_amount_due": invoices[2]["total_amount_due"],
    }


LINES = [
    {"type": "course", "quantity": "2.5", "unit_price": "19.99", "discount_amount": "1.01",
     "tax_rate": "0.05", "credit_amount": "2.00"},
    {"type": "flat_fee", "amount": "45.00", "tax_rate": "0.20", "refund_amount": "5.50"},
    {"type": "service_fee", "quantity": "12345", "unit_price": "0.0035", "tax_rate": "0.20"},
]  # fmt: skip


@contextmanager
def counted_statements(backend: Backend) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs meanwhile (a real listener, no mock)."""
    engine = engine_for(backend.settings.resolved_database_url)
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_expand_line_items_embeds_them_with_teamup_money(api: Api, backend: Backend) -> None:
    made = []
    for count in (3, 0, 2, 1):
        invoice = create_invoice(api, status="open")
        if count:
            add_line_items(api, invoice["id"], LINES[:count])
        made.append((invoice["id"], LINES[:count]))
    body = listed(api, expand="line_items", sort="-id")
    assert result_ids(body) == sorted((i for i, _ in made), reverse=True)
    for row in body["results"]:
        items = dict(made)[row["id"]]
        own = exact_json(api.get(f"/invoices/{row['id']}/line_items", params={"limit": 100}))
        assert row["line_items"] == own["results"]  # same lines, same rendering, id order
        assert [line["id"] for line in row["line_items"]] == sorted(
            line["id"] for line in row["line_items"]
        )
        due_total = Decimal(0)
        for line, item in zip(row["line_items"], items, strict=True):
            amount, tax = expected_line(item, "GBP")
            discount = Decimal(item.get("discount_amount", "0"))
            credit = Decimal(item.get("credit_amount", "0"))
            refund = Decimal(item.get("refund_amount", "0"))
            assert as_decimal(line["price"]) == amount + discount
            assert as_decimal(line["total_amount_due"]) == amount + tax - credit - refund
            assert line["total_amount_due"]["iso_currency_code"] == "gbp"
            due_total += amount + tax - credit - refund
        assert as_decimal(row["total_amount_due"]) == due_total
        assert as_decimal(row["total_amount_due"]) == (
            as_decimal(row["gross_total"])
            - sum((Decimal(i.get("credit_amount", "0")) for i in items), Decimal(0))
            - sum((Decimal(i.get("refund_amount", "0")) for i in items), Decimal(0))
        )
    # Without expand there are no line items; naming them in `fields` embeds them too.
    assert all("line_items" not in row for row in listed(api)["results"])
    picked = listed(api, fields="id,line_items.amount", sort="id")["results"]
    for row in picked:
        items = dict(made)[row["id"]]
        assert row["line_items"] == [
            {"amount": {**line["amount"]}}
            for line in exact_json(api.get(f"/invoices/{row['id']}/line_items"))["results"]
        ]
        assert len(row["line_items"]) == len(items)
    single = exact_json(api.get(f"/invoices/{made[0][0]}", params={"expand": "line_items"}))
    assert len(single["line_items"]) == 3


def test_expand_line_items_is_not_a_query_per_invoice(api: Api, backend: Backend) -> None:
    for _ in range(12):
        invoice = create_invoice(api)
        add_line_items(api, invoice["id"], LINES)
    with counted_statements(backend) as few:
        small = api.get("/invoices", params={"expand": "line_items", "limit": 2})
    with counted_statements(backend) as many:
        large = api.get("/invoices", params={"expand": "line_items", "limit": 12})
    assert small.status_code == large.status_code == 200
    assert len(small.json()["results"]) == 2
    assert sum(len(row["line_items"]) for row in large.json()["results"]) == 36
    assert few
    assert len(many) == len(few), (few, many)


def test_list_parameters_never_reach_another_account(
    api: Api, other_api: Api, invoices: list[dict[str, Any]]
) -> None:
    # Ids are numbered per account: the other account's invoice has an id this one lacks.
    theirs = beyond(
        [row["id"] for row in invoices],
        lambda: create_invoice(other_api, status="paid", due_date="2030-01-01"),
    )
    add_line_items(other_api, theirs["id"], LINES)
    body = listed(api, status="paid", sort="-due_date", expand="line_items")
    assert theirs["number"] not in [r["number"] for r in body["results"]]
    assert sorted(result_ids(body)) == sorted(r["id"] for r in invoices if r["status"] == "paid")
    assert body["count"] == sum(1 for row in invoices if row["status"] == "paid")
    assert all(line["invoice"] == r["id"] for r in body["results"] for line in r["line_items"])
    assert_problem(api.get(f"/invoices/{theirs['id']}", params={"expand": "line_items"}), 404)
    assert_problem(api.get(f"/invoices/{theirs['id']}", params={"fields": "id"}), 404)


# --- customers -------------------------------------------------------------------------------

PEOPLE = [
    ("Ada Lovelace", "ada@example.com"),
    ("Grace Hopper", "grace@navy.mil"),
    ("Bob 100% Real_Name", "bob@example.org"),
    ("Zoë Ådams", "ZOE@EXAMPLE.COM"),
    ("Percy", None),
    ("Back\\slash Ltd", "accounts@backslash.test"),
    ("adam smith", "a.smith@mail.test"),
]


def fold(text: str) -> str:
    """A-Z to a-z, nothing else (the documented, database-independent case folding)."""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


@pytest.fixture
def people(api: Api, other_api: Api) -> list[dict[str, Any]]:
    create_customer(other_api, name="Ada Other", email="ada@other.test")
    return [create_customer(api, name=name, email=email) for name, email in PEOPLE]


def customers(api: Api, **params: Any) -> dict[str, Any]:
    response = api.get("/customers", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    "text", ["LOVE", "example", "%", "_", "\\", "ë", "zoë", "ada", "a", " hopper ", "nobody"]
)
def test_customer_query_is_a_substring_of_name_or_email(
    api: Api, people: list[dict[str, Any]], text: str
) -> None:
    needle = fold(text.strip())
    expected = [
        person["id"]
        for person in people
        if needle in fold(person["name"]) or needle in fold(person["email"] or "")
    ]
    body = customers(api, query=text)
    assert [row["id"] for row in body["results"]] == expected
    assert body["count"] == len(expected)


@pytest.mark.parametrize("text", ["gra", "HOP", "navy", "grace@", "ada", "zo", "ove", "smi", "%"])
def test_customer_autocomplete_matches_from_the_start(
    api: Api, people: list[dict[str, Any]], text: str
) -> None:
    needle = fold(text)

    def starts(person: dict[str, Any]) -> bool:
        words = fold(person["name"]).split(" ")
        email = fold(person["email"] or "")
        return any(word.startswith(needle) for word in words) or email.startswith(needle)

    expected = [person["id"] for person in people if starts(person)]
    body = customers(api, autocomplete=text)
    assert [row["id"] for row in body["results"]] == expected
    assert body["count"] == len(expected)


def test_customer_ids_only_the_accounts_own(
    api: Api, other_api: Api, people: list[dict[str, Any]]
) -> None:
    stranger = beyond(
        [person["id"] for person in people], lambda: create_customer(other_api, name="Stranger")
    )
    wanted = [people[4]["id"], people[0]["id"], stranger["id"]]
    body = customers(api, ids=",".join(str(i) for i in wanted))
    assert [row["id"] for row in body["results"]] == sorted([people[0]["id"], people[4]["id"]])
    assert body["count"] == 2
    repeated = api.get(
        "/customers", params=[("ids", str(people[1]["id"])), ("ids", str(people[2]["id"]))]
    ).json()
    assert [row["id"] for row in repeated["results"]] == [people[1]["id"], people[2]["id"]]
    # Combined with query: both must match.
    both = customers(api, ids=f"{people[0]['id']},{people[1]['id']}", query="grace")
    assert [row["id"] for row in both["results"]] == [people[1]["id"]]
    assert customers(api, ids=str(stranger["id"]))["count"] == 0


def test_customer_filters_page_and_count(api: Api, people: list[dict[str, Any]]) -> None:
    expected = [p["id"] for p in people if "a" in fold(p["name"]) or "a" in fold(p["email"] or "")]
    first = api.get("/customers", params={"query": "a", "limit": 2}).json()
    assert first["count"] == len(expected)
    assert "query=a" in first["next"]
    second = api.client.get(first["next"], headers={"Authorization": f"Token {api.token}"}).json()
    assert [row["id"] for row in first["results"] + second["results"]] == expected[:4]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"ids": "1,x"}, "ids"),
        ({"ids": "0"}, "ids"),
        ({"ids": "-3"}, "ids"),
        ({"ids": "１２"}, "ids"),
        ({"ids": "99999999999999999999"}, "ids"),
        ({"ids": ",".join(["1"] * 1001)}, "ids"),
        ({"query": "a\x00b"}, "query"),
        ({"autocomplete": "x" * 201}, "autocomplete"),
    ],
)
def test_bad_customer_filters_are_422(
    api: Api, people: list[dict[str, Any]], params: dict[str, str], named: str
) -> None:
    assert_problem(api.get("/customers", params=params), 422, named)
