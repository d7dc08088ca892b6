"""Every export format, opened by its own ecosystem's reader, holds the CSV's cells.

For each report (line items and invoices, flat and grouped) a real worker exports the
hostile data set (tests/reports/test_csv_fast_path.py: quotes, control characters, line
breaks, formula-like text, astral characters, money in currencies of 0, 2 and 3 digits,
a 17-digit amount, NULLs, date-times with and without microseconds) as CSV and as every
other format. Each file is read back with its reader (openpyxl, pyarrow, gzip and json)
and compared cell by cell with the CSV of the same parameters; `result.totals` is compared
with the sums the test computes from each file and, for the line items, from the test's
own inputs. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl.utils.escape import unescape

from ledgerline.db import engine_for
from ledgerline.jobs.queue import JobQueue
from ledgerline.models import LineItem
from ledgerline.reports.columns import CATALOGS, FLAT, GROUPED, INVOICES, INVOICES_GROUPED
from ledgerline.reports.kinds import csv_text
from ledgerline.reports.query import ReportParams, parse_report_params
from ledgerline.row_counts import rows_added
from tests.conftest import Api, Backend
from tests.jobs.conftest import download, wait_for_job
from tests.reports.conftest import Data
from tests.reports.conftest import data as data  # the fixture `nasty` builds on
from tests.reports.expected import DIGITS
from tests.reports.test_csv_fast_path import nasty as nasty  # the fixture

PATHS = {
    FLAT: "/reports/invoice_line_items",
    GROUPED: "/reports/invoice_line_items.grouped",
    INVOICES: "/reports/invoices",
    INVOICES_GROUPED: "/reports/invoices.grouped",
}


def _every_column(report: str, *, leave_out: Sequence[str] = ()) -> str:
    catalog = CATALOGS[report]
    keys = [column.key for column in (*catalog.columns, *catalog.extensions)]
    return ",".join(key for key in keys if key not in leave_out)


# The line items' description holds a 72,000-character text, longer than an XLSX cell
# holds: that export is a test of its own (test_a_text_longer_than_a_cell_fails_the_job).
CASES: list[tuple[str, dict[str, str]]] = [
    (FLAT, {"columns": _every_column(FLAT, leave_out=["description"]), "sort": "id"}),
    (
        GROUPED,
        {
            "columns": "type,invoice.status,invoice.paid_at_month,count,total_amount,"
            "total_tax_amount,total_discount_amount,total_gross_amount",
        },
    ),
    (INVOICES, {"columns": _every_column(INVOICES), "sort": "id"}),
    (INVOICES_GROUPED, {"columns": "status,payment_month,count,total_amount,tax_amount"}),
    (FLAT, {"columns": "id,type,invoice.due_date", "sort": "-id"}),  # no money at all
]
OTHER_FORMATS = ["ndjson", "xlsx", "parquet"]


def _export(api: Api, report: str, params: dict[str, str], **extra: str) -> dict[str, Any]:
    created = api.post(f"{PATHS[report]}/export", json={**params, **extra})
    assert created.status_code == 200, created.text
    job = wait_for_job(api, created.json()["job"])
    assert job["status"] == "succeeded", job
    return job


def _params(api: Api, report: str, raw: dict[str, str]) -> ReportParams:
    return parse_report_params(report, raw, timezone="Europe/London", for_export=True)


def _csv_cells(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))


# --- reading each format back as CSV cells -------------------------------------------------------


def _text_cell(value: str | None) -> str:
    """A text value as its CSV cell: the formula guard and CRLF line breaks (SPEC §5)."""
    return csv_text(value) if value else ""


def _xlsx_cell(value: Any, kind: str, csv_cell: str, digits: int | None) -> bool:
    """Whether an openpyxl value is the CSV cell's value."""
    if value is None:
        return csv_cell == ""
    if kind == "money":
        if isinstance(value, str):  # beyond a double's 15 digits: the exact decimal as text
            return Decimal(value) == Decimal(csv_cell) and len(value.replace("-", "")) > 15
        return Decimal(repr(value)) == Decimal(csv_cell)
    if kind in ("int", "ref", "count"):
        return isinstance(value, int) and str(value) == csv_cell
    if kind == "bool":
        return ("true" if value else "false") == csv_cell
    if kind == "date":
        return isinstance(value, dt.datetime) and value.date().isoformat() == csv_cell
    if kind == "datetime":
        # The wall clock of the CSV's instant in the output zone (the CSV's own offset); a
        # spreadsheet date-time is a fraction of a day, kept to the millisecond.
        expected = dt.datetime.fromisoformat(csv_cell).replace(tzinfo=None)
        return bool(abs(value - expected) <= dt.timedelta(milliseconds=1))
    return bool(_text_cell(unescape(value)) == csv_cell)


def _parquet_cell(value: Any, kind: str, csv_cell: str) -> bool:
    if value is None:
        return csv_cell == ""
    if kind == "money":
        return isinstance(value, Decimal) and value == Decimal(csv_cell)
    if kind in ("int", "ref", "count"):
        return isinstance(value, int) and str(value) == csv_cell
    if kind == "bool":
        return ("true" if value else "false") == csv_cell
    if kind == "date":
        return isinstance(value, dt.date) and value.isoformat() == csv_cell
    if kind == "datetime":
        return bool(value == dt.datetime.fromisoformat(csv_cell))
    return _text_cell(value) == csv_cell


def _kinds(params: ReportParams) -> list[str]:
    kinds: list[str] = [column.kind for column in params.selected]
    money = "money" in kinds and not any(column.key == "currency" for column in params.selected)
    return [*kinds, "text"] if money else kinds


def _compare_rows(
    rows: list[list[Any]], csv_rows: list[list[str]], kinds: list[str], same: Any
) -> None:
    assert len(rows) == len(csv_rows)
    for number, (row, csv_row) in enumerate(zip(rows, csv_rows, strict=True), start=1):
        assert len(row) == len(csv_row) == len(kinds)
        for value, cell, kind in zip(row, csv_row, kinds, strict=True):
            assert same(value, kind, cell), (number, kind, value, cell)


# --- the sums a finance person would tick off ---------------------------------------------------


def _csv_totals(cells: list[list[str]], params: ReportParams) -> list[dict[str, Any]]:
    """Per currency: rows and each money column's sum, added up from the CSV's cells."""
    header, *rows = cells
    money = [i for i, column in enumerate(params.selected) if column.kind == "money"]
    if not money:
        return [{"currency": None, "rows": len(rows), "sums": {}}]
    currency_at = len(header) - 1
    if any(column.key == "currency" for column in params.selected):
        currency_at = [c.key for c in params.selected].index("currency")
    by_currency: dict[str, dict[str, Any]] = {}
    for row in rows:
        code = row[currency_at]
        entry = by_currency.setdefault(
            code,
            {"currency": code, "rows": 0, "sums": {params.selected[i].key: 0 for i in money}},
        )
        entry["rows"] += 1
        for i in money:
            if row[i]:
                entry["sums"][params.selected[i].key] += _minor(Decimal(row[i]), code)
    return [
        {**entry, "sums": {k: _plain(v, code) for k, v in entry["sums"].items()}}
        for code, entry in sorted(by_currency.items())
    ]


def _minor(amount: Decimal, currency: str) -> int:
    scaled = amount.scaleb(DIGITS[currency])
    assert scaled == scaled.to_integral_value(), (amount, currency)
    return int(scaled)


def _plain(minor: int, currency: str) -> str:
    digits = DIGITS[currency]
    text = f"{Decimal(minor).scaleb(-digits):f}"
    return text if digits else str(minor)


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", range(len(CASES)))
def test_every_format_holds_the_csv_cells_and_its_totals(
    nasty: Data, consumer: JobQueue, case: int
) -> None:
    api = nasty.api
    report, raw = CASES[case]
    params = _params(api, report, raw)
    csv_job = _export(api, report, raw, format="csv")
    cells = _csv_cells(download(api, csv_job))
    header, *csv_rows = cells
    assert csv_rows, "the case exports no rows"
    kinds = _kinds(params)
    totals = _csv_totals(cells, params)
    assert csv_job["result"]["totals"] == totals

    for file_format in OTHER_FORMATS:
        job = _export(api, report, raw, format=file_format)
        content = download(api, job)
        assert job["result"]["row_count"] == len(csv_rows)
        assert job["result"]["totals"] == totals, file_format
        if file_format == "xlsx":
            sheet = openpyxl.load_workbook(io.BytesIO(content)).active
            assert sheet.freeze_panes == "A2"
            values = [list(row) for row in sheet.iter_rows(values_only=True)]
            assert [unescape(label) for label in values[0]] == header
            _compare_rows(values[1:], csv_rows, kinds, lambda v, k, c: _xlsx_cell(v, k, c, None))
        elif file_format == "parquet":
            table = pq.read_table(io.BytesIO(content))
            keys = [column.key for column in params.selected]
            assert table.column_names[: len(keys)] == keys
            rows = [list(row.values()) for row in table.to_pylist()]
            _compare_rows(rows, csv_rows, kinds, _parquet_cell)
        else:
            records = [json.loads(line, parse_float=Decimal) for line in content.splitlines()]
            assert content.endswith(b"\n")
            assert b"\n\n" not in content
            json_job = _export(api, report, raw, format="json")
            assert records == json.loads(download(api, json_job), parse_float=Decimal)
            assert len(records) == len(csv_rows)


def test_the_line_items_totals_equal_the_inputs(nasty: Data, consumer: JobQueue) -> None:
    """`result.totals` of the flat export against sums of what the test itself created."""
    columns = ["amount", "tax_amount", "discount_amount", "credit_amount", "refund_amount"]
    job = _export(nasty.api, FLAT, {"columns": "id," + ",".join(columns)}, format="parquet")
    expected: dict[str, dict[str, Any]] = {}
    for line in nasty.lines:
        entry = expected.setdefault(
            line.currency,
            {"currency": line.currency, "rows": 0, "sums": dict.fromkeys(columns, 0)},
        )
        entry["rows"] += 1
        for key in columns:
            entry["sums"][key] += getattr(line, key)
    assert job["result"]["totals"] == [
        {**entry, "sums": {k: _plain(v, code) for k, v in entry["sums"].items()}}
        for code, entry in sorted(expected.items())
    ]


@pytest.mark.parametrize("file_format", ["csv", "json", "ndjson"])
def test_gzip_holds_the_uncompressed_file(
    nasty: Data, consumer: JobQueue, file_format: str
) -> None:
    raw = {"columns": _every_column(FLAT), "sort": "id"}
    plain = _export(nasty.api, FLAT, raw, format=file_format)
    zipped = _export(nasty.api, FLAT, raw, format=file_format, compression="gzip")
    assert zipped["result"]["file_name"].endswith(f".{file_format}.gz")
    assert zipped["result"]["content_type"] == "application/gzip"
    assert zipped["result"]["totals"] == plain["result"]["totals"]
    content = download(nasty.api, zipped)
    assert gzip.decompress(content) == download(nasty.api, plain)
    assert zipped["result"]["size_bytes"] == len(content) < plain["result"]["size_bytes"]


def test_parquet_types(nasty: Data, consumer: JobQueue) -> None:
    """Typed columns: money decimal(38,4) beside its currency, dates, UTC timestamps."""
    raw = {"columns": "id,amount,invoice.due_date,invoice.paid_at,invoice.is_credit_note"}
    job = _export(nasty.api, FLAT, raw, format="parquet")
    schema = pq.read_schema(io.BytesIO(download(nasty.api, job)))
    assert schema.field("id").type == pa.int64()
    assert schema.field("amount").type == pa.decimal128(38, 4)
    assert schema.field("invoice.due_date").type == pa.date32()
    assert schema.field("invoice.paid_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("invoice.is_credit_note").type == pa.bool_()
    assert schema.field("currency").type == pa.string()
    assert job["result"]["content_type"] == "application/vnd.apache.parquet"


def test_xlsx_cells_are_typed(nasty: Data, consumer: JobQueue) -> None:
    raw = {"columns": "id,amount,invoice.due_date,invoice.paid_at", "sort": "id"}
    job = _export(nasty.api, FLAT, raw, format="xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(download(nasty.api, job))).active
    labels = [column.label for column in _params(nasty.api, FLAT, raw).selected]
    assert [cell.value for cell in sheet[1]] == [*labels, "Currency"]
    assert all(cell.font.b for cell in sheet[1])
    formats = {}
    for row in sheet.iter_rows(min_row=2):
        amount, currency = row[1], row[4]
        if isinstance(amount.value, float | int):
            formats[currency.value] = amount.number_format
            assert amount.data_type == "n"
        if row[2].value is not None:
            assert row[2].is_date
            assert row[2].number_format == "yyyy-mm-dd"
        if row[3].value is not None:
            assert row[3].is_date
            assert row[3].number_format == "yyyy-mm-dd hh:mm:ss"
    assert formats["GBP"] == '#,##0.00 "GBP";-#,##0.00 "GBP"'
    assert formats["JPY"] == '#,##0 "JPY";-#,##0 "JPY"'
    assert formats["KWD"] == '#,##0.000 "KWD";-#,##0.000 "KWD"'
    assert job["result"]["file_name"].endswith(".xlsx")


def test_a_text_longer_than_a_cell_fails_the_job(nasty: Data, consumer: JobQueue) -> None:
    created = nasty.api.post(
        f"{PATHS[FLAT]}/export", json={"columns": "id,description", "format": "xlsx"}
    )
    assert created.status_code == 200, created.text
    job = wait_for_job(nasty.api, created.json()["job"])
    assert job["status"] == "failed"
    assert job["attempts"] == 1  # no retry: another attempt could not succeed
    assert job["error"]["code"] == "cell_too_long"
    assert "'Description'" in job["error"]["message"]
    assert "32,767" in job["error"]["message"]
    assert job["result"] is None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"format": "xls"}, "format"),
        ({"format": "parquet", "compression": "gzip"}, "compression"),
        ({"format": "xlsx", "compression": "gzip"}, "compression"),
        ({"format": "csv", "compression": "zip"}, "compression"),
    ],
)
def test_bad_format_or_compression_is_refused(api: Api, extra: dict[str, str], field: str) -> None:
    before = api.get("/jobs").json()
    response = api.post(f"{PATHS[FLAT]}/export", json={"columns": "id", **extra})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text
    assert api.get("/jobs").json() == before


def test_a_sheet_too_long_is_refused_at_submit(api: Api, backend: Backend) -> None:
    """The line count is kept (`row_counts`), so an XLSX of more rows than a sheet holds is a
    422 before any job exists. The kept count is moved as 1,048,576 inserted rows would move
    it (`rows_added`), rather than inserting them."""
    with engine_for(backend.database_url).begin() as conn:
        rows_added(conn, api.account_id, LineItem, 1_048_576)
    before = api.get("/jobs").json()
    response = api.post(f"{PATHS[FLAT]}/export", json={"format": "xlsx"})
    assert response.status_code == 422, response.text
    assert "1,048,576 rows" in response.text
    assert "1,048,575" in response.text
    assert api.get("/jobs").json() == before
    assert api.post(f"{PATHS[FLAT]}/export", json={"format": "csv"}).status_code == 200


def test_binary_formats_write_date_times_in_the_output_zone(
    nasty: Data, consumer: JobQueue
) -> None:
    """`timezone=America/New_York`: the XLSX cells hold New York's wall clock and the Parquet
    timestamps are New York-labelled instants, each equal to the CSV's (which the reports'
    own tests check against zoneinfo)."""
    zone = "America/New_York"
    raw = {
        "columns": "id,invoice.paid_at,invoice.confirmed_at,invoice.updated_at",
        "sort": "id",
        "timezone": zone,
    }
    params = _params(nasty.api, FLAT, raw)
    kinds = _kinds(params)
    header, *csv_rows = _csv_cells(download(nasty.api, _export(nasty.api, FLAT, raw)))
    assert any("-04:00" in cell or "-05:00" in cell for row in csv_rows for cell in row)
    sheet = openpyxl.load_workbook(
        io.BytesIO(download(nasty.api, _export(nasty.api, FLAT, raw, format="xlsx")))
    ).active
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert list(values[0]) == header
    _compare_rows(values[1:], csv_rows, kinds, lambda v, k, c: _xlsx_cell(v, k, c, None))
    table = pq.read_table(
        io.BytesIO(download(nasty.api, _export(nasty.api, FLAT, raw, format="parquet")))
    )
    assert table.schema.field("invoice.paid_at").type == pa.timestamp("us", tz=zone)
    rows = [list(row.values()) for row in table.to_pylist()]
    _compare_rows(rows, csv_rows, kinds, _parquet_cell)
    for row in rows:
        for value in row[1:]:
            if value is not None:
                assert value.utcoffset() in (dt.timedelta(hours=-4), dt.timedelta(hours=-5))
