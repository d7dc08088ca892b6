"""Line items: shapes and numbers, batches (all or none), PATCH, DELETE, updated_at."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import Api, TenantFactory, assert_problem
from tests.factories import add_line_item, add_line_items, create_invoice, random_line_item
from tests.invoices.expected import as_decimal, exact_json, expected_line, expected_totals

LINE_KEYS = {
    "id",
    "object",
    "invoice",
    "group_id",
    "type",
    "billed_item",
    "description",
    "quantity",
    "unit_price",
    "amount",
    "tax_rate",
    "tax_amount",
    "discount_amount",
    "credit_amount",
    "refund_amount",
    "price",
    "total_amount_due",
}


def test_priced_line_item_every_field(api: Api) -> None:
    invoice = create_invoice(api)
    response = api.post(
        f"/invoices/{invoice['id']}/line_items",
        json={
            "type": "service_fee",
            "description": "API calls, July",
            "billed_item": {"object": "customer_membership", "id": 981},
            "quantity": "12345",
            "unit_price": "0.0035",
            "discount_amount": "1.20",
            "credit_amount": "0.50",
            "refund_amount": "0.25",
            "tax_rate": "0.20",
        },
    )
    assert response.status_code == 201, response.text
    line = exact_json(response)
    assert set(line) == LINE_KEYS
    assert line["object"] == "invoice_line_item"
    assert line["invoice"] == invoice["id"]
    assert line["group_id"] is None
    assert line["type"] == "service_fee"
    assert line["billed_item"] == {"object": "customer_membership", "id": 981}
    assert line["description"] == "API calls, July"
    assert line["quantity"] == "12345"
    # unit price kept to its six places, exactly
    assert line["unit_price"]["decimal"] == Decimal("0.0035")
    assert line["unit_price"]["string"] == "£0.0035"
    # 12345 × 0.0035 = 43.2075 → 43.21; − 1.20 = 42.01; tax 8.402 → 8.40
    assert as_decimal(line["amount"]) == Decimal("42.01")
    assert line["amount"]["string"] == "£42.01"
    assert line["tax_rate"] == "0.20"
    assert as_decimal(line["tax_amount"]) == Decimal("8.40")
    assert as_decimal(line["discount_amount"]) == Decimal("1.2")
    assert as_decimal(line["credit_amount"]) == Decimal("0.5")
    assert as_decimal(line["refund_amount"]) == Decimal("0.25")
    assert exact_json(api.get(f"/invoices/{invoice['id']}/line_items/{line['id']}")) == line


def test_amount_given_line_is_kept_as_given(api: Api) -> None:
    invoice = create_invoice(api)
    line = add_line_item(
        api,
        invoice["id"],
        type="flat_fee",
        amount="-45.50",
        discount_amount="5.00",
        tax_rate="0.175",
    )
    # the amount is the line's amount; the discount is recorded, not subtracted again
    assert line["amount"]["decimal"] == -45.5
    assert line["amount"]["string"] == "-£45.50"
    assert line["discount_amount"]["decimal"] == 5
    assert line["quantity"] is None
    assert line["unit_price"] is None
    # −45.50 × 0.175 = −7.9625 → −7.96 (half away from zero)
    assert line["tax_amount"]["decimal"] == -7.96
    assert line["tax_rate"] == "0.175"


@pytest.mark.parametrize(
    ("currency", "quantity", "unit_price", "tax_rate"),
    [
        ("JPY", "3", "333.5", "0.10"),
        ("KWD", "7", "1.0005", "0.05"),
        ("GBP", "-2", "0.005", "0.20"),
        ("KWD", "0.333333", "3.000003", "0.15"),
    ],
)
def test_rounding_half_away_from_zero_per_currency(
    make_tenant: TenantFactory, currency: str, quantity: str, unit_price: str, tax_rate: str
) -> None:
    api = make_tenant(currency=currency)
    invoice = create_invoice(api)
    assert invoice["currency"] == currency
    item = {
        "type": "flat_fee",
        "quantity": quantity,
        "unit_price": unit_price,
        "tax_rate": tax_rate,
    }
    line = exact_json(api.post(f"/invoices/{invoice['id']}/line_items", json=item))
    amount, tax = expected_line(item, currency)
    assert as_decimal(line["amount"]) == amount
    assert as_decimal(line["tax_amount"]) == tax


def test_batch_creates_in_order_and_totals_match(api: Api) -> None:
    rng = random.Random(7)
    invoice = create_invoice(api)
    items = [random_line_item(rng, "GBP", negative=True) for _ in range(250)]
    created = add_line_items(api, invoice["id"], items)
    assert len(created) == 250
    assert [c["description"] for c in created] == [i["description"] for i in items]
    assert [c["id"] for c in created] == sorted(c["id"] for c in created)
    for item, line in zip(items, created, strict=True):
        amount, tax = expected_line(item, "GBP")
        assert Decimal(str(line["amount"]["decimal"])) == amount
        assert Decimal(str(line["tax_amount"]["decimal"])) == tax
    net, tax = expected_totals(items, "GBP")
    body = exact_json(api.get(f"/invoices/{invoice['id']}"))
    assert as_decimal(body["net_total"]) == net
    assert as_decimal(body["total_tax"]) == tax
    assert as_decimal(body["gross_total"]) == net + tax
    listing = api.get(f"/invoices/{invoice['id']}/line_items", params={"limit": 100}).json()
    assert listing["count"] == 250
    assert [r["id"] for r in listing["results"]] == [c["id"] for c in created[:100]]


def test_batch_of_1000_and_over(api: Api) -> None:
    invoice = create_invoice(api)
    items = [{"type": "flat_fee", "amount": "1.01"}] * 1000
    response = api.post(f"/invoices/{invoice['id']}/line_items", json={"items": items})
    assert response.status_code == 201
    assert len(response.json()["items"]) == 1000
    too_many = api.post(f"/invoices/{invoice['id']}/line_items", json={"items": [*items, items[0]]})
    assert_problem(too_many, 422, "items")
    assert_problem(
        api.post(f"/invoices/{invoice['id']}/line_items", json={"items": []}), 422, "items"
    )
    body = exact_json(api.get(f"/invoices/{invoice['id']}"))
    assert as_decimal(body["net_total"]) == Decimal("1010")
    assert api.get(f"/invoices/{invoice['id']}/line_items").json()["count"] == 1000


def test_batch_is_all_or_none(api: Api) -> None:
    invoice = create_invoice(api)
    good = {"type": "flat_fee", "amount": "10.00"}
    for bad, field in (
        ({"type": "flat_fee", "amount": "10.001"}, "amount"),
        ({"type": "flat_fee", "amount": 10.0}, "amount"),
        ({"type": "no_such_type", "amount": "1"}, "type"),
        ({"type": "flat_fee", "amount": "1", "colour": "red"}, "colour"),
        ({"type": "flat_fee", "quantity": "1", "unit_price": "1", "amount": "1"}, "amount"),
        ({"type": "flat_fee", "quantity": "1"}, "unit_price"),
        ({"type": "flat_fee", "quantity": "1.0000001", "unit_price": "1"}, "quantity"),
        ({"type": "flat_fee", "amount": "1", "tax_rate": "-0.2"}, "tax_rate"),
        ({"type": "flat_fee", "amount": "1", "group_id": "not-a-uuid"}, "group_id"),
    ):
        response = api.post(
            f"/invoices/{invoice['id']}/line_items", json={"items": [good, good, bad, good]}
        )
        assert_problem(response, 422, f"items.2.{field}" if field != "colour" else "colour")
        assert "items" in response.text
    assert api.get(f"/invoices/{invoice['id']}/line_items").json()["count"] == 0
    after = api.get(f"/invoices/{invoice['id']}").json()
    assert after["updated_at"] == invoice["updated_at"]


def test_line_item_changes_move_invoice_updated_at(api: Api) -> None:
    invoice = create_invoice(api)
    stamps = [dt.datetime.fromisoformat(invoice["updated_at"])]

    def updated_at() -> dt.datetime:
        return dt.datetime.fromisoformat(api.get(f"/invoices/{invoice['id']}").json()["updated_at"])

    line = add_line_item(api, invoice["id"], type="flat_fee", amount="5.00")
    stamps.append(updated_at())
    api.patch(f"/invoices/{invoice['id']}/line_items/{line['id']}", json={"description": "x"})
    stamps.append(updated_at())
    api.delete(f"/invoices/{invoice['id']}/line_items/{line['id']}")
    stamps.append(updated_at())
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 4


def test_patch_line_item_recomputes(api: Api) -> None:
    invoice = create_invoice(api)
    base: dict[str, Any] = {
        "type": "course",
        "quantity": "2",
        "unit_price": "10.005",
        "tax_rate": "0.20",
    }
    line = add_line_item(api, invoice["id"], **base)
    url = f"/invoices/{invoice['id']}/line_items/{line['id']}"

    def check(patch: dict[str, Any], merged: dict[str, Any]) -> dict[str, Any]:
        response = api.patch(url, json=patch)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = exact_json(response)
        amount, tax = expected_line(merged, "GBP")
        assert as_decimal(body["amount"]) == amount, (patch, body)
        assert as_decimal(body["tax_amount"]) == tax
        return body

    merged = {**base, "quantity": "3"}
    check({"quantity": "3"}, merged)
    merged = {**merged, "discount_amount": "0.02"}
    check({"discount_amount": "0.02"}, merged)
    merged = {**merged, "tax_rate": "0.05"}
    body = check({"tax_rate": "0.05"}, merged)
    assert body["type"] == "course"
    # switch to the amount-given form
    merged = {"amount": "99.99", "tax_rate": "0.05", "discount_amount": "0.02"}
    body = check({"amount": "99.99"}, merged)
    assert body["quantity"] is None
    assert body["unit_price"] is None
    # back to priced: both needed since the line has neither now
    assert_problem(api.patch(url, json={"quantity": "1"}), 422, "unit_price")
    merged = {"quantity": "1", "unit_price": "3", "tax_rate": "0.05", "discount_amount": "0.02"}
    check({"quantity": "1", "unit_price": "3"}, merged)
    assert_problem(api.patch(url, json={"amount": "1", "quantity": "2"}), 422, "amount")
    for field in ("type", "tax_rate", "amount", "description"):
        assert_problem(api.patch(url, json={field: None}), 422, field)
    assert_problem(api.patch(url, json={"type": "pizza"}), 422, "type")
    assert_problem(api.patch(url, json={"invoice": 3}), 422, "invoice")
    changed = api.patch(
        url,
        json={
            "type": "gift_card",
            "description": "d",
            "billed_item": {"object": "course", "id": 1},
        },
    ).json()
    assert changed["type"] == "gift_card"
    assert changed["billed_item"] == {"object": "course", "id": 1}
    assert api.patch(url, json={"billed_item": None}).json()["billed_item"] is None
    # the invoice totals follow
    final = exact_json(api.get(url))
    totals = exact_json(api.get(f"/invoices/{invoice['id']}"))
    assert as_decimal(totals["net_total"]) == as_decimal(final["amount"])


def test_delete_line_item(api: Api) -> None:
    invoice = create_invoice(api)
    keep, drop = add_line_items(
        api,
        invoice["id"],
        [{"type": "flat_fee", "amount": "1.00"}, {"type": "flat_fee", "amount": "2.00"}],
    )
    url = f"/invoices/{invoice['id']}/line_items/{drop['id']}"
    deleted = api.delete(url)
    assert deleted.status_code == 204
    assert_problem(api.get(url), 404)
    assert_problem(api.delete(url), 404)
    assert api.get(f"/invoices/{invoice['id']}").json()["net_total"]["decimal"] == 1
    other = create_invoice(api)
    # a line item is only found under its own invoice
    assert_problem(api.get(f"/invoices/{other['id']}/line_items/{keep['id']}"), 404)


def test_noop_line_item_patch_leaves_invoice_updated_at(api: Api) -> None:
    invoice = create_invoice(api)
    line = add_line_item(api, invoice["id"], type="flat_fee", quantity="2", unit_price="3.50")
    url = f"/invoices/{invoice['id']}/line_items/{line['id']}"
    before = api.get(f"/invoices/{invoice['id']}").json()["updated_at"]
    same = api.patch(url, json={"description": "", "quantity": "2.000", "type": "flat_fee"})
    assert same.status_code == 200
    assert same.json() == line
    assert api.get(f"/invoices/{invoice['id']}").json()["updated_at"] == before
    changed = api.patch(url, json={"unit_price": "3.51"}).json()
    assert changed["amount"]["decimal"] == 7.02
    after = api.get(f"/invoices/{invoice['id']}").json()["updated_at"]
    assert dt.datetime.fromisoformat(after) > dt.datetime.fromisoformat(before)
