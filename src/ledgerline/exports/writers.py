"""Export files: one consistent snapshot, rows streamed in batches as CSV or JSON bytes.

Rows come from a server-side cursor (`stream_results`) `BATCH_ROWS` at a time and are written
as they arrive, so memory stays bounded however many rows a report has. Each column's
formatter is chosen once per export (see `reports.columns`), not per row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from sqlalchemy import Connection, Engine, text

from ledgerline.reports.columns import csv_header, csv_row_maker, json_row_maker
from ledgerline.reports.query import ReportParams, rows_statement

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
FILE_EXTENSIONS = {"csv": "csv", "json": "json"}
BATCH_ROWS = 5000


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
) -> int:
    """Stream every row of the report into `out` in `params.format`; return the row count.

    `on_progress(rows_done)` is called after each batch.
    """
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
