"""Bad input to every write endpoint of this domain: a 4xx problem+json naming the field,
and a read-back shows nothing was written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, assert_problem
from tests.factories import add_line_item, create_customer, create_invoice

JSON = {"Content-Type": "application/json"}


def _nothing_written(api: Api, invoice: dict[str, Any], lines: int = 0) -> None:
    assert api.get("/invoices").json()["count"] == 1
    assert api.get(f"/invoices/{invoice['id']}").json() == invoice
    assert api.get(f"/invoices/{invoice['id']}/line_items").json()["count"] == lines


def test_malformed_json_is_400_everywhere(api: Api) -> None:
    invoice = create_invoice(api)
    line = add_line_item(api, invoice["id"], type="flat_fee", amount="1")
    invoice = api.get(f"/invoices/{invoice['id']}").json()
    for method, path in (
        ("POST", "/invoices"),
        ("PATCH", f"/invoices/{invoice['id']}"),
        ("POST", f"/invoices/{invoice['id']}/line_items"),
        ("PATCH", f"/invoices/{invoice['id']}/line_items/{line['id']}"),
        ("POST", "/customers"),
        ("POST", "/venues"),
    ):
        for raw in (b'{"status": "open"', b"{'a': 1}", b"\xff\xfe"):
            response = api.request(method, path, content=raw, headers=JSON)
            assert_problem(response, 400)
    _nothing_written(api, invoice, lines=1)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "sent"}, "status"),
        ({"status": 1}, "status"),
        ({"currency": "POUNDS"}, "currency"),
        ({"currency": "ZZZ"}, "currency"),
        ({"currency": 826}, "currency"),
        ({"customer": "1"}, "customer"),
        ({"customer": 1.5}, "customer"),
        ({"customer": 0}, "customer"),
        ({"customer": 2**64}, "customer"),
        ({"customer": 987654321}, "customer"),
        ({"number": ""}, "number"),
        ({"number": "x" * 65}, "number"),
        ({"number": 42}, "number"),
        ({"is_credit_note": "yes"}, "is_credit_note"),
        ({"is_credit_note": 1}, "is_credit_note"),
        ({"discount_code": "SUMMER"}, "discount_code"),
        ({"discount_code": {"name": "n"}}, "code"),
        ({"discount_code": {"code": "C", "extra": 1}}, "extra"),
        ({"due_date": 20240729}, "due_date"),
        ({"net_total": "10.00"}, "net_total"),
        ({"id": 5}, "id"),
    ],
)
def test_invoice_create_and_patch_refuse_bad_fields(
    api: Api, body: dict[str, Any], field: str
) -> None:
    invoice = create_invoice(api)
    assert_problem(api.post("/invoices", json=body), 422, field)
    assert_problem(api.patch(f"/invoices/{invoice['id']}", json=body), 422, field)
    _nothing_written(api, invoice)


def test_non_object_bodies(api: Api) -> None:
    invoice = create_invoice(api)
    for body in ([], ["x"], "text", 3, None):
        for method, path in (
            ("POST", "/invoices"),
            ("PATCH", f"/invoices/{invoice['id']}"),
            ("POST", f"/invoices/{invoice['id']}/line_items"),
        ):
            response = api.request(method, path, json=body)
            assert 400 <= response.status_code < 500, (method, path, body, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
    _nothing_written(api, invoice)


LINE_OK: dict[str, Any] = {"type": "flat_fee", "quantity": "2", "unit_price": "1.50"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"type": "coffee"}, "type"),
        ({"type": None}, "type"),
        ({"unit_price": 1.5}, "unit_price"),
        ({"quantity": 2}, "quantity"),
        ({"quantity": "1e3"}, "quantity"),
        ({"quantity": "0.0000001"}, "quantity"),
        ({"unit_price": "1.1234567"}, "unit_price"),
        ({"unit_price": "abc"}, "unit_price"),
        ({"unit_price": "12345678901"}, "unit_price"),
        ({"quantity": "NaN"}, "quantity"),
        ({"discount_amount": "0.001"}, "discount_amount"),
        ({"discount_amount": 0.5}, "discount_amount"),
        ({"credit_amount": "1.234"}, "credit_amount"),
        ({"refund_amount": "Infinity"}, "refund_amount"),
        ({"tax_rate": 0.2}, "tax_rate"),
        ({"tax_rate": "20%"}, "tax_rate"),
        ({"tax_rate": "11"}, "tax_rate"),
        ({"tax_rate": "0.1234567"}, "tax_rate"),
        ({"description": 5}, "description"),
        ({"billed_item": {"object": "course"}}, "id"),
        ({"billed_item": {"object": "course", "id": "7"}}, "id"),
        ({"billed_item": 7}, "billed_item"),
        ({"group_id": 12}, "group_id"),
        ({"group_id": "8c1b6f1e-0000-4000-8000-000000000000"}, "group_id"),
        ({"invoice": 1}, "invoice"),
        ({"amount": "3.00"}, "amount"),
        ({"quantity": "99999", "unit_price": "999999"}, "amount"),
    ],
)
def test_line_item_writes_refuse_bad_fields(api: Api, changes: dict[str, Any], field: str) -> None:
    invoice = create_invoice(api)
    line = add_line_item(api, invoice["id"], **LINE_OK)
    invoice = api.get(f"/invoices/{invoice['id']}").json()
    url = f"/invoices/{invoice['id']}/line_items"
    body = {**LINE_OK, **changes}
    assert_problem(api.post(url, json=body), 422, field)
    batch = api.post(url, json={"items": [LINE_OK, body]})
    assert_problem(batch, 422, f"items.1.{field}" if field not in ("id",) else "items.1")
    if field != "amount":  # in a PATCH, amount alone switches form, which is allowed
        patched = api.patch(f"{url}/{line['id']}", json=changes)
        assert_problem(patched, 422, field)
    _nothing_written(api, invoice, lines=1)
    assert api.get(f"{url}/{line['id']}").json() == line


def test_line_item_needs_one_form(api: Api) -> None:
    invoice = create_invoice(api)
    url = f"/invoices/{invoice['id']}/line_items"
    for body, field in (
        ({"type": "flat_fee"}, "amount"),
        ({"type": "flat_fee", "unit_price": "1"}, "quantity"),
        ({"amount": "1"}, "type"),
        ({}, "type"),
    ):
        assert_problem(api.post(url, json=body), 422, field)
    batches: list[dict[str, Any]] = [
        {"items": []},
        {"items": "x"},
        {"items": [{}], "extra": 1},
        {"items": None},
    ]
    for batch in batches:
        assert_problem(api.post(url, json=batch), 422, "items")
    too_many = {"items": [{"type": "flat_fee", "amount": "1"}] * 1001}
    assert_problem(api.post(url, json=too_many), 422, "items")
    _nothing_written(api, invoice)


def test_bad_ids_and_paging(api: Api) -> None:
    invoice = create_invoice(api)
    for path in ("/invoices/abc", "/invoices/0", f"/invoices/{2**64}", "/customers/-1"):
        response = api.get(path)
        assert 400 <= response.status_code < 500, (path, response.text)
    for path in (
        "/invoices",
        f"/invoices/{invoice['id']}/line_items",
        "/customers",
    ):
        for params, name in (
            ({"limit": 0}, "limit"),
            ({"limit": 101}, "limit"),
            ({"limit": 2**70}, "limit"),
            ({"offset": -5}, "offset"),
            ({"page_size": 0}, "page_size"),
            ({"page_size": 500}, "page_size"),
            ({"page": -1}, "page"),
            ({"page": 1, "limit": 5}, "page"),
        ):
            assert_problem(api.get(path, params=params), 422, name)


def test_customer_and_venue_bad_input(api: Api) -> None:
    for body, field in (
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": 5}, "name"),
        ({"name": "x", "email": "not-an-email"}, "email"),
        ({"name": "x", "venue": "1"}, "venue"),
        ({"name": "x", "venue": 987654321}, "venue"),
        ({"name": "x", "venue": 2**64}, "venue"),
        ({"name": "x", "colour": "red"}, "colour"),
    ):
        assert_problem(api.post("/customers", json=body), 422, field)
    assert_problem(api.post("/venues", json={"name": "x", "city": "y"}), 422, "city")
    assert api.get("/customers").json()["count"] == 0
    assert create_customer(api, name="ok")["name"] == "ok"


def test_nul_characters_are_422_not_a_database_error(api: Api) -> None:
    invoice = create_invoice(api)
    line = add_line_item(api, invoice["id"], type="flat_fee", amount="1")
    invoice = api.get(f"/invoices/{invoice['id']}").json()
    lines_url = f"/invoices/{invoice['id']}/line_items"
    nul_line = {"type": "flat_fee", "amount": "1", "description": "a\u0000b"}
    for method, path, body, field in (
        ("POST", "/invoices", {"number": "A\u0000B"}, "number"),
        ("POST", "/invoices", {"discount_code": {"code": "\u0000"}}, "code"),
        ("PATCH", f"/invoices/{invoice['id']}", {"number": "\u0000"}, "number"),
        ("POST", lines_url, nul_line, "description"),
        ("POST", lines_url, {"items": [nul_line]}, "items.0.description"),
        (
            "POST",
            lines_url,
            {"type": "flat_fee", "amount": "1", "billed_item": {"object": "\u0000", "id": 1}},
            "object",
        ),
        ("PATCH", f"{lines_url}/{line['id']}", {"description": "\u0000"}, "description"),
        ("POST", "/customers", {"name": "\u0000"}, "name"),
        ("POST", "/venues", {"name": "x\u0000"}, "name"),
    ):
        assert_problem(api.request(method, path, json=body), 422, field)
    _nothing_written(api, invoice, lines=1)
    assert api.get("/customers").json()["count"] == 0
