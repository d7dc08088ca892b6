"""Input an attacker sends (issue 10): every one answers a 4xx problem+json naming what is
wrong, never a 500, and nothing is written.

Ids beyond BIGINT, JSON nested past the bound, text holding a lone UTF-16 surrogate (which
has no UTF-8 form, so it can neither be stored nor echoed), and the methods HTTP itself
defines on every resource (`OPTIONS`, `HEAD`).
"""

from __future__ import annotations

from typing import Any

import pytest

from ledgerline.request_types import MAX_ID
from tests.conftest import Api, assert_problem
from tests.factories import add_line_item, create_invoice

JSON = {"Content-Type": "application/json"}
FLAT_EXPORT = "/reports/invoice_line_items/export"
GROUPED_EXPORT = "/reports/invoice_line_items.grouped/export"
TOO_BIG = (MAX_ID + 1, 2**64, 1e19)


def _counts(api: Api) -> dict[str, int]:
    """How many customers, invoices, jobs and line items the account holds: what a bad
    request must leave unchanged."""
    invoices = api.get("/invoices", params={"expand": "line_items", "limit": 100}).json()
    return {
        "customers": api.get("/customers").json()["count"],
        "invoices": invoices["count"],
        "jobs": api.get("/jobs").json()["count"],
        "line_items": sum(len(invoice["line_items"]) for invoice in invoices["results"]),
    }


def _raw(api: Api, method: str, path: str, body: bytes) -> Any:
    return api.request(method, path, content=body, headers=JSON)


# ---- (a) every id is bounded by the one BIGINT bound ------------------------------------


@pytest.mark.parametrize("value", TOO_BIG)
def test_an_id_beyond_bigint_in_any_body_is_422_naming_it(api: Api, value: int | float) -> None:
    invoice = create_invoice(api)
    line = add_line_item(api, invoice["id"], type="flat_fee", amount="1")
    before = _counts(api)
    billed = {"type": "flat_fee", "amount": "1", "billed_item": {"object": "event", "id": value}}
    for method, path, body, field in (
        ("POST", "/customers", {"name": "Ada", "venue": value}, "venue"),
        ("POST", "/invoices", {"customer": value}, "customer"),
        ("PATCH", f"/invoices/{invoice['id']}", {"customer": value}, "customer"),
        ("POST", f"/invoices/{invoice['id']}/line_items", billed, "billed_item"),
        ("PATCH", f"/invoices/{invoice['id']}/line_items/{line['id']}", billed, "billed_item"),
        ("POST", FLAT_EXPORT, {"id_gt": value}, "id_gt"),
        ("POST", GROUPED_EXPORT, {"id_gt": value}, "id_gt"),
    ):
        assert_problem(api.request(method, path, json=body), 422, field)
    assert _counts(api) == before


def test_an_id_beyond_bigint_in_any_path_or_query_is_422_naming_it(api: Api) -> None:
    invoice = create_invoice(api)
    big = str(MAX_ID + 1)
    for path, field in (
        (f"/customers/{big}", "customer_id"),
        (f"/invoices/{big}", "invoice_id"),
        (f"/invoices/{invoice['id']}/line_items/{big}", "line_item_id"),
        (f"/jobs/{big}", "job_id"),
        (f"/jobs/{big}/download", "job_id"),
        (f"/customers?ids={big}", "ids"),
        (f"/invoices?ids={big}", "ids"),
        (f"/reports/invoice_line_items/data?id_gt={big}", "id_gt"),
    ):
        assert_problem(api.get(path), 422, field)
    assert_problem(api.post(f"{FLAT_EXPORT}?id_gt={big}"), 422, "id_gt")
    assert_problem(api.post(f"/jobs/{big}/cancel"), 422, "job_id")
    assert _counts(api)["jobs"] == 0


def test_the_largest_id_is_a_404_not_an_error(api: Api) -> None:
    """MAX_ID itself is a well-formed id: it names nothing, so the answer is 404 or 422."""
    assert_problem(api.get(f"/invoices/{MAX_ID}"), 404)
    assert_problem(api.post("/customers", json={"name": "Ada", "venue": MAX_ID}), 422, "venue")
