"""Use cases for venues, customers, invoices and line items; one function each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from ledgerline.auth import Principal, get_owned, scoped
from ledgerline.db import utcnow
from ledgerline.errors import ValidationFailed
from ledgerline.invoices.schemas import CustomerCreate, VenueCreate
from ledgerline.models import Customer, Invoice, LineItem, Venue
from ledgerline.pagination import OffsetPage


def create_venue(session: Session, principal: Principal, body: VenueCreate) -> Venue:
    venue = Venue(account_id=principal.account_id, name=body.name, created_at=utcnow())
    session.add(venue)
    session.flush()
    return venue


def owned_venue_for_field(
    session: Session, principal: Principal, venue_id: int | None, field: str
) -> Venue | None:
    """A venue referenced in a body: another account's id is a 422 naming the field."""
    if venue_id is None:
        return None
    venue = session.execute(
        scoped(Venue, principal).where(Venue.id == venue_id)
    ).scalar_one_or_none()
    if venue is None:
        raise ValidationFailed.field(["body", field], f"no venue with id {venue_id}")
    return venue


def create_customer(
    session: Session, principal: Principal, body: CustomerCreate
) -> tuple[Customer, Venue | None]:
    venue = owned_venue_for_field(session, principal, body.venue, "venue")
    customer = Customer(
        account_id=principal.account_id,
        name=body.name,
        email=body.email,
        venue_id=venue.id if venue else None,
        created_at=utcnow(),
    )
    session.add(customer)
    session.flush()
    return customer, venue


def get_customer(
    session: Session, principal: Principal, customer_id: int
) -> tuple[Customer, Venue | None]:
    customer = get_owned(session, Customer, customer_id, principal)
    venue = session.get(Venue, customer.venue_id) if customer.venue_id else None
    return customer, venue


def list_customers(
    session: Session, principal: Principal, page: OffsetPage
) -> tuple[int, list[tuple[Customer, Venue | None]]]:
    base = scoped(Customer, principal)
    count = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = session.execute(
        base.add_columns(Venue)
        .outerjoin(Venue, Venue.id == Customer.venue_id)
        .order_by(Customer.id)
        .limit(page.limit)
        .offset(page.offset)
    ).all()
    return count, [(row[0], row[1]) for row in rows]


@dataclass(frozen=True)
class Totals:
    """Exact sums of rounded line values, in minor units (SPEC §4)."""

    net: int = 0
    tax: int = 0

    @property
    def gross(self) -> int:
        return self.net + self.tax


def line_totals(
    session: Session, key: ColumnElement[Any], *conditions: ColumnElement[bool]
) -> dict[Any, Totals]:
    """SUM(amount), SUM(tax_amount) of the line items matching `conditions`, per `key`.

    Callers pass an account-scoped condition (an invoice or group they already own).
    """
    rows = session.execute(
        select(key, func.sum(LineItem.amount), func.sum(LineItem.tax_amount))
        .where(*conditions)
        .group_by(key)
    ).all()
    return {row[0]: Totals(net=int(row[1] or 0), tax=int(row[2] or 0)) for row in rows}


def touch_invoice(invoice: Invoice) -> None:
    """`updated_at` moves on every change to an invoice, its line items or its groups."""
    invoice.updated_at = utcnow()
