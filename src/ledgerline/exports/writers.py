"""Export files: one consistent snapshot, rows streamed in batches in the requested format.

Each format is one entry of `EXPORT_FORMATS` (content type, extension, writer): CSV, JSON
(an array), ndjson (the same records a line each), XLSX (`exports.xlsx`) and Parquet
(`exports.parquet`); `compression=gzip` wraps the text formats' output in one gzip stream.

Rows come from a server-side cursor (`stream_results`) `BATCH_ROWS` at a time and are written
as they arrive, so memory stays bounded however many rows a report has. Each column's
formatter is chosen once per export (see `reports.rendering`), not per row.

CSV and JSON take a fast path whenever it applies: the database renders the file's records
and Python only moves bytes. SQLite makes each whole record (`reports.rendering.csv_sql_record`,
`json_sql_object`), fetched as bytes on the raw DBAPI cursor; PostgreSQL renders each CSV cell
(`csv_sql_cells`) or each JSON object (`json_sql_object`) and `COPY (…) TO STDOUT` streams the
records. Their bytes equal the generic writer's (tests/reports/test_csv_fast_path.py,
tests/reports/test_json_fast_path.py); `fast=False` forces the generic writer.

A JSON file is its records framed (`Framing`): an array's brackets and separators here; a
one-object-per-line format would frame the very same records with line ends alone.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, BinaryIO, cast

from sqlalchemy import Connection, Dialect, Engine, Select, text

from ledgerline.reports.kinds import SqlDialect
from ledgerline.reports.query import FORMATS, ReportParams, rows_statement
from ledgerline.reports.rendering import (
    csv_header,
    csv_row_maker,
    csv_sql_cells,
    csv_sql_record,
    database_renders,
    has_money,
    json_row_maker,
    json_sql_object,
)

BATCH_ROWS = 5000
# The fast path's batches: rows fetched from SQLite a time, bytes of COPY records a write.
FAST_BATCH_ROWS = 20000
# JSON records are ~6x a CSV record's bytes (keys, money objects), so a batch holds fewer:
# 20,000 rows of the flat report's JSON were 26 MB held twice (the fetched batch and its join).
FAST_JSON_BATCH_ROWS = 4000
FAST_CHUNK_BYTES = 4 << 20
# gzip's level 6 (zlib's default): level 9 took ~2x the CPU for a file ~3% smaller.
GZIP_LEVEL = 6


@dataclass(frozen=True)
class Framing:
    """How a file of one-line records is put together: what opens it, what comes before its
    first record and between two records, and what closes it (with and without records)."""

    opening: bytes
    first: bytes
    between: bytes
    closing: bytes
    closing_empty: bytes


# One JSON array, a row a line: "[\n{…},\n{…}\n]\n"; an empty one is "[]\n".
JSON_ARRAY = Framing(b"[", b"\n", b",\n", b"\n]\n", b"]\n")
# JSON Lines (ndjson): each record and a line end; an empty file is empty.
JSON_LINES = Framing(b"", b"", b"\n", b"\n", b"")


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


Progress = Callable[[int], None]


@dataclass(frozen=True)
class ExportRun:
    """One export being written: the snapshot's connection, the account, the parameters,
    where the bytes go, the progress callback and whether a database may render records."""

    conn: Connection
    account_id: int
    params: ReportParams
    out: BinaryIO
    on_progress: Progress
    fast: bool

    def batches(self, size: int) -> Iterator[Any]:
        """The report's raw rows (`rows_statement`) from a server-side cursor, `size` a batch."""
        result = self.conn.execute(
            rows_statement(self.account_id, self.params),
            execution_options={"stream_results": True, "yield_per": size},
        )
        return result.partitions(size)

    @property
    def zone(self) -> str:
        """The output time zone of the file's date-times."""
        return self.params.output_timezone or "UTC"


FormatWriter = Callable[[ExportRun], int]


@dataclass(frozen=True)
class ExportFormat:
    """One file format: what it is called on the wire and on disk, and its writer."""

    content_type: str
    extension: str
    write: FormatWriter


def write_export(
    conn: Connection,
    account_id: int,
    params: ReportParams,
    out: BinaryIO,
    on_progress: Progress,
    *,
    fast: bool = True,
) -> int:
    """Stream every row of the report into `out` in `params.format` (gzip-compressed when
    `params.compression` says so); return the row count.

    `on_progress(rows_done)` is called after each batch. CSV, JSON and ndjson records are
    rendered by the database whenever that applies (`_fast_csv_dialect`, `_fast_dialect`),
    unless `fast` is False, or the database cannot render the output time zone
    (`database_renders`)."""
    fast = fast and database_renders(conn.dialect.name, params.selected, params.output_timezone)
    write = EXPORT_FORMATS[params.format].write
    if params.compression == "gzip":
        # mtime 0: the same rows make the same bytes (and the same sha256) on every run.
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as zipped:
            return write(
                ExportRun(conn, account_id, params, cast(BinaryIO, zipped), on_progress, fast)
            )
    return write(ExportRun(conn, account_id, params, out, on_progress, fast))


def file_type(params: ReportParams) -> tuple[str, str]:
    """The export file's extension and content type (a gzip file is named `….csv.gz`)."""
    file_format = EXPORT_FORMATS[params.format]
    if params.compression == "gzip":
        return f"{file_format.extension}.gz", "application/gzip"
    return file_format.extension, file_format.content_type


def _csv_export(run: ExportRun) -> int:
    dialect = _fast_csv_dialect(run.conn, run.params) if run.fast else None
    if dialect == "sqlite":
        return _write_csv_sqlite(run.conn, run.account_id, run.params, run.out, run.on_progress)
    if dialect == "postgresql":
        return _write_csv_copy(run.conn, run.account_id, run.params, run.out, run.on_progress)
    return _write_csv(run.batches(BATCH_ROWS), run.params, run.out, run.on_progress)


def _framed_json(framing: Framing) -> FormatWriter:
    """A JSON format: one JSON object a row (the text of a `/data` row), framed."""

    def write(run: ExportRun) -> int:
        dialect = _fast_dialect(run.conn) if run.fast else None
        if dialect is not None:
            sql = json_records_sql(run.conn.dialect, run.account_id, run.params)
            records = _write_records_sqlite if dialect == "sqlite" else _write_records_copy
            return records(run.conn, sql, framing, run.out, run.on_progress)
        batches = run.batches(BATCH_ROWS)
        return _write_json(batches, run.params, run.out, run.on_progress, framing)

    return write


def _xlsx_export(run: ExportRun) -> int:
    """XLSX (`exports.xlsx`): assembled in a temporary directory, then copied to `out`."""
    from ledgerline.exports.xlsx import write_xlsx

    with tempfile.TemporaryDirectory(prefix="ledgerline-xlsx-") as directory:
        path = os.path.join(directory, "export.xlsx")
        batches = run.batches(BATCH_ROWS)
        rows = write_xlsx(batches, run.params.selected, run.zone, path, directory, run.on_progress)
        with open(path, "rb") as workbook:
            shutil.copyfileobj(workbook, run.out, FAST_CHUNK_BYTES)
    return rows


def _parquet_export(run: ExportRun) -> int:
    """Parquet (`exports.parquet`): written to a temporary file (its footer is written last
    and its writer seeks), then copied to `out`."""
    from ledgerline.exports.parquet import write_parquet

    with tempfile.TemporaryDirectory(prefix="ledgerline-parquet-") as directory:
        path = os.path.join(directory, "export.parquet")
        batches = run.batches(BATCH_ROWS)
        with open(path, "wb") as file:
            rows = write_parquet(batches, run.params.selected, run.zone, file, run.on_progress)
        with open(path, "rb") as file:
            shutil.copyfileobj(file, run.out, FAST_CHUNK_BYTES)
    return rows


def _write_csv(
    batches: Iterator[Any],
    params: ReportParams,
    out: BinaryIO,
    on_progress: Callable[[int], None],
) -> int:
    """RFC 4180: CRLF line ends, quotes only where needed, UTF-8 without a BOM."""
    columns = params.selected
    make_row = csv_row_maker(columns, params.output_timezone)
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
    framing: Framing = JSON_ARRAY,
) -> int:
    """One JSON object a row, each the very text a `/data` row is made of, framed."""
    make_row = json_row_maker(params.selected, params.output_timezone)
    between = framing.between.decode()
    rows_done = 0
    out.write(framing.opening)
    for batch in batches:
        chunk = between.join(map(make_row, batch))
        out.write(framing.between if rows_done else framing.first)
        out.write(chunk.encode("utf-8"))
        rows_done += len(batch)
        on_progress(rows_done)
    out.write(framing.closing if rows_done else framing.closing_empty)
    return rows_done


# --- CSV rendered by the database ------------------------------------------------------------


def _fast_dialect(conn: Connection) -> SqlDialect | None:
    """Which database renders records on this connection, if any: SQLite through the
    standard library's driver, PostgreSQL through psycopg with a UTF-8 client encoding."""
    name = conn.dialect.name
    if name == "sqlite":
        return "sqlite" if conn.dialect.driver == "pysqlite" else None
    if name != "postgresql" or conn.dialect.driver != "psycopg":
        return None
    driver = conn.connection.driver_connection
    if driver is None or driver.info.encoding != "utf-8":
        return None
    return "postgresql"


def _fast_csv_dialect(conn: Connection, params: ReportParams) -> SqlDialect | None:
    """Which CSV fast path applies to this export, if any."""
    dialect = _fast_dialect(conn)
    columns = params.selected
    if dialect == "postgresql" and len(columns) == 1 and not has_money(columns):
        # A record of one empty field (NULL or ""): the csv module writes "" where COPY
        # writes an empty line (and COPY quotes a lone \.); left to the generic writer.
        return None
    return dialect


def _inlined(dialect: Dialect, statement: Select[Any]) -> str:
    """`statement` as SQL text with its parameters inlined.

    Every value inlined is one the request parsing validated (an integer, a date, a
    date-time, a status from the fixed list), rendered by SQLAlchemy's literal quoting."""
    compiled = statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    return str(compiled)


# The rendered SQL of recent exports, by what it is made of: building and compiling it costs
# tens to hundreds of milliseconds (a CASE over the currencies in every money cell), a fixed
# cost that every export of the same report, columns, sort, filters and zone would pay again.
# It is compiled for a stand-in account, whose id is then replaced by the real one.
_ACCOUNT_STAND_IN = 9_007_199_254_740_881
_SQL_CACHE_SIZE = 128


def json_records_sql(dialect: Dialect, account_id: int, params: ReportParams) -> str:
    """The report's SELECT rendering one JSON object per row in the database (a record of an
    array or of one-object-per-line alike); PostgreSQL's needs `COPY_SESSION` first."""
    return _records_sql(dialect, "json", account_id, params)


def csv_records_sql(dialect: Dialect, account_id: int, params: ReportParams) -> str:
    """The report's SELECT rendering CSV in the database, parameters inlined: one text cell
    per column on PostgreSQL (for COPY), one finished record per row on SQLite."""
    return _records_sql(dialect, "csv", account_id, params)


def _records_sql(dialect: Dialect, output: str, account_id: int, params: ReportParams) -> str:
    key = json.dumps(params.to_json(), sort_keys=True)
    stand_in = str(_ACCOUNT_STAND_IN)
    if stand_in in key:  # a filter value that would be taken for the account: not cached
        return _render_records_sql(dialect, output, account_id, params)
    template = _cached_records_sql(dialect, output, key)
    return template.replace(stand_in, str(int(account_id)))


@lru_cache(maxsize=_SQL_CACHE_SIZE)
def _cached_records_sql(dialect: Dialect, output: str, params_key: str) -> str:
    params = ReportParams.from_json(json.loads(params_key))
    sql = _render_records_sql(dialect, output, _ACCOUNT_STAND_IN, params)
    if str(_ACCOUNT_STAND_IN) not in sql:
        raise RuntimeError("the rendered export SQL does not name its account")
    return sql


def _render_records_sql(
    dialect: Dialect, output: str, account_id: int, params: ReportParams
) -> str:
    statement: Select[Any] = rows_statement(account_id, params)
    currency = params.catalog.source.currency
    zone = params.output_timezone
    selected: list[Any]
    if output == "json":
        name: SqlDialect = "sqlite" if dialect.name == "sqlite" else "postgresql"
        selected = [json_sql_object(params.selected, name, currency, zone)]
    elif dialect.name == "sqlite":
        selected = [csv_sql_record(params.selected, currency, zone)]
    else:
        selected = csv_sql_cells(params.selected, currency, zone)
    return _inlined(dialect, statement.with_only_columns(*selected, maintain_column_froms=False))


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
    sql = csv_records_sql(conn.dialect, account_id, params)
    out.write(_header_bytes(params))
    rows_done = 0
    # closing(): the cursor and the connection's text factory are restored at once, even when
    # a write or `on_progress` (a canceled job) raises mid-way.
    with closing(_sqlite_record_batches(conn, sql, FAST_BATCH_ROWS)) as batches:
        for batch in batches:
            out.write(b"\r\n".join(batch))
            out.write(b"\r\n")
            rows_done += len(batch)
            on_progress(rows_done)
    return rows_done


def _sqlite_record_batches(
    conn: Connection, sql: str, size: int
) -> Generator[list[bytes], None, None]:
    """The one-column records of `sql`, `size` at a time, as the database's UTF-8 bytes (never
    decoded then encoded again), on the snapshot's own DBAPI connection."""
    driver = conn.connection.driver_connection
    assert driver is not None
    text_factory = driver.text_factory
    driver.text_factory = bytes
    cursor = driver.cursor()
    try:
        cursor.execute(sql)
        while batch := cursor.fetchmany(size):
            yield [record for (record,) in batch]
    finally:
        cursor.close()
        driver.text_factory = text_factory


# Set before a COPY of rendered records: one round trip, reverted when the snapshot ends. The
# renderings make a large expression: JIT-compiling it cost 3-7 s per 1M rows more than it
# saved (measured, docs/reports.md). The date-time renderings read the type's own text in
# UTC (`reports.kinds`).
COPY_SESSION = "SET LOCAL jit = off; SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'"


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
    sql = csv_records_sql(conn.dialect, account_id, params)
    driver = conn.connection.driver_connection
    assert driver is not None
    out.write(_header_bytes(params))
    rows_done = 0
    # Each record is appended (copied) at once, so libpq's buffer is freed record by record.
    pending = bytearray()
    with driver.cursor() as cursor:
        cursor.execute(COPY_SESSION)
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


# --- Records rendered by the database, framed (JSON) -------------------------------------------


def _write_records_sqlite(
    conn: Connection,
    sql: str,
    framing: Framing,
    out: BinaryIO,
    on_progress: Callable[[int], None],
) -> int:
    """SQLite: one record a row, made by the database, fetched as UTF-8 bytes in large
    batches on the snapshot's own DBAPI connection and framed."""
    out.write(framing.opening)
    rows_done = 0
    with closing(_sqlite_record_batches(conn, sql, FAST_JSON_BATCH_ROWS)) as batches:
        for batch in batches:
            out.write(framing.between if rows_done else framing.first)
            out.write(framing.between.join(batch))
            rows_done += len(batch)
            on_progress(rows_done)
    out.write(framing.closing if rows_done else framing.closing_empty)
    return rows_done


# COPY's CSV format with a quote and a delimiter that a rendered record never holds (JSON
# escapes every control character), so COPY writes each record exactly as rendered, LF after.
_COPY_VERBATIM = "(FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"


def _write_records_copy(
    conn: Connection,
    sql: str,
    framing: Framing,
    out: BinaryIO,
    on_progress: Callable[[int], None],
) -> int:
    """PostgreSQL: `COPY (SELECT record …) TO STDOUT` on the snapshot's own connection. A
    record holds no line break (JSON escapes them), so each LF COPY writes ends a record and
    one `replace` per chunk turns them into the framing's separators."""
    driver = conn.connection.driver_connection
    assert driver is not None
    out.write(framing.opening)
    rows_done = 0
    flushed = 0
    pending = bytearray()

    def flush() -> None:
        nonlocal flushed
        if not pending:
            return
        out.write(framing.between if flushed else framing.first)
        del pending[-1:]  # the last record's LF: what follows it is decided later
        out.write(pending.replace(b"\n", framing.between))
        pending.clear()
        flushed = rows_done
        on_progress(rows_done)

    with driver.cursor() as cursor:
        cursor.execute(COPY_SESSION)
        with cursor.copy(f"COPY ({sql}) TO STDOUT WITH {_COPY_VERBATIM}") as copy:
            for record in copy:
                pending += record
                rows_done += 1
                if len(pending) >= FAST_CHUNK_BYTES:
                    flush()
        flush()
    out.write(framing.closing if rows_done else framing.closing_empty)
    return rows_done


EXPORT_FORMATS: dict[str, ExportFormat] = {
    "csv": ExportFormat("text/csv; charset=utf-8", "csv", _csv_export),
    "json": ExportFormat("application/json", "json", _framed_json(JSON_ARRAY)),
    "ndjson": ExportFormat("application/x-ndjson", "ndjson", _framed_json(JSON_LINES)),
    "xlsx": ExportFormat(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", _xlsx_export
    ),
    "parquet": ExportFormat("application/vnd.apache.parquet", "parquet", _parquet_export),
}
if set(EXPORT_FORMATS) != set(FORMATS):
    raise RuntimeError("every report format needs exactly one export writer")
