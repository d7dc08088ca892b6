"""The row counts the writers keep (`ledgerline.row_counts`) equal COUNT(*) after every write
path (the API's, the seed's), and the reports' totals read from them equal an independent
count, filtered or not, in a report page and inside an export's snapshot."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sqlalchemy import select

from ledgerline.auth import Principal
from ledgerline.db import engine_for, transaction
from ledgerline.exports.writers import open_snapshot
from ledgerline.invoices.service import add_line_items
from ledgerline.models import Invoice, LineItem
from ledgerline.reports.query import count_rows, parse_report_params, rows_statement
from ledgerline.seed import seed_account
from tests.conftest import Api, Backend, assert_problem
from tests.factories import add_line_item, create_invoice
from tests.factories import add_line_items as post_line_items
from tests.reports.row_count_checks import kept_and_counted

UNTIL = dt.date(2026, 6, 30)


def assert_exact(backend: Backend, *apis: Api) -> dict[str, Any]:
    """Every account's counters equal COUNT(*); the first account's counts."""
    found: list[dict[str, Any]] = []
    with engine_for(backend.database_url).connect() as conn:
        for api in apis:
            kept, counted = kept_and_counted(conn, api.account_id)
            assert kept == counted
            found.append(counted)
    return found[0]


def total(api: Api, report: str, **filters: Any) -> int:
    response = api.get(f"/reports/{report}/data", params={"limit": 1, **filters})
    assert response.status_code == 200, response.text
    value: int = response.json()["total"]
    return value


def lines(count: int) -> list[dict[str, Any]]:
    return [{"type": "flat_fee", "amount": f"{n + 1}.00"} for n in range(count)]


def test_every_api_write_path_keeps_the_counts(backend: Backend, api: Api, other_api: Api) -> None:
    assert_exact(backend, api)  # a new account: no counter rows, zero everywhere
    assert total(api, "invoice_line_items") == 0
    assert total(api, "invoices") == 0
    open_invoice = create_invoice(api, status="open")
    paid = create_invoice(api, status="paid")
    voided = create_invoice(api, status="voided")
    single = add_line_item(api, open_invoice["id"], type="flat_fee", amount="4.50")
    batch = post_line_items(api, paid["id"], lines(5))
    post_line_items(api, voided["id"], lines(3))
    # A batch with one bad line writes nothing, counters included.
    bad = api.post(
        f"/invoices/{paid['id']}/line_items",
        json={"items": [*lines(2), {"type": "flat_fee", "amount": "1.001"}]},
    )
    assert_problem(bad, 422)
    api.delete(f"/invoices/{open_invoice['id']}/line_items/{single['id']}").raise_for_status()
    api.delete(f"/invoices/{paid['id']}/line_items/{batch[0]['id']}").raise_for_status()
    # Another account's line item is a 404 and counts nowhere.
    theirs = create_invoice(other_api, status="paid")
    their_line = add_line_item(other_api, theirs["id"], type="flat_fee", amount="1.00")
    assert_problem(api.delete(f"/invoices/{theirs['id']}/line_items/{their_line['id']}"), 404)
    # A group deleted leaves its lines on the invoice (SPEC §5): still counted.
    group = api.post(f"/invoices/{paid['id']}/line-item-groups", json={"title": "G"}).json()
    grouped = post_line_items(api, paid["id"], [{**lines(1)[0], "group_id": group["id"]}])
    assert grouped[0]["group_id"] == group["id"]
    api.delete(f"/invoices/{paid['id']}/line-item-groups/{group['id']}").raise_for_status()
    # A status change moves the invoice's lines to the other status's sum.
    api.patch(f"/invoices/{voided['id']}", json={"status": "paid"}).raise_for_status()

    counted = assert_exact(backend, api, other_api)
    assert counted["invoices"] == 3
    assert counted["line_items"] == 0 + 4 + 1 + 3
    assert counted["per_status"] == {"paid": 8}
    assert total(api, "invoice_line_items") == 8
    assert total(api, "invoice_line_items", invoice_status="paid") == 8
    assert total(api, "invoice_line_items", invoice_status="voided,open") == 0
    assert total(api, "invoices") == 3
    assert total(api, "invoices", status="paid") == 2
    assert total(other_api, "invoice_line_items") == 1
    assert total(other_api, "invoices") == 1


def seed(backend: Backend, api: Api, count: int) -> None:
    # Small chunks, so the run spans several transactions.
    seed_account(
        engine_for(backend.database_url), api.account_id, count, batch_size=700, until=UNTIL
    )


def test_the_seed_keeps_the_counts_beside_api_writes(
    backend: Backend, api: Api, other_api: Api
) -> None:
    before = create_invoice(api, status="draft")
    post_line_items(api, before["id"], lines(2))
    seed(backend, api, 2_000)
    seed(backend, other_api, 300)
    counted = assert_exact(backend, api, other_api)
    assert counted["line_items"] == 2_002
    # API writes after the seed continue from its counts: delete a seeded line, add one.
    seeded = api.get("/reports/invoice_line_items/data", params={"limit": 1, "sort": "-id"})
    row = seeded.json()["rows"][0]
    invoice = row["invoice"]["id"] if isinstance(row["invoice"], dict) else row["invoice"]
    api.delete(f"/invoices/{invoice}/line_items/{row['id']}").raise_for_status()
    add_line_item(api, before["id"], type="flat_fee", amount="1.00")
    counted = assert_exact(backend, api, other_api)
    assert counted["line_items"] == 2_002
    assert total(api, "invoice_line_items") == 2_002
    assert total(api, "invoices") == counted["invoices"]


# (filters as the API takes them, a test of a joined row) for the line items report. Bounds
# are given as UTC instants, so the expected rows need no time zone arithmetic.
def _between(value: Any, low: Any, high: Any) -> bool:
    return value is not None and low <= value <= high


LOW, HIGH = dt.datetime(2025, 9, 1, tzinfo=dt.UTC), dt.datetime(2025, 9, 30, 23, 59, tzinfo=dt.UTC)
DAY_LOW, DAY_HIGH = dt.date(2025, 9, 1), dt.date(2025, 9, 30)


def _aware(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    moment: dt.datetime = value
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def test_filtered_totals_equal_an_independent_count(backend: Backend, api: Api) -> None:
    seed(backend, api, 2_500)
    with engine_for(backend.database_url).connect() as conn:
        rows = conn.execute(
            select(
                LineItem.public_id,
                Invoice.public_id,
                Invoice.status,
                Invoice.due_date,
                Invoice.paid_at,
                Invoice.updated_at,
                Invoice.confirmed_at,
            )
            .join(Invoice, Invoice.id == LineItem.invoice_id)
            .where(LineItem.account_id == api.account_id)
        ).all()
    joined: list[dict[str, Any]] = [
        {
            "id": row[0],
            "invoice": row[1],
            "status": row[2],
            "due_date": row[3],
            **{
                name: _aware(row[i])
                for i, name in ((4, "paid_at"), (5, "updated_at"), (6, "confirmed_at"))
            },
        }
        for row in rows
    ]
    middle = sorted(line["id"] for line in joined)[len(joined) // 2]
    cases: list[tuple[dict[str, str], Any]] = [
        ({}, lambda line: True),
        ({"invoice_status": "voided"}, lambda line: line["status"] == "voided"),
        ({"invoice_status": "paid,open"}, lambda line: line["status"] in ("paid", "open")),
        (
            {"invoice_due_date_gte": "2025-09-01", "invoice_due_date_lte": "2025-09-30"},
            lambda line: _between(line["due_date"], DAY_LOW, DAY_HIGH),
        ),
        ({"id_gt": str(middle)}, lambda line: line["id"] > middle),
        (
            {"id_gt": str(middle), "invoice_status": "paid"},
            lambda line: line["id"] > middle and line["status"] == "paid",
        ),
        (
            {"invoice_status": "paid", "invoice_paid_at_gte": "2025-09-01T00:00:00Z"},
            lambda line: (
                line["status"] == "paid" and line["paid_at"] is not None and line["paid_at"] >= LOW
            ),
        ),
    ]
    for prefix in ("paid_at", "updated_at", "confirmed_at"):
        cases.append(
            (
                {
                    f"invoice_{prefix}_gte": "2025-09-01T00:00:00Z",
                    f"invoice_{prefix}_lte": "2025-09-30T23:59:00Z",
                },
                lambda line, prefix=prefix: _between(line[prefix], LOW, HIGH),
            )
        )
    for filters, matches in cases:
        expected = sum(1 for line in joined if matches(line))
        assert total(api, "invoice_line_items", **filters) == expected, filters
        # The invoices report under its own names: invoices, not lines.
        invoice_filters = {key.removeprefix("invoice_"): value for key, value in filters.items()}
        if "id_gt" in invoice_filters:
            continue
        invoices = {line["invoice"] for line in joined if matches(line)}
        if not filters:
            with engine_for(backend.database_url).connect() as conn:
                invoices = set(
                    conn.execute(
                        select(Invoice.public_id).where(Invoice.account_id == api.account_id)
                    ).scalars()
                )
        assert total(api, "invoices", **invoice_filters) == len(invoices), invoice_filters
    assert total(api, "invoice_line_items", invoice_status="skipped,voided") == sum(
        1 for line in joined if line["status"] in ("skipped", "voided")
    )


def test_a_count_in_an_export_snapshot_equals_its_rows(backend: Backend, api: Api) -> None:
    """A count read inside an export's snapshot (`open_snapshot`, then `count_rows`) is the
    snapshot's own, while another transaction adds and commits lines."""
    invoice = create_invoice(api, status="voided")
    post_line_items(api, invoice["id"], lines(4))
    engine = engine_for(backend.database_url)
    principal = Principal(api.account_id, "test", frozenset({"write"}), api.timezone, "GBP")
    for raw in ({}, {"invoice_status": "voided"}):
        params = parse_report_params("invoice_line_items", raw, timezone="UTC", for_export=True)
        with open_snapshot(engine) as conn:
            counted = count_rows(conn, api.account_id, params)

            def write() -> None:
                with transaction(backend.database_url, writes=True) as session:
                    add_line_items(session, principal, invoice["id"], {"items": lines(3)})

            writer = threading.Thread(target=write)
            writer.start()
            writer.join()
            assert count_rows(conn, api.account_id, params) == counted
            assert len(conn.execute(rows_statement(api.account_id, params)).all()) == counted
        assert total(api, "invoice_line_items", **raw) == counted + 3
