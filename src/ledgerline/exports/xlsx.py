"""XLSX exports: one sheet, a frozen header row, and cells of the right type.

XlsxWriter in constant-memory mode writes each row to a temporary file as it comes, so
memory stays flat whatever the row count; the sheet is assembled into the workbook at the
end. Each column kind has one entry in `XLSX_KINDS`, the function writing its cell:

- money: a number cell in major units with the currency's number format (its code and its
  minor-unit digits, e.g. `#,##0.00 "EUR"`, `#,##0 "JPY"`). A number cell is a binary
  double in the file (Excel's own type): exact for up to 15 significant digits, so an amount
  of 10^15 minor units or more is written as text holding the exact decimal instead;
- dates and date-times: date cells (`yyyy-mm-dd`, `yyyy-mm-dd hh:mm:ss`), date-times in the
  export's output time zone (a spreadsheet cell holds no zone);
- text: a text cell, never a formula (an XLSX text cell is not evaluated, so the CSV
  formula guard is not needed); a text longer than a cell holds (32,767 characters) fails
  the job with a message naming the row and column, rather than cutting it short;
- numbers and counts as number cells, booleans as boolean cells.

As in CSV, a Currency column is added last when a money column is present.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from ledgerline.exports.refusals import XLSX_MAX_ROWS, ExportRefused, too_many_rows
from ledgerline.money import currency_digits
from ledgerline.reports.columns import Column
from ledgerline.reports.kinds import MONEY_FORMATS, Kind, billed_item_text
from ledgerline.reports.rendering import appends_currency, column_positions, csv_header

XLSX_MAX_TEXT = 32_767
# Excel keeps 15 significant digits of a number.
_EXACT_BELOW = 10**15


class Sheet:
    """The sheet being written, its formats (made once, money's once per currency) and the
    output time zone."""

    def __init__(self, workbook: xlsxwriter.Workbook, worksheet: Worksheet, zone: str) -> None:
        self.workbook = workbook
        self.worksheet = worksheet
        self.zone = ZoneInfo(zone)
        self.date = workbook.add_format({"num_format": "yyyy-mm-dd"})
        self.datetime = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.text_money = workbook.add_format({"align": "right"})
        self._money: dict[str, Format] = {}

    def money(self, currency: str) -> Format:
        made = self._money.get(currency)
        if made is None:
            digits = currency_digits(currency)
            number = "#,##0" + ("." + "0" * digits if digits else "")
            made = self._money[currency] = self.workbook.add_format(
                {"num_format": f'{number} "{currency}";-{number} "{currency}"'}
            )
        return made


@dataclass(frozen=True)
class Place:
    """Where a column's cell goes (its sheet column) and where its values sit in a row."""

    index: int
    at: int
    currency_at: int
    column: Column


CellWriter = Callable[[Sheet, int, Sequence[Any], Place], None]


def _number(sheet: Sheet, r: int, row: Sequence[Any], place: Place) -> None:
    if row[place.at] is not None:
        sheet.worksheet.write_number(r, place.index, row[place.at])


def _text(sheet: Sheet, r: int, row: Sequence[Any], place: Place) -> None:
    _write_text(sheet, r, row[place.at], place)


def _write_text(sheet: Sheet, r: int, text: str | None, place: Place) -> None:
    if not text:
        return
    if len(text) > XLSX_MAX_TEXT:
        raise ExportRefused(
            "cell_too_long",
            f"Row {r:,}, column '{place.column.label}' holds {len(text):,} characters; an "
            f"XLSX cell holds at most {XLSX_MAX_TEXT:,}. Export it as csv, ndjson or parquet.",
        )
    sheet.worksheet.write_string(r, place.index, text)


def _money(sheet: Sheet, r: int, row: Sequence[Any], place: Place) -> None:
    minor = row[place.at]
    if minor is None:
        return
    currency = row[place.currency_at]
    amount = Decimal(minor).scaleb(-MONEY_FORMATS[currency].digits)
    if abs(minor) >= _EXACT_BELOW:
        sheet.worksheet.write_string(r, place.index, f"{amount:f}", sheet.text_money)
    else:
        sheet.worksheet.write_number(r, place.index, amount, sheet.money(currency))


def _date(sheet: Sheet, r: int, row: Sequence[Any], place: Place) -> None:
    value = row[place.at]
    if value is None:
        return
    day = dt.date.fromisoformat(value) if isinstance(value, str) else value
    sheet.worksheet.write_datetime(r, place.index, day, sheet.date)


def _datetime(sheet: Sheet, r: int, row: Sequence[Any], place: Place) -> None:
    value = row[place.at]
    if value is None:
        return
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:  # SQLite's naive UTC text (`db.UTCDateTime`)
        moment = moment.replace(tzinfo=dt.UTC)
    local = moment.astimezone(sheet.zone).replace(tzinfo=None)
    sheet.worksheet.write_datetime(r, place.index, local, sheet.datetime)


def _bool(sheet: Sheet, r: int, row: Sequence[Any], place: Place) -> None:
    if row[place.at] is not None:
        sheet.worksheet.write_boolean(r, place.index, bool(row[place.at]))


def _billed_item(sheet: Sheet, r: int, row: Sequence[Any], place: Place) -> None:
    _write_text(sheet, r, billed_item_text(row[place.at], row[place.at + 1]), place)


XLSX_KINDS: dict[Kind, CellWriter] = {
    "int": _number,
    "ref": _number,
    "count": _number,
    "text": _text,
    "money": _money,
    "date": _date,
    "datetime": _datetime,
    "bool": _bool,
    "billed_item": _billed_item,
}

# Column widths in characters by kind (at least the label's width).
_WIDTHS: dict[Kind, int] = {"money": 16, "date": 12, "datetime": 20, "text": 24, "billed_item": 18}


def write_xlsx(
    batches: Iterable[Sequence[Sequence[Any]]],
    columns: Sequence[Column],
    zone: str,
    path: str,
    temporary_directory: str,
    on_progress: Callable[[int], None],
) -> int:
    """Every row into a new workbook at `path`; the number of rows written."""
    workbook = xlsxwriter.Workbook(
        path,
        {
            "constant_memory": True,
            "tmpdir": temporary_directory,
            # Text is text: never turned into formulas, numbers or links.
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
        },
    )
    worksheet = workbook.add_worksheet("Report")
    sheet = Sheet(workbook, worksheet, zone)
    header = csv_header(columns)
    for index, column in enumerate(columns):
        width = max(len(column.label) + 2, _WIDTHS.get(column.kind, 12))
        worksheet.set_column(index, index, width)
    if appends_currency(columns):
        worksheet.set_column(len(columns), len(columns), 10)
    worksheet.freeze_panes(1, 0)
    bold = workbook.add_format({"bold": True})
    for index, label in enumerate(header):
        worksheet.write_string(0, index, label, bold)

    positions, currency_at = column_positions(columns)
    cells = [
        (XLSX_KINDS[column.kind], Place(index, at, currency_at, column))
        for index, (column, at) in enumerate(zip(columns, positions, strict=True))
    ]
    currency_index = len(columns) if appends_currency(columns) else None
    rows_done = 0
    try:
        for batch in batches:
            if rows_done + len(batch) > XLSX_MAX_ROWS:
                raise too_many_rows()
            for row in batch:
                rows_done += 1
                for write, place in cells:
                    write(sheet, rows_done, row, place)
                if currency_index is not None and row[currency_at] is not None:
                    worksheet.write_string(rows_done, currency_index, row[currency_at])
            on_progress(rows_done)
    finally:
        workbook.close()
    return rows_done
