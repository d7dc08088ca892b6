"""Use cases for venues, customers, invoices and line items; one function each."""

from __future__ import annotations

import re
import string
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import ColumnElement, String, func, nulls_first, nulls_last, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql.functions import FunctionElement

from ledgerline.auth import Principal, get_owned, owned, scoped
from ledgerline.db import utcnow
from ledgerline.errors import (
    Conflict,
    ConflictingParameters,
    NotFound,
    UnknownReference,
    ValidationFailed,
)
from ledgerline.invoices.schemas import (
    MAX_ID,
    CustomerCreate,
    InvoiceCreate,
    InvoiceUpdate,
    LineItemBatch,
    LineItemCreate,
    LineItemUpdate,
    VenueCreate,
    query_values,
)
from ledgerline.invoices.totals import Totals, line_totals
from ledgerline.models import (
    INVOICE_STATUSES,
    Account,
    Customer,
    Invoice,
    LineItem,
    LineItemGroup,
    Venue,
)
from ledgerline.money import (
    MICROS,
    MoneyError,
    TooManyPlaces,
    currency_digits,
    line_amount,
    line_tax,
    normalise_currency,
    parse_amount,
    parse_micros,
)
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
        raise UnknownReference.field(["body", field], f"no venue with id {venue_id}")
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


MAX_IDS = 1000
_ID_TEXT = re.compile(r"^[1-9][0-9]{0,18}$", re.ASCII)  # the document says the same


def parse_ids(values: Sequence[str] | None, *, param: str) -> tuple[int, ...] | None:
    """`ids=3,5,8`: positive integers in ASCII digits; None when not given."""
    texts = query_values(values)
    if not texts:
        return None
    if len(texts) > MAX_IDS:
        raise ValidationFailed.field(["query", param], f"at most {MAX_IDS} ids")
    ids: list[int] = []
    for text in texts:
        if not _ID_TEXT.match(text) or not 1 <= int(text) <= MAX_ID:
            raise ValidationFailed.field(
                ["query", param], f"'{text}' is not an id (a positive integer)"
            )
        ids.append(int(text))
    return tuple(dict.fromkeys(ids))


MAX_SEARCH_LENGTH = 200
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


class AsciiLower(FunctionElement[str]):
    """lower() of ASCII letters only, alike on both databases: SQLite's own lower() folds only
    ASCII, and PostgreSQL's follows the database's locale, so there it is a translate()."""

    type = String()
    inherit_cache = True
    name = "ascii_lower"


@compiles(AsciiLower)
def _ascii_lower_sqlite(element: AsciiLower, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(AsciiLower, "postgresql")
def _ascii_lower_postgresql(element: AsciiLower, compiler: Any, **kw: Any) -> str:
    argument = compiler.process(element.clauses, **kw)
    return f"translate({argument}, '{string.ascii_uppercase}', '{string.ascii_lowercase}')"


def _search_text(value: str | None, *, param: str) -> str | None:
    """A free-text filter, folded like `ascii_lower` and with LIKE's wildcards escaped."""
    if value is None or not value.strip():
        return None
    if "\x00" in value:
        raise ValidationFailed.field(["query", param], "must not contain NUL characters")
    if len(value) > MAX_SEARCH_LENGTH:
        raise ValidationFailed.field(["query", param], f"at most {MAX_SEARCH_LENGTH} characters")
    folded = value.strip().translate(_ASCII_LOWER)
    return folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(column: Any, pattern: str) -> ColumnElement[bool]:
    matched: ColumnElement[bool] = AsciiLower(column).like(pattern, escape="\\")
    return matched


@dataclass(frozen=True)
class CustomerFilter:
    """TeamUp's customer list filters; each one given narrows the list (they combine)."""

    ids: tuple[int, ...] | None = None
    query: str | None = None  # escaped, folded: a substring of name or email
    autocomplete: str | None = None  # escaped, folded: the start of name, a name word, email

    @classmethod
    def parse(
        cls, ids: Sequence[str] | None, query: str | None, autocomplete: str | None
    ) -> CustomerFilter:
        return cls(
            ids=parse_ids(ids, param="ids"),
            query=_search_text(query, param="query"),
            autocomplete=_search_text(autocomplete, param="autocomplete"),
        )

    def clauses(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.ids is not None:
            clauses.append(Customer.id.in_(self.ids))
        if self.query is not None:
            pattern = f"%{self.query}%"
            clauses.append(or_(_like(Customer.name, pattern), _like(Customer.email, pattern)))
        if self.autocomplete is not None:
            start = f"{self.autocomplete}%"
            clauses.append(
                or_(
                    _like(Customer.name, start),
                    _like(Customer.name, f"% {start}"),
                    _like(Customer.email, start),
                )
            )
        return clauses


def list_customers(
    session: Session, principal: Principal, page: OffsetPage, where: CustomerFilter
) -> tuple[int, list[tuple[Customer, Venue | None]]]:
    base = scoped(Customer, principal).where(*where.clauses())
    count = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = session.execute(
        base.add_columns(Venue)
        .outerjoin(Venue, Venue.id == Customer.venue_id)
        .order_by(Customer.id)
        .limit(page.limit)
        .offset(page.offset)
    ).all()
    return count, [(row[0], row[1]) for row in rows]


def touch_invoice(invoice: Invoice) -> None:
    """`updated_at` moves on every change to an invoice, its line items or its groups."""
    invoice.updated_at = utcnow()


# ---------------------------------------------------------------------------------------------
# Invoices

NUMBER_PREFIX = "INV-"
_AUTO_NUMBER_ATTEMPTS = 20


class InvoiceNumberTaken(Conflict):
    code = "invoice-number-taken"


class InvoiceCurrencyLocked(Conflict):
    code = "invoice-currency-locked"


def invoice_totals(
    session: Session, principal: Principal, invoice_ids: Sequence[int]
) -> dict[int, Totals]:
    """Net and tax per invoice, exact sums of the rounded lines."""
    if not invoice_ids:
        return {}
    return line_totals(
        session,
        LineItem.invoice_id,
        owned(LineItem, principal.account_id),
        LineItem.invoice_id.in_(list(invoice_ids)),
    )


def _owned_customer(session: Session, principal: Principal, customer_id: int) -> Customer:
    customer = session.execute(
        scoped(Customer, principal).where(Customer.id == customer_id)
    ).scalar_one_or_none()
    if customer is None:
        raise UnknownReference.field(["body", "customer"], f"no customer with id {customer_id}")
    return customer


def _currency(code: str) -> str:
    try:
        return normalise_currency(code)
    except MoneyError as exc:
        raise ValidationFailed.field(["body", "currency"], str(exc)) from exc


def _number_taken(session: Session, principal: Principal, number: str) -> bool:
    return (
        session.execute(
            scoped(Invoice, principal).where(Invoice.number == number).with_only_columns(Invoice.id)
        ).first()
        is not None
    )


def _next_number(session: Session, principal: Principal) -> str:
    """INV-000001-style: one more than the highest `INV-<digits>` among the account's most
    recent invoices; if a hand-given number already holds that, one more than the highest of
    all of them. The common case reads a few rows through the (account_id, id) index."""
    auto_numbers = scoped(Invoice, principal).where(Invoice.number.like(NUMBER_PREFIX + "%"))
    recent = session.execute(
        auto_numbers.order_by(Invoice.id.desc()).limit(50).with_only_columns(Invoice.number)
    ).scalars()
    candidate = f"{NUMBER_PREFIX}{_highest_auto(recent) + 1:06d}"
    if not _number_taken(session, principal, candidate):
        return candidate
    every = session.execute(auto_numbers.with_only_columns(Invoice.number)).scalars()
    return f"{NUMBER_PREFIX}{_highest_auto(every) + 1:06d}"


def _highest_auto(numbers: Iterable[str]) -> int:
    highest = 0
    for number in numbers:
        suffix = number[len(NUMBER_PREFIX) :]
        if _AUTO_DIGITS.match(suffix):
            highest = max(highest, int(suffix))
    return highest


_AUTO_DIGITS = re.compile(r"^[0-9]{1,18}$")


def _number_taken_error(number: str) -> InvoiceNumberTaken:
    return InvoiceNumberTaken(
        f"Invoice number {number!r} is already used in this account.",
        errors=[{"loc": ["body", "number"], "msg": "already used"}],
    )


def _insert_invoice(session: Session, principal: Principal, invoice: Invoice, auto: bool) -> None:
    """Insert; a number clash with a concurrent writer is a 409 for a given number, or the
    next auto number (the insert runs in a savepoint so a clash can be retried)."""
    if not auto:
        session.add(invoice)
        try:
            session.flush()
        except IntegrityError as exc:  # the request's transaction is rolled back
            raise _number_taken_error(invoice.number) from exc
        return
    # Auto-numbered creates of one account take turns (PostgreSQL row lock, held to commit;
    # NO KEY UPDATE so inserts referencing the account are not blocked). SQLite serialises
    # writers anyway. The savepoint retry below covers a racing hand-given number.
    session.execute(
        select(Account.id).where(Account.id == principal.account_id).with_for_update(key_share=True)
    )
    invoice.number = _next_number(session, principal)
    for _attempt in range(_AUTO_NUMBER_ATTEMPTS):
        try:
            with session.begin_nested():
                session.add(invoice)
                session.flush()
            return
        except IntegrityError:
            invoice.number = _next_number(session, principal)
    raise Conflict("Could not allocate an invoice number; try again.")


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


def create_invoice(
    session: Session, principal: Principal, body: InvoiceCreate
) -> tuple[Invoice, Totals]:
    currency = _currency(body.currency) if body.currency is not None else principal.currency
    if body.customer is not None:
        _owned_customer(session, principal, body.customer)
    auto = body.number is None
    if body.number is not None and _number_taken(session, principal, body.number):
        raise _number_taken_error(body.number)
    now = utcnow()
    invoice = Invoice(
        account_id=principal.account_id,
        customer_id=body.customer,
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
    _insert_invoice(session, principal, invoice, auto)
    return invoice, Totals()


# Sort keys of the invoice list: TeamUp documents due_date; the others are what a finance
# user pages by. NULL due dates sort last ascending and first descending, as in reports.
INVOICE_SORT_KEYS: dict[str, QueryableAttribute[Any]] = {
    "id": Invoice.id,
    "due_date": Invoice.due_date,
    "created_at": Invoice.created_at,
    "updated_at": Invoice.updated_at,
}
_NULLABLE_SORT_KEYS = frozenset({"due_date"})
INVOICE_EXPANDABLE = ("line_items",)


@dataclass(frozen=True)
class InvoiceListQuery:
    """`sort`, `status` and `expand` of the invoice list, validated."""

    sort: tuple[tuple[str, bool], ...] = ()
    statuses: tuple[str, ...] = ()
    expand: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls,
        sort: Sequence[str] | None = None,
        status: Sequence[str] | None = None,
        expand: Sequence[str] | None = None,
    ) -> InvoiceListQuery:
        return cls(
            sort=_parse_sort(sort), statuses=_parse_statuses(status), expand=parse_expand(expand)
        )

    def order_by(self) -> list[Any]:
        """The requested keys, then the id (ascending) so that equal keys keep one order."""
        terms: list[Any] = []
        for key, descending in self.sort:
            column = INVOICE_SORT_KEYS[key]
            term = column.desc() if descending else column.asc()
            if key in _NULLABLE_SORT_KEYS:
                term = nulls_first(term) if descending else nulls_last(term)
            terms.append(term)
        if not any(key == "id" for key, _ in self.sort):
            terms.append(Invoice.id.asc())
        return terms


def _parse_sort(values: Sequence[str] | None) -> tuple[tuple[str, bool], ...]:
    sort: list[tuple[str, bool]] = []
    for name in query_values(values):
        descending = name.startswith("-")
        key = name[1:] if descending else name.removeprefix("+")
        if key not in INVOICE_SORT_KEYS:
            raise ValidationFailed.field(
                ["query", "sort"],
                f"'{key}' is not a sort key of invoices; use {', '.join(INVOICE_SORT_KEYS)}"
                " (a '-' before a key sorts descending)",
            )
        if any(known == key for known, _ in sort):
            raise ConflictingParameters.field(["query", "sort"], f"'{key}' is listed twice")
        sort.append((key, descending))
    return tuple(sort)


def _known_names(
    values: Sequence[str] | None, known: Sequence[str], param: str, refusal: str
) -> tuple[str, ...]:
    """A list parameter of names from `known`, repeats dropped; another name is a 422."""
    names = query_values(values)
    for name in names:
        if name not in known:
            raise ValidationFailed.field(
                ["query", param], refusal.format(name=name, known=", ".join(known))
            )
    return tuple(dict.fromkeys(names))


def _parse_statuses(values: Sequence[str] | None) -> tuple[str, ...]:
    return _known_names(
        values, INVOICE_STATUSES, "status", "'{name}' is not an invoice status; use {known}"
    )


def parse_expand(values: Sequence[str] | None) -> tuple[str, ...]:
    return _known_names(
        values, INVOICE_EXPANDABLE, "expand", "'{name}' cannot be expanded; expandable: {known}"
    )


@dataclass(frozen=True)
class InvoiceView:
    """An invoice as listed: its totals and, when expanded, its line items in id order."""

    invoice: Invoice
    totals: Totals
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
        .order_by(LineItem.invoice_id, LineItem.id)
    ).scalars()
    for line, group in with_group_ids(session, list(lines)):
        by_invoice[line.invoice_id].append((line, group))
    return by_invoice


def invoice_views(
    session: Session, principal: Principal, invoices: Sequence[Invoice], line_items: bool
) -> list[InvoiceView]:
    ids = [invoice.id for invoice in invoices]
    totals = invoice_totals(session, principal, ids)
    lines = _invoice_lines(session, principal, ids) if line_items else {}
    return [
        InvoiceView(i, totals.get(i.id, Totals()), lines.get(i.id) if line_items else None)
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
    invoice = get_owned(session, Invoice, invoice_id, principal)
    return invoice_views(session, principal, [invoice], line_items)[0]


_NOT_NULL_ON_PATCH = ("number", "status", "currency", "is_credit_note")


def update_invoice(
    session: Session, principal: Principal, invoice_id: int, body: InvoiceUpdate
) -> tuple[Invoice, Totals]:
    """Apply only the keys sent; `updated_at` moves when anything actually changed."""
    invoice = get_owned(session, Invoice, invoice_id, principal)
    sent = set(body.model_fields_set)
    for name in _NOT_NULL_ON_PATCH:
        if name in sent and getattr(body, name) is None:
            raise ValidationFailed.field(["body", name], "may not be null")
    before = _invoice_state(invoice)
    if "currency" in sent and body.currency is not None:
        # Resending the invoice's own code is no change, even if it has since been withdrawn.
        unchanged = body.currency.isascii() and body.currency.strip().upper() == invoice.currency
        currency = invoice.currency if unchanged else _currency(body.currency)
        if currency != invoice.currency and _has_line_items(session, invoice):
            raise InvoiceCurrencyLocked(
                "The currency of an invoice with line items cannot change.",
                errors=[{"loc": ["body", "currency"], "msg": "invoice has line items"}],
            )
        invoice.currency = currency
    if "customer" in sent:
        if body.customer is not None:
            _owned_customer(session, principal, body.customer)
        invoice.customer_id = body.customer
    if "number" in sent and body.number is not None and body.number != invoice.number:
        if _number_taken(session, principal, body.number):
            raise _number_taken_error(body.number)
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
            raise _number_taken_error(invoice.number) from exc
    return invoice, invoice_totals(session, principal, [invoice.id]).get(invoice.id, Totals())


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


def _has_line_items(session: Session, invoice: Invoice) -> bool:
    return (
        session.execute(
            select(LineItem.id).where(LineItem.invoice_id == invoice.id).limit(1)
        ).first()
        is not None
    )


# ---------------------------------------------------------------------------------------------
# Line items

# Bounds that keep every value and every sum inside a 64-bit integer (SQLite's SUM raises on
# overflow): |money| < 10^10 major units, |quantity|, |unit price| < 10^10, 0 <= tax rate <= 10.
MAX_MAJOR_DIGITS = 10
MAX_TAX_RATE_MICROS = 10 * MICROS

MONEY_FIELDS = ("discount_amount", "credit_amount", "refund_amount")


# What a line item error is about: a value alone (the schema rules it out), two values that
# cannot go together, or an id that names nothing in the account (docs/decisions.md).
ProblemKind = Literal["value", "conflict", "reference"]
_PROBLEM_TYPES: dict[ProblemKind, type[ValidationFailed]] = {
    "value": ValidationFailed,
    "conflict": ConflictingParameters,
    "reference": UnknownReference,
}


class LineItemProblems:
    """Collects every field error of a request, so a batch reports all of them at once."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []
        self.kinds: set[ProblemKind] = set()

    def add(self, loc: list[str | int], msg: str, kind: ProblemKind = "value") -> None:
        self.errors.append({"loc": loc, "msg": msg})
        self.kinds.add(kind)

    def raise_if_any(self) -> None:
        if self.errors:
            shown = self.errors[:100]
            summary = "; ".join(
                ".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in shown[:5]
            )
            # A value error among them is the one to fix first; then a conflict.
            kind = next(k for k in ("value", "conflict", "reference") if k in self.kinds)
            raise _PROBLEM_TYPES[kind](summary, errors=shown)


def _pydantic_problems(exc: ValidationError, prefix: list[str | int]) -> list[dict[str, Any]]:
    return [
        {"loc": [*prefix, *error["loc"]], "msg": str(error["msg"])}
        for error in exc.errors(include_url=False)
    ]


def _money(
    text: str, currency: str, loc: list[str | int], problems: LineItemProblems
) -> int | None:
    try:
        value = parse_amount(text, currency, field=str(loc[-1]))
    except TooManyPlaces as exc:  # the invoice's currency allows fewer
        problems.add(loc, str(exc), "conflict")
        return None
    except MoneyError as exc:
        problems.add(loc, str(exc))
        return None
    if abs(value) >= 10 ** (MAX_MAJOR_DIGITS + currency_digits(currency)):
        problems.add(loc, f"must be less than 10^{MAX_MAJOR_DIGITS} in absolute value")
        return None
    return value


def _micros(text: str, loc: list[str | int], problems: LineItemProblems) -> int | None:
    try:
        value = parse_micros(text, field=str(loc[-1]))
    except MoneyError as exc:
        problems.add(loc, str(exc))
        return None
    if abs(value) >= 10**MAX_MAJOR_DIGITS * MICROS:
        problems.add(loc, f"must be less than 10^{MAX_MAJOR_DIGITS} in absolute value")
        return None
    return value


@dataclass
class LineValues:
    """One line's inputs, parsed; `amount` is the rounded, discounted line amount."""

    quantity_micros: int | None
    unit_price_micros: int | None
    amount: int
    tax_rate_micros: int
    tax_amount: int
    discount_amount: int
    credit_amount: int
    refund_amount: int


def compute_line(
    currency: str,
    *,
    quantity: str | None,
    unit_price: str | None,
    amount: str | None,
    tax_rate: str,
    discount_amount: str,
    credit_amount: str,
    refund_amount: str,
    loc: list[str | int],
    problems: LineItemProblems,
) -> LineValues | None:
    """SPEC §4: amount = round(quantity × unit_price) − discount, or the amount as given;
    tax = round(amount × tax_rate); rounding half away from zero, once each."""
    priced = quantity is not None or unit_price is not None
    if priced and amount is not None:
        problems.add(
            [*loc, "amount"], "give either quantity and unit_price, or amount, not both", "conflict"
        )
        return None
    if not priced and amount is None:
        problems.add([*loc, "amount"], "give either quantity and unit_price, or amount", "conflict")
        return None
    if priced and quantity is None:
        problems.add([*loc, "quantity"], "is required with unit_price", "conflict")
    if priced and unit_price is None:
        problems.add([*loc, "unit_price"], "is required with quantity", "conflict")
    before = len(problems.errors)
    rate = _micros(tax_rate, [*loc, "tax_rate"], problems)
    if rate is not None and not 0 <= rate <= MAX_TAX_RATE_MICROS:
        problems.add([*loc, "tax_rate"], 'must be a fraction between 0 and 10, such as "0.20"')
    extras = {
        name: _money(text, currency, [*loc, name], problems)
        for name, text in (
            ("discount_amount", discount_amount),
            ("credit_amount", credit_amount),
            ("refund_amount", refund_amount),
        )
    }
    quantity_micros = (
        _micros(quantity, [*loc, "quantity"], problems) if quantity is not None else None
    )
    price_micros = (
        _micros(unit_price, [*loc, "unit_price"], problems) if unit_price is not None else None
    )
    given = _money(amount, currency, [*loc, "amount"], problems) if amount is not None else None
    if len(problems.errors) > before or (priced and (quantity is None or unit_price is None)):
        return None
    assert rate is not None
    discount = extras["discount_amount"] or 0
    if given is not None:
        line = given
    else:
        assert quantity_micros is not None
        assert price_micros is not None
        line = line_amount(quantity_micros, price_micros, currency) - discount
        if abs(line) >= 10 ** (MAX_MAJOR_DIGITS + currency_digits(currency)):
            problems.add(
                [*loc, "amount"],
                f"quantity × unit_price must be less than 10^{MAX_MAJOR_DIGITS} in absolute value",
                "conflict",
            )
            return None
    return LineValues(
        quantity_micros=quantity_micros,
        unit_price_micros=price_micros,
        amount=line,
        tax_rate_micros=rate,
        tax_amount=line_tax(line, rate),
        discount_amount=discount,
        credit_amount=extras["credit_amount"] or 0,
        refund_amount=extras["refund_amount"] or 0,
    )


def _apply_values(line: LineItem, values: LineValues) -> None:
    line.quantity_micros = values.quantity_micros
    line.unit_price_micros = values.unit_price_micros
    line.amount = values.amount
    line.tax_rate_micros = values.tax_rate_micros
    line.tax_amount = values.tax_amount
    line.discount_amount = values.discount_amount
    line.credit_amount = values.credit_amount
    line.refund_amount = values.refund_amount


class GroupResolver:
    """`group_id` (a group's public UUID) → the group of this invoice, looked up once each."""

    def __init__(self, session: Session, principal: Principal, invoice: Invoice) -> None:
        self.session = session
        self.principal = principal
        self.invoice = invoice
        self.found: dict[str, LineItemGroup | None] = {}

    def resolve(
        self, text: str, loc: list[str | int], problems: LineItemProblems
    ) -> LineItemGroup | None:
        if text not in self.found:
            try:
                public_id = uuid.UUID(text)
            except ValueError:
                self.found[text] = None
            else:
                self.found[text] = self.session.execute(
                    scoped(LineItemGroup, self.principal).where(
                        LineItemGroup.public_id == public_id,
                        LineItemGroup.invoice_id == self.invoice.id,
                    )
                ).scalar_one_or_none()
        group = self.found[text]
        if group is None:
            problems.add(loc, f"no line-item group {text!r} on this invoice", "reference")
        return group


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


def add_line_items(
    session: Session, principal: Principal, invoice_id: int, payload: Any
) -> tuple[list[tuple[LineItem, str | None]], bool]:
    """Create one line item or a batch of up to 1,000, all or none; (lines, was_batch)."""
    invoice = get_owned(session, Invoice, invoice_id, principal)
    items, batch = _validate_payload(payload)
    problems = LineItemProblems()
    groups = GroupResolver(session, principal, invoice)
    now = utcnow()
    created: list[tuple[LineItem, str | None]] = []
    for index, item in enumerate(items):
        loc: list[str | int] = ["body", "items", index] if batch else ["body"]
        group = (
            groups.resolve(item.group_id, [*loc, "group_id"], problems)
            if item.group_id is not None
            else None
        )
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
        _apply_values(line, values)
        created.append((line, str(group.public_id) if group else None))
    problems.raise_if_any()
    session.add_all([line for line, _ in created])
    touch_invoice(invoice)
    session.flush()
    return created, batch


def _group_ids(session: Session, lines: Sequence[LineItem]) -> dict[int, str]:
    ids = {line.group_id for line in lines if line.group_id is not None}
    if not ids:
        return {}
    rows = session.execute(
        select(LineItemGroup.id, LineItemGroup.public_id).where(LineItemGroup.id.in_(ids))
    ).all()
    return {row[0]: str(row[1]) for row in rows}


def with_group_ids(
    session: Session, lines: Sequence[LineItem]
) -> list[tuple[LineItem, str | None]]:
    """Each line with its group's public UUID (or None), in one query."""
    public = _group_ids(session, lines)
    return [
        (line, public.get(line.group_id) if line.group_id is not None else None) for line in lines
    ]


def list_line_items(
    session: Session, principal: Principal, invoice_id: int, page: OffsetPage
) -> tuple[int, list[tuple[LineItem, str | None]]]:
    invoice = get_owned(session, Invoice, invoice_id, principal)
    base = scoped(LineItem, principal).where(LineItem.invoice_id == invoice.id)
    count = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    lines = list(
        session.execute(base.order_by(LineItem.id).limit(page.limit).offset(page.offset)).scalars()
    )
    return count, with_group_ids(session, lines)


def _owned_line(
    session: Session, principal: Principal, invoice_id: int, line_id: int
) -> tuple[Invoice, LineItem]:
    invoice = get_owned(session, Invoice, invoice_id, principal)
    line = session.execute(
        scoped(LineItem, principal).where(LineItem.id == line_id, LineItem.invoice_id == invoice.id)
    ).scalar_one_or_none()
    if line is None:
        raise NotFound(f"No line item with id {line_id} on invoice {invoice_id}.")
    return invoice, line


def get_line_item(
    session: Session, principal: Principal, invoice_id: int, line_id: int
) -> tuple[LineItem, str | None]:
    _invoice, line = _owned_line(session, principal, invoice_id, line_id)
    return with_group_ids(session, [line])[0]


_LINE_NOT_NULL = (
    "type",
    "description",
    "quantity",
    "unit_price",
    "amount",
    "tax_rate",
    *MONEY_FIELDS,
)


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
    digits = currency_digits(currency)

    def current(name: str, stored: int) -> str:
        value = getattr(body, name)
        return str(value) if name in sent and value is not None else _minor_text(stored, digits)

    quantity: str | None
    unit_price: str | None
    amount: str | None
    if "amount" in sent:
        amount = body.amount
        quantity = body.quantity if "quantity" in sent else None
        unit_price = body.unit_price if "unit_price" in sent else None
    elif "quantity" in sent or "unit_price" in sent:
        amount = None
        quantity = body.quantity if "quantity" in sent else _micros_text(line.quantity_micros)
        unit_price = (
            body.unit_price if "unit_price" in sent else _micros_text(line.unit_price_micros)
        )
    elif line.quantity_micros is not None:
        amount = None
        quantity = _micros_text(line.quantity_micros)
        unit_price = _micros_text(line.unit_price_micros)
    else:
        amount = _minor_text(line.amount, digits)
        quantity = unit_price = None
    values = compute_line(
        currency,
        quantity=quantity,
        unit_price=unit_price,
        amount=amount,
        tax_rate=(
            body.tax_rate
            if "tax_rate" in sent and body.tax_rate is not None
            else _micros_text(line.tax_rate_micros) or "0"
        ),
        discount_amount=current("discount_amount", line.discount_amount),
        credit_amount=current("credit_amount", line.credit_amount),
        refund_amount=current("refund_amount", line.refund_amount),
        loc=["body"],
        problems=problems,
    )
    group: LineItemGroup | None = None
    if "group_id" in sent and body.group_id is not None:
        group = GroupResolver(session, principal, invoice).resolve(
            body.group_id, ["body", "group_id"], problems
        )
    problems.raise_if_any()
    assert values is not None
    _apply_values(line, values)
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
    return with_group_ids(session, [line])[0]


def delete_line_item(session: Session, principal: Principal, invoice_id: int, line_id: int) -> None:
    invoice, line = _owned_line(session, principal, invoice_id, line_id)
    session.delete(line)
    touch_invoice(invoice)
    session.flush()


def _micros_text(value: int | None) -> str | None:
    if value is None:
        return None
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), MICROS)
    return f"{sign}{whole}.{fraction:06d}"


def _minor_text(value: int, digits: int) -> str:
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d}" if digits else f"{sign}{whole}"
