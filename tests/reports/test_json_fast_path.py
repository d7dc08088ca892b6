"""JSON rendered by the database writes the generic writer's very bytes, for every report.

The hostile data set of the CSV fast path (tests/reports/test_csv_fast_path.py): quotes,
backslashes, every control character, `/`, unicode beyond the BMP, line and paragraph
separators, very long text, empty strings, NULLs, money in currencies of 0, 2 and 3 digits,
negative and below one unit, date-times with and without microseconds, local periods in the
account's zone. On a real migrated SQLite and PostgreSQL database.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import create_engine

from ledgerline.db import engine_for
from ledgerline.exports.writers import (
    _ACCOUNT_STAND_IN,
    _fast_dialect,
    open_snapshot,
    write_export,
)
from ledgerline.reports.columns import CATALOGS, FLAT, GROUPED, INVOICES, INVOICES_GROUPED
from ledgerline.reports.query import ReportParams, count_rows, parse_report_params
from tests.conftest import Api
from tests.reports.conftest import Data, Line
from tests.reports.expected import DIGITS, SYMBOLS, field, major
from tests.reports.test_csv_fast_path import ALL, FLAT_COLUMNS, NASTY_TEXT
from tests.reports.test_csv_fast_path import nasty as nasty  # the fixture

ZONE = "Europe/London"


def _params(report: str, **raw: Any) -> ReportParams:
    return parse_report_params(report, {**raw, "format": "json"}, timezone=ZONE, for_export=True)


def _export(data: Data, params: ReportParams, *, fast: bool) -> tuple[int, int, bytes, list[int]]:
    engine = engine_for(data.backend.database_url)
    out = io.BytesIO()
    progress: list[int] = []
    with open_snapshot(engine) as conn:
        total = count_rows(conn, data.api.account_id, params)
        written = write_export(conn, data.api.account_id, params, out, progress.append, fast=fast)
    return total, written, out.getvalue(), progress


def _both(data: Data, params: ReportParams) -> tuple[bytes, bytes, int]:
    total, written, fast_body, progress = _export(data, params, fast=True)
    g_total, g_written, generic_body, _ = _export(data, params, fast=False)
    assert total == written == g_total == g_written
    if written:
        assert progress[-1] == written
    assert progress == sorted(progress)
    return fast_body, generic_body, written


def _every_column(report: str) -> list[str]:
    catalog = CATALOGS[report]
    return [column.key for column in (*catalog.columns, *catalog.extensions)]


# --- an independent rendering of the flat report ------------------------------------------------


def _money(minor: int, currency: str) -> dict[str, Any]:
    digits = DIGITS[currency]
    symbol = SYMBOLS.get(currency, currency)
    whole, fraction = divmod(abs(minor), 10**digits)
    display = f"{'-' if minor < 0 else ''}{symbol}{whole:,}"
    if digits:
        display += "." + str(fraction).zfill(digits)
    return {
        "decimal": major(minor, currency),
        "string": display,
        "iso_currency_code": currency.lower(),
        "currency_symbol": symbol,
        "currency_symbol_position": "before",
    }


def _expected_value(line: Line, key: str, kind: str) -> Any:
    if kind == "money":
        return _money(int(field(line, key)), line.currency)
    if kind == "billed_item":
        if line.billed_item_object is None:
            return None
        return {"object": line.billed_item_object, "id": line.billed_item_id}
    value = field(line, key)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _expected_row(line: Line) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column in FLAT_COLUMNS:
        node = row
        *parents, last = column.key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = _expected_value(line, column.key, column.kind)
    return row


def test_every_column_matches_an_independent_rendering(nasty: Data) -> None:
    params = _params(FLAT, columns=ALL)
    fast, generic, written = _both(nasty, params)
    assert fast == generic
    assert written == len(nasty.lines) == 2 * len(NASTY_TEXT)
    rows = json.loads(fast, parse_float=Decimal)
    expected = [_expected_row(line) for line in sorted(nasty.lines, key=lambda line: line.id)]
    assert rows == expected
    # one row a line, as the generic writer frames them
    assert fast.startswith(b"[\n{")
    assert fast.endswith(b"}\n]\n")
    assert fast.count(b"\n") == written + 2
    # escaped as the standard library escapes: control characters, quotes and backslashes;
    # `/` and everything beyond ASCII as it is
    text = fast.decode("utf-8")
    assert "\\u0001\\u0002" in text
    assert "\\b\\t\\n\\u000b\\f\\r" in text
    assert "\x7f" in text
    assert "</script> 😀 𝄞 \u2029 \ufeff" in text
    assert "\u2028" in text
    assert 'back\\\\slash \\\\n \\\\u0041 \\\\\\" end\\\\"' in text
    # the money really covers what it claims to
    amounts = {(row["amount"]["iso_currency_code"], row["amount"]["string"]) for row in rows}
    assert ("gbp", "-£0.05") in amounts
    assert ("gbp", "£1,234,567.89") in amounts
    assert any(code == "jpy" and "," in shown and "." not in shown for code, shown in amounts)
    assert any(code == "kwd" and len(shown.split(".")[1]) == 3 for code, shown in amounts)
    assert any(code == "jpy" and shown.startswith("-¥") for code, shown in amounts)
    # a whole part of 15 digits and more: every group of three separated
    assert any(shown.count(",") >= 4 for _code, shown in amounts)


@pytest.mark.parametrize("report", [FLAT, GROUPED, INVOICES, INVOICES_GROUPED])
def test_each_column_alone_and_all_together(nasty: Data, report: str) -> None:
    """Every column of the report (extensions included) alone, so each kind's rendering is
    compared without its neighbours, then all of them in one row."""
    for key in _every_column(report):
        fast, generic, written = _both(nasty, _params(report, columns=key))
        assert fast == generic, key
        assert written > 0
        json.loads(fast)
    fast, generic, written = _both(nasty, _params(report, columns=",".join(_every_column(report))))
    assert fast == generic
    assert len(json.loads(fast)) == written > 0


@pytest.mark.parametrize(
    ("report", "raw"),
    [
        (FLAT, {}),
        (FLAT, {"sort": "-amount"}),
        (FLAT, {"sort": "customer.name,-invoice.paid_at", "columns": "customer.name,amount,id"}),
        (FLAT, {"invoice_status": "paid,open", "sort": "-invoice.updated_at"}),
        (FLAT, {"invoice_due_date_lte": "2024-06-30", "id_gt": "3", "columns": ALL}),
        (FLAT, {"invoice_status": "skipped"}),
        (GROUPED, {}),
        (GROUPED, {"sort": "-total_amount"}),
        (
            GROUPED,
            {"columns": "invoice.paid_at_month,currency,count,total_gross_amount,customer.name"},
        ),
        (INVOICES, {}),
        (INVOICES, {"sort": "-total_amount"}),
        (INVOICES_GROUPED, {}),
        (INVOICES_GROUPED, {"columns": "payment_month,payment_year,count,total_amount"}),
    ],
)
def test_fast_path_bytes_equal_the_generic_writer(
    nasty: Data, report: str, raw: dict[str, Any]
) -> None:
    fast, generic, written = _both(nasty, _params(report, **raw))
    assert fast == generic
    assert len(json.loads(fast)) == written


def test_fast_path_is_taken(nasty: Data) -> None:
    engine = engine_for(nasty.backend.database_url)
    with open_snapshot(engine) as conn:
        assert _fast_dialect(conn) == engine.dialect.name


def test_empty_report_is_an_empty_array(data: Data) -> None:
    for report in (FLAT, GROUPED, INVOICES, INVOICES_GROUPED):
        fast, generic, written = _both(data, _params(report))
        assert written == 0
        assert fast == generic == b"[]\n"


def test_postgres_session_time_zone_does_not_change_the_file(nasty: Data) -> None:
    """Date-times are read as the type's own text, which follows the session's TimeZone: the
    fast path sets UTC for its snapshot, so a role configured otherwise writes the same bytes."""
    if nasty.backend.name != "postgres":
        pytest.skip("PostgreSQL session settings")
    url = engine_for(nasty.backend.database_url).url
    engine = create_engine(url, connect_args={"options": "-c TimeZone=Pacific/Chatham"})
    try:
        params = _params(FLAT, columns=ALL)
        bodies = []
        for fast in (True, False):
            out = io.BytesIO()
            with open_snapshot(engine) as conn:
                write_export(conn, nasty.api.account_id, params, out, lambda _: None, fast=fast)
            bodies.append(out.getvalue())
        assert bodies[0] == bodies[1]
        assert b"+00:00" in bodies[0]
    finally:
        engine.dispose()


@pytest.mark.parametrize("output", ["json", "csv"])
def test_the_rendered_sql_is_each_accounts_own(data: Data, other_api: Api, output: str) -> None:
    """The rendering SQL is compiled once per report shape and reused for every account (the
    account's id put in); each account's export holds its own rows only, a filter equal to
    the stand-in account id included."""
    other = Data(data.backend, other_api)
    data.invoice([{"amount": 100, "description": "mine"}])
    other.invoice([{"amount": 200, "description": "theirs"}, {"amount": 300}])
    raw = {"columns": "id,description,amount", "format": output}
    for owner, expected in ((data, 1), (other, 2), (data, 1)):
        for filters in ({}, {"id_gt": str(_ACCOUNT_STAND_IN)}):
            params = parse_report_params(FLAT, {**raw, **filters}, timezone=ZONE, for_export=True)
            total, written, body, _ = _export(owner, params, fast=True)
            assert total == written == (0 if filters else expected)
            assert (b"theirs" in body) == (owner is other and not filters)
            assert (b"mine" in body) == (owner is data and not filters)
