"""The column catalog of each report: every column is defined once, here.

The SELECT list, sort validation, `column_headers`, the JSON row nesting, the CSV header and
the CSV cell format are all derived from these entries; adding a column is one entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Literal

from sqlalchemy import BigInteger, ColumnElement, cast, func

from ledgerline.models import Customer, Invoice, LineItem, Venue
from ledgerline.money import money_object, plain_decimal

Kind = Literal["int", "ref", "text", "money", "date", "datetime", "bool", "billed_item"]
# Tables a column (or filter) needs joined to line_items, in join order.
Join = Literal["invoice", "customer", "venue"]
JOIN_ORDER: tuple[Join, ...] = ("invoice", "customer", "venue")

line_items = LineItem.__table__
invoices = Invoice.__table__
customers = Customer.__table__
venues = Venue.__table__

FLAT = "invoice_line_items"
GROUPED = "invoice_line_items.grouped"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: Kind
    # Usually one expression; a composite (billed_item) selects several.
    exprs: tuple[ColumnElement[Any], ...]
    aliases: tuple[str, ...] = ()
    sortable: bool = True
    holds_customer_id: bool = False
    required: bool = False
    # May be NULL: sorting then puts NULLs last ascending, first descending, on every database.
    nullable: bool = False
    needs: frozenset[Join] = field(default_factory=frozenset)
    # Grouped reports: an aggregate is not a GROUP BY key.
    aggregate: bool = False

    @property
    def path(self) -> tuple[str, ...]:
        """Where the value sits in a JSON row: "invoice.due_date" -> ("invoice", "due_date")."""
        return tuple(self.key.split("."))


INVOICE: frozenset[Join] = frozenset({"invoice"})
CUSTOMER: frozenset[Join] = frozenset({"invoice", "customer"})
VENUE: frozenset[Join] = frozenset({"invoice", "customer", "venue"})


def _c(table: Any, name: str) -> ColumnElement[Any]:
    column: ColumnElement[Any] = table.c[name]
    return column


FLAT_COLUMNS: tuple[Column, ...] = (
    Column("id", "ID", "int", (_c(line_items, "id"),)),
    Column(
        "invoice.id",
        "Invoice ID",
        "ref",
        (_c(line_items, "invoice_id"),),
        aliases=("invoice_id", "invoice"),
    ),
    Column(
        "invoice.due_date",
        "Invoice due date",
        "date",
        (_c(invoices, "due_date"),),
        aliases=("due_date",),
        nullable=True,
        needs=INVOICE,
    ),
    Column(
        "invoice.number",
        "Invoice number",
        "text",
        (_c(invoices, "number"),),
        aliases=("invoice_number",),
        needs=INVOICE,
    ),
    Column(
        "invoice.confirmed_at",
        "Invoice confirmed at",
        "datetime",
        (_c(invoices, "confirmed_at"),),
        aliases=("invoice_confirmed_at",),
        nullable=True,
        needs=INVOICE,
    ),
    Column(
        "invoice.paid_at",
        "Invoice paid at",
        "datetime",
        (_c(invoices, "paid_at"),),
        aliases=("paid_at",),
        nullable=True,
        needs=INVOICE,
    ),
    Column(
        "invoice.updated_at",
        "Invoice updated at",
        "datetime",
        (_c(invoices, "updated_at"),),
        aliases=("invoice_updated_at",),
        needs=INVOICE,
    ),
    Column(
        "invoice.status",
        "Invoice status",
        "text",
        (_c(invoices, "status"),),
        aliases=("invoice_status",),
        needs=INVOICE,
    ),
    Column(
        "invoice.is_credit_note",
        "Invoice is credit note",
        "bool",
        (_c(invoices, "is_credit_note"),),
        aliases=("invoice_is_credit_note",),
        needs=INVOICE,
    ),
    Column(
        "invoice.discount_code.name",
        "Discount code name",
        "text",
        (_c(invoices, "discount_code_name"),),
        aliases=("discount_code_name",),
        nullable=True,
        needs=INVOICE,
    ),
    Column(
        "invoice.discount_code.code",
        "Discount code",
        "text",
        (_c(invoices, "discount_code_code"),),
        aliases=("invoice.discount_code", "discount_code"),
        nullable=True,
        needs=INVOICE,
    ),
    Column(
        "customer.id",
        "Customer ID",
        "ref",
        (_c(invoices, "customer_id"),),
        aliases=("customer_id", "customer"),
        holds_customer_id=True,
        nullable=True,
        needs=INVOICE,
    ),
    Column(
        "customer.name",
        "Customer name",
        "text",
        (_c(customers, "name"),),
        aliases=("customer_name",),
        nullable=True,
        needs=CUSTOMER,
    ),
    Column(
        "customer.email",
        "Customer email",
        "text",
        (_c(customers, "email"),),
        aliases=("customer_email",),
        nullable=True,
        needs=CUSTOMER,
    ),
    Column(
        "customer.venue.id",
        "Customer venue ID",
        "ref",
        (_c(customers, "venue_id"),),
        aliases=("customer_venue_id", "customer.venue"),
        nullable=True,
        needs=CUSTOMER,
    ),
    Column(
        "customer.venue.name",
        "Customer venue name",
        "text",
        (_c(venues, "name"),),
        aliases=("customer_venue_name",),
        nullable=True,
        needs=VENUE,
    ),
    Column("amount", "Amount", "money", (_c(line_items, "amount"),)),
    Column("type", "Type", "text", (_c(line_items, "type"),)),
    Column(
        "billed_item",
        "Billed item",
        "billed_item",
        (_c(line_items, "billed_item_object"), _c(line_items, "billed_item_id")),
        sortable=False,
        nullable=True,
    ),
    Column("description", "Description", "text", (_c(line_items, "description"),)),
    Column("tax_amount", "Tax amount", "money", (_c(line_items, "tax_amount"),)),
    Column("discount_amount", "Discount amount", "money", (_c(line_items, "discount_amount"),)),
    Column("credit_amount", "Credit amount", "money", (_c(line_items, "credit_amount"),)),
    Column("refund_amount", "Refund amount", "money", (_c(line_items, "refund_amount"),)),
)

GROUPED_COLUMNS: tuple[Column, ...] = (
    Column("type", "Type", "text", (_c(line_items, "type"),)),
    Column(
        "total_amount",
        "Total amount",
        "money",
        # PostgreSQL sums BIGINT as NUMERIC; the total is a whole number of minor units.
        (cast(func.sum(_c(line_items, "amount")), BigInteger),),
        aggregate=True,
    ),
)

# The currency every money value is in; selected with every row (and grouped by).
CURRENCY: ColumnElement[Any] = _c(line_items, "currency")
LINE_ITEM_ID: ColumnElement[Any] = _c(line_items, "id")
CURRENCY_LABEL = "Currency"


@dataclass(frozen=True)
class Catalog:
    report: str
    columns: tuple[Column, ...]
    default_columns: tuple[str, ...]
    by_name: dict[str, Column]

    def lookup(self, name: str) -> Column | None:
        """A column by its key or any of its aliases."""
        return self.by_name.get(name)


def _catalog(report: str, columns: tuple[Column, ...], default: tuple[str, ...]) -> Catalog:
    by_name: dict[str, Column] = {}
    for column in columns:
        for name in (column.key, *column.aliases):
            if name in by_name:
                raise RuntimeError(f"{report}: column name {name!r} defined twice")
            by_name[name] = column
    return Catalog(report, columns, default, by_name)


CATALOGS: dict[str, Catalog] = {
    FLAT: _catalog(FLAT, FLAT_COLUMNS, tuple(c.key for c in FLAT_COLUMNS)),
    GROUPED: _catalog(GROUPED, GROUPED_COLUMNS, ("type", "total_amount")),
}


# --- Rendering: one formatter per column, chosen once per report, applied per row. -----------
#
# A row from `query.rows_statement` holds each selected column's expressions in order, then
# the currency. `Getter`s take that row.

Getter = Callable[[Sequence[Any]], Any]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def guard_formula(text: str | None) -> str | None:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe."""
    if text and text.startswith(FORMULA_START):
        return "'" + text
    return text


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _json_getter(kind: Kind, at: int, currency_at: int) -> Getter:
    if kind == "money":
        return lambda row: money_object(row[at], row[currency_at])
    if kind in ("date", "datetime"):
        return lambda row: _iso(row[at])
    if kind == "billed_item":
        return lambda row: None if row[at] is None else {"object": row[at], "id": row[at + 1]}
    if kind == "bool":
        return lambda row: None if row[at] is None else bool(row[at])
    return itemgetter(at)


def _csv_getter(kind: Kind, at: int, currency_at: int) -> Getter:
    if kind == "money":
        return lambda row: plain_decimal(row[at], row[currency_at])
    if kind in ("date", "datetime"):
        return lambda row: _iso(row[at])
    if kind == "billed_item":
        return lambda row: None if row[at] is None else guard_formula(f"{row[at]}:{row[at + 1]}")
    if kind == "bool":
        return lambda row: None if row[at] is None else ("true" if row[at] else "false")
    if kind == "text":
        return lambda row: guard_formula(row[at])
    return itemgetter(at)


def _positions(columns: Sequence[Column]) -> tuple[list[int], int]:
    positions: list[int] = []
    at = 0
    for column in columns:
        positions.append(at)
        at += len(column.exprs)
    return positions, at


def json_row_maker(columns: Sequence[Column]) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """Rows nested by dot-notation keys ("invoice.due_date" -> {"invoice": {"due_date": …}}),
    money as TeamUp money objects in the row's currency."""
    positions, currency_at = _positions(columns)
    steps = [
        (column.path[:-1], column.path[-1], _json_getter(column.kind, at, currency_at))
        for column, at in zip(columns, positions, strict=True)
    ]

    def make(row: Sequence[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for parents, leaf, getter in steps:
            target = out
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = getter(row)
        return out

    return make


def has_money(columns: Sequence[Column]) -> bool:
    return any(column.kind == "money" for column in columns)


def csv_header(columns: Sequence[Column]) -> list[str]:
    """Column labels; a Currency column is appended last whenever a money column is present."""
    labels = [column.label for column in columns]
    return [*labels, CURRENCY_LABEL] if has_money(columns) else labels


def csv_row_maker(columns: Sequence[Column]) -> Callable[[Sequence[Any]], list[Any]]:
    positions, currency_at = _positions(columns)
    getters = [
        _csv_getter(column.kind, at, currency_at)
        for column, at in zip(columns, positions, strict=True)
    ]
    if has_money(columns):
        getters.append(itemgetter(currency_at))

    def make(row: Sequence[Any]) -> list[Any]:
        return [getter(row) for getter in getters]

    return make
