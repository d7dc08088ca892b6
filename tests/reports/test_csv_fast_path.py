"""The CSV fast path (cells rendered by the database) writes the generic writer's very bytes.

Run on a real migrated SQLite and PostgreSQL database over data made to break CSV writers:
quotes, commas, every kind of line break, formula starts, unicode, empty strings, NULLs,
negative amounts in currencies of 0, 2 and 3 digits, timestamps with and without microseconds,
and what breaks JSON writers: backslashes, every control character, `/`, astral characters,
very long text (tests/reports/test_json_fast_path.py uses the same data set).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy import text as sql_text

from ledgerline.db import engine_for
from ledgerline.exports.writers import _fast_csv_dialect, open_snapshot, write_export
from ledgerline.reports.columns import CATALOGS, FLAT, GROUPED, Column
from ledgerline.reports.query import ReportParams, count_rows, parse_report_params
from tests.reports.conftest import Data, Line, at
from tests.reports.expected import field, plain

NASTY_TEXT = [
    'say "hi"',
    "a,b,c",
    "two\nlines",
    "two\r\nlines crlf",
    "two\rlines cr",
    "\r\nstarts with crlf",
    "\nstarts with lf",
    '\n=HYPERLINK("http://x")',
    "ends with lf\n",
    "=1+2",
    "+44 20",
    "-minus",
    "@at",
    "\ttab",
    "\rcr",
    "",
    " ",
    "Zoë ☃ 日本語 \u2028 \x01",
    '"',
    "\\.",
    "'already quoted",
    "NULL",
    'mixed, "all"\r\n=of\rit\n',
    # what JSON must escape, and what it must not
    'back\\slash \\n \\u0041 \\" end\\',
    "ctrl " + "".join(chr(code) for code in range(1, 32)) + "\x7f end",
    "/ </script> 😀 𝄞 \u2029 \ufeff",
    "very long " + 'Zoë, "x"\n' * 8000,
]

# Every column of the flat report, in catalog order: a column added to the catalog is
# covered here as it is added.
FLAT_COLUMNS = CATALOGS[FLAT].columns
ALL = ",".join(column.key for column in FLAT_COLUMNS)


@pytest.fixture
def nasty(data: Data) -> Data:
    hall = data.venue('Hall "A", =upstairs\r\nrear')
    plain_venue = data.venue("Plain")
    customers: list[dict[str, Any] | None] = [
        data.customer("=HYPERLINK(1)", "-a@example.com", hall),
        data.customer("Line\nbreak, Ltd", None, None),
        data.customer("", "", plain_venue),
        data.customer("Zoë", "zoe@example.com", plain_venue),
        None,
    ]
    currencies = ["GBP", "JPY", "KWD"]
    moments = [
        at("2024-07-02T12:00:00"),
        at("2024-07-02T12:00:00.000001"),
        at("2024-12-31T23:59:59.999999"),
        at("2024-03-31T00:30:00.5"),
    ]
    amounts = [4550, -5, -350, 0, 1, -1, 123456789, -1000, 999, -98765432101234567]
    counter = 0
    for index, text in enumerate(NASTY_TEXT):
        items = []
        for offset in range(2):
            counter += 1
            amount = amounts[(index + offset) % len(amounts)]
            items.append(
                {
                    "type": ("flat_fee", "store_order", "course")[counter % 3],
                    "amount": amount,
                    "tax_amount": -amount // 5,
                    "discount_amount": counter % 4,
                    "credit_amount": -counter if counter % 5 == 0 else 0,
                    "refund_amount": counter * 7 if counter % 3 == 0 else 0,
                    "description": text if offset == 0 else NASTY_TEXT[-1 - index],
                    # the column holds 60 characters
                    "billed_item_object": (None, text[:60], "course", "=obj", "")[counter % 5],
                    "billed_item_id": None if counter % 2 else counter,
                }
            )
        paid = moments[index % len(moments)] if index % 3 else None
        data.invoice(
            items,
            currency=currencies[index % len(currencies)],
            status=("paid", "open", "draft", "voided")[index % 4],
            customer=customers[index % len(customers)],
            due_date=dt.date(2024, 1 + index % 12, 1 + index) if index % 4 else None,
            paid_at=paid,
            confirmed_at=moments[(index + 1) % len(moments)] if index % 5 else None,
            updated_at=moments[(index + 2) % len(moments)],
            is_credit_note=index % 2 == 1,
            discount_code=(text[:200], NASTY_TEXT[(index + 3) % len(NASTY_TEXT)][:100])
            if index % 2
            else None,
            number=f"=INV,{index}\n" if index == 4 else None,
        )
    return data


def _params(report: str, **raw: Any) -> ReportParams:
    return parse_report_params(report, raw, timezone="Europe/London", for_export=True)


def _export(engine: Engine, account_id: int, params: ReportParams, *, fast: bool) -> Any:
    out = io.BytesIO()
    progress: list[int] = []
    with open_snapshot(engine) as conn:
        total = count_rows(conn, account_id, params)
        written = write_export(conn, account_id, params, out, progress.append, fast=fast)
    return total, written, out.getvalue(), progress


def _both(data: Data, params: ReportParams) -> tuple[bytes, bytes, int]:
    engine = engine_for(data.backend.database_url)
    account = data.api.account_id
    total, written, fast_body, progress = _export(engine, account, params, fast=True)
    g_total, g_written, generic_body, _ = _export(engine, account, params, fast=False)
    assert total == written == g_total == g_written
    if written:
        assert progress[-1] == written
    assert progress == sorted(progress)
    return fast_body, generic_body, written


# --- the expected CSV, computed from what the test created --------------------------------


def _text(value: str | None) -> str:
    if not value:
        return ""
    if value[0] in ("=", "+", "-", "@", "\t", "\r", "\n"):
        value = "'" + value
    return value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def _moment(value: dt.datetime | None) -> str:
    return "" if value is None else value.astimezone(dt.UTC).isoformat()


def _expected_cell(line: Line, column: Column) -> str:
    """The cell the test expects, by the column's kind, computed here independently."""
    key = column.key
    if column.kind == "money":
        return plain(int(field(line, key)), line.currency)
    if column.kind == "billed_item":
        if line.billed_item_object is None:
            return ""
        ident = line.billed_item_id
        return _text(line.billed_item_object + ("" if ident is None else f":{ident}"))
    value = field(line, key)
    if value is None:
        return ""
    if column.kind == "datetime":
        return _moment(value)
    if column.kind == "date":
        return str(value.isoformat())
    if column.kind == "bool":
        return "true" if value else "false"
    if column.kind in ("int", "ref"):
        return str(value)
    assert column.kind == "text", f"no expected rendering for the kind {column.kind!r}"
    return _text(value)


def test_every_column_matches_an_independent_rendering(nasty: Data) -> None:
    params = _params(FLAT, columns=ALL)
    fast, generic, written = _both(nasty, params)
    assert fast == generic
    assert written == len(nasty.lines) == 2 * len(NASTY_TEXT)
    text = fast.decode("utf-8")
    # RFC 4180 line ends, and every line break inside a cell is CRLF too
    assert "\n" not in text.replace("\r\n", "")
    assert "\r" not in text.replace("\r\n", "")
    table = list(csv.reader(io.StringIO(text, newline="")))
    assert params.selected == FLAT_COLUMNS
    assert table[0] == [*(column.label for column in FLAT_COLUMNS), "Currency"]
    expected = [
        [*(_expected_cell(line, column) for column in FLAT_COLUMNS), line.currency]
        for line in sorted(nasty.lines, key=lambda line: line.id)
    ]
    assert table[1:] == expected
    # the money really covers what it claims to: 0, 2 and 3 digits, negative, under one unit
    keys = [column.key for column in FLAT_COLUMNS]
    amounts = {(row[-1], row[keys.index("amount")]) for row in table[1:]}
    assert ("GBP", "-0.05") in amounts or ("GBP", "-0.01") in amounts
    assert any(currency == "JPY" and amount.startswith("-") for currency, amount in amounts)
    assert any(currency == "KWD" and len(amount.split(".")[1]) == 3 for currency, amount in amounts)


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"sort": "-amount"},
        {"sort": "description,-id"},
        {"sort": "customer.name,-invoice.paid_at", "columns": "customer.name,amount,id"},
        {"sort": "-invoice.due_date,invoice.confirmed_at"},
        {"sort": "-customer.venue.name", "columns": "customer.venue.name,billed_item,type"},
        {"sort": "invoice.is_credit_note,-tax_amount"},
        {"invoice_status": "paid,open", "sort": "-invoice.updated_at"},
        {"invoice_paid_at_gte": "2024-07-02T13:00:00", "columns": "description,invoice.paid_at"},
        {"invoice_due_date_lte": "2024-06-30", "id_gt": "3", "columns": ALL},
        # each column alone, so every kind's rendering is compared without its neighbours
        *({"columns": column.key} for column in FLAT_COLUMNS),
        {"columns": "invoice.is_credit_note,invoice.due_date"},
        {"invoice_status": "skipped"},
    ],
)
def test_fast_path_bytes_equal_the_generic_writer(nasty: Data, raw: dict[str, Any]) -> None:
    fast, generic, written = _both(nasty, _params(FLAT, **raw))
    assert fast == generic
    assert fast.count(b"\r\n") >= written + 1


@pytest.mark.parametrize(
    "raw",
    [
        {},
        *({"columns": column.key} for column in CATALOGS[GROUPED].columns),
        {"sort": "-total_amount"},
    ],
)
def test_grouped_csv_bytes_equal_the_generic_writer(nasty: Data, raw: dict[str, Any]) -> None:
    fast, generic, written = _both(nasty, _params(GROUPED, **raw))
    assert fast == generic
    table = list(csv.reader(io.StringIO(fast.decode("utf-8"), newline="")))
    assert len(table) == written + 1
    if raw.get("columns") != "type":
        # totals per currency, from the test's own lines
        totals: dict[str, int] = {}
        for line in nasty.lines:
            totals[line.currency] = totals.get(line.currency, 0) + line.amount
        summed: dict[str, int] = {}
        for row in table[1:]:
            currency = row[-1]
            digits = {"GBP": 2, "JPY": 0, "KWD": 3}[currency]
            whole, _, fraction = row[-2].lstrip("-").partition(".")
            minor = int(whole) * 10**digits + int(fraction or 0)
            summed[currency] = summed.get(currency, 0) + (-minor if row[-2][0] == "-" else minor)
        assert summed == totals


def test_fast_path_is_taken_for_flat_and_grouped_csv(nasty: Data) -> None:
    engine = engine_for(nasty.backend.database_url)
    with open_snapshot(engine) as conn:
        for params in (_params(FLAT), _params(FLAT, columns=ALL), _params(GROUPED)):
            assert _fast_csv_dialect(conn, params) == engine.dialect.name


def test_empty_report_is_the_header_alone(data: Data) -> None:
    fast, generic, written = _both(data, _params(FLAT, columns=ALL))
    assert written == 0
    assert fast == generic
    assert fast.endswith(b"Currency\r\n")
    assert fast.count(b"\r\n") == 1


def test_postgres_session_time_zone_and_date_style_do_not_change_the_file(nasty: Data) -> None:
    """The fast path reads date-times as the type's own text, which follows the session's
    TimeZone; it sets UTC for its snapshot, so a server or role configured otherwise writes
    the same bytes as the generic writer, which formats in Python. (psycopg itself reads
    only ISO DateStyles, so that is the one style a session can have here.)"""
    if nasty.backend.name != "postgres":
        pytest.skip("PostgreSQL session settings")
    url = engine_for(nasty.backend.database_url).url
    engine = create_engine(
        url, connect_args={"options": "-c TimeZone=Pacific/Chatham -c DateStyle=ISO,DMY"}
    )
    try:
        with engine.connect() as conn:
            assert conn.execute(sql_text("SHOW TimeZone")).scalar_one() == "Pacific/Chatham"
        params = _params(FLAT, columns=ALL)
        account = nasty.api.account_id
        _, written, fast_body, _ = _export(engine, account, params, fast=True)
        _, _, generic_body, _ = _export(engine, account, params, fast=False)
        assert written == len(nasty.lines)
        assert fast_body == generic_body
        assert b"+00:00" in fast_body
    finally:
        engine.dispose()
