"""Calendar periods of a date or a UTC date-time, as SQL on SQLite and PostgreSQL.

`local_period(moment, "month", "Europe/London")` is the local calendar month of the UTC
date-time `moment` in that IANA zone, as text: "2026-03" (month), "2026-Q1" (quarter), "2026"
(year); `date_period(day, "month")` is the same of a plain date. NULL in, NULL out. The text
sorts as the periods do, is what a person reads, and equals Python's
`period_of(moment.astimezone(ZoneInfo(zone)), unit)`.

PostgreSQL converts with its own zone database (`AT TIME ZONE`), then `to_char`.

SQLite has no zone database. The zone's UTC-offset transitions between `RANGE_START` and
`RANGE_END` come from zoneinfo (found once per zone and cached), and one balanced CASE over
them (about 8 text comparisons for a zone with daylight saving, none without) picks the
offset as a `strftime` modifier: `strftime('%Y-%m', moment, '+3600 seconds')`. The stored
naive UTC text ("2026-03-29 01:00:00.000000") compares correctly as text with each
transition's "YYYY-MM-DD HH:MM:SS". Measured at 1M rows grouped by month (Europe/London,
SQLite 3.40): the CASE 1.6 s, a deterministic Python function registered on the connection
5.8 s with an LRU cache (7.9 s without), the UTC month alone (substr) 0.8 s
(docs/decisions.md, "Issue 13: grouping line items by anything"). Instants before
`RANGE_START` take the zone's offset then, after `RANGE_END` its offset then.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, String, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

Unit = Literal["month", "quarter", "year"]
UNITS: tuple[Unit, ...] = get_args(Unit)

# The years whose transitions the SQLite CASE holds (1970 to 2100: 257 for Europe/London).
RANGE_START = 1970
RANGE_END = 2100

# PostgreSQL to_char patterns of each unit.
_TO_CHAR: dict[Unit, str] = {"month": "YYYY-MM", "quarter": 'YYYY-"Q"Q', "year": "YYYY"}


def period_of(day: dt.date, unit: Unit) -> str:
    """The period of a (local) date or date-time, as the SQL gives it."""
    if unit == "month":
        return f"{day.year:04d}-{day.month:02d}"
    if unit == "quarter":
        return f"{day.year:04d}-Q{(day.month + 2) // 3}"
    return f"{day.year:04d}"


class _Period(ColumnElement[str]):
    """The period text of `moment`: a UTC date-time read in `zone`, or a date (zone None)."""

    __visit_name__ = "ledgerline_period"
    type = String()
    inherit_cache = True
    # The statement cache keys on these: one statement per zone and unit.
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy declares it an instance variable)
        ("moment", InternalTraversal.dp_clauseelement),
        ("unit", InternalTraversal.dp_string),
        ("zone", InternalTraversal.dp_string),
    ]

    def __init__(self, moment: ColumnElement[Any], unit: Unit, zone: str | None) -> None:
        if unit not in UNITS:
            raise ValueError(f"{unit!r} is not a period unit")
        if zone is not None:
            ZoneInfo(zone)  # an unknown zone fails here, not in the database
        self.moment = moment
        self.unit = unit
        self.zone = zone

    @property
    def _from_objects(self) -> list[Any]:
        return list(self.moment._from_objects)


def local_period(moment: ColumnElement[Any], unit: Unit, zone: str) -> ColumnElement[str]:
    """The local calendar `unit` of the UTC date-time `moment` in the IANA `zone`."""
    return _Period(moment, unit, zone)


def date_period(day: ColumnElement[Any], unit: Unit) -> ColumnElement[str]:
    """The calendar `unit` of the date `day`."""
    return _Period(day, unit, None)


@compiles(_Period, "postgresql")
def _compile_postgresql(element: _Period, compiler: SQLCompiler, **kw: Any) -> str:
    moment = compiler.process(element.moment, **kw)
    if element.zone is not None:
        zone = compiler.process(literal(element.zone, String()), **kw)
        moment = f"({moment} AT TIME ZONE {zone})"
    return f"to_char({moment}, '{_TO_CHAR[element.unit]}')"


@compiles(_Period, "sqlite")
def _compile_sqlite(element: _Period, compiler: SQLCompiler, **kw: Any) -> str:
    moment = compiler.process(element.moment, **kw)
    if element.zone is None:
        # A date is stored as ISO text, "2026-03-29".
        year, month = f"substr({moment}, 1, 4)", f"substr({moment}, 6, 2)"
        if element.unit == "month":
            return f"substr({moment}, 1, 7)"
    else:
        modifier = _sqlite_offset_modifier(moment, element.zone)
        # Whole seconds: SQLite's date functions round to the millisecond, so
        # "…23:59:59.999999" would be read as the next day.
        seconds = f"substr({moment}, 1, 19)"
        args = f"{seconds}, {modifier}" if modifier else seconds
        if element.unit == "month":
            return f"strftime('%Y-%m', {args})"
        year, month = f"strftime('%Y', {args})", f"strftime('%m', {args})"
    if element.unit == "year":
        return year
    # The local time is computed twice: measured cheaper than one month text rewritten by
    # twelve nested replace() (3.1 s against 5.6 s at 1M rows).
    return f"({year} || '-Q' || ((CAST({month} AS INTEGER) + 2) / 3))"


@compiles(_Period)
def _compile_other(element: _Period, compiler: SQLCompiler, **kw: Any) -> str:
    raise NotImplementedError(f"periods on {compiler.dialect.name}")


def _modifier(offset: dt.timedelta) -> str:
    seconds = int(offset.total_seconds())
    return f"'{seconds:+d} seconds'"


Transitions = tuple[tuple[dt.datetime, dt.timedelta], ...]


@lru_cache(maxsize=64)
def offset_transitions(zone: str) -> tuple[dt.timedelta, Transitions]:
    """The zone's UTC offset at RANGE_START, and each (UTC instant, new offset) at which it
    changes before RANGE_END, to the second: found by stepping a day at a time and bisecting
    each day whose offset differs (no zone changes its offset twice within a day)."""
    tz = ZoneInfo(zone)
    moment = dt.datetime(RANGE_START, 1, 1, tzinfo=dt.UTC)
    stop = dt.datetime(RANGE_END, 1, 1, tzinfo=dt.UTC)
    day = dt.timedelta(days=1)

    def offset_at(instant: dt.datetime) -> dt.timedelta:
        offset = instant.astimezone(tz).utcoffset()
        assert offset is not None
        return offset

    first = current = offset_at(moment)
    transitions: list[tuple[dt.datetime, dt.timedelta]] = []
    while moment < stop:
        following = moment + day
        offset = offset_at(following)
        if offset != current:
            # offset_at(low) == current != offset_at(high), in whole seconds.
            low, high = 0, int(day.total_seconds())
            while high - low > 1:
                middle = (low + high) // 2
                if offset_at(moment + dt.timedelta(seconds=middle)) == current:
                    low = middle
                else:
                    high = middle
            transitions.append((moment + dt.timedelta(seconds=high), offset))
            current = offset
        moment = following
    return first, tuple(transitions)


def _sqlite_offset_modifier(moment: str, zone: str) -> str:
    """The strftime modifier that turns `moment` (naive UTC text) into local time: a constant
    for a zone that kept one offset, else a balanced CASE over the transitions ("" for UTC)."""
    first, transitions = offset_transitions(zone)

    def node(low: int, high: int, before: dt.timedelta) -> str:
        # The offset for transitions[low:high], `before` applying before transitions[low].
        if low == high:
            return _modifier(before)
        middle = (low + high) // 2
        at, after = transitions[middle]
        bound = at.strftime("%Y-%m-%d %H:%M:%S")
        return (
            f"CASE WHEN {moment} < '{bound}' THEN {node(low, middle, before)} "
            f"ELSE {node(middle + 1, high, after)} END"
        )

    if not transitions and not first:
        return ""
    return node(0, len(transitions), first)
