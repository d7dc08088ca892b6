"""Our answers against Sequence's published contract: every Sequence-shaped answer validated
with a JSON Schema we restated from it, and a client generated from it walking real pages."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import jsonschema
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import Api
from tests.generated_client import generate_client, submodule
from tests.groups.conftest import InvoiceFactory
from tests.groups.sequence_contract import GROUP, PAGE, openapi, validate


def groups_url(invoice_id: int) -> str:
    return f"/invoices/{invoice_id}/line-item-groups"


def checked(response: Any, status: int, schema: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    validate(schema, body)
    if schema == PAGE:
        # Sequence does not require it; we always send it.
        assert isinstance(body["pagination"]["totalResultSize"], int)
    return body


SAMPLE_GROUP = {
    "id": "941272d1-f840-4e16-b698-0cd455c81e0e",
    "invoiceId": "42",
    "title": "Cars",
    "index": 1,
    "netTotal": "2.00",
    "totalTax": "0.10",
    "grossTotal": "2.10",
}


@pytest.mark.parametrize(
    ("schema", "body"),
    [
        (GROUP, {**SAMPLE_GROUP, "description": None}),
        (GROUP, {**SAMPLE_GROUP, "taxCategory": None}),
        (GROUP, {**SAMPLE_GROUP, "taxCategory": {"id": "x", "name": None}}),
        (GROUP, {**SAMPLE_GROUP, "netTotal": 2.0}),
        (GROUP, {key: value for key, value in SAMPLE_GROUP.items() if key != "title"}),
        (PAGE, {"items": [], "pagination": {"after": None, "totalResultSize": 0}}),
        (PAGE, {"items": [], "pagination": {"before": None, "totalResultSize": 0}}),
        (PAGE, {"items": [{**SAMPLE_GROUP, "index": "1"}], "pagination": {}}),
        (PAGE, {"items": []}),
    ],
)
def test_the_schema_refuses_what_sequence_does_not_publish(
    schema: str, body: dict[str, Any]
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate(schema, body)
    # ... and the same shape without the fault passes, so the refusal is about the fault.
    validate(GROUP, SAMPLE_GROUP)
    validate(PAGE, {"items": [SAMPLE_GROUP], "pagination": {"totalResultSize": 1}})


def test_every_answer_matches_the_published_schema(api: Api, new_invoice: InvoiceFactory) -> None:
    invoice_id = new_invoice(api)
    url = groups_url(invoice_id)
    vat = api.post("/tax-categories", json={"name": "VAT"}).json()
    plain = checked(api.post(url, json={"title": "Plain"}), 201, GROUP)
    full = checked(
        api.post(
            url,
            json={
                "title": "Full",
                "description": "All fields",
                "taxCategoryId": vat["id"],
                "revenueRecognitionMethod": "MILESTONE",
                "revenueClassification": "PREPAYMENT",
                "servicePeriod": {"start": "2025-10-01", "endInclusive": "2025-10-30"},
            },
        ),
        201,
        GROUP,
    )
    for number in range(5):
        checked(api.post(url, json={"title": f"More {number}"}), 201, GROUP)
    assert "description" not in plain
    assert "taxCategory" not in plain
    assert full["taxCategory"] == vat
    checked(api.get(f"{url}/{plain['id']}"), 200, GROUP)
    checked(api.get(f"{url}/{full['id']}"), 200, GROUP)

    for order in ("ASC", "DESC"):
        first = checked(api.get(url, params={"sortOrder": order, "limit": 3}), 200, PAGE)
        middle = checked(
            api.get(url, params={"sortOrder": order, "limit": 3, **first_after(first)}), 200, PAGE
        )
        assert {"after", "before"} <= middle["pagination"].keys()
        back = checked(
            api.get(
                url,
                params={"sortOrder": order, "limit": 3, "before": middle["pagination"]["before"]},
            ),
            200,
            PAGE,
        )
        assert back == first
        assert "before" not in first["pagination"]
    checked(api.get(url), 200, PAGE)
    checked(api.get(url, params={"limit": 100}), 200, PAGE)
    empty = checked(api.get(groups_url(new_invoice(api))), 200, PAGE)
    assert empty == {"items": [], "pagination": {"totalResultSize": 0}}

    updated = checked(api.put(f"{url}/{full['id']}", json={"title": "Now plain"}), 200, GROUP)
    assert "description" not in updated
    assert "taxCategory" not in updated
    checked(
        api.put(f"{url}/{plain['id']}", json={"title": "Taxed", "taxCategoryId": vat["id"]}),
        200,
        GROUP,
    )
    deleted = checked(api.delete(f"{url}/{plain['id']}"), 200, GROUP)
    assert deleted["taxCategory"] == vat


def first_after(page: dict[str, Any]) -> dict[str, str]:
    return {"after": page["pagination"]["after"]}


# ---- a client generated from the published contract ------------------------------------


@pytest.fixture(scope="module")
def sequence_client(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The package openapi-python-client generates from our statement of Sequence's contract."""
    return generate_client(openapi(), tmp_path_factory.mktemp("sequence-client"))


@pytest.fixture
def http(app: FastAPI) -> Iterator[TestClient]:
    """An httpx client that speaks HTTP to the app under `/api/v2`, as the generated one needs."""
    with TestClient(app, base_url="http://testserver/api/v2", raise_server_exceptions=False) as c:
        yield c


def generated_walk(
    package: ModuleType, client: Any, token: str, invoice_id: int, order: str
) -> list[str]:
    """Page to the end the way Sequence's schema says: stop when `after` is absent (UNSET)."""
    listing = submodule(package, "api.default.get_invoices_by_invoice_line_item_groups")
    orders = submodule(package, "models.get_invoices_by_invoice_line_item_groups_sort_order")
    types = submodule(package, "types")
    sort_order = orders.GetInvoicesByInvoiceLineItemGroupsSortOrder(order)
    seen: list[str] = []
    after: Any = types.UNSET
    for _ in range(50):
        response = listing.sync_detailed(
            str(invoice_id),
            client=client,
            authorization=f"Token {token}",
            sort_order=sort_order,
            limit=100,
            after=after,
        )
        assert response.status_code == 200, response.content
        page = response.parsed
        seen.extend(item.id for item in page.items)
        assert page.pagination.total_result_size == 250
        after = page.pagination.after
        if isinstance(after, types.Unset):
            return seen
        # A cursor is a string; a null would make the client start over from page one.
        assert isinstance(after, str)
    pytest.fail("the generated client's walk did not end")


def test_a_client_generated_from_sequences_schema_pages_to_the_end(
    api: Api, new_invoice: InvoiceFactory, sequence_client: ModuleType, http: TestClient
) -> None:
    invoice_id = new_invoice(api)
    client_module = submodule(sequence_client, "client")
    client = client_module.Client(base_url="http://testserver/api/v2")
    client.set_httpx_client(http)
    create = submodule(sequence_client, "api.default.post_invoices_by_invoice_line_item_groups")
    body_model = submodule(sequence_client, "models.create_line_item_group_request_model")
    created: list[str] = []
    for number in range(250):
        response = create.sync_detailed(
            str(invoice_id),
            client=client,
            authorization=f"Token {api.token}",
            body=body_model.CreateLineItemGroupRequestModel(title=f"Group {number}"),
        )
        assert response.status_code == 201, response.content
        created.append(response.parsed.id)
    assert len(set(created)) == 250
    assert all(uuid.UUID(group_id) for group_id in created)

    ascending = generated_walk(sequence_client, client, api.token, invoice_id, "ASC")
    assert ascending == created
    descending = generated_walk(sequence_client, client, api.token, invoice_id, "DESC")
    assert descending == created[::-1]


def test_the_generated_client_round_trips_every_documented_field(
    api: Api, new_invoice: InvoiceFactory, sequence_client: ModuleType, http: TestClient
) -> None:
    invoice_id = new_invoice(api)
    vat = api.post("/tax-categories", json={"name": "VAT"}).json()
    client = submodule(sequence_client, "client").Client(base_url="http://testserver/api/v2")
    client.set_httpx_client(http)
    models = submodule(sequence_client, "models")
    versions = submodule(
        sequence_client, "models.post_invoices_by_invoice_line_item_groups_sequence_version"
    )
    create = submodule(sequence_client, "api.default.post_invoices_by_invoice_line_item_groups")
    body = models.CreateLineItemGroupRequestModel(
        title="Users",
        description="Charges for users",
        tax_category_id=vat["id"],
        revenue_recognition_method=models.RevenueRecognitionMethod("STRAIGHT_LINE"),
        revenue_classification=models.RevenueClassification("EARNED"),
        service_period=models.InclusiveDateRange(start="2022-10-20", end_inclusive="2022-10-24"),
    )
    response = create.sync_detailed(
        str(invoice_id),
        client=client,
        authorization=f"Token {api.token}",
        sequence_version=versions.PostInvoicesByInvoiceLineItemGroupsSequenceVersion("2024-07-30"),
        body=body,
    )
    assert response.status_code == 201, response.content
    group = response.parsed
    assert group.title == "Users"
    assert group.description == "Charges for users"
    assert (group.tax_category.id, group.tax_category.name) == (vat["id"], "VAT")

    update = submodule(
        sequence_client, "api.default.put_invoices_by_invoice_line_item_groups_by_id"
    )
    replaced = update.sync_detailed(
        str(invoice_id),
        group.id,
        client=client,
        authorization=f"Token {api.token}",
        body=models.UpdateLineItemGroupRequestModel(title="Seats", index=10),
    )
    assert replaced.status_code == 200, replaced.content
    types = submodule(sequence_client, "types")
    assert isinstance(replaced.parsed.description, types.Unset)
    assert isinstance(replaced.parsed.tax_category, types.Unset)
    assert replaced.parsed.index == 10

    delete = submodule(
        sequence_client, "api.default.delete_invoices_by_invoice_line_item_groups_by_id"
    )
    deleted = delete.sync_detailed(
        str(invoice_id), group.id, client=client, authorization=f"Token {api.token}"
    )
    assert deleted.status_code == 200, deleted.content
    assert deleted.parsed.to_dict() == replaced.parsed.to_dict()


def test_our_own_document_describes_every_answer_exactly(
    api: Api, new_invoice: InvoiceFactory
) -> None:
    """The `response_model`s in /openapi.json say what the endpoints really answer."""
    document = api.client.get("/openapi.json").json()
    paths = document["paths"]

    def schema_of(path: str, method: str, status: str) -> dict[str, Any]:
        found: dict[str, Any] = paths["/api/v2" + path][method]["responses"][status]["content"][
            "application/json"
        ]["schema"]
        return {**found, "components": document["components"]}

    def check(path: str, method: str, status: str, body: Any) -> None:
        jsonschema.Draft202012Validator(schema_of(path, method, status)).validate(body)

    invoice_id = new_invoice(api)
    vat = api.post("/tax-categories", json={"name": "VAT"})
    check("/tax-categories", "post", "201", vat.json())
    check("/tax-categories", "get", "200", api.get("/tax-categories").json())
    check("/tax-categories/{tax_category_id}", "get", "200", vat.json())
    many = "/invoices/{invoice}/line-item-groups"
    one = many + "/{group_id}"
    url = groups_url(invoice_id)
    bare = api.post(url, json={"title": "Bare"}).json()
    taxed = api.post(url, json={"title": "T", "taxCategoryId": vat.json()["id"]}).json()
    for group in (bare, taxed):
        check(many, "post", "201", group)
        check(one, "get", "200", api.get(f"{url}/{group['id']}").json())
    first = api.get(url, params={"limit": 1}).json()
    check(many, "get", "200", first)
    check(many, "get", "200", api.get(url, params={"limit": 1, **first_after(first)}).json())
    check(one, "put", "200", api.put(f"{url}/{bare['id']}", json={"title": "x"}).json())
    check(one, "delete", "200", api.delete(f"{url}/{taxed['id']}").json())
    # And the document's group schema refuses a null description, as Sequence's does.
    with pytest.raises(jsonschema.ValidationError):
        check(one, "get", "200", {**bare, "description": None})
