"""Parquet exports: typed columns, written a row group at a time (bounded memory).

Each column kind has one entry in `ARROW_KINDS`: its Arrow type and how a batch of the
report's raw values (`reports.query.rows_statement`, transposed) becomes an Arrow array,
vectorised where Arrow can do it. Column names are the report's column keys; a money column
is `decimal(38, 4)` in major units, exact for every ISO 4217 currency (the most minor-unit
digits any has is 4), and the file's `currency` column says which currency it is in (it is
added last, as in CSV, when no requested column is the currency). Dates are `date32`;
date-times are microsecond timestamps, stored as UTC instants and labelled with the
export's output time zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ledgerline.money import currency_digits, known_currencies
from ledgerline.reports.columns import Column
from ledgerline.reports.kinds import MONEY_FORMATS, Kind, billed_item_text
from ledgerline.reports.rendering import appends_currency, column_positions

# Rows a row group: large enough for a columnar reader to skip and compress well. Only the
# group's Arrow arrays wait for it (a few megabytes), never its Python rows.
ROW_GROUP_ROWS = 16384
MONEY_SCALE = max(currency_digits(code) for code in known_currencies())
MONEY_TYPE = pa.decimal128(38, MONEY_SCALE)
CURRENCY_FIELD = "currency"


@dataclass(frozen=True)
class Batch:
    """One batch of rows as the kinds read it: each selected expression's values (by
    position in the row) and each row's currency and its minor-unit digits."""

    values: Sequence[Sequence[Any]]
    currencies: Sequence[str | None]
    zone: str

    @property
    def size(self) -> int:
        return len(self.currencies)

    @cached_property
    def digits(self) -> pa.Array:
        """Each row's minor-unit digits, made once per batch for all its money columns."""
        return pa.array(
            [MONEY_FORMATS[code].digits if code else 0 for code in self.currencies], pa.int8()
        )


@dataclass(frozen=True)
class ArrowKind:
    """One column kind in Parquet: its type in a zone, and its array from a batch."""

    type: Callable[[str], pa.DataType]
    array: Callable[[Batch, int], pa.Array]  # (batch, position of the column's first expr)


def _plain(arrow_type: pa.DataType) -> ArrowKind:
    return ArrowKind(
        lambda _zone: arrow_type, lambda batch, at: pa.array(batch.values[at], arrow_type)
    )


def _dates(batch: Batch, at: int) -> pa.Array:
    values = batch.values[at]
    if any(isinstance(value, str) for value in values):  # SQLite: ISO text
        return pa.array(values, pa.string()).cast(pa.date32())
    return pa.array(values, pa.date32())


def _datetimes(batch: Batch, at: int) -> pa.Array:
    values = batch.values[at]
    if any(isinstance(value, str) for value in values):
        # SQLite keeps naive UTC text ("YYYY-MM-DD HH:MM:SS.ffffff", `db.UTCDateTime`).
        naive = pa.array(values, pa.string()).cast(pa.timestamp("us"))
        utc = naive.cast(pa.timestamp("us", tz="UTC"))
    else:
        utc = pa.array(
            [None if v is None else v.astimezone(dt.UTC) for v in values],
            pa.timestamp("us", tz="UTC"),
        )
    return utc.cast(_timestamp(batch.zone))


def _timestamp(zone: str) -> pa.DataType:
    return pa.timestamp("us", tz=zone)


def _money(batch: Batch, at: int) -> pa.Array:
    """Minor units in each row's currency as major units at MONEY_SCALE, exactly: the
    integers read as decimals of their currency's digits (a change of scale, not a
    division), then widened to MONEY_SCALE."""
    minor = pc.cast(pa.array(batch.values[at], pa.int64()), pa.decimal128(19, 0))
    digits = batch.digits
    money: pa.Array | None = None
    for places in sorted(set(digits.to_pylist())):
        scaled = pa.Array.from_buffers(
            pa.decimal128(38, places), len(minor), minor.buffers(), minor.null_count
        ).cast(MONEY_TYPE)
        money = scaled if money is None else pc.if_else(pc.equal(digits, places), scaled, money)
    return money if money is not None else pa.nulls(0, MONEY_TYPE)


def _bools(batch: Batch, at: int) -> pa.Array:
    return pa.array([None if v is None else bool(v) for v in batch.values[at]], pa.bool_())


def _billed_items(batch: Batch, at: int) -> pa.Array:
    kinds, idents = batch.values[at], batch.values[at + 1]
    return pa.array(map(billed_item_text, kinds, idents), pa.string(), size=batch.size)


ARROW_KINDS: dict[Kind, ArrowKind] = {
    "int": _plain(pa.int64()),
    "ref": _plain(pa.int64()),
    "count": _plain(pa.int64()),
    "text": _plain(pa.string()),
    "money": ArrowKind(lambda _zone: MONEY_TYPE, _money),
    "date": ArrowKind(lambda _zone: pa.date32(), _dates),
    "datetime": ArrowKind(_timestamp, _datetimes),
    "bool": ArrowKind(lambda _zone: pa.bool_(), _bools),
    "billed_item": ArrowKind(lambda _zone: pa.string(), _billed_items),
}


def parquet_schema(columns: Sequence[Column], zone: str) -> pa.Schema:
    fields = [
        pa.field(column.key, ARROW_KINDS[column.kind].type(zone), metadata=_field_note(column))
        for column in columns
    ]
    if appends_currency(columns):
        fields.append(pa.field(CURRENCY_FIELD, pa.string()))
    return pa.schema(
        fields, metadata={"ledgerline.money": f"decimal(38,{MONEY_SCALE}) major units"}
    )


def _field_note(column: Column) -> dict[str, str]:
    note = {"label": column.label}
    if column.kind == "money":
        note["currency"] = "the row's currency column"
    return note


def write_parquet(
    batches: Iterable[Sequence[Sequence[Any]]],
    columns: Sequence[Column],
    zone: str,
    out: BinaryIO,
    on_progress: Callable[[int], None],
) -> int:
    """Every batch of raw rows into `out`; the number of rows written.

    Python rows are held one fetched batch at a time (a few thousand): each batch becomes
    Arrow arrays at once (a tenth of the rows' Python size or less), and the arrays are
    written as a row group whenever ROW_GROUP_ROWS rows have gathered."""
    schema = parquet_schema(columns, zone)
    positions, currency_at = column_positions(columns)
    rows_done = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for rows in batches:
            if not rows:
                continue
            values = list(zip(*rows, strict=True))
            batch = Batch(values, values[currency_at], zone)
            arrays = [
                ARROW_KINDS[column.kind].array(batch, at)
                for column, at in zip(columns, positions, strict=True)
            ]
            if appends_currency(columns):
                arrays.append(pa.array(batch.currencies, pa.string()))
            pending.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
            pending_rows += len(rows)
            rows_done += len(rows)
            del values, batch, arrays
            if pending_rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending, schema=schema))
                pending, pending_rows = [], 0
            on_progress(rows_done)
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema=schema))
    return rows_done
