"""`group_id` on line items: a group of the same invoice, shown as its UUID."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import Api, assert_problem
from tests.factories import add_line_item, add_line_items, create_invoice


def _group(api: Api, invoice_id: int, title: str = "Users") -> str:
    response = api.post(f"/invoices/{invoice_id}/line-item-groups", json={"title": title})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_line_items_join_groups_of_their_invoice(api: Api) -> None:
    invoice = create_invoice(api)
    group_id = _group(api, invoice["id"])
    lines = add_line_items(
        api,
        invoice["id"],
        [
            {"type": "flat_fee", "amount": "10.00", "group_id": group_id, "tax_rate": "0.2"},
            {"type": "flat_fee", "amount": "5.55"},
            {"type": "flat_fee", "quantity": "3", "unit_price": "1.111", "group_id": group_id},
        ],
    )
    assert [line["group_id"] for line in lines] == [group_id, None, group_id]
    listing = api.get(f"/invoices/{invoice['id']}/line_items").json()["results"]
    assert [line["group_id"] for line in listing] == [group_id, None, group_id]
    groups = api.get(f"/invoices/{invoice['id']}/line-item-groups").json()["items"]
    # 10.00 + round(3 × 1.111 = 3.333) = 13.33; tax 2.00
    assert Decimal(groups[0]["netTotal"]) == Decimal("13.33")
    assert Decimal(groups[0]["totalTax"]) == Decimal("2.00")
    # move a line out of and into the group
    url = f"/invoices/{invoice['id']}/line_items/{lines[0]['id']}"
    assert api.patch(url, json={"group_id": None}).json()["group_id"] is None
    assert api.patch(url, json={"group_id": group_id}).json()["group_id"] == group_id


def test_group_of_another_invoice_or_unknown_is_422(api: Api) -> None:
    invoice = create_invoice(api)
    elsewhere = create_invoice(api)
    foreign_group = _group(api, elsewhere["id"])
    for group_id in (foreign_group, "00000000-0000-0000-0000-000000000000", "nope", ""):
        response = api.post(
            f"/invoices/{invoice['id']}/line_items",
            json={"type": "flat_fee", "amount": "1", "group_id": group_id},
        )
        assert_problem(response, 422, "group_id")
    line = add_line_item(api, invoice["id"], type="flat_fee", amount="1")
    response = api.patch(
        f"/invoices/{invoice['id']}/line_items/{line['id']}", json={"group_id": foreign_group}
    )
    assert_problem(response, 422, "group_id")
    assert api.get(f"/invoices/{invoice['id']}/line_items").json()["count"] == 1
    assert api.get(f"/invoices/{invoice['id']}/line_items/{line['id']}").json()["group_id"] is None
