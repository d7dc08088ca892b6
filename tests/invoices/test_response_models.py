"""Every invoices, customers, venues and line-items answer matches its published schema,
with sparse fieldsets and expanded line items too."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tests.conftest import Api
from tests.factories import create_customer, create_invoice
from tests.openapi_check import assert_matches_openapi

BASE = "/api/v2"
LINES = [
    {"type": "course", "quantity": "2", "unit_price": "0.0035", "tax_rate": "0.20"},
    {"type": "flat_fee", "amount": "45.00", "billed_item": {"object": "course", "id": 4}},
]


def check(app: FastAPI, api: Api, method: str, template: str, url: str, **kw: Any) -> Any:
    response = api.request(method, url, **kw)
    assert response.status_code < 300, response.text
    body = response.json()
    assert_matches_openapi(app, method, BASE + template, response.status_code, body)
    return body


def test_answers_match_their_response_models(app: FastAPI, api: Api) -> None:
    venue = check(app, api, "POST", "/venues", "/venues", json={"name": "North"})
    customer = create_customer(api, name="Ada", email="ada@example.com", venue=venue["id"])
    create_customer(api, name="Bob")
    check(app, api, "GET", "/customers/{customer_id}", f"/customers/{customer['id']}")
    check(app, api, "GET", "/customers", "/customers", params={"query": "a"})
    invoice = check(
        app,
        api,
        "POST",
        "/invoices",
        "/invoices",
        json={"customer": customer["id"], "discount_code": {"code": "X"}, "due_date": "2024-07-01"},
    )
    create_invoice(api, status="paid")
    lines_url = f"/invoices/{invoice['id']}/line_items"
    template = "/invoices/{invoice_id}/line_items"
    one = check(app, api, "POST", template, lines_url, json=LINES[0])
    check(app, api, "POST", template, lines_url, json={"items": LINES})
    check(app, api, "GET", template, lines_url)
    item = template + "/{line_item_id}"
    check(app, api, "GET", item, f"{lines_url}/{one['id']}")
    check(app, api, "PATCH", item, f"{lines_url}/{one['id']}", json={"description": "d"})
    patch = {"status": "open"}
    check(app, api, "PATCH", "/invoices/{invoice_id}", f"/invoices/{invoice['id']}", json=patch)
    for params in (
        {},
        {"expand": "line_items", "sort": "-due_date"},
        {"fields": "id,gross_total.decimal,discount_code.code"},
        {"fields": "line_items.price.string,line_items.billed_item.object,status"},
        {"fields": "net_total", "status": "paid"},
    ):
        check(app, api, "GET", "/invoices", "/invoices", params=params)
        url = f"/invoices/{invoice['id']}"
        single = {k: v for k, v in params.items() if k in ("fields", "expand")}
        check(app, api, "GET", "/invoices/{invoice_id}", url, params=single)
