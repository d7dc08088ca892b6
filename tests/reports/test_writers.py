"""The export writers, called directly on a real migrated database with rows the test made."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from ledgerline.db import engine_for
from ledgerline.exports.writers import open_snapshot, write_export
from ledgerline.reports.query import ReportParams, count_rows, parse_report_params
from tests.reports.conftest import Data
from tests.reports.expected import guarded, major, plain

COLUMNS = "id,description,amount,customer.name,invoice.status,type,invoice.paid_at"


def _export(
    engine: Engine, account_id: int, params: ReportParams, *, fast: bool = True
) -> tuple[int, int, bytes, list[int]]:
    out = io.BytesIO()
    progress: list[int] = []
    with open_snapshot(engine) as conn:
        total = count_rows(conn, account_id, params)
        written = write_export(conn, account_id, params, out, progress.append, fast=fast)
    return total, written, out.getvalue(), progress


def shortest(value: Decimal) -> str:
    """The shortest decimal literal of an exact value: 45.50 -> "45.5", 1200 -> "1200"."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _cell(text: str | None) -> str:
    """A text cell as CSV holds it: guarded, and every line break inside it CRLF."""
    return guarded(text).replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def _params(fmt: str, **extra: object) -> ReportParams:
    raw: dict[str, object] = {"columns": COLUMNS, "format": fmt, **extra}
    return parse_report_params("invoice_line_items", raw, timezone="Europe/London", for_export=True)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "generic"])
def test_csv_parses_back_to_the_expected_values(sample: Data, fast: bool) -> None:
    engine = engine_for(sample.backend.database_url)
    account = sample.api.account_id
    total, written, body, progress = _export(engine, account, _params("csv"), fast=fast)
    lines = sorted(sample.lines, key=lambda line: line.id)
    assert total == written == len(lines) == 9
    assert progress[-1] == len(lines)
    # CRLF, one per record, plus the one line break inside a quoted cell (also CRLF)
    assert body.count(b"\r\n") == len(lines) + 1 + 1
    assert b"\n" not in body.replace(b"\r\n", b"")
    table = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    assert table[0] == [
        "ID",
        "Description",
        "Amount",
        "Customer name",
        "Invoice status",
        "Type",
        "Invoice paid at",
        "Currency",
    ]
    expected = [
        [
            str(line.id),
            _cell(line.description),
            plain(line.amount, line.currency),
            _cell(line.customer["name"]) if line.customer else "",
            line.invoice["status"],
            line.type,
            line.invoice["paid_at"].isoformat() if line.invoice["paid_at"] else "",
            line.currency,
        ]
        for line in lines
    ]
    assert table[1:] == expected


def test_formula_guard_on_text_but_negative_amounts_stay_numbers(sample: Data) -> None:
    engine = engine_for(sample.backend.database_url)
    _, _, body, _ = _export(engine, sample.api.account_id, _params("csv"))
    table = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    by_id = {row[0]: row for row in table[1:]}
    for line in sample.lines:
        row = by_id[str(line.id)]
        if line.description[:1] in ("=", "+", "-", "@", "\t"):
            assert row[1] == "'" + line.description
        else:
            assert row[1] == _cell(line.description)
        # amounts are never guarded: "-3.50" stays a number a spreadsheet can add up; the
        # literal itself is compared, with the currency's digits ("45.50", never "45.5")
        assert row[2] == plain(line.amount, line.currency)
    negative = [line for line in sample.lines if line.amount < 0]
    assert negative, "the sample must hold a negative amount"
    assert by_id[str(negative[0].id)][2].startswith("-")
    assert by_id[str(negative[0].id)][1].startswith("'-")  # its text, though, is guarded
    names = {row[3] for row in table[1:]}
    assert "'=Cat" in names


def test_json_holds_the_same_rows_as_csv(sample: Data) -> None:
    engine = engine_for(sample.backend.database_url)
    account = sample.api.account_id
    _, csv_count, csv_body, _ = _export(engine, account, _params("csv", sort="-amount"))
    _, json_count, json_body, _ = _export(engine, account, _params("json", sort="-amount"))
    assert csv_count == json_count == len(sample.lines)
    rows = json.loads(json_body, parse_float=Decimal)
    table = list(csv.reader(io.StringIO(csv_body.decode("utf-8"), newline="")))[1:]
    assert [row["id"] for row in rows] == [int(row[0]) for row in table]
    by_id = {line.id: line for line in sample.lines}
    # sorted by amount descending in major units (SPEC §4: ¥1200 above £45.50), ties by id
    expected_order = [
        line.id
        for line in sorted(
            sample.lines, key=lambda line: (-major(line.amount, line.currency), line.id)
        )
    ]
    assert [row["id"] for row in rows] == expected_order
    for row, cells in zip(rows, table, strict=True):
        line = by_id[row["id"]]
        money = row["amount"]
        # The JSON literal as written: the exact value, shortest ("45.5", "1200", "-3.25").
        assert str(money["decimal"]) == shortest(major(line.amount, line.currency))
        assert money["iso_currency_code"] == line.currency.lower()
        assert cells[2] == plain(line.amount, line.currency)
        assert row["invoice"]["status"] == line.invoice["status"] == cells[4]
        assert row["description"] == line.description  # JSON is not formula-guarded
        customer = row["customer"]["name"]
        assert customer == (line.customer["name"] if line.customer else None)


def test_json_money_literals_are_exact(sample: Data) -> None:
    engine = engine_for(sample.backend.database_url)
    _, _, body, _ = _export(engine, sample.api.account_id, _params("json", sort="id"))
    text = body.decode("utf-8")
    assert text.startswith("[")
    assert text.rstrip().endswith("]")
    first = sorted(sample.lines, key=lambda line: line.id)[0]
    assert first.amount == 4550
    assert '"decimal":45.5,' in text  # 45.50 GBP, exactly, never 45.4999…


def test_empty_export_is_an_empty_array_and_a_header_only_csv(data: Data) -> None:
    engine = engine_for(data.backend.database_url)
    _, count, body, _ = _export(engine, data.api.account_id, _params("json"))
    assert count == 0
    assert json.loads(body) == []
    _, count, body, _ = _export(engine, data.api.account_id, _params("csv"))
    assert count == 0
    assert body.decode().split("\r\n") == [
        "ID,Description,Amount,Customer name,Invoice status,Type,Invoice paid at,Currency",
        "",
    ]


def test_grouped_csv_has_currency_and_never_mixes_currencies(sample: Data) -> None:
    engine = engine_for(sample.backend.database_url)
    params = parse_report_params(
        "invoice_line_items.grouped", {}, timezone="Europe/London", for_export=True
    )
    total, written, body, _ = _export(engine, sample.api.account_id, params)
    table = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    assert table[0] == ["Type", "Total amount", "Currency"]
    sums: dict[tuple[str, str], int] = {}
    for line in sample.lines:
        sums[(line.type, line.currency)] = sums.get((line.type, line.currency), 0) + line.amount
    expected = [
        [kind, plain(amount, currency), currency]
        for (kind, currency), amount in sorted(sums.items())
    ]
    assert table[1:] == expected
    assert total == written == len(sums)


def test_batches_report_progress(sample: Data, monkeypatch: object) -> None:
    import ledgerline.exports.writers as writers

    engine = engine_for(sample.backend.database_url)
    original = writers.BATCH_ROWS
    writers.BATCH_ROWS = 4
    try:
        # the generic writer's batches (the database-rendered JSON fetches larger ones)
        _, written, _, progress = _export(
            engine, sample.api.account_id, _params("json"), fast=False
        )
    finally:
        writers.BATCH_ROWS = original
    assert written == len(sample.lines) == 9
    assert progress == [4, 8, 9]


def test_fast_money_rendering_matches_the_money_module() -> None:
    """The export's per-currency formatters write exactly what `ledgerline.money` renders
    (the module every other response uses), for signs, zero, sub-unit and large values."""
    from ledgerline.money import money_object, plain_decimal
    from ledgerline.reports.kinds import MoneyFormat

    values = [0, 1, -1, 5, 9, 10, 99, 100, 101, 350, -350, 4550, 123456789, -1000000]
    for currency in ("GBP", "JPY", "KWD", "EUR"):
        money = MoneyFormat(currency)
        for value in values:
            assert money.plain(value) == plain_decimal(value, currency)
            assert json.loads(money.json(value), parse_float=Decimal) == json.loads(
                json.dumps(money_object(value, currency), default=str), parse_float=Decimal
            ) | {"decimal": money_object(value, currency)["decimal"]}


def test_json_export_rows_are_exactly_the_data_rows(sample: Data) -> None:
    engine = engine_for(sample.backend.database_url)
    for report, query in (
        ("invoice_line_items", {"sort": "-invoice.paid_at,description"}),
        ("invoice_line_items.grouped", {"sort": "-total_amount"}),
    ):
        params = parse_report_params(
            report, {**query, "format": "json"}, timezone="Europe/London", for_export=True
        )
        out = io.BytesIO()
        with open_snapshot(engine) as conn:
            write_export(conn, sample.api.account_id, params, out, lambda _: None)
        response = sample.api.get(f"/reports/{report}/data", params={**query, "limit": 100})
        assert response.status_code == 200, response.text
        exported = json.loads(out.getvalue(), parse_float=Decimal)
        assert exported == response.json(parse_float=Decimal)["rows"]
        assert len(exported) == response.json()["total"]
