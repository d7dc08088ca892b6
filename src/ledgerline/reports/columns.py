"""The column catalog of each report: every column is defined once, here.

The SELECT list, sort validation, `column_headers`, the JSON row nesting, the CSV header and
the CSV cell format are all derived from these entries; adding a column is one entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Text,
    case,
    cast,
    func,
    literal_column,
    null,
    or_,
    type_coerce,
)
from sqlalchemy.types import NullType

from ledgerline.models import Customer, Invoice, LineItem, Venue
from ledgerline.money import currency_digits, currency_symbol, known_currencies

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


def _raw(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """The driver's value, without the type's per-value Python conversion: dates and
    date-times are rendered from it once per distinct value (a line item shares its
    invoice's), booleans by truth (SQLite gives 0/1)."""
    return type_coerce(column, NullType())


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


def _minor_per_major() -> ColumnElement[Any]:
    """10^digits of the row's currency."""
    return by_currency_digits(lambda digits: _sql_int(10**digits))


def sort_keys(column: Column) -> tuple[ColumnElement[Any], ...]:
    """What ORDER BY compares for a column. Money compares in major units (SPEC §4), exactly:
    the whole major units (integer division, which truncates toward zero on both databases),
    then the remainder scaled to the finest currency's minor unit. Two integer keys instead
    of one product (amount × 10^(max − digits)), because a grouped sum times 10^4 could
    leave BIGINT where the sum itself does not; the pair orders exactly as the value does,
    since the remainder keeps the amount's sign. Equal major values (1 GBP, 1 JPY) tie."""
    if column.kind != "money":
        return (column.exprs[0],)
    amount = column.exprs[0]
    per_major = _minor_per_major()
    finest = 10 ** max(currencies_by_digits())
    whole = _sql_op(amount, "/", per_major)
    # amount − whole × per_major is the remainder, with the amount's sign, on both databases;
    # not `%`, which the psycopg rendering of an inlined export statement would double.
    remainder = amount - whole * per_major
    fraction = remainder * _sql_op(_sql_int(finest), "/", per_major)
    return (whole, fraction)


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


# --- Rendering: CSV cells and JSON rows, derived from the catalog. ---------------------------
#
# A row from `query.rows_statement` holds each selected column's expressions in order, then
# the currency. Exports write millions of rows, so the per-row work is kept to one compiled
# function per report: it is generated once from the columns' kinds and positions (only
# integers and names of the helpers below go into its source, never client input), and each
# cell costs one indexing and at most one helper call. JSON rows are written as text directly
# (the /data endpoint embeds the same text), so /data rows and JSON exports cannot diverge.

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_CHARS = frozenset(FORMULA_START)
RowMaker = Callable[[Sequence[Any]], Any]


def guard_formula(text: str | None) -> str | None:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe."""
    if text and text[0] in _FORMULA_CHARS:
        return "'" + text
    return text


def _json_text(value: str) -> str:
    """A JSON string literal, non-ASCII kept as is (the C encoder of the standard library)."""
    return encode_basestring(value)


class MoneyFormat:
    """Minor units of one currency as a CSV plain decimal or a TeamUp money object's JSON,
    exactly as `money.plain_decimal` and `money.money_object` render them, but cheaply."""

    def __init__(self, currency: str) -> None:
        self.digits = currency_digits(currency)
        self.divisor = 10**self.digits
        self._positive = f"%d.%0{self.digits}d"
        self._negative = "-" + self._positive
        symbol = currency_symbol(currency).replace("%", "%%")
        self._display = f"%s{symbol}%s.%0{self.digits}d" if self.digits else f"%s{symbol}%s"
        tail = (
            f',"iso_currency_code":{_json_text(currency.lower())}'
            f',"currency_symbol":{_json_text(currency_symbol(currency))}'
            ',"currency_symbol_position":"before"}'
        )
        self._object = '{"decimal":%s,"string":%s' + tail.replace("%", "%%")

    def plain(self, value: int) -> str:
        """4550 -> "45.50"; -350 -> "-3.50"; JPY 1200 -> "1200"."""
        if not self.digits:
            return str(value)
        text: str
        if value >= 0:
            text = self._positive % divmod(value, self.divisor)
        else:
            text = self._negative % divmod(-value, self.divisor)
        return text

    def json(self, value: int) -> str:
        whole, fraction = divmod(abs(value), self.divisor)
        sign = "-" if value < 0 else ""
        number = self.plain(value)
        if self.digits:
            number = number.rstrip("0").rstrip(".")
            display = self._display % (sign, f"{whole:,}", fraction)
        else:
            display = self._display % (sign, f"{whole:,}")
        return self._object % (number, _json_text(display))


class _MoneyFormats(dict[str, MoneyFormat]):
    def __missing__(self, currency: str) -> MoneyFormat:
        made = self[currency] = MoneyFormat(currency)
        return made


MONEY_FORMATS = _MoneyFormats()


def iso_date(raw: Any) -> str | None:
    """A date as the driver gives it (ISO text from SQLite, a date from PostgreSQL)."""
    if raw is None:
        return None
    day = dt.date.fromisoformat(raw) if isinstance(raw, str) else raw
    return str(day.isoformat())


def utc_iso(raw: Any) -> str | None:
    """A date-time as the driver gives it (naive UTC text from SQLite, an aware datetime
    from PostgreSQL) as ISO 8601 in UTC, exactly like `UTCDateTime` then `isoformat()`."""
    if raw is None:
        return None
    moment = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    if moment.tzinfo is None:
        return str(moment.replace(tzinfo=dt.UTC).isoformat())
    return str(moment.astimezone(dt.UTC).isoformat())


class Rendered(dict[Any, Any]):
    """`render(raw)` by subscription, remembering recent results (bounded).

    Values repeat across rows: a line item carries its invoice's timestamps, and amounts come
    from price lists (discounts, credits and refunds are mostly zero). A hit is one dict
    lookup in C, with no Python call.
    """

    __slots__ = ("render",)
    LIMIT = 8192

    def __init__(self, render: Callable[[Any], Any]) -> None:
        super().__init__()
        self.render = render

    def __missing__(self, raw: Any) -> Any:
        if len(self) >= self.LIMIT:
            self.clear()
        made = self[raw] = self.render(raw)
        return made


class _ByCurrency(dict[str, Rendered]):
    """currency -> Rendered(one of MoneyFormat's renderings), made on first use."""

    def __init__(self, rendering: Callable[[MoneyFormat], Callable[[int], str]]) -> None:
        super().__init__()
        self.rendering = rendering

    def __missing__(self, currency: str) -> Rendered:
        made = self[currency] = Rendered(self.rendering(MONEY_FORMATS[currency]))
        return made


def _json_or_null(encode: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda value: "null" if value is None else encode(value)


def _json_iso_text(text: str | None) -> str:
    return "null" if text is None else '"' + text + '"'


def _json_billed_item(kind: str | None, ident: int | None) -> str:
    if kind is None:
        return "null"
    return f'{{"object":{_json_text(kind)},"id":{"null" if ident is None else ident}}}'


def csv_text(text: str) -> str:
    """A non-empty text cell as written to CSV: the formula guard (decided on the text's own
    first character), then every line break inside it (CRLF, CR or LF) written as CRLF."""
    if text[0] in _FORMULA_CHARS:
        text = "'" + text
    if "\r" in text or "\n" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    return text


def _csv_billed_item(kind: str | None, ident: int | None) -> str | None:
    if kind is None:
        return None
    cell = kind if ident is None else f"{kind}:{ident}"
    return csv_text(cell) if cell else cell


_HELPERS: dict[str, Any] = {
    "F": _FORMULA_CHARS,
    "JSTR": _json_text,
    "JSTRN": _json_or_null(_json_text),
    "JNUM": _json_or_null(str),
    "JBILLED": _json_billed_item,
    "CBILLED": _csv_billed_item,
    "CTEXT": csv_text,
}


def _compile(source: str, constants: dict[str, Any]) -> RowMaker:
    # The source holds only integer positions and the helper names above (see the note at
    # the top of this section); eval makes one flat function instead of a call per cell.
    maker: RowMaker = eval(source, {**_HELPERS, **constants})  # noqa: S307
    return maker


def _positions(columns: Sequence[Column]) -> tuple[list[int], int]:
    positions: list[int] = []
    at = 0
    for column in columns:
        positions.append(at)
        at += len(column.exprs)
    return positions, at


def _json_cell(column: Column, at: int, currency_at: int) -> tuple[str, str]:
    """(%-placeholder, expression) of one column's JSON value."""
    value = f"row[{at}]"
    if column.kind == "money":
        return "%s", f"JM[row[{currency_at}]][{value}]"
    if column.kind == "datetime":
        return "%s", f"JDT[{value}]"
    if column.kind == "date":
        return "%s", f"JD[{value}]"
    if column.kind == "billed_item":
        return "%s", f"JBILLED({value}, row[{at + 1}])"
    if column.kind == "bool":
        if column.nullable:
            return "%s", f'("null" if (b{at} := {value}) is None else "true" if b{at} else "false")'
        return "%s", f'("true" if {value} else "false")'
    if column.kind == "text":
        return "%s", f"JSTRN({value})" if column.nullable else f"JSTR({value})"
    return ("%s", f"JNUM({value})") if column.nullable else ("%d", value)


def json_row_maker(columns: Sequence[Column]) -> Callable[[Sequence[Any]], str]:
    """A function from a row to its JSON object text: nested by the dot-notation keys
    ("invoice.due_date" -> {"invoice": {"due_date": …}}), money as TeamUp money objects in
    the row's currency, dates and date-times ISO 8601 (UTC), absent values null."""
    positions, currency_at = _positions(columns)
    tree: dict[str, Any] = {}
    for column, at in zip(columns, positions, strict=True):
        node = tree
        for part in column.path[:-1]:
            node = node.setdefault(part, {})
        node[column.path[-1]] = _json_cell(column, at, currency_at)

    # Columns sharing a parent are written together, so the expressions are collected in
    # the order the template is written, not the order the columns were requested.
    expressions: list[str] = []

    def template(node: dict[str, Any]) -> str:
        members: list[str] = []
        for key, value in node.items():
            if isinstance(value, tuple):
                placeholder, expression = value
                expressions.append(expression)
            else:
                placeholder = template(value)
            members.append(_json_text(key).replace("%", "%%") + ":" + placeholder)
        return "{" + ",".join(members) + "}"

    text = template(tree)
    source = f"lambda row: TEMPLATE % ({', '.join(expressions)},)"
    constants = {
        "TEMPLATE": text,
        "JDT": Rendered(lambda raw: _json_iso_text(utc_iso(raw))),
        "JD": Rendered(lambda raw: _json_iso_text(iso_date(raw))),
        "JM": _ByCurrency(lambda money: money.json),
    }
    return _compile(source, constants)


def has_money(columns: Sequence[Column]) -> bool:
    return any(column.kind == "money" for column in columns)


def csv_header(columns: Sequence[Column]) -> list[str]:
    """Column labels; a Currency column is appended last whenever a money column is present."""
    labels = [column.label for column in columns]
    return [*labels, CURRENCY_LABEL] if has_money(columns) else labels


def _csv_cell(column: Column, at: int, currency_at: int) -> str:
    value = f"row[{at}]"
    if column.kind == "money":
        return f"CM[row[{currency_at}]][{value}]"
    if column.kind == "datetime":
        return f"CDT[{value}]"
    if column.kind == "date":
        return f"CD[{value}]"
    if column.kind == "billed_item":
        return f"CBILLED({value}, row[{at + 1}])"
    if column.kind == "bool":
        if column.nullable:
            return f'(None if (b{at} := {value}) is None else "true" if b{at} else "false")'
        return f'("true" if {value} else "false")'
    if column.kind == "text":
        # csv_text only where it changes something: this is the most frequent cell
        t = f"t{at}"
        return (
            f'(CTEXT({t}) if ({t} := {value}) and ({t}[0] in F or "\\r" in {t} or "\\n" in {t})'
            f" else {t})"
        )
    return value  # numbers as they are; None is written as an empty cell


def csv_row_maker(columns: Sequence[Column]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A function from a row to its CSV cells (see csv_header for the layout)."""
    positions, currency_at = _positions(columns)
    cells = [
        _csv_cell(column, at, currency_at) for column, at in zip(columns, positions, strict=True)
    ]
    if has_money(columns):
        cells.append(f"row[{currency_at}]")
    constants = {
        "CDT": Rendered(utc_iso),
        "CD": Rendered(iso_date),
        "CM": _ByCurrency(lambda money: money.plain),
    }
    return _compile(f"lambda row: ({', '.join(cells)},)", constants)


# --- CSV rendered by the database (the export fast path) -------------------------------------
#
# The same CSV as `csv_row_maker` + the csv module, as SQL per dialect, so that the database
# renders every cell as text and the export only moves bytes (`exports.writers`). Each column
# kind has one rendering per dialect below, derived from the catalog like everything above;
# tests/reports/test_csv_fast_path.py holds the two paths to byte equality.
#
# PostgreSQL: one text cell per column, written by `COPY … (FORMAT csv)`, which ends records
# with LF; the writer turns every LF of its output into CRLF in one pass, so line breaks inside
# text are rendered LF here (and become CRLF there, as `csv_text` writes them).
# SQLite: one finished CSV record per row (`printf` of the cells, quoted here exactly as the
# csv module quotes), because fetching one value a row costs a 25th of fetching 25.

SqlDialect = Literal["sqlite", "postgresql"]
_CR, _LF, _CRLF = "\r", "\n", "\r\n"
# Code points of FORMULA_START, for SQLite's unicode() (the first character's code point).
_FORMULA_CODES = tuple(ord(char) for char in FORMULA_START)
# What makes the csv module quote a field (QUOTE_MINIMAL, "," delimiter, CRLF line ends).
_CSV_QUOTED_CHARS = (",", '"', _CR, _LF)


def _sql_text(expr: Any) -> ColumnElement[Any]:
    """`expr` typed as text, so that `+` renders as `||` on every dialect."""
    typed: ColumnElement[Any] = type_coerce(expr, Text())
    return typed


def _sql_int(value: int) -> ColumnElement[Any]:
    literal: ColumnElement[Any] = literal_column(str(int(value)))
    return literal


def _sql_op(left: Any, operator: str, right: Any) -> ColumnElement[Any]:
    """`left <operator> right` exactly as written (integer division and modulo)."""
    combined: ColumnElement[Any] = left.op(operator)(right)
    return combined


def _sql_guarded(value: Any, source: Any, dialect: SqlDialect) -> ColumnElement[Any]:
    """The formula guard, decided on the first character (code point) of `source`."""
    first = func.unicode(source) if dialect == "sqlite" else func.ascii(source)
    starts = first.in_([_sql_int(code) for code in _FORMULA_CODES])
    return case((starts, "'" + _sql_text(value)), else_=_sql_text(value))


def _sql_text_pg(value: Any, source: Any) -> ColumnElement[Any]:
    """`csv_text` in PostgreSQL, line breaks LF (see above); NULL for an empty cell (COPY
    quotes an empty string to tell it from NULL; the csv module writes nothing)."""
    text_value = _sql_text(value)
    guarded = _sql_guarded(value, source, "postgresql")
    lf = func.replace(func.replace(guarded, _CRLF, _LF), _CR, _LF)
    starts = func.ascii(source).in_([_sql_int(code) for code in _FORMULA_CODES])
    # Guarded or holding a CR, a cell is never empty: only the last branch needs NULLIF.
    return _sql_text(
        case(
            (func.strpos(source, _CR) > _sql_int(0), lf),
            (starts, "'" + text_value),
            else_=func.nullif(text_value, ""),
        )
    )


def _sql_text_sqlite(value: Any, source: Any) -> ColumnElement[Any]:
    """`csv_text` in SQLite, then quoted as the csv module quotes: a field holding a comma,
    a quote, CR or LF is enclosed in quotes with its quotes doubled; line breaks CRLF."""
    guarded = _sql_guarded(value, source, "sqlite")
    crlf = func.replace(func.replace(func.replace(guarded, _CRLF, _LF), _CR, _LF), _LF, _CRLF)
    quoted = '"' + _sql_text(func.replace(crlf, '"', '""')) + '"'
    needs_quotes = or_(
        *(type_coerce(func.instr(source, char), Boolean) for char in _CSV_QUOTED_CHARS)
    )
    return _sql_text(case((needs_quotes, quoted), else_=guarded))


def _sql_minor_unit(digits: int) -> ColumnElement[Any]:
    """PostgreSQL: one minor unit as an exact numeric literal of `digits` decimal places
    (0.01 for 2, 0.001 for 3, 1 for 0)."""
    unit: ColumnElement[Any] = literal_column(
        "1" if digits == 0 else "0." + "0" * (digits - 1) + "1"
    )
    return unit


def currencies_by_digits() -> dict[int, tuple[str, ...]]:
    """Every known ISO 4217 currency whose minor-unit digits are not 2, by digits."""
    groups: dict[int, list[str]] = {}
    for currency in sorted(known_currencies()):
        digits = currency_digits(currency)
        if digits != 2:
            groups.setdefault(digits, []).append(currency)
    return {digits: tuple(codes) for digits, codes in sorted(groups.items())}


def by_currency_digits(value: Callable[[int], ColumnElement[Any]]) -> ColumnElement[Any]:
    """`value(digits)` for the row's currency: one CASE over the currencies whose minor-unit
    digits are not 2, the common two-digit case first (most rows take that branch)."""
    groups = currencies_by_digits()
    other = [code for codes in groups.values() for code in codes]
    whens = [(CURRENCY.not_in(other), value(2))]
    whens += [(CURRENCY.in_(codes), value(digits)) for digits, codes in groups.items()]
    return case(*whens)


def _sql_money(amount: Any) -> ColumnElement[Any]:
    """PostgreSQL: minor units as `MoneyFormat.plain` writes them: 4550 -> 45.50,
    -5 -> -0.05, JPY -1200 -> -1200.

    The amount times its currency's minor unit (a CASE over the currencies whose digits are
    not 2; most rows take the first branch) is an exact numeric whose scale is the unit's,
    and numeric's text is exactly that plain decimal. One multiplication and the type's own
    output cost less than sign, division, modulo and padding as text (docs/performance.md).
    (SQLite writes money as printf pieces of its record: `_sqlite_money_piece`.)"""
    return _sql_text(cast(amount * by_currency_digits(_sql_minor_unit), Text))


def _sql_datetime(moment: Any, dialect: SqlDialect) -> ColumnElement[Any]:
    """`utc_iso` in SQL: ISO 8601 in UTC with "T", microseconds only when not zero, +00:00."""
    if dialect == "sqlite":
        # Stored as SQLAlchemy's naive UTC text, "YYYY-MM-DD HH:MM:SS.ffffff".
        iso = func.replace(func.replace(moment, " ", "T"), ".000000", "")
        return _sql_text(_sql_text(iso) + "+00:00")
    # A whole second is the type's own ISO text: `_write_csv_copy` sets the session's TimeZone
    # to UTC and DateStyle to ISO, so it reads "YYYY-MM-DD HH:MM:SS+00". The output trims a
    # fraction's trailing zeros, which `utc_iso` keeps (".120000"), so a fraction takes
    # to_char, which is slower (docs/performance.md).
    whole_second = func.date_trunc("second", moment) == moment
    as_text = _sql_text(func.replace(cast(moment, Text), " ", "T")) + ":00"
    utc = func.timezone("UTC", moment)
    fraction = _sql_text(func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US')) + "+00:00"
    return _sql_text(case((whole_second, as_text), else_=fraction))


def _sql_cell(column: Column, dialect: SqlDialect) -> ColumnElement[Any]:
    """One column's CSV cell as text (NULL where the csv module writes nothing)."""
    text_cell = _sql_text_sqlite if dialect == "sqlite" else _sql_text_pg
    value = column.exprs[0]
    if column.kind == "money":
        if dialect == "sqlite":
            raise ValueError("SQLite money cells are printf pieces of the record")
        return _sql_money(value)
    if column.kind == "datetime":
        return _sql_datetime(value, dialect)
    if column.kind == "date":
        if dialect == "sqlite":
            return value  # stored as ISO text already
        return _sql_text(cast(value, Text))  # DateStyle ISO (`_write_csv_copy`)
    if column.kind == "billed_item":
        kind, ident = column.exprs
        joined = case((ident.is_(None), kind), else_=_sql_text(kind) + ":" + cast(ident, Text))
        # ":<digits>" neither starts a formula nor needs quotes: `kind` decides both.
        return text_cell(joined, kind)
    if column.kind == "bool":
        if column.nullable:
            return _sql_text(case((value.is_(None), null()), (value, "true"), else_="false"))
        return _sql_text(case((value, "true"), else_="false"))
    if column.kind == "text":
        return text_cell(value, value)
    return value  # integers: the database's own decimal text


def csv_sql_cells(columns: Sequence[Column]) -> list[ColumnElement[Any]]:
    """PostgreSQL: the cells of `csv_row_maker` as text (Currency last as there), for COPY."""
    cells: list[ColumnElement[Any]] = [
        _sql_cell(column, "postgresql").label(f"f{index}") for index, column in enumerate(columns)
    ]
    if has_money(columns):
        cells.append(CURRENCY.label("currency"))
    return cells


def _sqlite_money_piece(amount: Any, digits: int) -> tuple[str, list[ColumnElement[Any]]]:
    """A money cell of a SQLite record as a printf piece and its arguments, in integers."""
    if digits == 0:
        return "%d", [amount]
    divisor = _sql_int(10**digits)
    sign = case((amount < _sql_int(0), "-"), else_="")
    magnitude = func.abs(amount)
    pieces = [sign, _sql_op(magnitude, "/", divisor), _sql_op(magnitude, "%", divisor)]
    return f"%s%d.%0{digits}d", pieces


def _sqlite_record(columns: Sequence[Column], digits: int | None) -> ColumnElement[Any]:
    """printf of the record's cells; money in a currency of `digits` digits (None: no money).
    printf's %s writes NULL as nothing, as the csv module does."""
    pieces: list[str] = []
    arguments: list[ColumnElement[Any]] = []
    for column in columns:
        if column.kind == "money" and digits is not None:
            piece, values = _sqlite_money_piece(column.exprs[0], digits)
        else:
            piece, values = "%s", [_sql_cell(column, "sqlite")]
        pieces.append(piece)
        arguments.extend(values)
    if digits is not None:
        pieces.append("%s")
        arguments.append(CURRENCY)
    record: ColumnElement[Any] = func.printf(",".join(pieces), *arguments)
    return record


def csv_sql_record(columns: Sequence[Column]) -> ColumnElement[Any]:
    """SQLite: the whole CSV record of a row, without its line end, exactly as the csv module
    writes `csv_row_maker`'s cells. With money, one CASE over the row's currency picks the
    record's layout (most rows take the first branch), instead of one per money cell."""
    record: ColumnElement[Any]
    if has_money(columns):
        record = by_currency_digits(lambda digits: _sqlite_record(columns, digits))
    else:
        record = _sqlite_record(columns, None)
        if len(columns) == 1:
            # A record of one empty field is written as "" (else it would be a blank line).
            record = func.ifnull(func.nullif(record, ""), '""')
    labelled: ColumnElement[Any] = _sql_text(record).label("record")
    return labelled
