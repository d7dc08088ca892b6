"""`POST /reports/…/export` through the real queue: the seed's request, bodies, validation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ledgerline.jobs.queue import JobQueue
from tests.conftest import Api, assert_problem
from tests.jobs.conftest import (
    Created,
    create_lines,
    csv_rows,
    download,
    json_rows,
    wait_for_job,
)

GROUPED = "/reports/invoice_line_items.grouped/export"
FLAT = "/reports/invoice_line_items/export"


def seed_body(**overrides: Any) -> dict[str, Any]:
    """The seed's example body as published, its placeholders replaced by real values
    (dates wide enough to include the rows the tests create)."""
    body: dict[str, Any] = {
        "id_gt": 0,
        "sort": ["total_amount"],
        "format": "csv",
        "columns": ["total_amount"],
        "invoice_status": "paid",
        "invoice_due_date_gte": "2024-01-01",
        "invoice_due_date_lte": "2024-12-31",
        "invoice_paid_at_gte": "2024-01-01T00:00:00.000Z",
        "invoice_paid_at_lte": "2024-12-31T23:59:59.999Z",
        "invoice_updated_at_gte": "2000-01-01T00:00:00.000Z",
        "invoice_updated_at_lte": "2100-01-01T00:00:00.000Z",
        "invoice_confirmed_at_gte": "2024-01-01T00:00:00.000Z",
        "invoice_confirmed_at_lte": "2024-12-31T23:59:59.999Z",
    }
    body.update(overrides)
    return body


def currency_totals_from_csv(content: bytes) -> dict[str, Decimal]:
    rows = csv_rows(content)
    assert rows, content
    header = list(rows[0].keys())
    assert "Currency" in header, header
    money = [name for name in header if name != "Currency" and name != "Type"]
    assert len(money) == 1, header
    return {row["Currency"].upper(): Decimal(row[money[0]]) for row in rows}


def expected_major(created: Created) -> dict[str, Decimal]:
    return {
        currency: Decimal(total) / 100 for currency, total in created.totals_by_currency().items()
    }


def submit(api: Api, path: str, **kwargs: Any) -> int:
    response = api.post(path, **kwargs)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"job"}, body
    assert isinstance(body["job"], int), body
    assert response.headers["location"] == f"/api/v2/jobs/{body['job']}"
    job_id: int = body["job"]
    return job_id


def test_seed_request_as_published_exports_one_row_per_currency(
    api: Api, consumer: JobQueue
) -> None:
    created = create_lines(api)
    # The seed posts to its own URL with the doubled slash and a Bearer token.
    response = api.client.post(
        "/api/v2//reports/invoice_line_items.grouped/export",
        json=seed_body(),
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": f"Bearer {api.token}",
        },
    )
    assert response.status_code == 200, response.text
    job_id = response.json()["job"]
    job = wait_for_job(api, job_id)
    assert job["status"] == "succeeded", job
    assert job["type"] == "report_export"
    assert job["report"] == "invoice_line_items.grouped"
    assert job["format"] == "csv"
    content = download(api, job)
    totals = currency_totals_from_csv(content)
    assert totals == expected_major(created)
    assert job["result"]["row_count"] == len(totals) == 2
    assert job["result"]["size_bytes"] == len(content)
    assert job["result"]["file_name"] == f"invoice_line_items.grouped-{job_id}.csv"
    assert job["result"]["content_type"].startswith("text/csv")
    assert job["progress"] == {"rows_done": 2, "rows_total": 2, "percent": 100}


def test_grouped_by_type_and_currency_json(api: Api, consumer: JobQueue) -> None:
    created = create_lines(api)
    job_id = submit(api, GROUPED, json=seed_body(columns=["type", "total_amount"], format="json"))
    job = wait_for_job(api, job_id)
    assert job["status"] == "succeeded", job
    rows = json_rows(download(api, job))
    got = {
        (row["type"], row["total_amount"]["iso_currency_code"].upper()): row["total_amount"][
            "decimal"
        ]
        for row in rows
    }
    expected = {
        key: Decimal(total) / 100 for key, total in created.totals_by_type_and_currency().items()
    }
    assert got == expected


@pytest.mark.parametrize("how", ["form", "multipart", "query"])
def test_form_multipart_and_query_bodies(api: Api, consumer: JobQueue, how: str) -> None:
    created = create_lines(api)
    fields = {
        "columns": "total_amount",
        "invoice_status": "paid",
        "invoice_due_date_gte": "2024-01-01",
        "invoice_due_date_lte": "2024-12-31",
    }
    if how == "form":
        job_id = submit(api, GROUPED, data=fields)
    elif how == "multipart":
        job_id = submit(
            api, GROUPED, data=fields, files={"format": (None, "csv")}
        )  # a multipart body
    else:
        job_id = submit(api, GROUPED, params=fields)
    job = wait_for_job(api, job_id)
    assert job["status"] == "succeeded", job
    assert currency_totals_from_csv(download(api, job)) == expected_major(created)


def test_format_as_query_parameter_with_json_body(api: Api, consumer: JobQueue) -> None:
    create_lines(api, ("GBP",))
    body = seed_body()
    del body["format"]
    job_id = submit(api, GROUPED, params={"format": "json"}, json=body)
    job = wait_for_job(api, job_id)
    assert job["format"] == "json"
    assert job["result"]["content_type"] == "application/json"
    assert len(json_rows(download(api, job))) == 1


def test_csv_and_json_exports_hold_the_same_rows(api: Api, consumer: JobQueue) -> None:
    created = create_lines(api)
    columns = ["id", "invoice.status", "type", "description", "amount"]
    jobs = {
        fmt: wait_for_job(
            api, submit(api, FLAT, json={"columns": columns, "sort": ["-id"], "format": fmt})
        )
        for fmt in ("csv", "json")
    }
    csv_data = csv_rows(download(api, jobs["csv"]))
    json_data = json_rows(download(api, jobs["json"]))
    ids = sorted((line.id for line in created.lines), reverse=True)
    assert [int(row["ID"] if "ID" in row else row["Id"]) for row in csv_data] == ids
    assert [row["id"] for row in json_data] == ids
    by_id = {line.id: line for line in created.lines}
    for csv_row, json_row in zip(csv_data, json_data, strict=True):
        line = by_id[json_row["id"]]
        assert json_row["type"] == line.type
        assert json_row["amount"]["decimal"] == Decimal(line.amount) / 100
        assert json_row["invoice"]["status"] == "paid"
        assert Decimal(csv_row["Amount"]) == Decimal(line.amount) / 100
        assert csv_row["Description"] == json_row["description"]
    assert jobs["csv"]["result"]["row_count"] == jobs["json"]["result"]["row_count"] == len(ids)


def test_filters_narrow_the_export(api: Api, consumer: JobQueue) -> None:
    create_lines(api, ("GBP",), due_date="2024-07-29")
    later = create_lines(api, ("GBP",), due_date="2025-03-01")
    body = {"columns": ["id"], "invoice_due_date_gte": "2025-01-01", "format": "json"}
    job = wait_for_job(api, submit(api, FLAT, json=body))
    assert sorted(row["id"] for row in json_rows(download(api, job))) == sorted(
        line.id for line in later.lines
    )


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"columns": ["total_amount", "nonsense"]}, "nonsense"),
        ({"columns": ["type", "total_amount"], "sort": ["total_amountz"]}, "sort"),
        ({"colums": ["type"]}, "colums"),
        ({"invoice_due_date_gte": "2024-13-45"}, "invoice_due_date_gte"),
        ({"invoice_paid_at_lte": "yesterday"}, "invoice_paid_at_lte"),
        ({"format": "xls"}, "format"),
        ({"id_gt": "x1"}, "id_gt"),
    ],
)
def test_invalid_export_requests_are_422_and_create_no_job(
    api: Api, body: dict[str, Any], named: str
) -> None:
    assert_problem(api.post(GROUPED, json=body), 422, named)
    listed = api.get("/jobs").json()
    assert listed["count"] == 0
    assert listed["results"] == []


def test_unsortable_sort_key_on_flat_report(api: Api) -> None:
    assert_problem(api.post(FLAT, json={"sort": ["billed_item"]}), 422, "sort")
    assert api.get("/jobs").json()["count"] == 0


def test_malformed_json_is_400_and_other_media_types_415(api: Api) -> None:
    bad = api.post(GROUPED, content=b'{"columns": [', headers={"Content-Type": "application/json"})
    assert_problem(bad, 400)
    xml = api.post(GROUPED, content=b"<columns/>", headers={"Content-Type": "application/xml"})
    assert_problem(xml, 415)
    not_object = api.post(GROUPED, json=["columns"])
    assert_problem(not_object, 422, "body")
    assert api.get("/jobs").json()["count"] == 0


def test_empty_body_exports_defaults(api: Api, consumer: JobQueue) -> None:
    created = create_lines(api, ("GBP",))
    job = wait_for_job(api, submit(api, GROUPED))
    assert job["status"] == "succeeded"
    rows = csv_rows(download(api, job))
    assert len(rows) == len({line.type for line in created.lines})


def test_idempotency_key_replay_and_mismatch(api: Api, consumer: JobQueue) -> None:
    create_lines(api, ("GBP",))
    key = {"Idempotency-Key": "export-7f3a"}
    first = submit(api, GROUPED, json=seed_body(), headers=key)
    # Same parameters, spelt differently (aliases, order): the same request.
    again = submit(api, GROUPED, json=seed_body(), headers=key)
    assert again == first
    different = api.post(GROUPED, json=seed_body(format="json"), headers=key)
    assert_problem(different, 422, "Idempotency-Key")
    other_key = submit(api, GROUPED, json=seed_body(), headers={"Idempotency-Key": "another"})
    assert other_key != first
    assert api.get("/jobs").json()["count"] == 2
    assert wait_for_job(api, first)["status"] == "succeeded"


def test_read_only_token_cannot_export(make_tenant: Any) -> None:
    reader = make_tenant(scopes=["read"])
    assert_problem(reader.post(GROUPED, json={}), 403)


def test_query_and_body_disagreeing_is_422_agreeing_is_fine(api: Api, consumer: JobQueue) -> None:
    create_lines(api, ("GBP",))
    clash = api.post(GROUPED, params={"format": "json"}, json={"format": "csv"})
    assert_problem(clash, 422, "format")
    assert api.get("/jobs").json()["count"] == 0
    job = wait_for_job(
        api, submit(api, GROUPED, params={"format": "json"}, json={"format": "json"})
    )
    assert job["format"] == "json"
    assert job["status"] == "succeeded"
