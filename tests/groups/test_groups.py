"""Line-item group CRUD, the list's wire shape, tenancy and bad input."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from ledgerline.auth import issue_token
from ledgerline.db import transaction
from tests.conftest import Api, Backend, assert_problem
from tests.factories import beyond
from tests.groups.conftest import InvoiceFactory
from tests.groups.sequence_contract import GROUP, PAGE, validate

# The example answer of Sequence's published page (seeds/004), the shape we are compatible with.
SEED_ANSWER = json.loads(
    """
{
"items": [
{
"description": "Charges for users",
"grossTotal": "101.23",
"id": "4639a112-f821-4bc1-bc2d-6f9ece5b7c0f",
"index": 2,
"invoiceId": "cd11218d-fa00-4faa-8684-a43113d076a8",
"netTotal": "51.20",
"title": "Users",
"totalTax": "2.50"
}
],
"pagination": {
"after": "MDE4NDUyNjYtNmQ2NC03N2M4LTlhZGYtNDQ4N2Q5NGQxNDU3",
"before": "MDE4NDQyMWUtYTljYy03MTFiLWFmOTMtYmYwNTExZDRkODMz",
"totalResultSize": 10
}
}
"""
)


def groups_url(invoice_id: int | str) -> str:
    return f"/invoices/{invoice_id}/line-item-groups"


def create_group(api: Api, invoice_id: int, **body: Any) -> dict[str, Any]:
    response = api.post(groups_url(invoice_id), json={"title": "Group", **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    validate(GROUP, created)
    return created


def types_of(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: types_of(item) for key, item in value.items()}
    if isinstance(value, list):
        return [types_of(item) for item in value]
    return type(value).__name__


def test_list_answers_the_seed_shape(api: Api, new_invoice: InvoiceFactory) -> None:
    invoice_id = new_invoice(api)
    for number in range(3):
        create_group(api, invoice_id, title=f"Users {number}", description="Charges for users")
    response = api.get(groups_url(invoice_id), params={"limit": 1})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body.keys() == SEED_ANSWER.keys()
    # The first page has nothing before it, so its `before` key is absent (not null).
    assert body["pagination"].keys() == {"after", "totalResultSize"}
    assert len(body["items"]) == 1
    # Same keys, same JSON types (the middle page has both cursors, so both are strings).
    middle = api.get(
        groups_url(invoice_id), params={"limit": 1, "after": body["pagination"]["after"]}
    )
    assert types_of(middle.json()) == types_of(SEED_ANSWER)
    item = middle.json()["items"][0]
    assert uuid.UUID(item["id"])
    assert item["invoiceId"] == str(invoice_id)
    assert item["netTotal"] == item["totalTax"] == item["grossTotal"] == "0.00"
    assert middle.json()["pagination"]["totalResultSize"] == 3


def test_create_get_put_delete(api: Api, new_invoice: InvoiceFactory) -> None:
    invoice_id = new_invoice(api)
    first = create_group(api, invoice_id, title="Users", description="Charges for users")
    assert first["title"] == "Users"
    assert first["description"] == "Charges for users"
    assert first["index"] == 0
    assert first["invoiceId"] == str(invoice_id)
    second = create_group(api, invoice_id, title="Seats")
    assert second["index"] == 1
    assert "description" not in second
    placed = create_group(api, invoice_id, title="Placed", index=7)
    assert placed["index"] == 7
    after = create_group(api, invoice_id, title="After")
    assert after["index"] == 8

    url = f"{groups_url(invoice_id)}/{first['id']}"
    assert api.get(url).json() == first

    replaced = api.put(url, json={"title": "People", "index": 3})
    assert replaced.status_code == 200, replaced.text
    # PUT replaces: the description that was not sent is gone; the id and totals stay.
    without_description = {key: value for key, value in first.items() if key != "description"}
    assert replaced.json() == {**without_description, "title": "People", "index": 3}
    assert api.get(url).json() == replaced.json()
    kept_index = api.put(url, json={"title": "People", "description": "Again"})
    assert kept_index.json()["index"] == 3
    assert kept_index.json()["description"] == "Again"

    deleted = api.delete(url)
    assert deleted.status_code == 200
    assert deleted.json() == kept_index.json()  # the group as it was
    validate(GROUP, deleted.json())
    assert_problem(api.get(url), 404)
    assert_problem(api.delete(url), 404)
    assert_problem(api.put(url, json={"title": "x"}), 404)
    remaining = api.get(groups_url(invoice_id), params={"sortOrder": "ASC"}).json()
    assert remaining["items"] == [second, placed, after]
    assert remaining["pagination"]["totalResultSize"] == 3


def test_groups_are_per_invoice(api: Api, new_invoice: InvoiceFactory) -> None:
    one, two = new_invoice(api), new_invoice(api)
    on_one = create_group(api, one)
    on_two = create_group(api, two)
    assert on_two["index"] == 0  # indexes count per invoice
    assert [g["id"] for g in api.get(groups_url(one)).json()["items"]] == [on_one["id"]]
    # A group is addressed through its own invoice only.
    assert_problem(api.get(f"{groups_url(two)}/{on_one['id']}"), 404)
    assert_problem(api.delete(f"{groups_url(two)}/{on_one['id']}"), 404)
    assert api.get(f"{groups_url(one)}/{on_one['id']}").status_code == 200


def test_another_accounts_invoice_and_group_are_404(
    api: Api, other_api: Api, new_invoice: InvoiceFactory
) -> None:
    mine = new_invoice(api)
    my_group = create_group(api, mine)
    # Ids are numbered per account: theirs is one this account has no invoice under.
    theirs = beyond([mine], lambda: {"id": new_invoice(other_api)})["id"]
    their_group = create_group(other_api, theirs, title="Secret")

    missing = 10**12
    for invoice_id in (theirs, missing):
        assert_problem(api.get(groups_url(invoice_id)), 404)
        assert_problem(api.post(groups_url(invoice_id), json={"title": "x"}), 404)
        assert_problem(api.get(f"{groups_url(invoice_id)}/{their_group['id']}"), 404)
        assert_problem(
            api.put(f"{groups_url(invoice_id)}/{their_group['id']}", json={"title": "x"}), 404
        )
        assert_problem(api.delete(f"{groups_url(invoice_id)}/{their_group['id']}"), 404)
    # Their group through my invoice is no more visible.
    assert_problem(api.get(f"{groups_url(mine)}/{their_group['id']}"), 404)
    # The answers for theirs and for a missing id are the same but for the id itself.
    answer_theirs = api.get(groups_url(theirs)).json()
    answer_missing = api.get(groups_url(missing)).json()
    assert answer_theirs["detail"].replace(str(theirs), "N") == answer_missing["detail"].replace(
        str(missing), "N"
    )
    # Nothing of mine leaked into theirs, nor theirs into mine, and theirs is unchanged.
    listed = other_api.get(groups_url(theirs)).json()
    assert [g["id"] for g in listed["items"]] == [their_group["id"]]
    assert listed["items"][0]["title"] == "Secret"
    assert listed["pagination"]["totalResultSize"] == 1
    mine_listed = api.get(groups_url(mine)).json()
    assert [g["id"] for g in mine_listed["items"]] == [my_group["id"]]


@pytest.mark.parametrize("invoice_ref", ["abc", "0", "-1", "1.5", str(2**64), "٣"])
def test_impossible_invoice_ids_are_404(api: Api, invoice_ref: str) -> None:
    assert_problem(api.get(groups_url(invoice_ref)), 404)
    assert_problem(api.post(groups_url(invoice_ref), json={"title": "x"}), 404)


@pytest.mark.parametrize("group_ref", ["abc", "123", str(uuid.uuid4()), "%00"])
def test_unknown_or_malformed_group_ids_are_404(
    api: Api, new_invoice: InvoiceFactory, group_ref: str
) -> None:
    invoice_id = new_invoice(api)
    assert_problem(api.get(f"{groups_url(invoice_id)}/{group_ref}"), 404)
    assert_problem(api.put(f"{groups_url(invoice_id)}/{group_ref}", json={"title": "x"}), 404)
    assert_problem(api.delete(f"{groups_url(invoice_id)}/{group_ref}"), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": 5}, "title"),
        ({"title": None}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "a\x00b"}, "title"),
        ({"title": "ok", "description": 5}, "description"),
        ({"title": "ok", "description": "nul \x00"}, "description"),
        ({"title": "ok", "description": "x" * 10_001}, "description"),
        ({"title": "ok", "index": "1"}, "index"),
        ({"title": "ok", "index": 1.5}, "index"),
        ({"title": "ok", "index": -1}, "index"),
        ({"title": "ok", "index": 2**31}, "index"),
        ({"title": "ok", "index": True}, "index"),
        ({"title": "ok", "colour": "red"}, "colour"),
        ({"title": "ok", "invoiceId": "1"}, "invoiceId"),
    ],
)
def test_bad_bodies_are_422_naming_the_field_and_write_nothing(
    api: Api, new_invoice: InvoiceFactory, body: dict[str, Any], field: str
) -> None:
    invoice_id = new_invoice(api)
    existing = create_group(api, invoice_id, title="Kept", description="As it was")
    assert_problem(api.post(groups_url(invoice_id), json=body), 422, field)
    url = f"{groups_url(invoice_id)}/{existing['id']}"
    assert_problem(api.put(url, json=body), 422, field)
    listed = api.get(groups_url(invoice_id)).json()
    assert listed["items"] == [existing]
    assert listed["pagination"]["totalResultSize"] == 1


def test_non_json_bodies_are_refused(api: Api, new_invoice: InvoiceFactory) -> None:
    invoice_id = new_invoice(api)
    headers = {"Content-Type": "application/json"}
    assert_problem(api.post(groups_url(invoice_id), content=b"{", headers=headers), 400)
    assert api.post(groups_url(invoice_id), content=b"[]", headers=headers).status_code == 422
    assert api.get(groups_url(invoice_id)).json()["pagination"]["totalResultSize"] == 0


@pytest.mark.parametrize(
    ("params", "name", "status"),
    [
        ({"limit": 0}, "limit", 400),
        ({"limit": 101}, "limit", 400),
        ({"limit": -5}, "limit", 400),
        ({"limit": "ten"}, "limit", 400),
        ({"limit": 10**30}, "limit", 400),
        ({"limit": "1" * 5000}, "limit", 400),
        ({"limit": "１２"}, "limit", 400),  # full-width digits
        ({"limit": "١٢"}, "limit", 400),  # Arabic-Indic digits
        ({"limit": " 12"}, "limit", 400),
        ({"limit": "1_2"}, "limit", 400),
        ({"limit": "12.0"}, "limit", 400),
        ({"limit": "+12"}, "limit", 400),
        ({"limit": ""}, "limit", 400),
        ({"sortOrder": "UP"}, "sortOrder", 400),
        ({"sortOrder": ""}, "sortOrder", 400),
        ({"sortOrder": "ASC "}, "sortOrder", 400),
        ({"before": "x", "after": "y"}, "before", 400),
    ],
)
def test_bad_list_parameters_name_the_parameter(
    api: Api, new_invoice: InvoiceFactory, params: dict[str, Any], name: str, status: int
) -> None:
    invoice_id = new_invoice(api)
    assert_problem(api.get(groups_url(invoice_id), params=params), status, name)


@pytest.mark.parametrize("limit", ["1", "7", "100", "0007", "0000000100"])
def test_limit_takes_ascii_digits(api: Api, new_invoice: InvoiceFactory, limit: str) -> None:
    invoice_id = new_invoice(api)
    for number in range(7):
        create_group(api, invoice_id, title=str(number))
    body = api.get(groups_url(invoice_id), params={"limit": limit}).json()
    assert len(body["items"]) == min(int(limit), 7)


@pytest.mark.parametrize("order", ["asc", "Asc", "ASC", "desc", "DESC"])
def test_sort_order_is_case_insensitive(api: Api, new_invoice: InvoiceFactory, order: str) -> None:
    invoice_id = new_invoice(api)
    created = [create_group(api, invoice_id, title=str(n))["id"] for n in range(3)]
    listed = [
        g["id"]
        for g in api.get(groups_url(invoice_id), params={"sortOrder": order}).json()["items"]
    ]
    assert listed == (created if order.upper() == "ASC" else created[::-1])


def test_default_page_is_twenty_newest_first(api: Api, new_invoice: InvoiceFactory) -> None:
    invoice_id = new_invoice(api)
    created = [create_group(api, invoice_id, title=str(n))["id"] for n in range(23)]
    body = api.get(groups_url(invoice_id)).json()
    assert [g["id"] for g in body["items"]] == created[::-1][:20]
    assert "before" not in body["pagination"]
    assert isinstance(body["pagination"]["after"], str)
    validate(PAGE, body)
    assert body["pagination"]["totalResultSize"] == 23


def test_read_only_token_cannot_write(
    api: Api, backend: Backend, new_invoice: InvoiceFactory
) -> None:
    invoice_id = new_invoice(api)
    group = create_group(api, invoice_id, title="Kept")
    with transaction(backend.database_url, writes=True) as session:
        issued = issue_token(session, api.account_id, ["read"])
    reader = Api(api.client, issued.token, api.account_id, api.currency, api.timezone)
    url = groups_url(invoice_id)
    assert reader.get(url).json()["items"] == [group]
    assert_problem(reader.post(url, json={"title": "x"}), 403, "write")
    assert_problem(reader.put(f"{url}/{group['id']}", json={"title": "x"}), 403, "write")
    assert_problem(reader.delete(f"{url}/{group['id']}"), 403, "write")
    assert api.get(url).json()["items"] == [group]
