"""Another account's ids answer 404 like missing ones, lists never show its rows, and its
token can change nothing here."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ledgerline.auth import issue_token
from ledgerline.db import transaction
from tests.conftest import Api, Backend, assert_problem
from tests.factories import (
    add_line_item,
    create_customer,
    create_invoice,
    create_venue,
)

MISSING = 987_654_321


def _own_data(api: Api) -> dict[str, Any]:
    venue = create_venue(api)
    customer = create_customer(api, venue=venue["id"])
    invoice = create_invoice(api, customer=customer["id"])
    line = add_line_item(api, invoice["id"], type="flat_fee", amount="12.34", tax_rate="0.2")
    return {"venue": venue, "customer": customer, "invoice": invoice, "line": line}


def test_reads_of_another_accounts_ids_are_404_like_missing(api: Api, other_api: Api) -> None:
    mine = _own_data(api)
    invoice_id, line_id = mine["invoice"]["id"], mine["line"]["id"]
    customer_id = mine["customer"]["id"]
    for path, missing in (
        (f"/customers/{customer_id}", f"/customers/{MISSING}"),
        (f"/invoices/{invoice_id}", f"/invoices/{MISSING}"),
        (f"/invoices/{invoice_id}/line_items", f"/invoices/{MISSING}/line_items"),
        (
            f"/invoices/{invoice_id}/line_items/{line_id}",
            f"/invoices/{invoice_id}/line_items/{MISSING}",
        ),
    ):
        foreign = other_api.get(path)
        absent = other_api.get(missing)
        assert_problem(foreign, 404)
        assert_problem(absent, 404)
        assert foreign.json()["title"] == absent.json()["title"]
        assert api.get(path).status_code == 200


def test_lists_never_show_another_accounts_rows(api: Api, other_api: Api) -> None:
    # Ids are numbered per account (both accounts have a customer 1), so each list is
    # compared whole with what its own account reads one by one.
    own = [_own_data(api), _own_data(api)]
    theirs = _own_data(other_api)
    for client, records in ((api, own), (other_api, [theirs])):
        customers = client.get("/customers").json()
        assert customers["count"] == len(records)
        assert customers["results"] == [record["customer"] for record in records]
        invoices = client.get("/invoices").json()
        assert invoices["count"] == len(records)
        assert invoices["results"] == [
            client.get(f"/invoices/{record['invoice']['id']}").json() for record in records
        ]
    listing = other_api.get(f"/invoices/{theirs['invoice']['id']}/line_items").json()
    assert [row["id"] for row in listing["results"]] == [theirs["line"]["id"]]


def test_another_account_cannot_write_here(api: Api, other_api: Api) -> None:
    mine = _own_data(api)
    invoice_id, line_id = mine["invoice"]["id"], mine["line"]["id"]
    line_url = f"/invoices/{invoice_id}/line_items/{line_id}"
    before_invoice = api.get(f"/invoices/{invoice_id}").json()
    before_line = api.get(line_url).json()
    item = {"type": "flat_fee", "amount": "1.00"}
    for response in (
        other_api.post(f"/invoices/{invoice_id}/line_items", json=item),
        other_api.post(f"/invoices/{invoice_id}/line_items", json={"items": [item]}),
        other_api.patch(f"/invoices/{invoice_id}", json={"status": "paid"}),
        other_api.patch(line_url, json={"amount": "999.00"}),
        other_api.delete(line_url),
    ):
        assert_problem(response, 404)
    assert api.get(f"/invoices/{invoice_id}").json() == before_invoice
    assert api.get(line_url).json() == before_line
    assert api.get(f"/invoices/{invoice_id}/line_items").json()["count"] == 1
    assert other_api.get("/invoices").json()["count"] == 0


def test_references_to_another_accounts_records_are_422(api: Api, other_api: Api) -> None:
    theirs = _own_data(other_api)
    mine = create_invoice(api)
    assert_problem(
        api.post("/invoices", json={"customer": theirs["customer"]["id"]}), 422, "customer"
    )
    assert_problem(
        api.patch(f"/invoices/{mine['id']}", json={"customer": theirs["customer"]["id"]}),
        422,
        "customer",
    )
    assert_problem(
        api.post("/customers", json={"name": "x", "venue": theirs["venue"]["id"]}), 422, "venue"
    )
    group = other_api.post(
        f"/invoices/{theirs['invoice']['id']}/line-item-groups", json={"title": "Theirs"}
    )
    assert group.status_code == 201, group.text
    response = api.post(
        f"/invoices/{mine['id']}/line_items",
        json={"type": "flat_fee", "amount": "1", "group_id": group.json()["id"]},
    )
    assert_problem(response, 422, "group_id")
    assert api.get("/invoices").json()["count"] == 1
    assert api.get("/customers").json()["count"] == 0
    assert api.get(f"/invoices/{mine['id']}/line_items").json()["count"] == 0


def test_read_only_token_cannot_write(api: Api, backend: Backend) -> None:
    mine = _own_data(api)
    with transaction(backend.database_url, writes=True) as session:
        issued = issue_token(session, api.account_id, ["read"])
    reader = replace(api, token=issued.token)
    invoice_id, line_id = mine["invoice"]["id"], mine["line"]["id"]
    line_url = f"/invoices/{invoice_id}/line_items/{line_id}"
    before = api.get(f"/invoices/{invoice_id}").json()
    assert reader.get(f"/invoices/{invoice_id}").json() == before
    assert reader.get(line_url).status_code == 200
    for response in (
        reader.post("/invoices", json={}),
        reader.patch(f"/invoices/{invoice_id}", json={"status": "paid"}),
        reader.post(f"/invoices/{invoice_id}/line_items", json={"type": "flat_fee", "amount": "1"}),
        reader.patch(line_url, json={"amount": "2.00"}),
        reader.delete(line_url),
    ):
        assert_problem(response, 403)
    assert api.get(f"/invoices/{invoice_id}").json() == before
    assert api.get("/invoices").json()["count"] == 1
    assert api.get(f"/invoices/{invoice_id}/line_items").json()["count"] == 1
