"""A parameter is honoured or refused: undeclared query parameters and integers not written in
ASCII digits are 422s naming them, on every operation of the document, and nothing is written.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Api, assert_problem

NOT_ASCII_INTEGERS = ("１２", "١٢", "+12", " 12", "12.0", "1_000")


def _operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    document: dict[str, Any] = client.get("/openapi.json").json()
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def _path(path: str) -> str:
    """A concrete path: ids that exist nowhere (the 422 must come before any lookup)."""
    parts = []
    for part in path.split("/"):
        if part.startswith("{"):
            parts.append("00000000-0000-0000-0000-000000000000" if "group" in part else "1")
        else:
            parts.append(part)
    concrete = "/".join(parts)
    # Api prefixes /api/v2 to a bare path; operations such as /healthz live beside it.
    return concrete if concrete.startswith("/api/") else "http://testserver" + concrete


def _count_everything(api: Api) -> dict[str, int]:
    """What the account holds, as its own lists count it."""
    return {
        name: api.get(path).json()["count"]
        for name, path in (
            ("customers", "/customers"),
            ("invoices", "/invoices"),
            ("jobs", "/jobs"),
        )
    }


def test_every_operation_refuses_an_undeclared_query_parameter(api: Api) -> None:
    before = _count_everything(api)
    operations = _operations(api.client)
    assert len(operations) > 25
    for method, path, _operation in operations:
        url = _path(path) + "?colour=blue"
        response = api.request(method, url, json={})
        assert_problem(response, 422, "colour")
        assert response.json()["errors"] == [
            {"loc": ["query", "colour"], "msg": "is not a parameter of this endpoint"}
        ], (method, path)
    assert _count_everything(api) == before


def test_teamup_list_parameters_we_honour_are_declared(api: Api) -> None:
    """The check is on the route's own declarations: what a list declares is accepted."""
    assert api.get("/customers?limit=5&offset=0").status_code == 200
    assert api.get(
        "/reports/invoice_line_items/data?columns[]=id&columns[]=amount"
    ).status_code == (200)


@pytest.mark.parametrize("written", NOT_ASCII_INTEGERS)
def test_integer_parameters_take_ascii_digits_only(api: Api, written: str) -> None:
    checked = 0
    for method, path, operation in _operations(api.client):
        for parameter in operation.get("parameters", []):
            schema = parameter.get("schema", {})
            if parameter["in"] != "query" or schema.get("type") != "integer":
                continue
            response = api.request(method, _path(path), params={parameter["name"]: written})
            # Sequence documents 400 for its list's bad parameters; TeamUp-shaped ones are 422s.
            expected = 400 if "line-item-groups" in path else 422
            assert_problem(response, expected, parameter["name"])
            checked += 1
    assert checked >= 10  # limit/offset/page/page_size of every TeamUp list, at least


def test_integer_path_ids_take_ascii_digits_only(api: Api) -> None:
    invoice = api.post("/invoices", json={}).json()
    assert api.get(f"/invoices/{invoice['id']}").status_code == 200
    for written in ("１２", "+1", "1.0"):
        assert_problem(api.get(f"/invoices/{written}"), 422, "invoice_id")
        assert_problem(api.patch(f"/invoices/{written}", json={"status": "paid"}), 422)
    assert api.get(f"/invoices/{invoice['id']}").json()["status"] == "draft"


def test_report_id_gt_takes_ascii_digits_only(api: Api) -> None:
    for written in ("１２", "+12", "1.0"):
        response = api.get("/reports/invoice_line_items/data", params={"id_gt": written})
        assert_problem(response, 422, "id_gt")
        export = api.post("/reports/invoice_line_items/export", json={"id_gt": written})
        assert_problem(export, 422, "id_gt")
    assert api.get("/jobs").json()["count"] == 0


def test_an_integral_json_number_is_an_integer(api: Api) -> None:
    """JSON Schema's `integer` is any number with no fraction: `2.0` is the integer 2."""
    venue = api.post("/venues", json={"name": "Hall"}).json()
    customer = api.post("/customers", json={"name": "Ada", "venue": float(venue["id"])})
    assert customer.status_code == 201, customer.text
    assert customer.json()["venue"] == {"id": venue["id"], "name": "Hall"}
    invoice = api.post("/invoices", json={"customer": float(customer.json()["id"])})
    assert invoice.status_code == 201, invoice.text
    assert invoice.json()["customer"] == customer.json()["id"]
    group = api.post(
        f"/invoices/{invoice.json()['id']}/line-item-groups", json={"title": "A", "index": 4.0}
    )
    assert group.status_code == 201, group.text
    assert group.json()["index"] == 4
    for fractional in (4.5, 1e-9 + 4):
        refused = api.post(
            f"/invoices/{invoice.json()['id']}/line-item-groups",
            json={"title": "B", "index": fractional},
        )
        assert_problem(refused, 422, "index")
    listed = api.get(f"/invoices/{invoice.json()['id']}/line-item-groups").json()
    assert listed["pagination"]["totalResultSize"] == 1
