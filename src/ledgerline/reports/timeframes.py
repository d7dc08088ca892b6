"""Named relative date ranges: the `*_timeframe` report filters and the console's presets.

A timeframe is resolved once, when the request is parsed, from the calendar day it is in the
account's time zone at that moment, into the inclusive bounds the `_gte`/`_lte` filters take:
dates for a date column, aware UTC instants (the first instant of the first day to the last
instant of the last day, local) for a date-time column. A job stores those bounds, so it
exports the same rows whenever it runs. Report-family neutral: a family maps its own
`<prefix>_timeframe` keys onto its own bounds with `resolve_timeframe`.

Definitions (`today` is the account's local date; every range is whole days, both ends in):

- `today`, `yesterday`: that one day.
- `this_week`, `this_month`, `this_quarter`, `this_year`: the whole calendar period holding
  today, days after today included (weeks run Monday to Sunday, ISO 8601; quarters start in
  January, April, July and October).
- `last_week`, `last_month`, `last_quarter`, `last_year`: the whole period before that one.
- `last_7_days`, `last_30_days`, `last_90_days`: the N days ending today, today included
  (`last_7_days` on a Sunday is Monday to Sunday).
- `last_12_months`: the 12 whole calendar months before the current month (on any day of
  March 2026: 1 March 2025 to 28 February 2026); the current, unfinished month is not in it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from ledgerline.errors import ValidationFailed

TIMEFRAMES = (
    "today",
    "yesterday",
    "this_week",
    "last_week",
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "this_year",
    "last_year",
    "last_7_days",
    "last_30_days",
    "last_90_days",
    "last_12_months",
)
_DAY = dt.timedelta(days=1)


def today_in(timezone: str, now: dt.datetime) -> dt.date:
    """The calendar day it is at `now` (aware) in the account's time zone."""
    return now.astimezone(ZoneInfo(timezone)).date()


def _month_start(year: int, month: int) -> dt.date:
    """The first day of a month counted from January of `year` (month 0 is last December)."""
    return dt.date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def timeframe_days(name: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day (both inclusive) a timeframe names, seen from `today`."""
    if name == "today":
        return today, today
    if name == "yesterday":
        return today - _DAY, today - _DAY
    if name.startswith("last_") and name.endswith("_days"):
        days = int(name.removeprefix("last_").removesuffix("_days"))
        return today - (days - 1) * _DAY, today
    if name.endswith("_week"):
        monday = today - today.weekday() * _DAY
        if name == "last_week":
            monday -= 7 * _DAY
        return monday, monday + 6 * _DAY
    year, month = today.year, today.month
    if name.endswith("_month"):
        first_month, months = (month - 1 if name == "last_month" else month), 1
    elif name.endswith("_quarter"):
        quarter_start = 3 * ((month - 1) // 3) + 1
        first_month, months = (quarter_start - 3 if name == "last_quarter" else quarter_start), 3
    elif name.endswith("_year"):
        year -= 1 if name == "last_year" else 0
        first_month, months = 1, 12
    elif name == "last_12_months":
        first_month, months = month - 12, 12
    else:
        raise ValueError(name)
    first = _month_start(year, first_month)
    return first, _month_start(year, first_month + months) - _DAY


def day_start(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The first instant of a local day, in UTC. Midnight skipped by a daylight-saving change
    reads with the offset before it (fold=0), which is the instant the day begins."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone).astimezone(dt.UTC)


def day_end(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The last instant (23:59:59.999999 local) of a local day, in UTC."""
    return dt.datetime.combine(day, dt.time.max, tzinfo=zone).astimezone(dt.UTC)


def parse_timeframe(key: str, value: Any) -> str:
    """One timeframe name; anything else (empty, repeated, not text, unknown) is a 422."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    allowed = ", ".join(TIMEFRAMES)
    if isinstance(value, list):
        raise ValidationFailed.field([key], f"give one timeframe, once; one of {allowed}")
    if not isinstance(value, str) or value.strip() not in TIMEFRAMES:
        shown = repr(value) if isinstance(value, str) else "this value"
        raise ValidationFailed.field([key], f"{shown} is not a timeframe; use one of {allowed}")
    return value.strip()


def resolve_timeframe(
    key: str, value: Any, *, zone: ZoneInfo, now: dt.datetime, instants: bool
) -> tuple[str, Any, Any]:
    """The timeframe `value` of filter `key`, as (name, low bound, high bound): dates, or
    aware UTC date-times when `instants` (the bounds of a date-time column)."""
    name = parse_timeframe(key, value)
    first, last = timeframe_days(name, now.astimezone(zone).date())
    if instants:
        return name, day_start(first, zone), day_end(last, zone)
    return name, first, last
