"""A report's rows in each format, composed from the catalog and the kinds table.

A row from `query.rows_statement` holds each selected column's expressions in order, then
the currency. Exports write millions of rows, so the per-row work is kept to one compiled
function per column list: it is generated once from the columns' kinds and positions (each
kind's source comes from `kinds.KINDS`; only integers and helper names go into it, never
client input), and each cell costs one indexing and at most one helper call. JSON rows are
written as text directly (the /data endpoint embeds the same text), so /data rows and JSON
exports cannot diverge.

The CSV fast path's SQL is composed here the same way from each kind's SQL rendering: one
text cell per column for PostgreSQL's COPY, one finished record per row for SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Text, func, literal

from ledgerline.reports.columns import CURRENCY, CURRENCY_LABEL, Column
from ledgerline.reports.kinds import (
    KINDS,
    Piece,
    PyCell,
    PySlot,
    SqlDialect,
    SqlSlot,
    by_currency_digits,
    json_text,
    sql_text,
)

RowMaker = Callable[[Sequence[Any]], Any]


def column_positions(columns: Sequence[Column]) -> tuple[list[int], int]:
    """Where each column's first expression sits in a `rows_statement` row, and where the
    currency sits (after the last column's expressions)."""
    positions: list[int] = []
    at = 0
    for column in columns:
        positions.append(at)
        at += len(column.exprs)
    return positions, at


def _py_slots(columns: Sequence[Column]) -> list[PySlot]:
    """Each column's place in a row; the currency follows the last column's expressions."""
    positions, currency_at = column_positions(columns)
    return [
        PySlot(position, currency_at, column.nullable)
        for column, position in zip(columns, positions, strict=True)
    ]


def _compile(source: str, cells: Iterable[PyCell], zone: str | None, **constants: Any) -> RowMaker:
    # The source holds only integer positions and the cells' helper names (see the note at
    # the top); eval makes one flat function instead of a call per cell. The helpers are
    # made for the output time zone `zone` (None: UTC).
    helpers = {name: make(zone) for cell in cells for name, make in cell.helpers.items()}
    maker: RowMaker = eval(source, {**helpers, **constants})  # noqa: S307
    return maker


JsonLayout = list[str | int]


def json_layout(columns: Sequence[Column]) -> JsonLayout:
    """A JSON row's text as literal pieces and column indexes, in the order written: nested
    by the dot-notation keys ("invoice.due_date" -> {"invoice": {"due_date": …}}), columns
    sharing a parent written together (so not always in the order requested). The Python row
    maker and the database's row rendering are both made from it, so they nest alike."""
    tree: dict[str, Any] = {}
    for index, column in enumerate(columns):
        node = tree
        for part in column.path[:-1]:
            node = node.setdefault(part, {})
        node[column.path[-1]] = index

    layout: JsonLayout = []

    def write(node: dict[str, Any]) -> None:
        layout.append("{")
        for position, (key, value) in enumerate(node.items()):
            layout.append(("," if position else "") + json_text(key) + ":")
            if isinstance(value, int):
                layout.append(value)
            else:
                write(value)
        layout.append("}")

    write(tree)
    # adjacent literals joined: one piece between two values
    merged: JsonLayout = []
    for piece in layout:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged


def json_row_maker(
    columns: Sequence[Column], zone: str | None = None
) -> Callable[[Sequence[Any]], str]:
    """A function from a row to its JSON object text (`json_layout`): money as TeamUp money
    objects in the row's currency, dates and date-times ISO 8601 (date-times in the output
    time zone `zone`, None: UTC), absent values null."""
    cells = [KINDS[column.kind].json for column in columns]
    sources = [cell.source(slot) for cell, slot in zip(cells, _py_slots(columns), strict=True)]
    layout = json_layout(columns)
    text = "".join(piece.replace("%", "%%") if isinstance(piece, str) else "%s" for piece in layout)
    expressions = [sources[piece] for piece in layout if isinstance(piece, int)]
    source = f"lambda row: TEMPLATE % ({', '.join(expressions)},)"
    return _compile(source, cells, zone, TEMPLATE=text)


def has_money(columns: Sequence[Column]) -> bool:
    return any(column.kind == "money" for column in columns)


def appends_currency(columns: Sequence[Column]) -> bool:
    """A CSV gets a Currency column last whenever a money column is present, unless the
    currency is one of the requested columns already (a grouped report's `currency` key)."""
    return has_money(columns) and not any(column.exprs[0] is CURRENCY for column in columns)


def csv_header(columns: Sequence[Column]) -> list[str]:
    """Column labels; a Currency column is appended last whenever a money column is present
    (`appends_currency`)."""
    labels = [column.label for column in columns]
    return [*labels, CURRENCY_LABEL] if appends_currency(columns) else labels


def csv_row_maker(
    columns: Sequence[Column], zone: str | None = None
) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A function from a row to its CSV cells (see csv_header for the layout); date-times in
    the output time zone `zone` (None: UTC)."""
    cells = [KINDS[column.kind].csv for column in columns]
    slots = _py_slots(columns)
    sources = [cell.source(slot) for cell, slot in zip(cells, slots, strict=True)]
    if appends_currency(columns):
        sources.append(slots[0].currency)
    return _compile(f"lambda row: ({', '.join(sources)},)", cells, zone)


# --- CSV rendered by the database (the export fast path; see `kinds` for the cells) ----------


def _sql_slot(
    column: Column,
    digits: int | None = None,
    currency: ColumnElement[Any] = CURRENCY,
    zone: str | None = None,
) -> SqlSlot:
    return SqlSlot(column.exprs, column.nullable, currency, digits, zone)


def database_renders(dialect: str, columns: Sequence[Column], zone: str | None) -> bool:
    """Whether the database can render these columns' records in the output time zone `zone`
    (None: UTC): PostgreSQL always; SQLite, which has no time zone database, only when no
    date-time is selected or the zone is UTC. Otherwise the generic writer renders them."""
    if dialect != "sqlite" or zone is None:
        return True
    return not any(column.kind == "datetime" for column in columns)


def csv_sql_cells(
    columns: Sequence[Column], currency: ColumnElement[Any] = CURRENCY, zone: str | None = None
) -> list[ColumnElement[Any]]:
    """PostgreSQL: the cells of `csv_row_maker` as text (Currency last as there), for COPY.
    `currency`: the row's currency (its report's `Source.currency`); `zone`: the output time
    zone (None: UTC)."""
    cells: list[ColumnElement[Any]] = [
        KINDS[column.kind].postgresql(_sql_slot(column, None, currency, zone)).label(f"f{index}")
        for index, column in enumerate(columns)
    ]
    if appends_currency(columns):
        cells.append(currency.label("currency"))
    return cells


def _sqlite_record(
    columns: Sequence[Column],
    digits: int | None,
    currency: ColumnElement[Any] = CURRENCY,
    zone: str | None = None,
) -> ColumnElement[Any]:
    """printf of the record's cells; money in a currency of `digits` digits (None: no money).
    printf's %s writes NULL as nothing, as the csv module does."""
    pieces: list[str] = []
    arguments: list[ColumnElement[Any]] = []
    for column in columns:
        piece, values = KINDS[column.kind].sqlite(_sql_slot(column, digits, currency, zone))
        pieces.append(piece)
        arguments.extend(values)
    if digits is not None and appends_currency(columns):
        pieces.append("%s")
        arguments.append(currency)
    record: ColumnElement[Any] = func.printf(",".join(pieces), *arguments)
    return record


def csv_sql_record(
    columns: Sequence[Column], currency: ColumnElement[Any] = CURRENCY, zone: str | None = None
) -> ColumnElement[Any]:
    """SQLite: the whole CSV record of a row, without its line end, exactly as the csv module
    writes `csv_row_maker`'s cells. With money, one CASE over the row's currency picks the
    record's layout (most rows take the first branch), instead of one per money cell."""
    record: ColumnElement[Any]
    if has_money(columns):
        record = by_currency_digits(
            currency, lambda digits: _sqlite_record(columns, digits, currency, zone)
        )
    else:
        record = _sqlite_record(columns, None, currency, zone)
        if len(columns) == 1:
            # A record of one empty field is written as "" (else it would be a blank line).
            record = func.ifnull(func.nullif(record, ""), '""')
    labelled: ColumnElement[Any] = sql_text(record).label("record")
    return labelled


# --- JSON rendered by the database ------------------------------------------------------------

# SQLite's printf takes at most 127 arguments (SQLITE_MAX_FUNCTION_ARG); a longer row is made
# of several printf calls joined.
_PRINTF_ARGUMENTS = 100


def _printf(pieces: Sequence[Piece]) -> ColumnElement[Any]:
    calls: list[ColumnElement[Any]] = []
    formats: list[str] = []
    arguments: list[ColumnElement[Any]] = []
    for piece, values in pieces:
        if arguments and len(arguments) + len(values) > _PRINTF_ARGUMENTS:
            calls.append(func.printf("".join(formats), *arguments))
            formats, arguments = [], []
        formats.append(piece)
        arguments.extend(values)
    calls.append(func.printf("".join(formats), *arguments))
    joined = sql_text(calls[0])
    for call in calls[1:]:
        joined = sql_text(joined + call)
    return joined


def _sqlite_json_row(
    columns: Sequence[Column],
    layout: JsonLayout,
    digits: int | None,
    currency: ColumnElement[Any],
    zone: str | None,
) -> ColumnElement[Any]:
    pieces: list[Piece] = []
    for piece in layout:
        if isinstance(piece, str):
            pieces.append((piece.replace("%", "%%"), []))
        else:
            column = columns[piece]
            slot = _sql_slot(column, digits, currency, zone)
            pieces.append(KINDS[column.kind].json_sqlite(slot))
    return _printf(pieces)


def json_sql_object(
    columns: Sequence[Column],
    dialect: SqlDialect,
    currency: ColumnElement[Any] = CURRENCY,
    zone: str | None = None,
) -> ColumnElement[Any]:
    """One row's JSON object text, made by the database: the very text `json_row_maker`
    makes of the row (tests/reports/test_json_fast_path.py). A JSON array's element and a
    one-object-per-line record alike; the writers only join them.

    SQLite: printf of the pieces (with money, one CASE over the row's currency picks the
    layout for its digits, as `csv_sql_record` does). PostgreSQL: the pieces joined with
    `||`; its UTC date-times need the session's TimeZone UTC and DateStyle ISO. `zone`: the
    output time zone of date-times (None: UTC; see `database_renders`)."""
    layout = json_layout(columns)
    record: ColumnElement[Any]
    if dialect == "sqlite":
        if has_money(columns):
            record = by_currency_digits(
                currency,
                lambda digits: _sqlite_json_row(columns, layout, digits, currency, zone),
            )
        else:
            record = _sqlite_json_row(columns, layout, None, currency, zone)
    else:
        parts: list[ColumnElement[Any]] = [
            literal(piece, Text)
            if isinstance(piece, str)
            else KINDS[columns[piece].kind].json_postgresql(
                _sql_slot(columns[piece], None, currency, zone)
            )
            for piece in layout
        ]
        record = sql_text(parts[0])
        for part in parts[1:]:
            record = sql_text(record + part)
    labelled: ColumnElement[Any] = sql_text(record).label("record")
    return labelled
