"""Report test data: invoices and line items written straight into the migrated database.

Rows are inserted with SQLAlchemy Core so the report tests do not depend on the invoice
endpoints; every expected number in a test is computed from the `Line` values kept here,
never by calling report code. Each row takes its public id (the id the API shows) from the
account's counter as the API does (`public_ids.allocate`); the records keep it as `id` and
the internal key, which only children's foreign keys use, as `key`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import insert

from ledgerline.db import engine_for
from ledgerline.models import Customer, Invoice, LineItem, Venue
from ledgerline.public_ids import allocate
from ledgerline.row_counts import lines_added, rows_added
from tests.conftest import Api, Backend

UTC = dt.UTC
_numbers = itertools.count(1)


@dataclass
class Line:
    """One line item as a test created it, with its invoice's and customer's values; `id`
    and `invoice_id` are public ids (what the API shows)."""

    id: int
    invoice_id: int
    type: str
    description: str
    currency: str
    amount: int
    tax_amount: int
    discount_amount: int
    credit_amount: int
    refund_amount: int
    billed_item_object: str | None
    billed_item_id: int | None
    invoice: dict[str, Any]
    customer: dict[str, Any] | None
    venue: dict[str, Any] | None


@dataclass
class Data:
    """What a test created for one account."""

    backend: Backend
    api: Api
    lines: list[Line] = field(default_factory=list)
    # Every invoice created, lines or none: its values with `id` (public) and `key`, and its
    # customer record.
    invoices: list[dict[str, Any]] = field(default_factory=list)

    def venue(self, name: str) -> dict[str, Any]:
        account_id = self.api.account_id
        with engine_for(self.backend.database_url).begin() as conn:
            public_id = allocate(conn, account_id, Venue)
            venue_id = conn.execute(
                insert(Venue)
                .values(
                    account_id=account_id,
                    public_id=public_id,
                    name=name,
                    created_at=dt.datetime.now(UTC),
                )
                .returning(Venue.id)
            ).scalar_one()
        return {"id": public_id, "key": venue_id, "name": name}

    def customer(
        self, name: str, email: str | None = None, venue: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        with engine_for(self.backend.database_url).begin() as conn:
            public_id = allocate(conn, self.api.account_id, Customer)
            customer_id = conn.execute(
                insert(Customer)
                .values(
                    account_id=self.api.account_id,
                    public_id=public_id,
                    name=name,
                    email=email,
                    venue_id=venue["key"] if venue else None,
                    created_at=dt.datetime.now(UTC),
                )
                .returning(Customer.id)
            ).scalar_one()
        return {"id": public_id, "key": customer_id, "name": name, "email": email, "venue": venue}

    def invoice(
        self,
        items: list[dict[str, Any]],
        *,
        currency: str = "GBP",
        status: str = "open",
        customer: dict[str, Any] | None = None,
        due_date: dt.date | None = None,
        paid_at: dt.datetime | None = None,
        confirmed_at: dt.datetime | None = None,
        updated_at: dt.datetime | None = None,
        is_credit_note: bool = False,
        discount_code: tuple[str, str] | None = None,
        number: str | None = None,
    ) -> list[Line]:
        """One invoice and its line items; `items` give type, amount and optional extras."""
        now = dt.datetime.now(UTC)
        invoice_values = {
            "account_id": self.api.account_id,
            "customer_id": customer["key"] if customer else None,
            "number": number or f"INV-{next(_numbers):05d}",
            "status": status,
            "currency": currency,
            "due_date": due_date,
            "is_credit_note": is_credit_note,
            "discount_code_name": discount_code[0] if discount_code else None,
            "discount_code_code": discount_code[1] if discount_code else None,
            "created_at": now,
            "updated_at": updated_at or now,
            "confirmed_at": confirmed_at,
            "paid_at": paid_at,
        }
        created: list[Line] = []
        with engine_for(self.backend.database_url).begin() as conn:
            invoice_public_id = allocate(conn, self.api.account_id, Invoice)
            invoice_id = conn.execute(
                insert(Invoice)
                .values(public_id=invoice_public_id, **invoice_values)
                .returning(Invoice.id)
            ).scalar_one()
            rows_added(conn, self.api.account_id, Invoice, 1)
            for item in items:
                values = {
                    "account_id": self.api.account_id,
                    "public_id": allocate(conn, self.api.account_id, LineItem),
                    "invoice_id": invoice_id,
                    "type": item.get("type", "flat_fee"),
                    "description": item.get("description", ""),
                    "currency": currency,
                    "amount": item["amount"],
                    "tax_amount": item.get("tax_amount", 0),
                    "discount_amount": item.get("discount_amount", 0),
                    "credit_amount": item.get("credit_amount", 0),
                    "refund_amount": item.get("refund_amount", 0),
                    "tax_rate_micros": 0,
                    "billed_item_object": item.get("billed_item_object"),
                    "billed_item_id": item.get("billed_item_id"),
                    "created_at": now,
                }
                conn.execute(insert(LineItem).values(**values))
                created.append(
                    Line(
                        id=values["public_id"],
                        invoice_id=invoice_public_id,
                        type=values["type"],
                        description=values["description"],
                        currency=currency,
                        amount=values["amount"],
                        tax_amount=values["tax_amount"],
                        discount_amount=values["discount_amount"],
                        credit_amount=values["credit_amount"],
                        refund_amount=values["refund_amount"],
                        billed_item_object=values["billed_item_object"],
                        billed_item_id=values["billed_item_id"],
                        invoice={"id": invoice_public_id, "key": invoice_id, **invoice_values},
                        customer=customer,
                        venue=customer["venue"] if customer else None,
                    )
                )
            lines_added(conn, self.api.account_id, invoice_id, len(created))
        self.lines.extend(created)
        self.invoices.append(
            {"id": invoice_public_id, "key": invoice_id, **invoice_values, "customer": customer}
        )
        return created


@pytest.fixture
def data(backend: Backend, api: Api) -> Data:
    return Data(backend, api)


def at(text: str) -> dt.datetime:
    """An aware UTC datetime from "2024-07-29T15:51:28" (read as UTC)."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def sample(data: Data) -> Data:
    """A small varied data set: three currencies, customers with and without a venue,
    every status group, nulls in the nullable columns, text that looks like a formula."""
    north = data.venue("North hall")
    ada = data.customer("Ada", "ada@example.com", north)
    bob = data.customer("Bob", None, None)
    cat = data.customer("=Cat", "cat@example.com", data.venue("@South"))
    data.invoice(
        [
            {"type": "flat_fee", "amount": 4550, "tax_amount": 910, "description": "Entry"},
            {"type": "store_order", "amount": -350, "description": "-refund line"},
            {
                "type": "course",
                "amount": 12000,
                "discount_amount": 500,
                "billed_item_object": "course",
                "billed_item_id": 77,
                "description": 'Course, "spring"\nterm',
            },
        ],
        status="paid",
        customer=ada,
        due_date=dt.date(2024, 7, 1),
        confirmed_at=at("2024-06-20T09:00:00"),
        paid_at=at("2024-07-02T12:00:00"),
        updated_at=at("2024-07-02T12:00:00"),
        discount_code=("Summer", "SUMMER10"),
    )
    data.invoice(
        [
            {"type": "flat_fee", "amount": 1000, "description": "=SUM(A1:A2)"},
            {"type": "gift_card", "amount": 2500, "refund_amount": 2500, "description": "+gift"},
        ],
        status="open",
        customer=bob,
        due_date=dt.date(2024, 7, 15),
        confirmed_at=at("2024-07-01T00:00:00"),
        paid_at=at("2024-07-09T18:15:00"),
        updated_at=at("2024-07-10T08:30:00"),
    )
    data.invoice(
        [
            {"type": "flat_fee", "amount": 700, "description": "@note"},
            {"type": "course", "amount": 300, "credit_amount": 100, "description": "\tTabbed"},
        ],
        currency="EUR",
        status="draft",
        customer=cat,
        due_date=None,
        updated_at=at("2024-07-31T23:00:00"),
        is_credit_note=True,
    )
    data.invoice(
        [
            {"type": "flat_fee", "amount": 1200, "description": "Yen fee"},
            {
                "type": "store_order",
                "amount": 5,
                "description": 'Yen "store" \\ Zoë ☃ \x01 \u2028 end',
            },
        ],
        currency="JPY",
        status="voided",
        customer=None,
        due_date=dt.date(2024, 8, 1),
        confirmed_at=at("2024-07-31T23:30:00"),
        paid_at=None,
        updated_at=at("2024-08-01T00:00:00"),
    )
    return data
