"""Ids reveal nothing of other accounts (issue 10): each account numbers its own venues,
customers, invoices, line items and jobs 1, 2, 3…, and every id the API shows or accepts is
that per-account number.

Before per-account ids, two accounts taking turns got interleaved global keys (1, 3, 5… and
2, 4, 6…), so each saw how many records the other created between two of its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select

from ledgerline.db import engine_for
from ledgerline.models import Customer, Invoice, Job, LineItem, Venue
from tests.conftest import Api, Backend, assert_problem
from tests.factories import (
    add_line_item,
    add_line_items,
    create_customer,
    create_invoice,
    create_venue,
)
from tests.jobs.conftest import consumer, csv_rows, download, job_key, wait_for_job

__all__ = ["consumer"]  # the jobs' consumer fixture, for the exports made here

FLAT = "/reports/invoice_line_items/data"
EXPORT = "/reports/invoice_line_items/export"


def _export(api: Api, **body: Any) -> dict[str, Any]:
    response = api.post(EXPORT, json=body)
    assert response.status_code == 200, response.text
    job_id = response.json()["job"]
    assert response.headers["location"] == f"/api/v2/jobs/{job_id}"
    return {"id": job_id}


def _interleave(apis: list[Api], rounds: int, step: Callable[[Api], None]) -> None:
    for _ in range(rounds):
        for api in apis:
            step(api)


def _line(amount: str) -> dict[str, Any]:
    return {"type": "flat_fee", "amount": amount, "description": f"line {amount}"}


def test_two_accounts_taking_turns_each_number_from_one(
    api: Api, other_api: Api, consumer: Any
) -> None:
    """Venues, customers, invoices, line items (single and batch) and export jobs created in
    turn by two accounts: each account's ids are 1, 2, 3… with no gap left by the other."""
    made: dict[int, dict[str, list[dict[str, Any]]]] = {
        a.account_id: {"venues": [], "customers": [], "invoices": [], "lines": [], "jobs": []}
        for a in (api, other_api)
    }

    def venue(a: Api) -> None:
        made[a.account_id]["venues"].append(create_venue(a, name=f"Hall {a.account_id}"))

    # Each new record refers to a different one before it, so a reference rendered with
    # the wrong id cannot pass.
    def customer(a: Api) -> None:
        venue = made[a.account_id]["venues"][len(made[a.account_id]["customers"])]
        made[a.account_id]["customers"].append(
            create_customer(a, name=f"Customer {a.account_id}", venue=venue["id"])
        )

    def invoice(a: Api) -> None:
        customer = made[a.account_id]["customers"][len(made[a.account_id]["invoices"])]
        made[a.account_id]["invoices"].append(
            create_invoice(a, customer=customer["id"], status="open")
        )

    def single_line(a: Api) -> None:
        invoice = made[a.account_id]["invoices"][len(made[a.account_id]["lines"]) % 2]
        made[a.account_id]["lines"].append(add_line_item(a, invoice["id"], **_line("1.00")))

    def batch_of_lines(a: Api) -> None:
        invoices = made[a.account_id]["invoices"]
        lines = add_line_items(a, invoices[0]["id"], [_line(f"{n}.25") for n in range(1, 6)])
        made[a.account_id]["lines"].extend(lines)

    def export_job(a: Api) -> None:
        made[a.account_id]["jobs"].append(_export(a))

    apis = [api, other_api]
    _interleave(apis, 3, venue)
    _interleave(apis, 3, customer)
    _interleave(apis, 2, invoice)
    _interleave(apis, 2, single_line)
    _interleave(apis, 2, batch_of_lines)
    _interleave(apis, 2, single_line)
    _interleave(apis, 3, export_job)

    for a in apis:
        records = made[a.account_id]
        for kind, rows in records.items():
            assert [row["id"] for row in rows] == list(range(1, len(rows) + 1)), (kind, rows)
        # References show the same per-account ids.
        assert [c["venue"]["id"] for c in records["customers"]] == [1, 2, 3]
        assert [i["customer"] for i in records["invoices"]] == [1, 2]
        assert [line["invoice"] for line in records["lines"]] == [1, 2] + [1] * 10 + [1, 2]
        # Reads, lists and each account's jobs agree.
        assert [c["id"] for c in a.get("/customers").json()["results"]] == [1, 2, 3]
        assert [i["id"] for i in a.get("/invoices").json()["results"]] == [1, 2]
        assert [j["id"] for j in a.get("/jobs").json()["results"]] == [3, 2, 1]
        for invoice_id, line_ids in ((1, [1, *range(3, 14)]), (2, [2, 14])):
            listing = a.get(f"/invoices/{invoice_id}/line_items", params={"limit": 100}).json()
            assert [line["id"] for line in listing["results"]] == line_ids
            assert {line["invoice"] for line in listing["results"]} == {invoice_id}
        for job in records["jobs"]:
            finished = wait_for_job(a, job["id"])
            assert finished["status"] == "succeeded", finished
            assert finished["id"] == job["id"]
            assert finished["result"]["file_name"] == f"invoice_line_items-{job['id']}.csv"
            assert f"/jobs/{job['id']}/download?" in finished["result"]["download_url"]
            rows = csv_rows(download(a, finished))
            assert sorted(int(row["ID"]) for row in rows) == list(range(1, 15))


def test_another_accounts_existing_id_is_404_exactly_like_a_missing_one(
    api: Api, other_api: Api, consumer: Any
) -> None:
    """Account B holds ids that account A does not (B made more of everything); in A each is
    a 404 with the very answer a never-used id gets, and as a reference in a body a 422."""
    mine_invoice = create_invoice(api)
    add_line_item(api, mine_invoice["id"], **_line("1.00"))
    create_customer(api)
    create_venue(api)
    for _ in range(3):
        venue = create_venue(other_api)
        customer = create_customer(other_api, venue=venue["id"])
        invoice = create_invoice(other_api, customer=customer["id"])
        add_line_items(other_api, invoice["id"], [_line("2.00"), _line("3.00"), _line("4.00")])
    wait_for_job(other_api, _export(other_api)["id"])
    wait_for_job(other_api, _export(other_api)["id"])
    missing = 9_000_000
    # Id 3 exists in B (its third customer and invoice, the third line item of its invoice 1)
    # and so does job 2; in A none of them does.
    paths = [
        ("/customers/{}", 3),
        ("/invoices/{}", 3),
        ("/invoices/{}/line_items", 3),
        ("/invoices/1/line_items/{}", 3),
        ("/jobs/{}", 2),
        ("/jobs/{}/download", 2),
        ("/invoices/{}/line-item-groups", 3),
    ]
    for template, theirs in paths:
        assert other_api.get(template.format(theirs)).status_code in (200, 409), template
        foreign = api.get(template.format(theirs))
        absent = api.get(template.format(missing))
        assert_problem(foreign, 404)
        assert_problem(absent, 404)
        expected = absent.json()
        assert foreign.json() == {
            **expected,
            "detail": expected["detail"].replace(str(missing), str(theirs)),
        }, template
    assert_problem(api.post("/jobs/2/cancel"), 404)
    assert_problem(api.patch("/invoices/3", json={"status": "paid"}), 404)
    assert_problem(api.post("/invoices/3/line_items", json=_line("1.00")), 404)
    for body, field in (({"customer": 3}, "customer"),):
        assert_problem(api.post("/invoices", json=body), 422, field)
        assert_problem(api.patch(f"/invoices/{mine_invoice['id']}", json=body), 422, field)
    assert_problem(api.post("/customers", json={"name": "x", "venue": 3}), 422, "venue")
    # Nothing was written in A by any of it.
    assert api.get("/invoices").json()["count"] == 1
    assert api.get("/customers").json()["count"] == 1


def test_report_ids_id_gt_and_sort_are_the_public_ids(api: Api, other_api: Api) -> None:
    """The flat report's `id`, `invoice.id`, `customer.id` and `customer.venue.id` are the
    public ids; `id_gt` and sorting by id give what the created ids say they should."""
    expected: list[dict[str, Any]] = []
    for round_ in range(3):
        for a in (other_api, api):  # the other account first, so global keys would differ
            venue = create_venue(a, name=f"Venue {round_}")
            customer = create_customer(a, name=f"C{round_}", venue=venue["id"])
            invoice = create_invoice(a, customer=customer["id"], status="open")
            lines = add_line_items(a, invoice["id"], [_line(f"{round_}.{n}0") for n in range(4)])
            if a is api:
                expected += [
                    {
                        "id": line["id"],
                        "invoice": invoice["id"],
                        "customer": customer["id"],
                        "venue": venue["id"],
                    }
                    for line in lines
                ]
    columns = "id,invoice.id,customer.id,customer.venue.id"

    def report(**params: Any) -> list[dict[str, Any]]:
        response = api.get(FLAT, params={"columns": columns, "limit": 100, **params})
        assert response.status_code == 200, response.text
        return [
            {
                "id": row["id"],
                "invoice": row["invoice"]["id"],
                "customer": row["customer"]["id"],
                "venue": row["customer"]["venue"]["id"],
            }
            for row in response.json()["rows"]
        ]

    by_id = sorted(expected, key=lambda row: row["id"])
    assert [row["id"] for row in by_id] == list(range(1, 13))
    assert report() == by_id  # the default sort
    assert report(sort="-id") == by_id[::-1]
    for bound in (0, 1, 5, 11, 12, 99):
        assert report(id_gt=str(bound)) == [row for row in by_id if row["id"] > bound], bound
        assert report(id_gt=str(bound), sort="-id") == [
            row for row in by_id[::-1] if row["id"] > bound
        ]
    # Deep pages (a deferred join by the internal key) keep the public order.
    page = api.get(FLAT, params={"columns": columns, "limit": 5, "offset": 5, "sort": "-id"})
    assert [row["id"] for row in page.json()["rows"]] == [7, 6, 5, 4, 3]
    assert report(sort="-invoice.id,id") == sorted(
        expected, key=lambda row: (-row["invoice"], row["id"])
    )
    assert report(sort="-customer.venue.id,-id") == sorted(
        expected, key=lambda row: (-row["venue"], -row["id"])
    )


def test_group_invoice_id_is_the_invoices_public_id(api: Api, other_api: Api) -> None:
    create_invoice(other_api)
    create_invoice(other_api)
    invoice = create_invoice(api)
    assert invoice["id"] == 1
    group = api.post(f"/invoices/{invoice['id']}/line-item-groups", json={"title": "Seats"})
    assert group.status_code == 201, group.text
    assert group.json()["invoiceId"] == "1"
    listed = api.get(f"/invoices/{invoice['id']}/line-item-groups").json()
    assert [item["invoiceId"] for item in listed["items"]] == ["1"]


def test_concurrent_writers_of_one_account_get_consecutive_ids(
    make_tenant: Callable[..., Api], backend: Backend
) -> None:
    """Many requests of one account at once (and another account's beside them): distinct,
    consecutive ids 1..N, and batches take whole blocks. On PostgreSQL the counter row lock
    is what serialises them (given numbers take no account lock)."""
    mine, theirs = make_tenant(), make_tenant()
    count = 24
    start = threading.Barrier(8)

    def create(args: tuple[Api, int]) -> tuple[Api, int, int]:
        client, n = args
        if client is mine and n < 8:  # the first eight start together
            start.wait(timeout=30)
        response = client.post("/invoices", json={"number": f"N-{n}"})
        assert response.status_code == 201, response.text
        return client, n, int(response.json()["id"])

    work = [(mine, n) for n in range(count)] + [(theirs, n) for n in range(6)]
    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(create, work))
    ids = {f"N-{n}": number for client, n, number in created if client is mine}
    other_ids = [number for client, _, number in created if client is theirs]
    assert sorted(ids.values()) == list(range(1, count + 1))
    assert sorted(other_ids) == list(range(1, 7))
    listed = mine.get("/invoices", params={"limit": 100}).json()["results"]
    assert {row["number"]: row["id"] for row in listed} == ids

    def batch(invoice_id: int) -> list[int]:
        lines = add_line_items(mine, invoice_id, [_line("1.00") for _ in range(50)])
        return [line["id"] for line in lines]

    with ThreadPoolExecutor(8) as pool:
        blocks = list(pool.map(batch, range(1, 9)))
    for block in blocks:  # each batch is one block, in the body's order
        assert block == list(range(block[0], block[0] + 50))
    assert sorted(i for block in blocks for i in block) == list(range(1, 401))


@pytest.mark.parametrize("bad", ["0", "-1", "abc", str(2**63), "1.5"])
def test_a_bad_id_is_still_a_422(api: Api, bad: str) -> None:
    for path in (f"/invoices/{bad}", f"/customers/{bad}", f"/jobs/{bad}"):
        assert_problem(api.get(path), 422)


def test_a_download_link_signed_before_the_upgrade_is_refused(
    api: Api, backend: Backend, consumer: Any
) -> None:
    """A v1 link signed the job's internal key; presented now, the same number would be read
    as a public id (maybe another job of the account): it fails the signature instead."""
    for _ in range(3):
        job = wait_for_job(api, _export(api)["id"])
    key = job_key(backend, api.account_id, job["id"])
    expires = int(time.time()) + 600
    for job_id in (key, job["id"]):
        message = f"ledgerline.download.v1:{job_id}:{api.account_id}:{expires}".encode()
        secret = (backend.settings.secret_key or "").encode()
        digest = hmac.new(secret, message, hashlib.sha256).digest()
        signature = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        token = f"{api.account_id}.{expires}.{signature}"
        old_link = api.client.get(f"/api/v2/jobs/{job_id}/download", params={"token": token})
        assert_problem(old_link, 403)
    assert api.client.get(job["result"]["download_url"]).status_code == 200


ID_KEYS = frozenset({"id", "invoice", "customer", "invoiceId", "job"})
NUMBERED_TABLES = (Venue, Customer, Invoice, LineItem, Job)


def _ids_shown(value: Any, found: set[int]) -> set[int]:
    """Every integer (or digit string, as Sequence writes `invoiceId`) under an id key."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ID_KEYS and isinstance(item, int) and not isinstance(item, bool):
                found.add(item)
            elif key in ID_KEYS and isinstance(item, str) and item.isdigit():
                found.add(int(item))
            else:
                _ids_shown(item, found)
    elif isinstance(value, list):
        for item in value:
            _ids_shown(item, found)
    return found


def test_no_answer_carries_an_internal_id(
    api: Api, other_api: Api, backend: Backend, consumer: Any
) -> None:
    """Every id in every answer (objects, lists, expansions, report rows, the export file,
    groups, jobs, links) is one of the account's public ids, never an internal key."""
    for _ in range(3):  # another account's rows first, so this one's keys are not 1 or 2
        theirs = create_invoice(other_api, customer=create_customer(other_api)["id"])
        create_venue(other_api)
        add_line_items(other_api, theirs["id"], [_line("1.00")])
        wait_for_job(other_api, _export(other_api)["id"])
    venue = create_venue(api)
    customer = create_customer(api, venue=venue["id"])
    invoice = create_invoice(api, customer=customer["id"], status="paid")
    lines = add_line_items(api, invoice["id"], [_line("1.00"), _line("2.00")])
    group = api.post(f"/invoices/{invoice['id']}/line-item-groups", json={"title": "G"}).json()
    job = wait_for_job(api, _export(api, format="json")["id"])
    with engine_for(backend.database_url).connect() as conn:
        internal = {
            int(key)
            for model in NUMBERED_TABLES
            for key in conn.execute(
                select(model.id).where(model.account_id == api.account_id)
            ).scalars()
        }
    public = {1, 2}  # one or two of each: venue, customer, invoice, lines 1-2, job
    assert internal.isdisjoint(public), internal
    answers = [
        api.get("/customers").json(),
        api.get(f"/customers/{customer['id']}").json(),
        api.get("/invoices", params={"expand": "line_items"}).json(),
        api.get(f"/invoices/{invoice['id']}", params={"expand": "line_items"}).json(),
        api.get(f"/invoices/{invoice['id']}/line_items").json(),
        api.get(f"/invoices/{invoice['id']}/line_items/{lines[1]['id']}").json(),
        api.get(f"/invoices/{invoice['id']}/line-item-groups").json(),
        group,
        api.get(FLAT).json(),
        api.get("/jobs").json(),
        job,
        json.loads(download(api, job)),
    ]
    shown = _ids_shown(answers, set())
    assert shown == public, shown
    assert f"/jobs/{job['id']}/download?" in job["result"]["download_url"]
    assert job["result"]["file_name"] == f"invoice_line_items-{job['id']}.json"
