"""A typed client generated from our own `/openapi.json` performs the README's tour.

openapi-python-client generates the package at test time from the document a running
`ledgerline serve` publishes; the client then speaks HTTP to that server with
`Authorization: Token …`, as an integrator's would. Every answer must parse into the
generated model its operation declares (a `Problem` or an unknown shape would fail), and the
numbers must be the ones the tour's own inputs give.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.conftest import TenantFactory
from tests.generated_client import generate_client, submodule


class Tour:
    """The generated package, and one call: the operation's `sync_detailed`, checked."""

    def __init__(self, package: ModuleType, client: Any) -> None:
        self.package = package
        self.client = client

    def model(self, name: str) -> Any:
        return getattr(submodule(self.package, "models"), name)

    def call(self, tag: str, operation: str, status: int, *args: Any, **kwargs: Any) -> Any:
        module = submodule(self.package, f"api.{tag}.{operation}")
        response = module.sync_detailed(*args, client=self.client, **kwargs)
        assert response.status_code == status, (operation, response.content)
        assert not isinstance(response.parsed, self.model("Problem")), response.content
        return response.parsed


@pytest.mark.slow
def test_generated_client_performs_the_readme_tour(
    make_tenant: TenantFactory, served: str, tmp_path: Path
) -> None:
    document = httpx.get(served + "/openapi.json").json()
    package = generate_client(document, tmp_path / "ledgerline-client")
    api = make_tenant()
    client = submodule(package, "client").AuthenticatedClient(
        base_url=served, token=api.token, prefix="Token", raise_on_unexpected_status=True
    )
    tour = Tour(package, client)
    model = tour.model

    venue = tour.call("customers", "create_venue", 201, body=model("VenueCreate")(name="Studio"))
    assert isinstance(venue, model("Venue"))
    customer = tour.call(
        "customers",
        "create_customer",
        201,
        body=model("CustomerCreate")(name="Ada Lovelace", email="ada@example.com", venue=venue.id),
    )
    assert customer.venue.id == venue.id
    found = tour.call("customers", "list_customers", 200, query="lovelace")
    assert [c.id for c in found.results] == [customer.id]

    invoice = tour.call(
        "invoices",
        "create_invoice",
        201,
        body=model("InvoiceCreate")(customer=customer.id, due_date="2026-12-31"),
    )
    assert invoice.number.startswith("INV-")
    lines = tour.call(
        "line_items",
        "create_line_items",
        201,
        invoice.id,
        body=model("CreateLineItemsLineItemBatch")(
            items=[
                model("CreateLineItemsLineItemBatchLineItemCreate")(
                    type_=model("CreateLineItemsLineItemBatchLineItemCreateType")("service_fee"),
                    quantity="12345",
                    unit_price="0.0035",
                    tax_rate="0.20",
                ),
                model("CreateLineItemsLineItemBatchLineItemCreate")(
                    type_=model("CreateLineItemsLineItemBatchLineItemCreateType")("store_order"),
                    amount="12.50",
                ),
            ]
        ),
    )
    # 12,345 × £0.0035 = £43.2075, rounded half away from zero once: £43.21; tax 20%: £8.64.
    assert [Decimal(str(line.amount.decimal)) for line in lines.items] == [
        Decimal("43.21"),
        Decimal("12.50"),
    ]
    assert Decimal(str(lines.items[0].tax_amount.decimal)) == Decimal("8.64")

    vat = tour.call(
        "tax_categories", "create_tax_category", 201, body=model("TaxCategoryBody")(name="VAT")
    )
    group = tour.call(
        "line_item_groups",
        "create_group",
        201,
        str(invoice.id),
        body=model("GroupBody")(title="Usage", tax_category_id=vat.id),
    )
    tour.call(
        "line_items",
        "update_line_item",
        200,
        invoice.id,
        lines.items[0].id,
        body=model("LineItemUpdate")(group_id=group.id),
    )
    page = tour.call("line_item_groups", "list_groups", 200, str(invoice.id), limit="10")
    assert [g.id for g in page.items] == [group.id]
    assert (page.items[0].net_total, page.items[0].tax_category.name) == ("43.21", "VAT")

    full = tour.call("invoices", "get_invoice", 200, invoice.id)
    assert Decimal(str(full.gross_total.decimal)) == Decimal("43.21") + Decimal("8.64") + Decimal(
        "12.50"
    )
    data = tour.call("reports", "invoice_line_items_data", 200, id_gt=0)
    assert data.total == 2
    assert {row["id"] for row in (r.to_dict() for r in data.rows)} == {
        line.id for line in lines.items
    }

    accepted = tour.call(
        "jobs",
        "export_line_items",
        200,
        body=model("ExportLineItemsJsonBody")(
            format_=model("ExportLineItemsJsonBodyFormat")("json")
        ),
    )
    job = _finished(tour, accepted.job)
    assert (job.status, job.total_items, job.complete_items) == ("succeeded", 2, 2)
    assert job.result_url == job.result.download_url
    rows = tour.call("jobs", "download_job", 200, accepted.job)
    assert sorted(row.to_dict()["id"] for row in rows) == sorted(line.id for line in lines.items)


def _finished(tour: Tour, job_id: int) -> Any:
    deadline = time.monotonic() + 60
    while True:
        job = tour.call("jobs", "get_job", 200, job_id)
        if str(job.status) in ("succeeded", "failed", "canceled", "expired"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
