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
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
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


# ---- (b) JSON depth is bounded for every body, with one 400 ------------------------------


def _nested(depth: int) -> bytes:
    """A JSON object whose `columns` value is `depth` arrays deep (the object is one more)."""
    return b'{"columns":' + b"[" * depth + b"]" * depth + b"}"


def _write_endpoints(api: Api) -> list[tuple[str, str]]:
    invoice = create_invoice(api)
    line = add_line_item(api, invoice["id"], type="flat_fee", amount="1")
    group = api.post(f"/invoices/{invoice['id']}/line-item-groups", json={"title": "Usage"})
    assert group.status_code == 201, group.text
    return [
        ("POST", "/venues"),
        ("POST", "/customers"),
        ("POST", "/invoices"),
        ("PATCH", f"/invoices/{invoice['id']}"),
        ("POST", f"/invoices/{invoice['id']}/line_items"),
        ("PATCH", f"/invoices/{invoice['id']}/line_items/{line['id']}"),
        ("POST", f"/invoices/{invoice['id']}/line-item-groups"),
        ("PUT", f"/invoices/{invoice['id']}/line-item-groups/{group.json()['id']}"),
        ("POST", "/tax-categories"),
        ("POST", FLAT_EXPORT),
        ("POST", GROUPED_EXPORT),
    ]


@pytest.mark.parametrize("depth", [40, 900, 1000, 100_000])
def test_json_nested_past_the_bound_is_400_on_every_body(api: Api, depth: int) -> None:
    endpoints = _write_endpoints(api)
    before = _counts(api)
    for method, path in endpoints:
        body = assert_problem(_raw(api, method, path, _nested(depth)), 400, "nested", "32")
        assert body["errors"] == [{"loc": ["body"], "msg": "nested deeper than 32 levels"}]
    assert _counts(api) == before


def test_json_at_the_bound_is_read_as_usual(api: Api) -> None:
    """31 arrays inside the object is 32 levels: parsed, then refused by the schema (422)."""
    for method, path in _write_endpoints(api):
        assert_problem(_raw(api, method, path, _nested(31)), 422)


def test_brackets_inside_strings_are_not_nesting(api: Api) -> None:
    customer = api.post("/customers", json={"name": "[" * 100 + "{" * 100})
    assert customer.status_code == 201, customer.text


# ---- (c) text that cannot be UTF-8: a 422 naming the field, never echoing the value -------

LONE = b'"\\ud800"'
TRAILING = b'"ok\\udfff"'


def _refuses_text(response: Any, *names: str) -> None:
    body = assert_problem(response, 422, *names, "surrogate")
    # Nothing undecodable is echoed: not the character itself, nor its JSON escape.
    assert "\\ud" not in response.text.lower()
    assert response.content.decode("utf-8")  # the answer itself is valid UTF-8
    assert all("\ud800" not in str(error) for error in body.get("errors", []))


@pytest.mark.parametrize("text", [LONE, TRAILING])
def test_lone_surrogates_in_invoice_bodies_are_422(api: Api, text: bytes) -> None:
    invoice = create_invoice(api)
    line = add_line_item(api, invoice["id"], type="flat_fee", amount="1")
    before = _counts(api)
    invoice_path = f"/invoices/{invoice['id']}"
    line_path = f"{invoice_path}/line_items/{line['id']}"
    discount = b'{"discount_code":{"code":"C","name":' + text + b"}}"
    for method, path, body, names in (
        ("POST", "/invoices", b'{"number":' + text + b"}", ("number",)),
        ("PATCH", invoice_path, b'{"number":' + text + b"}", ("number",)),
        ("POST", "/invoices", discount, ("discount_code", "name")),
        ("PATCH", invoice_path, discount, ("discount_code", "name")),
        ("PATCH", line_path, b'{"description":' + text + b"}", ("description",)),
        (
            "POST",
            f"{invoice_path}/line_items",
            b'{"type":"flat_fee","amount":"1","description":' + text + b"}",
            ("description",),
        ),
        (
            "POST",
            f"{invoice_path}/line_items",
            b'{"items":[{"type":"flat_fee","amount":"1","description":' + text + b"}]}",
            ("items", "description"),
        ),
        ("POST", "/customers", b'{"name":' + text + b"}", ("name",)),
        ("POST", "/venues", b'{"name":' + text + b"}", ("name",)),
        ("POST", "/invoices", b"{" + text + b":1}", ("body",)),
    ):
        _refuses_text(_raw(api, method, path, body), *names)
    assert _counts(api) == before
    assert api.get(invoice_path).json()["number"] == invoice["number"]
    assert api.get(line_path).json()["description"] == line["description"]


def test_lone_surrogates_in_groups_and_tax_categories_are_422(api: Api) -> None:
    invoice = create_invoice(api)
    groups = f"/invoices/{invoice['id']}/line-item-groups"
    for path, body, name in (
        (groups, b'{"title":' + LONE + b"}", "title"),
        (groups, b'{"title":"t","description":' + LONE + b"}", "description"),
        ("/tax-categories", b'{"name":' + LONE + b"}", "name"),
    ):
        _refuses_text(_raw(api, "POST", path, body), name)
    assert api.get(groups).json()["pagination"]["totalResultSize"] == 0
    assert api.get("/tax-categories").json()["items"] == []


@pytest.mark.parametrize("path", [FLAT_EXPORT, GROUPED_EXPORT])
def test_lone_surrogates_in_export_bodies_are_422(api: Api, path: str) -> None:
    for body, names in (
        (b'{"invoice_status":' + LONE + b"}", ("invoice_status",)),
        (b'{"invoice_status":["paid",' + LONE + b"]}", ("invoice_status",)),
        (b'{"columns":' + LONE + b"}", ("columns",)),
        (b'{"columns":["id",' + LONE + b"]}", ("columns",)),
        (b'{"sort":' + LONE + b"}", ("sort",)),
        (b'{"format":' + LONE + b"}", ("format",)),
    ):
        _refuses_text(_raw(api, "POST", path, body), *names)
    assert _counts(api)["jobs"] == 0


def test_undecodable_query_and_form_text_is_never_echoed_raw(api: Api) -> None:
    """Bytes of a query string or form that are not UTF-8 (here the CESU-8 form of a
    surrogate) are read with replacement characters, or the form refused: every answer is a
    4xx in valid UTF-8, naming the field where it names one."""
    cesu = "%ED%A0%80"
    for method, path, kwargs in (
        ("GET", f"/reports/invoice_line_items/data?columns={cesu}", {}),
        ("GET", f"/reports/invoice_line_items/data?invoice_status={cesu}", {}),
        ("POST", f"{FLAT_EXPORT}?columns={cesu}", {}),
        ("POST", FLAT_EXPORT, {"content": f"columns={cesu}", "headers": FORM}),
        ("POST", FLAT_EXPORT, {"files": {"columns": (None, b"\xed\xa0\x80")}}),
    ):
        response = api.request(method, path, **kwargs)
        body = assert_problem(response, response.status_code)
        assert response.status_code in (400, 422), response.text
        assert response.content.decode("utf-8")
        assert "\\ud" not in response.text.lower()
        if response.status_code == 422:
            assert body["errors"][0]["loc"][-1] in ("columns", "invoice_status")
    assert _counts(api)["jobs"] == 0


# ---- (d) OPTIONS and HEAD, as HTTP defines them for every resource ------------------------


def _allow(response: Any) -> list[str]:
    return [method.strip() for method in response.headers["allow"].split(",")]


def test_options_lists_every_method_of_the_path(api: Api) -> None:
    invoice = create_invoice(api)
    line = add_line_item(api, invoice["id"], type="flat_fee", amount="1")
    for path, methods in (
        (f"/invoices/{invoice['id']}", ["GET", "HEAD", "OPTIONS", "PATCH"]),
        ("/invoices", ["GET", "HEAD", "OPTIONS", "POST"]),
        ("/customers", ["GET", "HEAD", "OPTIONS", "POST"]),
        (
            f"/invoices/{invoice['id']}/line_items/{line['id']}",
            ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH"],
        ),
        ("/venues", ["OPTIONS", "POST"]),
        (FLAT_EXPORT, ["OPTIONS", "POST"]),
    ):
        response = api.request("OPTIONS", path)
        assert response.status_code == 204, response.text
        assert _allow(response) == methods
        assert response.content == b""
    response = api.client.options("/healthz")
    assert response.status_code == 204
    assert _allow(response) == ["GET", "HEAD", "OPTIONS"]
    assert_problem(api.request("OPTIONS", "/no-such-thing"), 404)


def test_a_method_not_served_is_405_with_the_same_allow(api: Api) -> None:
    invoice = create_invoice(api)
    response = api.delete(f"/invoices/{invoice['id']}")
    assert_problem(response, 405)
    assert _allow(response) == ["GET", "HEAD", "OPTIONS", "PATCH"]
    assert api.get(f"/invoices/{invoice['id']}").status_code == 200


def test_head_answers_like_get_without_a_body(api: Api) -> None:
    invoice = create_invoice(api)
    for path in (f"/invoices/{invoice['id']}", "/invoices", "/customers", "/jobs"):
        got = api.get(path)
        head = api.request("HEAD", path)
        assert head.status_code == got.status_code == 200, head.text
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["content-length"] == got.headers["content-length"]
    assert api.client.head("/healthz").status_code == 200
    missing = api.request("HEAD", f"/invoices/{MAX_ID}")
    assert missing.status_code == 404
    assert missing.content == b""
    assert api.client.head("/api/v2/invoices").status_code == 401
    post_only = api.request("HEAD", "/venues")
    assert post_only.status_code == 405
    assert _allow(post_only) == ["OPTIONS", "POST"]
