"""Export files: one consistent snapshot, rows streamed in batches as CSV or JSON bytes.

Rows come from a server-side cursor (`stream_results`) `BATCH_ROWS` at a time and are written
as they arrive, so memory stays bounded however many rows a report has. Each column's
formatter is chosen once per export (see `reports.rendering`), not per row.

CSV takes a fast path whenever it applies: the database renders the CSV and Python only moves
bytes. SQLite makes each whole record (`reports.rendering.csv_sql_record`), fetched as bytes on
the raw DBAPI cursor; PostgreSQL renders each cell (`csv_sql_cells`) and `COPY (…) TO STDOUT`
streams the records. Its bytes equal the generic writer's (tests/reports/test_csv_fast_path.py);
`fast=False` forces the generic writer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from sqlalchemy import Connection, Engine, Select, text

from ledgerline.reports.kinds import SqlDialect
from ledgerline.reports.query import ReportParams, rows_statement
from ledgerline.reports.rendering import (
    csv_header,
    csv_row_maker,
    csv_sql_cells,
    csv_sql_record,
    has_money,
    json_row_maker,
)

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
FILE_EXTENSIONS = {"csv": "csv", "json": "json"}
BATCH_ROWS = 5000
# The fast path's batches: rows fetched from SQLite a time, bytes of COPY records a write.
FAST_BATCH_ROWS = 20000
FAST_CHUNK_BYTES = 4 << 20


@contextmanager
def open_snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction, one consistent snapshot for `count_rows` then `write_export`.

    PostgreSQL: REPEATABLE READ, READ ONLY (the snapshot is taken at the first query).
    SQLite (WAL): a deferred transaction whose read snapshot starts at its first query and
    holds until it ends, while writers carry on.
    """
    if engine.dialect.name == "postgresql":
        connection = engine.connect().execution_options(isolation_level="REPEATABLE READ")
        with connection as conn, conn.begin():
            conn.execute(text("SET TRANSACTION READ ONLY"))
            yield conn
        return
    with engine.connect() as conn, conn.begin():
        yield conn


def write_export(
    conn: Connection,
    account_id: int,
    params: ReportParams,
    out: BinaryIO,
    on_progress: Callable[[int], None],
    *,
    fast: bool = True,
) -> int:
    """Stream every row of the report into `out` in `params.format`; return the row count.

    `on_progress(rows_done)` is called after each batch. CSV is written by the database
    (`_write_csv_fast`) whenever that applies, unless `fast` is False.
    """
    if fast and params.format == "csv":
        dialect = _fast_csv_dialect(conn, params)
        if dialect == "sqlite":
            return _write_csv_sqlite(conn, account_id, params, out, on_progress)
        if dialect == "postgresql":
            return _write_csv_copy(conn, account_id, params, out, on_progress)
    result = conn.execute(
        rows_statement(account_id, params),
        execution_options={"stream_results": True, "yield_per": BATCH_ROWS},
    )
    batches: Iterator[Any] = result.partitions(BATCH_ROWS)
    if params.format == "json":
        return _write_json(batches, params, out, on_progress)
    return _write_csv(batches, params, out, on_progress)


def _write_csv(
    batches: Iterator[Any],
    params: ReportParams,
    out: BinaryIO,
    on_progress: Callable[[int], None],
) -> int:
    """RFC 4180: CRLF line ends, quotes only where needed, UTF-8 without a BOM."""
    columns = params.selected
    make_row = csv_row_maker(columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(csv_header(columns))
    rows_done = 0
    for batch in batches:
        writer.writerows(map(make_row, batch))
        rows_done += len(batch)
        out.write(buffer.getvalue().encode("utf-8"))
        buffer.seek(0)
        buffer.truncate()
        on_progress(rows_done)
    out.write(buffer.getvalue().encode("utf-8"))
    return rows_done


def _write_json(
    batches: Iterator[Any],
    params: ReportParams,
    out: BinaryIO,
    on_progress: Callable[[int], None],
) -> int:
    """One JSON array, a row a line, each row the very text a `/data` row is made of."""
    make_row = json_row_maker(params.selected)
    rows_done = 0
    out.write(b"[")
    for batch in batches:
        chunk = ",\n".join(map(make_row, batch))
        out.write(b",\n" if rows_done else b"\n")
        out.write(chunk.encode("utf-8"))
        rows_done += len(batch)
        on_progress(rows_done)
    out.write(b"\n]\n" if rows_done else b"]\n")
    return rows_done


# --- CSV rendered by the database ------------------------------------------------------------


def _fast_csv_dialect(conn: Connection, params: ReportParams) -> SqlDialect | None:
    """Which fast path applies to this export, if any."""
    name = conn.dialect.name
    if name == "sqlite":
        return "sqlite" if conn.dialect.driver == "pysqlite" else None
    if name != "postgresql" or conn.dialect.driver != "psycopg":
        return None
    columns = params.selected
    if len(columns) == 1 and not has_money(columns):
        # A record of one empty field (NULL or ""): the csv module writes "" where COPY
        # writes an empty line (and COPY quotes a lone \.); left to the generic writer.
        return None
    driver = conn.connection.driver_connection
    if driver is None or driver.info.encoding != "utf-8":
        return None
    return "postgresql"


def _formatted_sql(conn: Connection, account_id: int, params: ReportParams) -> str:
    """The report's SELECT rendering CSV in the database, parameters inlined: one text cell
    per column on PostgreSQL, one finished record per row on SQLite.

    Every value inlined is one the request parsing validated (an integer, a date, a
    date-time, a status from the fixed list), rendered by SQLAlchemy's literal quoting.
    """
    statement: Select[Any] = rows_statement(account_id, params)
    currency = params.catalog.source.currency
    if conn.dialect.name == "sqlite":
        selected = [csv_sql_record(params.selected, currency)]
    else:
        selected = csv_sql_cells(params.selected, currency)
    formatted = statement.with_only_columns(*selected, maintain_column_froms=False)
    compiled = formatted.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    return str(compiled)


def _header_bytes(params: ReportParams) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(csv_header(params.selected))
    return buffer.getvalue().encode("utf-8")


def _write_csv_sqlite(
    conn: Connection,
    account_id: int,
    params: ReportParams,
    out: BinaryIO,
    on_progress: Callable[[int], None],
) -> int:
    """SQLite: the records, made by the database, fetched as UTF-8 bytes in large batches on
    the snapshot's own DBAPI connection and joined with CRLF: no Python object per cell."""
    sql = _formatted_sql(conn, account_id, params)
    driver = conn.connection.driver_connection
    assert driver is not None
    out.write(_header_bytes(params))
    rows_done = 0
    text_factory = driver.text_factory
    driver.text_factory = bytes  # the database's UTF-8, never decoded then encoded again
    cursor = driver.cursor()
    try:
        cursor.execute(sql)
        while batch := cursor.fetchmany(FAST_BATCH_ROWS):
            out.write(b"\r\n".join([record for (record,) in batch]))
            out.write(b"\r\n")
            rows_done += len(batch)
            on_progress(rows_done)
    finally:
        cursor.close()
        driver.text_factory = text_factory
    return rows_done


def _write_csv_copy(
    conn: Connection,
    account_id: int,
    params: ReportParams,
    out: BinaryIO,
    on_progress: Callable[[int], None],
) -> int:
    """PostgreSQL: `COPY (formatted SELECT) TO STDOUT` on the snapshot's own connection.

    The server sends one CopyData message per record, so records are counted exactly. COPY
    ends records with LF; text cells hold no CR and their line breaks are LF (see
    `reports.kinds`), so one `replace` makes every line end CRLF, as the csv module writes.
    """
    sql = _formatted_sql(conn, account_id, params)
    driver = conn.connection.driver_connection
    assert driver is not None
    out.write(_header_bytes(params))
    rows_done = 0
    # Each record is appended (copied) at once, so libpq's buffer is freed record by record.
    pending = bytearray()
    with driver.cursor() as cursor:
        # One round trip, reverted when the snapshot ends. The renderings make a large
        # expression: JIT-compiling it cost 3-7 s per 1M rows more than it saved (measured,
        # docs/reports.md). The date-time renderings read the type's own text in UTC
        # (`reports.kinds`).
        cursor.execute(
            "SET LOCAL jit = off; SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'"
        )
        with cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
            for record in copy:
                pending += record
                rows_done += 1
                if len(pending) >= FAST_CHUNK_BYTES:
                    out.write(pending.replace(b"\n", b"\r\n"))
                    pending.clear()
                    on_progress(rows_done)
        out.write(pending.replace(b"\n", b"\r\n"))
        copied = cursor.rowcount
    if copied >= 0:
        rows_done = copied
    on_progress(rows_done)
    return rows_done
