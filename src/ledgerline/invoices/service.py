"""Use cases for venues, customers, invoices and line items; one function each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledgerline.auth import Principal, get_owned_by_public_id, owned, scoped
from ledgerline.db import utcnow
from ledgerline.errors import (
    Conflict,
    ConflictingParameters,
    NotFound,
    UnknownReference,
    ValidationFailed,
)
from ledgerline.groups.lookup import find_group
from ledgerline.invoices.lines import MONEY_FIELDS, LineItemProblems, compute_line
from ledgerline.invoices.listing import CustomerFilter, InvoiceListQuery
from ledgerline.invoices.numbering import insert_invoice, number_taken, number_taken_error
from ledgerline.invoices.schemas import (
    CustomerCreate,
    InvoiceCreate,
    InvoiceUpdate,
    LineItemBatch,
    LineItemCreate,
    LineItemUpdate,
    VenueCreate,
)
from ledgerline.invoices.totals import Totals, line_totals
from ledgerline.models import Customer, Invoice, LineItem, LineItemGroup, Venue
from ledgerline.money import MoneyError, micros_string, normalise_currency, plain_decimal
from ledgerline.pagination import OffsetPage
from ledgerline.public_ids import allocate, public_ids_of
from ledgerline.row_counts import lines_added, rows_added


def create_venue(session: Session, principal: Principal, body: VenueCreate) -> Venue:
    venue = Venue(
        account_id=principal.account_id,
        public_id=allocate(session, principal.account_id, Venue),
        name=body.name,
        created_at=utcnow(),
    )
    session.add(venue)
    session.flush()
    return venue


def owned_venue_for_field(
    session: Session, principal: Principal, venue_id: int | None, field: str
) -> Venue | None:
    """A venue referenced in a body by its public id: another account's is a 422 naming the
    field, as a missing one is."""
    if venue_id is None:
        return None
    venue = session.execute(
        scoped(Venue, principal).where(Venue.public_id == venue_id)
    ).scalar_one_or_none()
    if venue is None:
        raise UnknownReference.field(["body", field], f"no venue with id {venue_id}")
    return venue


def create_customer(
    session: Session, principal: Principal, body: CustomerCreate
) -> tuple[Customer, Venue | None]:
    venue = owned_venue_for_field(session, principal, body.venue, "venue")
    customer = Customer(
        account_id=principal.account_id,
        public_id=allocate(session, principal.account_id, Customer),
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
    customer = get_owned_by_public_id(session, Customer, customer_id, principal)
    venue = (
        session.execute(
            scoped(Venue, principal).where(Venue.id == customer.venue_id)
        ).scalar_one_or_none()
        if customer.venue_id
        else None
    )
    return customer, venue


def list_customers(
    session: Session, principal: Principal, page: OffsetPage, where: CustomerFilter
) -> tuple[int, list[tuple[Customer, Venue | None]]]:
    base = scoped(Customer, principal).where(*where.clauses())
    count = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = session.execute(
        base.add_columns(Venue)
        .outerjoin(Venue, and_(owned(Venue, principal.account_id), Venue.id == Customer.venue_id))
        .order_by(Customer.public_id)
        .limit(page.limit)
        .offset(page.offset)
    ).all()
    return count, [(row[0], row[1]) for row in rows]


def touch_invoice(invoice: Invoice) -> None:
    """`updated_at` moves on every change to an invoice, its line items or its groups."""
    invoice.updated_at = utcnow()


# ---------------------------------------------------------------------------------------------
# Invoices


class InvoiceCurrencyLocked(Conflict):
    code = "invoice-currency-locked"


def invoice_totals(
    session: Session, principal: Principal, invoice_ids: Sequence[int]
) -> dict[int, Totals]:
    """Net and tax per invoice, exact sums of the rounded lines."""
    if not invoice_ids:
        return {}
    return line_totals(
        session, principal, LineItem.invoice_id, LineItem.invoice_id.in_(list(invoice_ids))
    )


def _owned_customer(session: Session, principal: Principal, customer_id: int) -> Customer:
    """The customer a body names by its public id; unknown in this account is a 422."""
    customer = session.execute(
        scoped(Customer, principal).where(Customer.public_id == customer_id)
    ).scalar_one_or_none()
    if customer is None:
        raise UnknownReference.field(["body", "customer"], f"no customer with id {customer_id}")
    return customer


def _currency(code: str) -> str:
    try:
        return normalise_currency(code)
    except MoneyError as exc:
        raise ValidationFailed.field(["body", "currency"], str(exc)) from exc


def _check_status_timestamps(invoice: Invoice, explicit: set[str]) -> None:
    """Out of draft means confirmed; paid means paid: fill in now when unset.

    An explicit null that would break that is refused rather than silently replaced.
    """
    now = utcnow()
    if invoice.status != "draft" and invoice.confirmed_at is None:
        if "confirmed_at" in explicit:
            raise ConflictingParameters.field(
                ["body", "confirmed_at"], f"may not be null on a {invoice.status} invoice"
            )
        invoice.confirmed_at = now
    if invoice.status == "paid" and invoice.paid_at is None:
        if "paid_at" in explicit:
            raise ConflictingParameters.field(
                ["body", "paid_at"], "may not be null on a paid invoice"
            )
        invoice.paid_at = now


def create_invoice(session: Session, principal: Principal, body: InvoiceCreate) -> InvoiceView:
    currency = _currency(body.currency) if body.currency is not None else principal.currency
    customer = (
        _owned_customer(session, principal, body.customer) if body.customer is not None else None
    )
    auto = body.number is None
    if body.number is not None and number_taken(session, principal, body.number):
        raise number_taken_error(body.number)
    now = utcnow()
    invoice = Invoice(
        account_id=principal.account_id,
        public_id=allocate(session, principal.account_id, Invoice),
        customer_id=customer.id if customer else None,
        number=body.number if body.number is not None else "",  # auto: set under lock
        status=body.status,
        currency=currency,
        due_date=body.due_date,
        is_credit_note=body.is_credit_note,
        discount_code_name=body.discount_code.name if body.discount_code else None,
        discount_code_code=body.discount_code.code if body.discount_code else None,
        created_at=now,
        updated_at=now,
        confirmed_at=body.confirmed_at,
        paid_at=body.paid_at,
    )
    _check_status_timestamps(invoice, set())
    insert_invoice(session, principal, invoice, auto)
    rows_added(session, principal.account_id, Invoice, 1)
    return InvoiceView(invoice, Totals(), customer.public_id if customer else None)


@dataclass(frozen=True)
class InvoiceView:
    """An invoice as shown: its totals, its customer's public id and, when expanded, its
    line items in id order."""

    invoice: Invoice
    totals: Totals
    customer_public_id: int | None
    line_items: list[tuple[LineItem, str | None]] | None = None


def _invoice_lines(
    session: Session, principal: Principal, invoice_ids: Sequence[int]
) -> dict[int, list[tuple[LineItem, str | None]]]:
    """The line items of several invoices, in two queries however many invoices there are."""
    by_invoice: dict[int, list[tuple[LineItem, str | None]]] = {i: [] for i in invoice_ids}
    if not invoice_ids:
        return by_invoice
    lines = session.execute(
        scoped(LineItem, principal)
        .where(LineItem.invoice_id.in_(list(invoice_ids)))
        .order_by(LineItem.invoice_id, LineItem.public_id)
    ).scalars()
    for line, group in with_group_ids(session, principal, list(lines)):
        by_invoice[line.invoice_id].append((line, group))
    return by_invoice


def invoice_views(
    session: Session, principal: Principal, invoices: Sequence[Invoice], line_items: bool
) -> list[InvoiceView]:
    ids = [invoice.id for invoice in invoices]
    totals = invoice_totals(session, principal, ids)
    lines = _invoice_lines(session, principal, ids) if line_items else {}
    customers = public_ids_of(
        session,
        Customer,
        principal.account_id,
        {i.customer_id for i in invoices if i.customer_id is not None},
    )
    return [
        InvoiceView(
            i,
            totals.get(i.id, Totals()),
            customers.get(i.customer_id) if i.customer_id is not None else None,
            lines.get(i.id) if line_items else None,
        )
        for i in invoices
    ]


def list_invoices(
    session: Session,
    principal: Principal,
    page: OffsetPage,
    query: InvoiceListQuery,
    *,
    line_items: bool = False,
) -> tuple[int, list[InvoiceView]]:
    """One page of the account's invoices, filtered and sorted as asked; a constant number
    of queries (count, page, totals, and line items with their groups when asked for)."""
    base = scoped(Invoice, principal)
    if query.statuses:
        base = base.where(Invoice.status.in_(query.statuses))
    count = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    invoices = list(
        session.execute(
            base.order_by(*query.order_by()).limit(page.limit).offset(page.offset)
        ).scalars()
    )
    return count, invoice_views(session, principal, invoices, line_items)


def get_invoice_view(
    session: Session, principal: Principal, invoice_id: int, *, line_items: bool
) -> InvoiceView:
    invoice = get_owned_by_public_id(session, Invoice, invoice_id, principal)
    return invoice_views(session, principal, [invoice], line_items)[0]


_NOT_NULL_ON_PATCH = ("number", "status", "currency", "is_credit_note")


def update_invoice(
    session: Session, principal: Principal, invoice_id: int, body: InvoiceUpdate
) -> InvoiceView:
    """Apply only the keys sent; `updated_at` moves when anything actually changed."""
    invoice = get_owned_by_public_id(session, Invoice, invoice_id, principal)
    sent = set(body.model_fields_set)
    for name in _NOT_NULL_ON_PATCH:
        if name in sent and getattr(body, name) is None:
            raise ValidationFailed.field(["body", name], "may not be null")
    before = _invoice_state(invoice)
    if "currency" in sent and body.currency is not None:
        # Resending the invoice's own code is no change, even if it has since been withdrawn.
        unchanged = body.currency.isascii() and body.currency.strip().upper() == invoice.currency
        currency = invoice.currency if unchanged else _currency(body.currency)
        if currency != invoice.currency and _has_line_items(session, principal, invoice):
            raise InvoiceCurrencyLocked(
                "The currency of an invoice with line items cannot change.",
                errors=[{"loc": ["body", "currency"], "msg": "invoice has line items"}],
            )
        invoice.currency = currency
    if "customer" in sent:
        customer = (
            _owned_customer(session, principal, body.customer)
            if body.customer is not None
            else None
        )
        invoice.customer_id = customer.id if customer else None
    if "number" in sent and body.number is not None and body.number != invoice.number:
        if number_taken(session, principal, body.number):
            raise number_taken_error(body.number)
        invoice.number = body.number
    if "status" in sent:
        invoice.status = body.status
    if "due_date" in sent:
        invoice.due_date = body.due_date
    if "is_credit_note" in sent:
        invoice.is_credit_note = body.is_credit_note
    if "discount_code" in sent:
        invoice.discount_code_name = body.discount_code.name if body.discount_code else None
        invoice.discount_code_code = body.discount_code.code if body.discount_code else None
    if "confirmed_at" in sent:
        invoice.confirmed_at = body.confirmed_at
    if "paid_at" in sent:
        invoice.paid_at = body.paid_at
    _check_status_timestamps(invoice, {n for n in ("confirmed_at", "paid_at") if n in sent})
    if _invoice_state(invoice) != before:
        touch_invoice(invoice)
        try:
            session.flush()
        except IntegrityError as exc:  # a concurrent writer took the number
            raise number_taken_error(invoice.number) from exc
    return invoice_views(session, principal, [invoice], line_items=False)[0]


def _invoice_state(invoice: Invoice) -> tuple[Any, ...]:
    return (
        invoice.number,
        invoice.status,
        invoice.currency,
        invoice.customer_id,
        invoice.due_date,
        invoice.is_credit_note,
        invoice.discount_code_name,
        invoice.discount_code_code,
        invoice.confirmed_at,
        invoice.paid_at,
    )


def _has_line_items(session: Session, principal: Principal, invoice: Invoice) -> bool:
    return (
        session.execute(
            select(LineItem.id)
            .where(owned(LineItem, principal.account_id), LineItem.invoice_id == invoice.id)
            .limit(1)
        ).first()
        is not None
    )


# ---------------------------------------------------------------------------------------------
# Line items


def _pydantic_problems(exc: ValidationError, prefix: list[str | int]) -> list[dict[str, Any]]:
    return [
        {"loc": [*prefix, *error["loc"]], "msg": str(error["msg"])}
        for error in exc.errors(include_url=False)
    ]


def _validate_payload(payload: Any) -> tuple[list[LineItemCreate], bool]:
    """One line item, or `{"items": [...]}`; pydantic's errors keep their body location."""
    batch = isinstance(payload, dict) and "items" in payload
    try:
        if batch:
            return LineItemBatch.model_validate(payload).items, True
        return [LineItemCreate.model_validate(payload)], False
    except ValidationError as exc:
        errors = _pydantic_problems(exc, ["body"])
        summary = "; ".join(
            ".".join(str(p) for p in (e["loc"][1:] or e["loc"])) + ": " + e["msg"]
            for e in errors[:5]
        )
        raise ValidationFailed(summary or "The request is not valid.", errors=errors) from exc


def _groups_named(
    session: Session, principal: Principal, invoice: Invoice, public_ids: Sequence[str | None]
) -> dict[str, LineItemGroup | None]:
    """The groups a body names by `group_id`, each looked up once however many lines name it."""
    named = dict.fromkeys(public_id for public_id in public_ids if public_id is not None)
    return {public_id: find_group(session, principal, invoice.id, public_id) for public_id in named}


def _group_of(
    groups: dict[str, LineItemGroup | None],
    public_id: str | None,
    loc: list[str | int],
    problems: LineItemProblems,
) -> LineItemGroup | None:
    """The group a line names (None when it names none); one not on the invoice is a problem."""
    if public_id is None:
        return None
    group = groups[public_id]
    if group is None:
        problems.add(loc, f"no line-item group {public_id!r} on this invoice", "reference")
    return group


def add_line_items(
    session: Session, principal: Principal, invoice_id: int, payload: Any
) -> tuple[list[tuple[LineItem, str | None]], bool]:
    """Create one line item or a batch of up to 1,000, all or none; (lines, was_batch)."""
    invoice = get_owned_by_public_id(session, Invoice, invoice_id, principal)
    items, batch = _validate_payload(payload)
    problems = LineItemProblems()
    groups = _groups_named(session, principal, invoice, [item.group_id for item in items])
    now = utcnow()
    created: list[tuple[LineItem, str | None]] = []
    for index, item in enumerate(items):
        loc: list[str | int] = ["body", "items", index] if batch else ["body"]
        group = _group_of(groups, item.group_id, [*loc, "group_id"], problems)
        values = compute_line(
            invoice.currency,
            quantity=item.quantity,
            unit_price=item.unit_price,
            amount=item.amount,
            tax_rate=item.tax_rate,
            discount_amount=item.discount_amount,
            credit_amount=item.credit_amount,
            refund_amount=item.refund_amount,
            loc=loc,
            problems=problems,
        )
        if values is None or problems.errors:
            continue
        line = LineItem(
            account_id=principal.account_id,
            invoice_id=invoice.id,
            group_id=group.id if group else None,
            type=item.type,
            billed_item_object=item.billed_item.object if item.billed_item else None,
            billed_item_id=item.billed_item.id if item.billed_item else None,
            description=item.description,
            currency=invoice.currency,
            created_at=now,
        )
        values.apply_to(line)
        created.append((line, str(group.public_id) if group else None))
    problems.raise_if_any()
    # One block of public ids for the whole batch, numbered in the body's order.
    first = allocate(session, principal.account_id, LineItem, len(created))
    for offset, (line, _group) in enumerate(created):
        line.public_id = first + offset
    session.add_all([line for line, _ in created])
    touch_invoice(invoice)
    session.flush()
    lines_added(session, principal.account_id, invoice.id, len(created))
    return created, batch


def _group_ids(session: Session, principal: Principal, lines: Sequence[LineItem]) -> dict[int, str]:
    ids = {line.group_id for line in lines if line.group_id is not None}
    if not ids:
        return {}
    rows = session.execute(
        select(LineItemGroup.id, LineItemGroup.public_id).where(
            owned(LineItemGroup, principal.account_id), LineItemGroup.id.in_(ids)
        )
    ).all()
    return {row[0]: str(row[1]) for row in rows}


def with_group_ids(
    session: Session, principal: Principal, lines: Sequence[LineItem]
) -> list[tuple[LineItem, str | None]]:
    """Each line with its group's public UUID (or None), in one query."""
    public = _group_ids(session, principal, lines)
    return [
        (line, public.get(line.group_id) if line.group_id is not None else None) for line in lines
    ]


def list_line_items(
    session: Session, principal: Principal, invoice_id: int, page: OffsetPage
) -> tuple[int, list[tuple[LineItem, str | None]]]:
    invoice = get_owned_by_public_id(session, Invoice, invoice_id, principal)
    base = scoped(LineItem, principal).where(LineItem.invoice_id == invoice.id)
    count = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    lines = list(
        session.execute(
            base.order_by(LineItem.public_id).limit(page.limit).offset(page.offset)
        ).scalars()
    )
    return count, with_group_ids(session, principal, lines)


def _owned_line(
    session: Session, principal: Principal, invoice_id: int, line_id: int
) -> tuple[Invoice, LineItem]:
    invoice = get_owned_by_public_id(session, Invoice, invoice_id, principal)
    line = session.execute(
        scoped(LineItem, principal).where(
            LineItem.public_id == line_id, LineItem.invoice_id == invoice.id
        )
    ).scalar_one_or_none()
    if line is None:
        raise NotFound(f"No line item with id {line_id} on invoice {invoice_id}.")
    return invoice, line


def get_line_item(
    session: Session, principal: Principal, invoice_id: int, line_id: int
) -> tuple[LineItem, str | None]:
    _invoice, line = _owned_line(session, principal, invoice_id, line_id)
    return with_group_ids(session, principal, [line])[0]


_LINE_NOT_NULL = (
    "type",
    "description",
    "quantity",
    "unit_price",
    "amount",
    "tax_rate",
    *MONEY_FIELDS,
)


def _stored_micros(value: int | None) -> str | None:
    """A stored quantity or unit price as the decimal text `compute_line` reads back."""
    return micros_string(value) if value is not None else None


def update_line_item(
    session: Session, principal: Principal, invoice_id: int, line_id: int, body: LineItemUpdate
) -> tuple[LineItem, str | None]:
    """Apply the keys sent. Sending `amount` switches the line to the amount-given form;
    sending `quantity` and/or `unit_price` switches it (or keeps it) in the priced form.
    Amount and tax are recomputed from the merged inputs."""
    invoice, line = _owned_line(session, principal, invoice_id, line_id)
    sent = set(body.model_fields_set)
    problems = LineItemProblems()
    for name in _LINE_NOT_NULL:
        if name in sent and getattr(body, name) is None:
            problems.add(["body", name], "may not be null")
    problems.raise_if_any()
    currency = line.currency

    def current(name: str, stored: int) -> str:
        value = getattr(body, name)
        return str(value) if name in sent and value is not None else plain_decimal(stored, currency)

    quantity: str | None
    unit_price: str | None
    amount: str | None
    if "amount" in sent:
        amount = body.amount
        quantity = body.quantity if "quantity" in sent else None
        unit_price = body.unit_price if "unit_price" in sent else None
    elif "quantity" in sent or "unit_price" in sent:
        amount = None
        quantity = body.quantity if "quantity" in sent else _stored_micros(line.quantity_micros)
        unit_price = (
            body.unit_price if "unit_price" in sent else _stored_micros(line.unit_price_micros)
        )
    elif line.quantity_micros is not None:
        amount = None
        quantity = _stored_micros(line.quantity_micros)
        unit_price = _stored_micros(line.unit_price_micros)
    else:
        amount = plain_decimal(line.amount, currency)
        quantity = unit_price = None
    values = compute_line(
        currency,
        quantity=quantity,
        unit_price=unit_price,
        amount=amount,
        tax_rate=(
            body.tax_rate
            if "tax_rate" in sent and body.tax_rate is not None
            else micros_string(line.tax_rate_micros)
        ),
        discount_amount=current("discount_amount", line.discount_amount),
        credit_amount=current("credit_amount", line.credit_amount),
        refund_amount=current("refund_amount", line.refund_amount),
        loc=["body"],
        problems=problems,
    )
    group: LineItemGroup | None = None
    if "group_id" in sent and body.group_id is not None:
        named = _groups_named(session, principal, invoice, [body.group_id])
        group = _group_of(named, body.group_id, ["body", "group_id"], problems)
    problems.raise_if_any()
    assert values is not None
    values.apply_to(line)
    if "group_id" in sent:
        line.group_id = group.id if group else None
    if "type" in sent and body.type is not None:
        line.type = body.type
    if "description" in sent and body.description is not None:
        line.description = body.description
    if "billed_item" in sent:
        line.billed_item_object = body.billed_item.object if body.billed_item else None
        line.billed_item_id = body.billed_item.id if body.billed_item else None
    if session.is_modified(line):
        touch_invoice(invoice)
    session.flush()
    return with_group_ids(session, principal, [line])[0]


def delete_line_item(session: Session, principal: Principal, invoice_id: int, line_id: int) -> None:
    invoice, line = _owned_line(session, principal, invoice_id, line_id)
    session.delete(line)
    touch_invoice(invoice)
    session.flush()
    lines_added(session, principal.account_id, invoice.id, -1)
