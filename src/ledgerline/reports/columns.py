"""The column catalog of each report: every column is defined once, here.

A column is its key, aliases, label, SQL expression, kind, and whether it is sortable, may be
NULL or holds a customer id; a report is its columns, its default columns, its default sort
and the tie-breaker that makes its order total. The SELECT list, sort validation,
`column_headers`, the JSON row nesting, the CSV header and every cell (by kind, through
`reports.kinds`) are derived from these entries; adding a column is one entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    FromClause,
    Integer,
    Select,
    String,
    case,
    cast,
    func,
    literal,
    select,
    table,
    type_coerce,
)
from sqlalchemy import column as sql_column
from sqlalchemy.sql.expression import ColumnClause, TableClause
from sqlalchemy.sql.visitors import iterate
from sqlalchemy.types import NullType

from ledgerline.auth import AccountOwned, owned
from ledgerline.models import Customer, Invoice, LineItem, Venue
from ledgerline.reports.filters import (
    INVOICE_FILTERS,
    LINE_ITEM_FILTERS,
    PURCHASE_TYPES,
    SUMS,
    FilterFamily,
)
from ledgerline.reports.kinds import (
    Kind,
    by_currency_digits,
    currencies_by_digits,
    sql_int,
    sql_op,
)
from ledgerline.reports.periods import UNITS, Unit, date_period, local_period

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
    needs: frozenset[str] = field(default_factory=frozenset)
    # Grouped reports: an aggregate is not a GROUP BY key.
    aggregate: bool = False

    # A column whose value depends on the account's time zone (a local period) gives its
    # expressions in a zone; `exprs` are its expressions in UTC. See `in_zone`.
    zoned: Callable[[str], tuple[ColumnElement[Any], ...]] | None = None

    def in_zone(self, zone: str) -> Column:
        """This column with its expressions in `zone` (itself unless it is zoned)."""
        return self if self.zoned is None else replace(self, exprs=self.zoned(zone))

    @property
    def path(self) -> tuple[str, ...]:
        """Where the value sits in a JSON row: "invoice.due_date" -> ("invoice", "due_date")."""
        return tuple(self.key.split("."))


INVOICE: frozenset[str] = frozenset({"invoice"})
CUSTOMER: frozenset[str] = frozenset({"invoice", "customer"})
VENUE: frozenset[str] = frozenset({"invoice", "customer", "venue"})


def _c(table: Any, name: str) -> ColumnElement[Any]:
    column: ColumnElement[Any] = table.c[name]
    return column


def _raw(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """The driver's value, without the type's per-value Python conversion: dates and
    date-times are rendered from it once per distinct value (a line item shares its
    invoice's), booleans by truth (SQLite gives 0/1)."""
    return type_coerce(column, NullType())


def _customer_columns(customer: frozenset[str], venue: frozenset[str]) -> tuple[Column, ...]:
    """TeamUp's customer and venue columns, the same in both report families; `customer` and
    `venue` are the joins each needs from the report's rows."""
    return (
        Column(
            "customer.id",
            "Customer ID",
            "ref",
            (_c(customers, "public_id"),),
            aliases=("customer_id", "customer"),
            holds_customer_id=True,
            nullable=True,
            needs=customer,
        ),
        Column(
            "customer.name",
            "Customer name",
            "text",
            (_c(customers, "name"),),
            aliases=("customer_name",),
            nullable=True,
            needs=customer,
        ),
        Column(
            "customer.email",
            "Customer email",
            "text",
            (_c(customers, "email"),),
            aliases=("customer_email",),
            nullable=True,
            needs=customer,
        ),
        Column(
            "customer.venue.id",
            "Customer venue ID",
            "ref",
            (_c(venues, "public_id"),),
            aliases=("customer_venue_id", "customer.venue"),
            nullable=True,
            needs=venue,
        ),
        Column(
            "customer.venue.name",
            "Customer venue name",
            "text",
            (_c(venues, "name"),),
            aliases=("customer_venue_name",),
            nullable=True,
            needs=venue,
        ),
    )


# A flat report's row is a line item. Its `id` column (and tie-breaker, and `id_gt`) is the
# per-account public id the API shows; a deep page finds its rows by the internal key.
LINE_ITEM_ID: ColumnElement[Any] = _c(line_items, "public_id")
LINE_ITEM_KEY: ColumnElement[Any] = _c(line_items, "id")

# Every id column shows the referenced row's public id (never an internal key), so each
# needs that row's table joined.
FLAT_COLUMNS: tuple[Column, ...] = (
    Column("id", "ID", "int", (LINE_ITEM_ID,)),
    Column(
        "invoice.id",
        "Invoice ID",
        "ref",
        (_c(invoices, "public_id"),),
        aliases=("invoice_id", "invoice"),
        needs=INVOICE,
    ),
    Column(
        "invoice.due_date",
        "Invoice due date",
        "date",
        (_raw(_c(invoices, "due_date")),),
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
        (_raw(_c(invoices, "confirmed_at")),),
        aliases=("invoice_confirmed_at",),
        nullable=True,
        needs=INVOICE,
    ),
    Column(
        "invoice.paid_at",
        "Invoice paid at",
        "datetime",
        (_raw(_c(invoices, "paid_at")),),
        aliases=("paid_at",),
        nullable=True,
        needs=INVOICE,
    ),
    Column(
        "invoice.updated_at",
        "Invoice updated at",
        "datetime",
        (_raw(_c(invoices, "updated_at")),),
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
        (_raw(_c(invoices, "is_credit_note")),),
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
    *_customer_columns(CUSTOMER, VENUE),
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

# The currency every money value is in; selected with every row (and grouped by).
CURRENCY: ColumnElement[Any] = _c(line_items, "currency")
CURRENCY_LABEL = "Currency"


def _total(column: Column) -> Column:
    """`total_<money column>`: its sum over a group (in one currency)."""
    return Column(
        f"total_{column.key}",
        f"Total {column.label.lower()}",
        "money",
        # PostgreSQL sums BIGINT as NUMERIC; the total is a whole number of minor units.
        (cast(func.sum(column.exprs[0]), BigInteger),),
        aggregate=True,
    )


def _period_columns(column: Column) -> tuple[Column, ...]:
    """`<date key>_month|_quarter|_year` of a date or date-time column: its local calendar
    period as text ("2026-03", "2026-Q1", "2026"), a date-time read in the account's zone.
    Aliases: each name of the column (its last key part, its aliases) with the same suffix,
    so `paid_at_month` and `invoice_confirmed_at_year` name them too."""
    source = column.exprs[0]
    periods: list[Column] = []
    for unit in UNITS:
        names = (column.key.rsplit(".", 1)[-1], *column.aliases)
        zoned: Callable[[str], tuple[ColumnElement[Any], ...]] | None = None
        if column.kind == "datetime":

            def zoned(zone: str, unit: Any = unit) -> tuple[ColumnElement[Any], ...]:
                return (local_period(source, unit, zone),)

            exprs = zoned("UTC")
        else:
            exprs = (date_period(source, unit),)
        periods.append(
            Column(
                f"{column.key}_{unit}",
                f"{column.label} ({unit})",
                "text",
                exprs,
                aliases=tuple(dict.fromkeys(f"{name}_{unit}" for name in names)),
                nullable=column.nullable,
                needs=column.needs,
                zoned=zoned,
            )
        )
    return tuple(periods)


def _by_key(columns: tuple[Column, ...], key: str) -> Column:
    return next(column for column in columns if column.key == key)


_AMOUNT, _TAX = _by_key(FLAT_COLUMNS, "amount"), _by_key(FLAT_COLUMNS, "tax_amount")

# TeamUp's grouped report publishes `type` and `total_amount`; everything else a grouped
# report accepts is derived from the flat report's columns (issue 13): each attribute column
# as a grouping key, the currency, each date's local periods, the count, and a total of each
# money column and of the gross (amount + tax, SPEC §4).
GROUPED_COLUMNS: tuple[Column, ...] = (
    _by_key(FLAT_COLUMNS, "type"),
    _total(_AMOUNT),
)
GROUPED_EXTENSIONS: tuple[Column, ...] = (
    *(c for c in FLAT_COLUMNS if c.kind != "money" and c.key != "type"),
    Column("currency", "Currency", "text", (CURRENCY,)),
    *(p for c in FLAT_COLUMNS if c.kind in ("date", "datetime") for p in _period_columns(c)),
    # TeamUp's grouped reports publish `count` as a JSON string (the kind "count").
    Column("count", "Count", "count", (func.count(),), aggregate=True),
    *(_total(c) for c in FLAT_COLUMNS if c.kind == "money" and c is not _AMOUNT),
    Column(
        "total_gross_amount",
        "Total gross amount",
        "money",
        (cast(func.sum(_AMOUNT.exprs[0] + _TAX.exprs[0]), BigInteger),),
        aggregate=True,
    ),
)


def _minor_per_major(currency: ColumnElement[Any]) -> ColumnElement[Any]:
    """10^digits of the row's currency."""
    return by_currency_digits(currency, lambda digits: sql_int(10**digits))


def sort_keys(
    column: Column, currency: ColumnElement[Any] = CURRENCY
) -> tuple[ColumnElement[Any], ...]:
    """What ORDER BY compares for a column. Money compares in major units (SPEC §4), exactly:
    the whole major units (integer division, which truncates toward zero on both databases),
    then the remainder scaled to the finest currency's minor unit. Two integer keys instead
    of one product (amount × 10^(max − digits)), because a grouped sum times 10^4 could
    leave BIGINT where the sum itself does not; the pair orders exactly as the value does,
    since the remainder keeps the amount's sign. Equal major values (1 GBP, 1 JPY) tie."""
    if column.kind != "money":
        return (column.exprs[0],)
    amount = column.exprs[0]
    per_major = _minor_per_major(currency)
    finest = 10 ** max(currencies_by_digits())
    whole = sql_op(amount, "/", per_major)
    # amount − whole × per_major is the remainder, with the amount's sign, on both databases;
    # not `%`, which the psycopg rendering of an inlined export statement would double.
    remainder = amount - whole * per_major
    fraction = remainder * sql_op(sql_int(finest), "/", per_major)
    return (whole, fraction)


JoinStep = Callable[[FromClause], FromClause]


@dataclass(frozen=True)
class Source:
    """Where a report's rows come from: its base table (and the model whose account filter
    every statement carries), the internal key a deferred page finds its rows by, the
    currency of a row's money, and the joins a column, sort key or filter may need, each
    added only when needed, in this order. `derived` makes a derived table (a CTE) for the
    join named `derived_join`, for one account and optionally only the rows a subquery
    selects (a page)."""

    model: type[AccountOwned]
    table: FromClause
    key: ColumnElement[Any]
    currency: ColumnElement[Any]
    joins: tuple[tuple[str, JoinStep], ...]
    derived_join: str | None = None
    # (account, rows within, the derived columns the statement reads) -> the CTE.
    derived: Callable[[int, Select[Any] | None, frozenset[str]], CTE] | None = None
    # The stand-in table the columns read the derived table through.
    derived_table: TableClause | None = None

    def joined(self, needs: frozenset[str]) -> FromClause:
        source: FromClause = self.table
        for name, step in self.joins:
            if name in needs:
                source = step(source)
        return source

    def with_derived(
        self,
        statement: Select[Any],
        account_id: int,
        needs: frozenset[str],
        within: Select[Any] | None = None,
        also: Sequence[ColumnElement[Any]] = (),
    ) -> Select[Any]:
        """The statement with the derived table it needs (`WITH …`), if any, computing only
        the derived columns the statement (or the expressions `also` will add to it: its
        sort keys) reads: SQLite materialises a CTE whole, so an unread sum is work."""
        if self.derived is None or self.derived_join not in needs:
            return statement
        read = frozenset(
            element.name
            for root in (statement, *also)
            for element in iterate(root)
            if isinstance(element, ColumnClause) and element.table is self.derived_table
        )
        return statement.add_cte(self.derived(account_id, within, read))


LINE_ITEMS = Source(
    model=LineItem,
    table=line_items,
    key=LINE_ITEM_KEY,
    currency=CURRENCY,
    joins=(
        ("invoice", lambda source: source.join(invoices, invoices.c.id == line_items.c.invoice_id)),
        (
            "customer",
            lambda source: source.outerjoin(customers, customers.c.id == invoices.c.customer_id),
        ),
        ("venue", lambda source: source.outerjoin(venues, venues.c.id == customers.c.venue_id)),
    ),
)


@dataclass(frozen=True)
class Catalog:
    report: str
    columns: tuple[Column, ...]
    by_name: dict[str, Column]
    default_columns: tuple[str, ...]
    # Sorted by these keys, ascending, when a request names no sort. A grouped report uses
    # only those among the requested columns (a group is sorted by what it shows).
    default_sort: tuple[str, ...]
    # Ordered by last, ascending, unless the sort names it already: unique per row, it makes
    # the order total, so pages neither overlap nor skip. None for grouped reports, whose
    # rows are ordered after the sort by their GROUP BY keys (`query.rows_statement`).
    tie_breaker: str | None
    # Rows are groups: GROUP BY the requested attribute columns and the currency, and a sort
    # key must be one of the requested columns.
    grouped: bool
    source: Source = LINE_ITEMS
    filters: FilterFamily = LINE_ITEM_FILTERS
    # Vendor columns this report cannot answer: name -> why (a 422 naming the column).
    refused: Mapping[str, str] = field(default_factory=dict)
    # Columns accepted beyond the ones the report publishes (`columns`, TeamUp's page):
    # Ledgerline's additions, found by `lookup` like any other.
    extensions: tuple[Column, ...] = ()

    def lookup(self, name: str) -> Column | None:
        """A column by its key or any of its aliases."""
        return self.by_name.get(name)


def _catalog(
    report: str,
    columns: tuple[Column, ...],
    *,
    default_columns: tuple[str, ...],
    default_sort: tuple[str, ...],
    tie_breaker: str | None = None,
    grouped: bool = False,
    source: Source = LINE_ITEMS,
    filters: FilterFamily = LINE_ITEM_FILTERS,
    refused: Mapping[str, str] | None = None,
    extensions: tuple[Column, ...] = (),
) -> Catalog:
    by_name: dict[str, Column] = {}
    for column in (*columns, *extensions):
        for name in (column.key, *column.aliases):
            if name in by_name:
                raise RuntimeError(f"{report}: column name {name!r} defined twice")
            by_name[name] = column
    keys = {column.key for column in (*columns, *extensions)}
    sorted_by = (*default_sort, tie_breaker) if tie_breaker else default_sort
    for key in (*default_columns, *sorted_by):
        if key not in keys:
            raise RuntimeError(f"{report}: {key!r} is not a column key")
    for key in sorted_by:
        if not by_name[key].sortable:
            raise RuntimeError(f"{report}: {key!r} sorts by default but is not sortable")
    for name in refused or {}:
        if name in by_name:
            raise RuntimeError(f"{report}: column name {name!r} both defined and refused")
    return Catalog(
        report,
        columns,
        by_name,
        default_columns,
        default_sort,
        tie_breaker,
        grouped,
        source,
        filters,
        dict(refused or {}),
        extensions,
    )


# --- The invoices report (TeamUp's /reports/invoices…): a row is an invoice ------------------

INVOICES = "invoices"
INVOICES_GROUPED = "invoices.grouped"

# An invoice's money is computed from its line items (one source of truth, as GET /invoices
# computes its totals): one GROUP BY invoice_id over line_items, the derived table
# `invoice_sums` (a CTE, `invoice_sums_cte`). The columns read it through this stand-in of
# the same name, so one catalog entry serves every statement: an export's CTE sums every line
# of the account once, a /data page's only the lines of the page's invoices.
invoice_sums = table(
    "invoice_sums",
    sql_column("invoice_id", BigInteger),
    sql_column("amount", BigInteger),
    sql_column("tax_amount", BigInteger),
    sql_column("discount_amount", BigInteger),
    sql_column("credit_amount", BigInteger),
    sql_column("refund_amount", BigInteger),
    sql_column("purchase_rank", Integer),
    sql_column("discount_lines", BigInteger),
    sql_column("credit_lines", BigInteger),
)
SUMMED = ("amount", "tax_amount", "discount_amount", "credit_amount", "refund_amount")


def _invoice_sum_exprs() -> dict[str, ColumnElement[Any]]:
    """Each column of `invoice_sums` but the key, as its aggregate over an invoice's lines."""
    ranks = [
        (line_items.c.type.in_(types), rank)
        for rank, types in enumerate(PURCHASE_TYPES.values(), start=1)
    ]
    return {
        # PostgreSQL sums BIGINT as NUMERIC; each sum is a whole number of minor units.
        **{name: cast(func.sum(line_items.c[name]), BigInteger) for name in SUMMED},
        "purchase_rank": func.min(case(*ranks, else_=None)),
        "discount_lines": cast(
            func.sum(case((line_items.c.discount_amount != 0, 1), else_=0)), BigInteger
        ),
        "credit_lines": cast(
            func.sum(case((line_items.c.credit_amount != 0, 1), else_=0)), BigInteger
        ),
    }


def invoice_sums_cte(account_id: int, within: Select[Any] | None, read: frozenset[str]) -> CTE:
    """Per invoice of the account (only those `within` selects, if given): of the sums of its
    lines' amounts, the rank of its purchase type (see `purchase_type_expr`) and how many of
    its lines carry a discount or a credit, those the statement reads (`read`). Invoices
    without lines have no row."""
    sums = [expr.label(name) for name, expr in _invoice_sum_exprs().items() if name in read]
    statement = select(line_items.c.invoice_id, *sums).where(owned(LineItem, account_id))
    if within is not None:
        statement = statement.where(line_items.c.invoice_id.in_(within))
    return statement.group_by(line_items.c.invoice_id).cte("invoice_sums")


def purchase_type_expr() -> ColumnElement[Any]:
    """TeamUp's purchase type of an invoice: of the purchase types its lines stand for
    (`filters.PURCHASE_TYPES`), the first in TeamUp's published order (class, course,
    course_session, membership, store); NULL when no line stands for one (fees, gift cards,
    no lines)."""
    return case(
        *(
            (invoice_sums.c.purchase_rank == rank, literal(name, String))
            for rank, name in enumerate(PURCHASE_TYPES, start=1)
        ),
        else_=None,
    )


INVOICE_ID: ColumnElement[Any] = _c(invoices, "public_id")
INVOICE_KEY: ColumnElement[Any] = _c(invoices, "id")
INVOICE_CURRENCY: ColumnElement[Any] = _c(invoices, "currency")

INVOICES_SOURCE = Source(
    model=Invoice,
    table=invoices,
    key=INVOICE_KEY,
    currency=INVOICE_CURRENCY,
    joins=(
        (
            "customer",
            lambda source: source.outerjoin(customers, customers.c.id == invoices.c.customer_id),
        ),
        ("venue", lambda source: source.outerjoin(venues, venues.c.id == customers.c.venue_id)),
        (
            SUMS,
            lambda source: source.outerjoin(
                invoice_sums, invoice_sums.c.invoice_id == invoices.c.id
            ),
        ),
    ),
    derived_join=SUMS,
    derived=invoice_sums_cte,
    derived_table=invoice_sums,
)

NEEDS_SUMS: frozenset[str] = frozenset({SUMS})
INVOICE_CUSTOMER: frozenset[str] = frozenset({"customer"})
INVOICE_VENUE: frozenset[str] = frozenset({"customer", "venue"})


def _summed(name: str) -> ColumnElement[Any]:
    """An invoice's sum of one line amount; 0 for an invoice without lines."""
    summed: ColumnElement[Any] = func.coalesce(invoice_sums.c[name], 0)
    return summed


# Each derived amount, in minor units of the invoice's currency (docs/reports.md, "The
# invoices report"): total = GET /invoices/{id}'s gross_total.
INVOICE_AMOUNTS: dict[str, tuple[str, ColumnElement[Any]]] = {
    "total_amount": ("Total amount", _summed("amount") + _summed("tax_amount")),
    "subtotal_amount": ("Subtotal amount", _summed("amount") + _summed("discount_amount")),
    "discount_amount": ("Discount amount", _summed("discount_amount")),
    "tax_amount": ("Tax amount", _summed("tax_amount")),
    "credit_amount": ("Credit amount", _summed("credit_amount")),
    "expected_payment_amount": (
        "Expected payment amount",
        _summed("amount")
        + _summed("tax_amount")
        - _summed("credit_amount")
        - _summed("refund_amount"),
    ),
    "refund_amount": ("Refund amount", _summed("refund_amount")),
}


def _amount(key: str) -> Column:
    label, expr = INVOICE_AMOUNTS[key]
    # Parenthesised: the money renderings and sort keys put it beside other operators.
    expr = expr.self_group()
    return Column(key, label, "money", (expr,), needs=NEEDS_SUMS)


INVOICE_COLUMNS: tuple[Column, ...] = (
    Column("id", "ID", "int", (INVOICE_ID,)),
    Column("due_date", "Due date", "date", (_raw(_c(invoices, "due_date")),), nullable=True),
    Column(
        "confirmed_at",
        "Confirmed at",
        "datetime",
        (_raw(_c(invoices, "confirmed_at")),),
        nullable=True,
    ),
    Column("paid_at", "Paid at", "datetime", (_raw(_c(invoices, "paid_at")),), nullable=True),
    Column("status", "Status", "text", (_c(invoices, "status"),)),
    Column("is_credit_note", "Is credit note", "bool", (_raw(_c(invoices, "is_credit_note")),)),
    Column("number", "Number", "text", (_c(invoices, "number"),)),
    *_customer_columns(INVOICE_CUSTOMER, INVOICE_VENUE),
    _amount("total_amount"),
    _amount("subtotal_amount"),
    _amount("discount_amount"),
    _amount("tax_amount"),
    _amount("credit_amount"),
    # Ledgerline has no adjustments: every invoice's adjustment is zero, in its currency.
    Column("adjustment_amount", "Adjustment amount", "money", (literal(0, BigInteger),)),
    _amount("expected_payment_amount"),
    _amount("refund_amount"),
    Column(
        "discount_code.name",
        "Discount code name",
        "text",
        (_c(invoices, "discount_code_name"),),
        aliases=("discount_code_name",),
        nullable=True,
    ),
    Column(
        "discount_code.code",
        "Discount code",
        "text",
        (_c(invoices, "discount_code_code"),),
        aliases=("discount_code",),
        nullable=True,
    ),
    Column(
        "purchase_type",
        "Purchase type",
        "text",
        (purchase_type_expr(),),
        nullable=True,
        needs=NEEDS_SUMS,
    ),
    Column("updated_at", "Updated at", "datetime", (_raw(_c(invoices, "updated_at")),)),
)

# TeamUp's invoice columns Ledgerline cannot answer, and why (docs/decisions.md, "Issue 13:
# the invoices report"): refused by name rather than answered with invented values.
_NO_REFUND_LINK = "Ledgerline does not link a credit note to the invoice it refunds"
INVOICE_REFUSED: dict[str, str] = {
    "refunded_invoice_id": _NO_REFUND_LINK,
    "refunded_invoice.id": _NO_REFUND_LINK,
    "refunded_invoice": _NO_REFUND_LINK,
    "refund_date": "Ledgerline records refund amounts, not when a refund was made",
    "payment_processor": "Ledgerline records no payment processors",
    "purchase_items": "Ledgerline keeps no TeamUp purchase item summary; use the line items report",
    "payout": "Ledgerline records no payouts",
    "applied_credits": "Ledgerline records credit amounts per line, not the credits applied",
    "charges": "Ledgerline records no charges",
    "legacy_mapping": "Ledgerline keeps no legacy system mapping",
}


PAID_AT = _c(invoices, "paid_at")


def _payment_period(unit: Unit) -> Column:
    """TeamUp's `payment_month` (1-12, to be read with `payment_year`) or `payment_year` of
    an invoice: the local month or year of its `paid_at` in the account's time zone, as an
    integer (the vendor's published type)."""

    def zoned(zone: str) -> tuple[ColumnElement[Any], ...]:
        text = local_period(PAID_AT, unit, zone)  # "2026-03", "2026"
        number = func.substr(text, 6, 2) if unit == "month" else text
        return (cast(number, Integer),)

    return Column(
        f"payment_{unit}",
        f"Payment {unit}",
        "int",
        zoned("UTC"),
        nullable=True,
        zoned=zoned,
    )


def _invoice_total(key: str) -> Column:
    label, expr = INVOICE_AMOUNTS[key]
    return Column(
        key, label, "money", (cast(func.sum(expr), BigInteger),), aggregate=True, needs=NEEDS_SUMS
    )


INVOICE_GROUPED_COLUMNS: tuple[Column, ...] = (
    Column("status", "Status", "text", (_c(invoices, "status"),)),
    *(
        column
        for column in INVOICE_COLUMNS
        if column.key in ("customer.id", "customer.name", "customer.email", "purchase_type")
    ),
    Column(
        "due_date_month",
        "Due date month",
        "text",
        (date_period(_c(invoices, "due_date"), "month"),),
        nullable=True,
    ),
    Column(
        "due_date_year",
        "Due date year",
        "text",
        (date_period(_c(invoices, "due_date"), "year"),),
        nullable=True,
    ),
    _payment_period("month"),
    _payment_period("year"),
    Column("count", "Count", "count", (func.count(INVOICE_KEY),), aggregate=True),
    *(
        _invoice_total(key)
        for key in (
            "total_amount",
            "subtotal_amount",
            "discount_amount",
            "tax_amount",
            "credit_amount",
            "expected_payment_amount",
            "refund_amount",
        )
    ),
)

INVOICE_GROUPED_REFUSED: dict[str, str] = {
    "payment_processor": "Ledgerline records no payment processors",
    "payout_month": "Ledgerline records no payouts",
    "payout_year": "Ledgerline records no payouts",
    "purchased_item": "Ledgerline keeps no purchased item per invoice; group the line items "
    "report by billed item",
    "purchase_fee_type": "Ledgerline keeps no purchase fee types",
}


CATALOGS: dict[str, Catalog] = {
    FLAT: _catalog(
        FLAT,
        FLAT_COLUMNS,
        default_columns=tuple(column.key for column in FLAT_COLUMNS),
        default_sort=("id",),
        tie_breaker="id",
    ),
    GROUPED: _catalog(
        GROUPED,
        GROUPED_COLUMNS,
        default_columns=("type", "total_amount"),
        default_sort=("type",),
        grouped=True,
        extensions=GROUPED_EXTENSIONS,
    ),
    INVOICES: _catalog(
        INVOICES,
        INVOICE_COLUMNS,
        default_columns=tuple(column.key for column in INVOICE_COLUMNS),
        default_sort=("id",),
        tie_breaker="id",
        source=INVOICES_SOURCE,
        filters=INVOICE_FILTERS,
        refused=INVOICE_REFUSED,
    ),
    INVOICES_GROUPED: _catalog(
        INVOICES_GROUPED,
        INVOICE_GROUPED_COLUMNS,
        default_columns=("status", "count", "total_amount"),
        default_sort=("status",),
        grouped=True,
        source=INVOICES_SOURCE,
        filters=INVOICE_FILTERS,
        refused=INVOICE_GROUPED_REFUSED,
    ),
}
