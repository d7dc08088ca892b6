"""Totals stay exact under concurrent writes: writer threads create invoices, add and delete
line items and change statuses, each in its own real transaction through the services (as a
request does), while reader threads read the reports' totals; every total a reader reads equals
a COUNT(*) taken in the same snapshot, and afterwards the counters equal COUNT(*) per account,
per invoice and per status."""

from __future__ import annotations

import random
import threading
from typing import Any

from sqlalchemy import text

from ledgerline.auth import Principal
from ledgerline.db import engine_for, transaction
from ledgerline.exports.writers import open_snapshot
from ledgerline.invoices.schemas import InvoiceCreate, InvoiceUpdate
from ledgerline.invoices.service import (
    add_line_items,
    create_invoice,
    delete_line_item,
    update_invoice,
)
from ledgerline.models import InvoiceStatus
from ledgerline.reports.query import count_rows, parse_report_params
from tests.conftest import Api, Backend
from tests.reports.row_count_checks import kept_and_counted

WRITERS = 4
OPERATIONS = 12  # per writer
READERS = 2
STATUSES: tuple[InvoiceStatus, ...] = ("paid", "voided", "open")


def test_totals_stay_exact_under_concurrent_writes(
    backend: Backend, api: Api, other_api: Api
) -> None:
    url = backend.database_url
    engine = engine_for(url)

    def principal_of(tenant: Api) -> Principal:
        scopes = frozenset({"read", "write"})
        return Principal(tenant.account_id, "test", scopes, tenant.timezone, tenant.currency)

    principal = principal_of(api)
    # Invoices every writer adds to, so writers contend for the same rows.
    shared: list[int] = []
    for status in STATUSES:
        with transaction(url, writes=True) as session:
            shared.append(
                create_invoice(session, principal, InvoiceCreate(status=status)).invoice.public_id
            )
    errors: list[BaseException] = []
    done = threading.Event()

    def write(seed: int, tenant: Api) -> None:
        rng = random.Random(seed)
        me = principal_of(tenant)
        mine: list[int] = list(shared) if tenant is api else []
        lines: list[tuple[int, int]] = []  # (invoice, line) public ids this writer made
        try:
            for _ in range(OPERATIONS):
                action = rng.choice(("invoice", "lines", "lines", "delete", "status"))
                with transaction(url, writes=True) as session:
                    if action == "invoice" or not mine:
                        created_invoice = InvoiceCreate(status=rng.choice(STATUSES))
                        mine.append(create_invoice(session, me, created_invoice).invoice.public_id)
                    elif action == "lines" or (action == "delete" and not lines):
                        invoice = rng.choice(mine)
                        items = [
                            {"type": "flat_fee", "amount": "1.00"}
                            for _ in range(rng.randint(1, 30))
                        ]
                        created, _ = add_line_items(session, me, invoice, {"items": items})
                        lines += [(invoice, line.public_id) for line, _group in created]
                    elif action == "delete":
                        invoice, line = lines.pop(rng.randrange(len(lines)))
                        delete_line_item(session, me, invoice, line)
                    else:
                        change = InvoiceUpdate(status=rng.choice(STATUSES))
                        update_invoice(session, me, rng.choice(mine), change)
        except BaseException as exc:
            errors.append(exc)

    reads: list[int] = []
    mismatches: list[Any] = []
    flat = parse_report_params("invoice_line_items", {}, timezone="UTC", for_export=True)
    voided = parse_report_params(
        "invoice_line_items", {"invoice_status": "voided,open"}, timezone="UTC", for_export=True
    )
    invoices = parse_report_params("invoices", {}, timezone="UTC", for_export=True)
    a = {"a": api.account_id}

    def read() -> None:
        try:
            while not done.is_set():
                with open_snapshot(engine) as conn:
                    totals = (
                        count_rows(conn, api.account_id, flat),
                        count_rows(conn, api.account_id, voided),
                        count_rows(conn, api.account_id, invoices),
                    )
                    counted = (
                        conn.execute(
                            text("SELECT COUNT(*) FROM line_items WHERE account_id = :a"), a
                        ).scalar(),
                        conn.execute(
                            text(
                                "SELECT COUNT(*) FROM line_items l JOIN invoices i "
                                "ON i.id = l.invoice_id WHERE l.account_id = :a "
                                "AND i.status IN ('voided', 'open')"
                            ),
                            a,
                        ).scalar(),
                        conn.execute(
                            text("SELECT COUNT(*) FROM invoices WHERE account_id = :a"), a
                        ).scalar(),
                    )
                if totals != counted:
                    mismatches.append((totals, counted))
                reads.append(totals[0])
        except BaseException as exc:
            errors.append(exc)

    writers = [
        threading.Thread(target=write, args=(n, api if n else other_api)) for n in range(WRITERS)
    ]
    readers = [threading.Thread(target=read) for _ in range(READERS)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    for thread in readers:
        thread.join()

    assert errors == []
    assert mismatches == []
    # The readers ran while the writers wrote: they saw the total move.
    assert len(set(reads)) > 1
    with engine.connect() as conn:
        for tenant in (other_api, api):
            kept, counted = kept_and_counted(conn, tenant.account_id)
            assert kept == counted
    assert counted["line_items"] > 0
