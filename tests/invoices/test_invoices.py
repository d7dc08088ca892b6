"""Invoices: shapes, numbering, totals, status timestamps and PATCH semantics."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from tests.conftest import Api, TenantFactory, assert_problem
from tests.factories import add_line_items, create_customer, create_invoice
from tests.invoices.expected import as_decimal, exact_json, expected_totals

INVOICE_KEYS = {
    "id",
    "object",
    "number",
    "status",
    "currency",
    "customer",
    "due_date",
    "created_at",
    "updated_at",
    "confirmed_at",
    "paid_at",
    "is_credit_note",
    "discount_code",
    "net_total",
    "total_tax",
    "gross_total",
    "total_amount_due",
}
MONEY_KEYS = {
    "decimal",
    "string",
    "iso_currency_code",
    "currency_symbol",
    "currency_symbol_position",
}


def parse_time(text: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text)
    assert parsed.tzinfo is not None, text
    return parsed


def test_create_invoice_defaults_and_shape(api: Api) -> None:
    before = dt.datetime.now(dt.UTC)
    invoice = create_invoice(api)
    assert set(invoice) == INVOICE_KEYS
    assert invoice["object"] == "invoice"
    assert invoice["number"] == "INV-000001"
    assert invoice["status"] == "draft"
    assert invoice["currency"] == api.currency == "GBP"
    assert invoice["customer"] is None
    assert invoice["due_date"] is None
    assert invoice["confirmed_at"] is None
    assert invoice["paid_at"] is None
    assert invoice["is_credit_note"] is False
    assert invoice["discount_code"] is None
    created = parse_time(invoice["created_at"])
    assert before - dt.timedelta(seconds=1) <= created <= dt.datetime.now(dt.UTC)
    assert invoice["updated_at"] == invoice["created_at"]
    for key in ("net_total", "total_tax", "gross_total", "total_amount_due"):
        assert set(invoice[key]) == MONEY_KEYS
        assert invoice[key]["decimal"] == 0
        assert invoice[key]["string"] == "£0.00"
        assert invoice[key]["iso_currency_code"] == "gbp"
        assert invoice[key]["currency_symbol"] == "£"
        assert invoice[key]["currency_symbol_position"] == "before"
    fetched = api.get(f"/invoices/{invoice['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == invoice


def test_create_invoice_with_every_field(api: Api) -> None:
    customer = create_customer(api, name="Grace", email="grace@example.com")
    invoice = create_invoice(
        api,
        number="2024/0042",
        status="paid",
        currency="eur",
        customer=customer["id"],
        due_date="2024-07-29",
        is_credit_note=True,
        discount_code={"name": "Summer", "code": "SUMMER24"},
        confirmed_at="2024-07-01T09:30:00+01:00",
        paid_at="2024-07-02T10:00:00Z",
    )
    assert invoice["number"] == "2024/0042"
    assert invoice["status"] == "paid"
    assert invoice["currency"] == "EUR"
    assert invoice["customer"] == customer["id"]
    assert invoice["due_date"] == "2024-07-29"
    assert invoice["is_credit_note"] is True
    assert invoice["discount_code"] == {"name": "Summer", "code": "SUMMER24"}
    assert parse_time(invoice["confirmed_at"]) == dt.datetime(2024, 7, 1, 8, 30, tzinfo=dt.UTC)
    assert parse_time(invoice["paid_at"]) == dt.datetime(2024, 7, 2, 10, 0, tzinfo=dt.UTC)
    assert invoice["net_total"]["iso_currency_code"] == "eur"
    assert invoice["net_total"]["string"] == "€0.00"


def test_numbers_are_sequential_per_account_and_unique(
    api: Api, make_tenant: TenantFactory
) -> None:
    numbers = [create_invoice(api)["number"] for _ in range(3)]
    assert numbers == ["INV-000001", "INV-000002", "INV-000003"]
    # Another account starts its own sequence.
    assert create_invoice(make_tenant())["number"] == "INV-000001"
    # A hand-given number that looks like an auto number moves the sequence past it.
    create_invoice(api, number="INV-000010")
    assert create_invoice(api)["number"] == "INV-000011"
    clash = api.post("/invoices", json={"number": "INV-000002"})
    assert_problem(clash, 409, "number")
    listing = api.get("/invoices", params={"limit": 100}).json()
    assert listing["count"] == 5


def test_status_out_of_draft_sets_confirmed_at_and_paid_sets_paid_at(api: Api) -> None:
    draft = create_invoice(api)
    assert draft["confirmed_at"] is None
    opened = api.patch(f"/invoices/{draft['id']}", json={"status": "open"}).json()
    confirmed_at = parse_time(opened["confirmed_at"])
    assert opened["paid_at"] is None
    assert parse_time(opened["updated_at"]) > parse_time(draft["updated_at"])
    paid = api.patch(f"/invoices/{draft['id']}", json={"status": "paid"}).json()
    assert parse_time(paid["confirmed_at"]) == confirmed_at  # kept, not reset
    paid_at = parse_time(paid["paid_at"])
    assert paid_at >= confirmed_at
    # Back to open and paid again: both timestamps are kept as they were.
    api.patch(f"/invoices/{draft['id']}", json={"status": "open"})
    again = api.patch(f"/invoices/{draft['id']}", json={"status": "paid"}).json()
    assert parse_time(again["paid_at"]) == paid_at
    # Created paid straight away: both set.
    direct = create_invoice(api, status="paid")
    assert direct["confirmed_at"] is not None
    assert direct["paid_at"] is not None
    # Historical data: explicit values win.
    loaded = api.patch(
        f"/invoices/{draft['id']}",
        json={"paid_at": "2023-01-05T12:00:00-05:00", "confirmed_at": "2023-01-01T00:00:00Z"},
    ).json()
    assert parse_time(loaded["paid_at"]) == dt.datetime(2023, 1, 5, 17, 0, tzinfo=dt.UTC)
    assert parse_time(loaded["confirmed_at"]) == dt.datetime(2023, 1, 1, tzinfo=dt.UTC)


def test_naive_and_bad_timestamps_are_refused(api: Api) -> None:
    for field, value in (
        ("confirmed_at", "2024-07-29T15:51:28"),
        ("paid_at", "2024-07-29"),
        ("paid_at", "yesterday"),
        ("confirmed_at", 1722268288),
        ("due_date", "2024-02-30"),
        ("due_date", "29/07/2024"),
        ("due_date", "2024-07-29T00:00:00Z"),
    ):
        assert_problem(api.post("/invoices", json={field: value}), 422, field)
    invoice = create_invoice(api, status="paid")
    for field in ("paid_at", "confirmed_at"):
        response = api.patch(f"/invoices/{invoice['id']}", json={field: None})
        assert_problem(response, 422, field)
    assert api.get("/invoices").json()["count"] == 1


def test_patch_changes_only_what_is_sent(api: Api) -> None:
    customer = create_customer(api)
    invoice = create_invoice(
        api, customer=customer["id"], due_date="2024-01-31", discount_code={"code": "X"}
    )
    assert invoice["discount_code"] == {"name": None, "code": "X"}
    patched = api.patch(f"/invoices/{invoice['id']}", json={"due_date": "2024-02-29"}).json()
    assert patched["due_date"] == "2024-02-29"
    unchanged = {k: v for k, v in invoice.items() if k not in ("due_date", "updated_at")}
    assert {k: v for k, v in patched.items() if k not in ("due_date", "updated_at")} == unchanged
    assert parse_time(patched["updated_at"]) > parse_time(invoice["updated_at"])
    # null clears the nullable fields
    cleared = api.patch(
        f"/invoices/{invoice['id']}",
        json={"customer": None, "due_date": None, "discount_code": None},
    ).json()
    assert cleared["customer"] is None
    assert cleared["due_date"] is None
    assert cleared["discount_code"] is None
    # an empty PATCH changes nothing, not even updated_at
    same = api.patch(f"/invoices/{invoice['id']}", json={})
    assert same.status_code == 200
    assert same.json() == cleared
    # number changes, and a clash is 409
    other = create_invoice(api)
    renamed = api.patch(f"/invoices/{invoice['id']}", json={"number": "A-1"}).json()
    assert renamed["number"] == "A-1"
    assert_problem(api.patch(f"/invoices/{other['id']}", json={"number": "A-1"}), 409, "number")
    assert api.get(f"/invoices/{other['id']}").json()["number"] == other["number"]
    for field in ("number", "status", "currency", "is_credit_note"):
        assert_problem(api.patch(f"/invoices/{invoice['id']}", json={field: None}), 422, field)


def test_currency_is_fixed_once_there_are_line_items(api: Api) -> None:
    invoice = create_invoice(api)
    changed = api.patch(f"/invoices/{invoice['id']}", json={"currency": "JPY"})
    assert changed.status_code == 200
    assert changed.json()["currency"] == "JPY"
    add_line_items(api, invoice["id"], [{"type": "flat_fee", "amount": "100"}])
    assert_problem(
        api.patch(f"/invoices/{invoice['id']}", json={"currency": "GBP"}), 409, "currency"
    )
    # the same currency again is no change, and allowed
    assert api.patch(f"/invoices/{invoice['id']}", json={"currency": "jpy"}).status_code == 200
    assert api.get(f"/invoices/{invoice['id']}").json()["currency"] == "JPY"
    assert_problem(api.post("/invoices", json={"currency": "XXY"}), 422, "currency")


def test_totals_are_sums_of_rounded_lines(api: Api) -> None:
    invoice = create_invoice(api)
    items: list[dict[str, Any]] = [
        {"type": "service_fee", "quantity": "3", "unit_price": "0.005", "tax_rate": "0.20"},
        {"type": "service_fee", "quantity": "1", "unit_price": "0.125", "tax_rate": "0.20"},
        {"type": "flat_fee", "amount": "-2.25", "tax_rate": "0.175"},
        {
            "type": "course",
            "quantity": "2.5",
            "unit_price": "19.99",
            "discount_amount": "1.01",
            "tax_rate": "0.05",
        },
        {"type": "gift_card", "quantity": "12000", "unit_price": "0.0035"},
    ]
    add_line_items(api, invoice["id"], items)
    net, tax = expected_totals(items, "GBP")
    body = exact_json(api.get(f"/invoices/{invoice['id']}"))
    assert as_decimal(body["net_total"]) == net
    assert as_decimal(body["total_tax"]) == tax
    assert as_decimal(body["gross_total"]) == net + tax
    assert body["gross_total"]["string"] == f"£{net + tax:,.2f}"
    listed = exact_json(api.get("/invoices"))["results"][0]
    assert as_decimal(listed["net_total"]) == net
    assert as_decimal(listed["total_tax"]) == tax


def test_list_pages_with_links(api: Api) -> None:
    ids = [create_invoice(api)["id"] for _ in range(5)]
    first = api.get("/invoices", params={"limit": 2}).json()
    assert first["count"] == 5
    assert [r["id"] for r in first["results"]] == ids[:2]
    assert first["previous"] is None
    second = api.get(first["next"]).json()
    assert [r["id"] for r in second["results"]] == ids[2:4]
    third = api.get(second["next"]).json()
    assert [r["id"] for r in third["results"]] == ids[4:]
    assert third["next"] is None
    assert api.get(third["previous"]).json()["results"] == second["results"]
    by_page = api.get("/invoices", params={"page": 2, "page_size": 2}).json()
    assert [r["id"] for r in by_page["results"]] == ids[2:4]
    for params, name in (
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"offset": -1}, "offset"),
        ({"page_size": 1000}, "page_size"),
        ({"page": 0}, "page"),
        ({"limit": "ten"}, "limit"),
    ):
        assert_problem(api.get("/invoices", params=params), 422, name)


def test_exact_decimal_literals_in_json(api: Api) -> None:
    invoice = create_invoice(api)
    add_line_items(api, invoice["id"], [{"type": "flat_fee", "amount": "0.10"}] * 3)
    text = api.get(f"/invoices/{invoice['id']}").text
    assert '"net_total":{"decimal":0.3,' in text
    assert Decimal("0.3") == as_decimal(
        exact_json(api.get(f"/invoices/{invoice['id']}"))["net_total"]
    )


def test_concurrent_creates_get_distinct_numbers(api: Api) -> None:
    def create(_: int) -> tuple[int, str]:
        response = api.post("/invoices", json={})
        return response.status_code, response.text

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(40)))
    assert [status for status, _ in results] == [201] * 40, results
    numbers = {
        invoice["number"]
        for invoice in api.get("/invoices", params={"limit": 100}).json()["results"]
    }
    assert numbers == {f"INV-{n:06d}" for n in range(1, 41)}


def test_auto_number_skips_a_hand_given_number_far_back(api: Api) -> None:
    create_invoice(api, number="INV-000053")
    for n in range(50):  # pushes INV-000053 out of the recent invoices the sequence looks at
        create_invoice(api, number=f"INV-X-{n}")
    create_invoice(api, number="INV-000052")
    assert create_invoice(api)["number"] == "INV-000054"
    assert create_invoice(api)["number"] == "INV-000055"


def test_openapi_documents_the_invoice_endpoints(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    paths = spec["paths"]
    assert set(paths["/api/v2/invoices"]) == {"get", "post"}
    assert set(paths["/api/v2/invoices/{invoice_id}"]) == {"get", "patch"}
    line_items = paths["/api/v2/invoices/{invoice_id}/line_items"]["post"]
    schema = line_items["requestBody"]["content"]["application/json"]["schema"]
    assert len(schema["anyOf"]) == 2  # one line item, or {"items": [...]}
    assert set(paths["/api/v2/invoices/{invoice_id}/line_items/{line_item_id}"]) == {
        "get",
        "patch",
        "delete",
    }
