"""DuckDB reading the bench's own database and writing the flat CSV with the same cell formats.

A second floor for the flat CSV export (issue 11): DuckDB attaches the SQLite file or the
PostgreSQL database through its scanner extensions (the PyPI wheels of the `bench` dependency
group, so it works offline), runs the flat report's joins for the account in id order, renders
every cell as the export does (the formula guard, CRLF line breaks, money as a plain decimal
of its currency's digits, date-times ISO 8601 in UTC, booleans as true/false) and writes the
file with its own CSV writer. `check_cells` compares its first rows with the export's.
"""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path
from typing import Any

import duckdb

from ledgerline.reports.columns import CATALOGS, CURRENCY_LABEL, FLAT, Column
from ledgerline.reports.kinds import FORMULA_START, currencies_by_digits

# Columns whose values come from a fixed list: not compared cell by cell.
FIXED_LIST_LABELS = frozenset({"Invoice status", "Type", CURRENCY_LABEL})
_JOINS = (
    "FROM src.line_items AS line_items "
    "JOIN src.invoices AS invoices ON invoices.id = line_items.invoice_id "
    "LEFT JOIN src.customers AS customers ON customers.id = invoices.customer_id "
    "LEFT JOIN src.venues AS venues ON venues.id = customers.venue_id"
)


def _extension(package: str, name: str) -> Path:
    """The extension file a `duckdb-extension-…` wheel installed (found, not imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{package} is not installed (the `bench` dependency group)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return next(folder.glob(f"extensions/*/{name}.duckdb_extension"))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _source(expr: Any) -> str:
    """`table.column` of a catalog expression (a column, possibly type-coerced)."""
    column = getattr(expr, "clause", expr)
    return f"{column.table.name}.{column.name}"


def _text(value: str) -> str:
    starts = ", ".join(f"chr({ord(char)})" for char in FORMULA_START)
    guarded = f"(CASE WHEN left({value}, 1) IN ({starts}) THEN '''' || {value} ELSE {value} END)"
    crlf = (
        f"replace(replace(replace({guarded}, chr(13) || chr(10), chr(10)), chr(13), chr(10)),"
        " chr(10), chr(13) || chr(10))"
    )
    return (
        f"(CASE WHEN {value} IS NULL OR {value} = '' THEN NULL "
        f"WHEN contains({value}, chr(13)) OR contains({value}, chr(10)) THEN {crlf} "
        f"ELSE {guarded} END)"
    )


def _plain(amount: str, digits: int) -> str:
    if digits == 0:
        return f"{amount}::VARCHAR"
    divisor = 10**digits
    return (
        f"((CASE WHEN {amount} < 0 THEN '-' ELSE '' END) || (abs({amount}) // {divisor})::VARCHAR"
        f" || '.' || lpad((abs({amount}) % {divisor})::VARCHAR, {digits}, '0'))"
    )


def _money(amount: str, currency: str) -> str:
    whens = " ".join(
        f"WHEN {currency} IN ({', '.join(_literal(code) for code in codes)}) "
        f"THEN {_plain(amount, digits)}"
        for digits, codes in currencies_by_digits().items()
    )
    return f"(CASE {whens} ELSE {_plain(amount, 2)} END)"


def _moment(value: str) -> str:
    moment = f"{value}::TIMESTAMP"
    return (
        f"(CASE WHEN {moment} = date_trunc('second', {moment}) "
        f"THEN strftime({moment}, '%Y-%m-%dT%H:%M:%S+00:00') "
        f"ELSE strftime({moment}, '%Y-%m-%dT%H:%M:%S.%f+00:00') END)"
    )


def _cell(column: Column) -> str:
    if column.kind == "billed_item":
        kind, ident = (_source(expr) for expr in column.exprs)
        joined = f"(CASE WHEN {ident} IS NULL THEN {kind} ELSE {kind} || ':' || {ident} END)"
        return _text(joined)
    value = _source(column.exprs[0])
    if column.kind == "money":
        return _money(value, "line_items.currency")
    if column.kind == "text":
        return _text(value)
    if column.kind == "datetime":
        return _moment(value)
    if column.kind == "date":
        return f"strftime({value}, '%Y-%m-%d')"
    if column.kind == "bool":
        return f"(CASE WHEN {value}::BOOLEAN THEN 'true' ELSE 'false' END)"
    return f"{value}::VARCHAR"


def flat_query(account: int) -> str:
    """The flat report's default columns (every column, and the currency) in id order."""
    columns = CATALOGS[FLAT].columns
    cells = [f'{_cell(column)} AS "{column.label}"' for column in columns]
    cells.append(f'line_items.currency AS "{CURRENCY_LABEL}"')
    return (
        f"SELECT {', '.join(cells)} {_JOINS} "
        f"WHERE line_items.account_id = {int(account)} ORDER BY line_items.public_id"
    )


def write_flat_csv(database: str, database_url: str, account: int, out: Path) -> None:
    """DuckDB: attach, run the flat query, COPY it to `out` as CSV with a header."""
    connection = duckdb.connect()
    try:
        if database == "sqlite":
            extension = _extension("duckdb_extension_sqlite_scanner", "sqlite_scanner")
            source = database_url.split("///", 1)[1]
            kind = "sqlite"
        else:
            extension = _extension("duckdb_extension_postgres_scanner", "postgres_scanner")
            source = database_url.replace("postgresql+psycopg://", "postgresql://")
            kind = "postgres"
        connection.execute(f"LOAD {_literal(str(extension))}")
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute("SET enable_progress_bar = false")
        connection.execute(f"ATTACH {_literal(source)} AS src (TYPE {kind}, READ_ONLY)")
        connection.execute(
            f"COPY ({flat_query(account)}) TO {_literal(str(out))} (FORMAT csv, HEADER)"
        )
    finally:
        connection.close()


def check_cells(ours: bytes, theirs: Path, rows: int = 2000) -> int:
    """The first `rows` rows of both files hold the same cells (columns from a fixed list
    skipped); the number of cells compared. Raises AssertionError on the first difference."""
    mine = csv.reader(io.StringIO(ours.decode("utf-8"), newline=""))
    with theirs.open(newline="", encoding="utf-8") as handle:
        other = csv.reader(handle)
        header = next(mine)
        if next(other) != header:
            raise AssertionError("DuckDB's header differs from the export's")
        compared = [index for index, label in enumerate(header) if label not in FIXED_LIST_LABELS]
        cells = 0
        for number, (left, right) in enumerate(zip(mine, other, strict=False)):
            if number >= rows:
                break
            for index in compared:
                if left[index] != right[index]:
                    raise AssertionError(
                        f"row {number + 1}, {header[index]!r}: {left[index]!r} != {right[index]!r}"
                    )
                cells += 1
    return cells
