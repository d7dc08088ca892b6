"""Period keys of the invoices report's grouped variant, on SQLite and PostgreSQL.

- `date_period(date, "month" | "year")`: a calendar date's month (`"2026-03"`) or year
  (`"2026"`) as text; a date has no time zone, so none is applied.
- `local_period(instant, zone, "month" | "year")`: the month (1-12) or year of a UTC instant
  as a wall clock in the IANA zone `zone` shows it (a bound parameter, so one statement serves
  every account). PostgreSQL: `EXTRACT(… FROM timezone(zone, instant))` with its own zone
  database. SQLite has no zone database: a deterministic SQL function of this process,
  registered on every SQLite connection (`zoneinfo`, the same data the timeframes use).

A stand-in, written on the `invoices` branch because the shared `reports/periods.py` (branch
`grouped`) was not there yet; it does the same job and can be replaced by it.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, String, event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

Part = Literal["month", "year"]
SQLITE_FUNCTION = "ledgerline_local_period"


class _DatePeriod(FunctionElement[str]):
    type = String()
    inherit_cache = True
    # A class attribute, so the statement cache tells a month from a year by the class.
    part: Part


class _DateMonth(_DatePeriod):
    inherit_cache = True
    part: Part = "month"


class _DateYear(_DatePeriod):
    inherit_cache = True
    part: Part = "year"


class _LocalPeriod(FunctionElement[int]):
    type = Integer()
    inherit_cache = True
    part: Part


class _LocalMonth(_LocalPeriod):
    inherit_cache = True
    part: Part = "month"


class _LocalYear(_LocalPeriod):
    inherit_cache = True
    part: Part = "year"


def date_period(day: Any, part: Part) -> FunctionElement[str]:
    """The month ("2026-03") or year ("2026") of a date, as text."""
    return _DateMonth(day) if part == "month" else _DateYear(day)


def local_period(instant: Any, zone: Any, part: Part) -> FunctionElement[int]:
    """The month (1-12) or year of a UTC instant on the wall clock of `zone`."""
    return _LocalMonth(instant, zone) if part == "month" else _LocalYear(instant, zone)


def _arguments(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(argument, **kw) for argument in element.clauses]


@compiles(_DatePeriod, "postgresql")
def _date_period_pg(element: _DatePeriod, compiler: SQLCompiler, **kw: Any) -> str:
    (day,) = _arguments(element, compiler, **kw)
    pattern = "YYYY-MM" if element.part == "month" else "YYYY"
    return f"to_char({day}, '{pattern}')"


@compiles(_DatePeriod)
def _date_period_sqlite(element: _DatePeriod, compiler: SQLCompiler, **kw: Any) -> str:
    (day,) = _arguments(element, compiler, **kw)
    # SQLite keeps a date as ISO text: its first 7 (or 4) characters are the period.
    length = 7 if element.part == "month" else 4
    return f"substr({day}, 1, {length})"


@compiles(_LocalPeriod, "postgresql")
def _local_period_pg(element: _LocalPeriod, compiler: SQLCompiler, **kw: Any) -> str:
    instant, zone = _arguments(element, compiler, **kw)
    field = "MONTH" if element.part == "month" else "YEAR"
    return f"CAST(EXTRACT({field} FROM timezone({zone}, {instant})) AS INTEGER)"


@compiles(_LocalPeriod)
def _local_period_sqlite(element: _LocalPeriod, compiler: SQLCompiler, **kw: Any) -> str:
    instant, zone = _arguments(element, compiler, **kw)
    return f"{SQLITE_FUNCTION}({instant}, {zone}, '{element.part}')"


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _text(value: Any) -> str:
    # The CSV fast path reads SQLite with `text_factory = bytes`: arguments arrive as bytes.
    return value.decode() if isinstance(value, bytes) else str(value)


def local_period_value(instant: Any, zone: Any, part: Any) -> int | None:
    """SQLite's `ledgerline_local_period`: the stored naive-UTC text of an instant, read in
    `zone`; its month or year."""
    if instant is None or zone is None:
        return None
    moment = dt.datetime.fromisoformat(_text(instant)).replace(tzinfo=dt.UTC)
    local = moment.astimezone(_zone(_text(zone)))
    return local.month if _text(part) == "month" else local.year


@event.listens_for(Engine, "connect")
def _register_sqlite_function(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function(SQLITE_FUNCTION, 3, local_period_value, deterministic=True)
