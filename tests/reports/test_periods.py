"""Calendar periods in SQL (`reports.periods`) on each database, against zoneinfo here.

Instants around month and year boundaries and daylight-saving changes (both directions,
both hemispheres, half-hour offsets), each compared with the local month, quarter and year
that Python's zoneinfo gives; dates likewise; NULL gives NULL.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Date, literal, select

from ledgerline.db import UTCDateTime, engine_for
from ledgerline.reports.periods import date_period, local_period, offset_transitions
from tests.conftest import Backend

UTC = dt.UTC
QUARTERS = {month: f"Q{(month - 1) // 3 + 1}" for month in range(1, 13)}
SECOND = dt.timedelta(seconds=1)
MICROSECOND = dt.timedelta(microseconds=1)


def expected(local: dt.date) -> tuple[str, str, str]:
    year = str(local.year).zfill(4)
    return f"{year}-{local.month:02d}", f"{year}-{QUARTERS[local.month]}", year


def around(instant: dt.datetime) -> list[dt.datetime]:
    """The instant, one microsecond and one second before it, and one second after."""
    return [instant - SECOND, instant - MICROSECOND, instant, instant + SECOND]


def local_midnight(zone: str, year: int, month: int) -> dt.datetime:
    return dt.datetime(year, month, 1, tzinfo=ZoneInfo(zone)).astimezone(UTC)


CASES: dict[str, list[dt.datetime]] = {
    # The spring change at 01:00 UTC, the autumn one at 01:00 UTC; month and year boundaries.
    "Europe/London": [
        dt.datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC),
        dt.datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC),
        *around(dt.datetime(2026, 10, 25, 1, tzinfo=UTC)),
        *around(local_midnight("Europe/London", 2026, 7)),  # 2026-06-30T23:00Z
        *around(local_midnight("Europe/London", 2027, 1)),
        *around(local_midnight("Europe/London", 2026, 4)),  # a quarter, in summer time
    ],
    "Europe/Berlin": [
        dt.datetime(2026, 12, 31, 23, 30, tzinfo=UTC),  # 2027-01 / 2027-Q1 / 2027 there
        *around(local_midnight("Europe/Berlin", 2027, 1)),
        *around(dt.datetime(2026, 3, 29, 1, tzinfo=UTC)),
        *around(local_midnight("Europe/Berlin", 2026, 10)),
    ],
    "America/New_York": [
        *around(dt.datetime(2026, 3, 8, 7, tzinfo=UTC)),  # 02:00 EST -> 03:00 EDT
        *around(dt.datetime(2026, 11, 1, 6, tzinfo=UTC)),  # 02:00 EDT -> 01:00 EST
        *around(local_midnight("America/New_York", 2027, 1)),  # 2027-01-01T05:00Z
        *around(local_midnight("America/New_York", 2026, 4)),
        dt.datetime(2026, 12, 31, 23, 30, tzinfo=UTC),  # still 2026 there
    ],
    "Australia/Sydney": [  # southern hemisphere: summer time across the year boundary
        *around(local_midnight("Australia/Sydney", 2027, 1)),
        *around(dt.datetime(2026, 4, 4, 16, tzinfo=UTC)),  # 03:00 AEDT -> 02:00 AEST
        *around(local_midnight("Australia/Sydney", 2026, 10)),
    ],
    "Asia/Kolkata": [*around(local_midnight("Asia/Kolkata", 2026, 1))],  # +05:30, no DST
    "America/St_Johns": [  # -03:30, with DST
        *around(local_midnight("America/St_Johns", 2026, 12)),
        *around(local_midnight("America/St_Johns", 2026, 7)),
    ],
    "UTC": [*around(dt.datetime(2027, 1, 1, tzinfo=UTC))],
    # Past the SQLite CASE's transitions (RANGE_START/RANGE_END): the offset then is kept.
    "Europe/Paris": [
        *around(local_midnight("Europe/Paris", 1970, 1)),
        *around(local_midnight("Europe/Paris", 2099, 11)),
    ],
}


def _periods(
    backend: Backend, moment: object, zone: str | None
) -> tuple[str | None, str | None, str | None]:
    with engine_for(backend.database_url).connect() as conn:
        if zone is None:
            value = literal(moment, Date())
            columns = [date_period(value, unit) for unit in ("month", "quarter", "year")]
        else:
            value = literal(moment, UTCDateTime())
            columns = [local_period(value, unit, zone) for unit in ("month", "quarter", "year")]
        row = conn.execute(select(*columns)).one()
    return row[0], row[1], row[2]


@pytest.mark.parametrize("zone", sorted(CASES))
def test_local_periods_agree_with_zoneinfo(backend: Backend, zone: str) -> None:
    for instant in CASES[zone]:
        local = instant.astimezone(ZoneInfo(zone))
        assert _periods(backend, instant, zone) == expected(local), (zone, instant, local)


def test_london_spring_change_in_one_statement(backend: Backend) -> None:
    """The brief's example: 00:59:59Z is still GMT (March), 01:00:00Z BST; and the same
    statement answers for two zones (the compiled statement cache keys on the zone)."""
    before = dt.datetime(2026, 3, 31, 22, 59, 59, tzinfo=UTC)  # 23:59:59 BST, March 31
    after = dt.datetime(2026, 3, 31, 23, 0, 0, tzinfo=UTC)  # 00:00 BST, April 1
    for zone, month_before, month_after in (
        ("Europe/London", "2026-03", "2026-04"),
        ("UTC", "2026-03", "2026-03"),
    ):
        assert _periods(backend, before, zone)[0] == month_before
        assert _periods(backend, after, zone)[0] == month_after


def test_every_day_of_a_dst_year(backend: Backend) -> None:
    """Every local midnight of 2026 in New York, and the second before it, in one query."""
    zone = ZoneInfo("America/New_York")
    instants = []
    day = dt.date(2026, 1, 1)
    while day.year == 2026:
        midnight = dt.datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        instants += [midnight - SECOND, midnight]
        day += dt.timedelta(days=1)
    values = [literal(instant, UTCDateTime()) for instant in instants]
    with engine_for(backend.database_url).connect() as conn:
        months = conn.execute(
            select(*(local_period(value, "month", "America/New_York") for value in values))
        ).one()
    assert list(months) == [expected(instant.astimezone(zone))[0] for instant in instants]


@pytest.mark.parametrize(
    "day", [dt.date(2026, 1, 1), dt.date(2026, 3, 31), dt.date(2026, 4, 1), dt.date(2026, 12, 31)]
)
def test_date_periods(backend: Backend, day: dt.date) -> None:
    assert _periods(backend, day, None) == expected(day)


def test_null_in_null_out(backend: Backend) -> None:
    assert _periods(backend, None, "Europe/London") == (None, None, None)
    assert _periods(backend, None, None) == (None, None, None)


def test_transitions_match_zoneinfo() -> None:
    """Each transition found is where zoneinfo's offset changes, to the second."""
    zone = ZoneInfo("Europe/London")
    first, transitions = offset_transitions("Europe/London")
    assert first == dt.datetime(1970, 1, 1, tzinfo=UTC).astimezone(zone).utcoffset()
    assert dt.datetime(2026, 3, 29, 1, tzinfo=UTC) in [at for at, _ in transitions]
    for at, offset in transitions:
        assert (at - SECOND).astimezone(zone).utcoffset() != offset
        assert at.astimezone(zone).utcoffset() == offset
    assert offset_transitions("UTC") == (dt.timedelta(0), ())
