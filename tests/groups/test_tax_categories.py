"""Tax categories: our own `{id, name}` resource that a group's `taxCategoryId` names."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ledgerline.auth import issue_token
from ledgerline.db import transaction
from tests.conftest import Api, Backend, assert_problem
from tests.groups.sequence_contract import validate

URL = "/tax-categories"


def create_category(api: Api, name: str) -> dict[str, Any]:
    response = api.post(URL, json={"name": name})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def listed(api: Api) -> list[dict[str, Any]]:
    response = api.get(URL)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.keys() == {"items"}
    items: list[dict[str, Any]] = body["items"]
    return items


def test_create_list_and_get(api: Api) -> None:
    assert listed(api) == []
    vat = create_category(api, "VAT")
    assert vat.keys() == {"id", "name"}
    assert str(uuid.UUID(vat["id"])) == vat["id"]
    assert vat["name"] == "VAT"
    validate("TaxCategoryResponse", vat)
    # Names are kept exactly, including non-ASCII text and surrounding spaces.
    reduced = create_category(api, " Taux réduit 5,5 % ")
    assert reduced["name"] == " Taux réduit 5,5 % "
    assert listed(api) == [vat, reduced]  # oldest first
    for category in (vat, reduced):
        response = api.get(f"{URL}/{category['id']}")
        assert response.status_code == 200
        assert response.json() == category
    # The same name twice is two categories: a name is a label, not a key.
    again = create_category(api, "VAT")
    assert again["id"] != vat["id"]
    assert [c["id"] for c in listed(api)] == [vat["id"], reduced["id"], again["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "  \t "}, "name"),
        ({"name": None}, "name"),
        ({"name": 5}, "name"),
        ({"name": ["VAT"]}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "V\x00AT"}, "name"),
        ({"name": "VAT", "id": str(uuid.uuid4())}, "id"),
        ({"name": "VAT", "rate": 20}, "rate"),
    ],
)
def test_bad_bodies_are_422_naming_the_field_and_write_nothing(
    api: Api, body: dict[str, Any], field: str
) -> None:
    kept = create_category(api, "Kept")
    assert_problem(api.post(URL, json=body), 422, field)
    assert listed(api) == [kept]


def test_non_json_and_non_object_bodies_are_refused(api: Api) -> None:
    headers = {"Content-Type": "application/json"}
    assert_problem(api.post(URL, content=b"{", headers=headers), 400)
    assert_problem(api.post(URL, content=b'["VAT"]', headers=headers), 422)
    assert_problem(api.post(URL, content=b"", headers=headers), 422)
    assert listed(api) == []


def test_the_longest_name_is_kept(api: Api) -> None:
    longest = create_category(api, "n" * 200)
    assert api.get(f"{URL}/{longest['id']}").json()["name"] == "n" * 200


@pytest.mark.parametrize("ref", ["abc", "123", str(uuid.uuid4()), "%00", "x" * 300])
def test_unknown_or_malformed_ids_are_404(api: Api, ref: str) -> None:
    assert_problem(api.get(f"{URL}/{ref}"), 404)


def test_another_accounts_categories_are_invisible(api: Api, other_api: Api) -> None:
    theirs = create_category(other_api, "Their VAT")
    mine = create_category(api, "My VAT")
    missing = str(uuid.uuid4())
    answer_theirs = assert_problem(api.get(f"{URL}/{theirs['id']}"), 404)
    answer_missing = assert_problem(api.get(f"{URL}/{missing}"), 404)
    assert answer_theirs["detail"].replace(theirs["id"], "X") == answer_missing["detail"].replace(
        missing, "X"
    )
    assert listed(api) == [mine]
    assert listed(other_api) == [theirs]


def test_read_only_token_can_read_but_not_create(api: Api, backend: Backend) -> None:
    kept = create_category(api, "Kept")
    with transaction(backend.database_url, writes=True) as session:
        issued = issue_token(session, api.account_id, ["read"])
    reader = Api(api.client, issued.token, api.account_id, api.currency, api.timezone)
    assert listed(reader) == [kept]
    assert_problem(reader.post(URL, json={"name": "New"}), 403, "write")
    assert listed(api) == [kept]


def test_no_credentials_is_401(api: Api) -> None:
    assert_problem(api.client.get("/api/v2" + URL), 401)
    assert_problem(api.client.post("/api/v2" + URL, json={"name": "x"}), 401)
    assert listed(api) == []
