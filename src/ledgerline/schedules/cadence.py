"""When a schedule runs: its slots, as UTC instants, from a cadence at a local time in a zone.

Pure Python (no database), so the rules can be tested against an independent computation.
The rules (docs/schedules.md):

- `daily` at `time`; `weekly` on `weekday` at `time`; `monthly` on `day_of_month` (1-31) at
  `time`, on the month's last day when the month is shorter (31 runs on 30 April and on
  28 or 29 February); `cron`: a five-field cron expression (cronsim) matched against the
  local wall clock.
- A local time that does not exist that day (skipped by a daylight-saving change) runs at
  the first instant after the gap: the instant of the change.
- A local time that occurs twice (the hour repeated when clocks go back) runs once, at its
  first occurrence.

So the local wall clock maps to UTC by a function that never goes backwards; slots whose
UTC instants coincide (cron minutes inside a gap) are one slot.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from cronsim import CronSim, CronSimError

from ledgerline.errors import ConflictingParameters, UnknownReference, ValidationFailed
from ledgerline.models import CADENCES, WEEKDAYS

_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def _cron_field(value: str, *extra: str) -> str:
    item = rf"(?:\*|{value}(?:-{value})?)(?:/[1-9][0-9]?)?"
    alternatives = "|".join((item, *extra))
    return rf"(?:{alternatives})(?:,(?:{alternatives}))*"


_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "MON|TUE|WED|THU|FRI|SAT|SUN"
_DAY_OF_WEEK = f"(?:[0-7]|{_DAYS})"
# Five fields, each a list of `*`, a value or a range, with an optional step; names of months
# and days (upper case), `L` (the month's last day; a weekday's last in the month) and `#n`
# (the n-th such weekday): what cronsim reads, as the document can state it.
CRON_PATTERN = (
    "^"
    + " ".join(
        (
            _cron_field("[0-5]?[0-9]"),
            _cron_field("(?:[01]?[0-9]|2[0-3])"),
            _cron_field("(?:0?[1-9]|[12][0-9]|3[01])", "L"),
            _cron_field(f"(?:0?[1-9]|1[0-2]|{_MONTHS})"),
            _cron_field(_DAY_OF_WEEK, f"{_DAY_OF_WEEK}L", f"{_DAY_OF_WEEK}#[1-5]"),
        )
    )
    + "$"
)
_CRON = re.compile(CRON_PATTERN)


class UnknownTimeZone(UnknownReference):
    """A zone name the time zone database does not hold: the document can say what a name
    looks like, not which names exist (as for an id)."""


_DAY = dt.timedelta(days=1)
# Daylight-saving shifts are at most two hours (Antarctica/Troll); searching from three hours
# either side of an instant's wall clock finds every slot near it.
_MARGIN = dt.timedelta(hours=3)
# A cron expression that matches nothing for this long (cronsim refuses days no month has;
# this bounds the rest) never runs.
_CRON_HORIZON = dt.timedelta(days=366 * 30)


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def parse_zone(name: object, loc: list[str | int]) -> str:
    """An IANA zone name, or a 422 naming `loc`."""
    if not isinstance(name, str) or name not in _zones():
        raise UnknownTimeZone.field(loc, "is not an IANA time zone name (such as Europe/London)")
    return name


def local_to_utc(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant of a naive local wall-clock time: its first occurrence when the time
    is repeated, the end of the gap when the time was skipped."""
    first = wall.replace(tzinfo=zone, fold=0)
    instant = first.astimezone(dt.UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # Skipped: fold=0 reads it with the offset before the change, which lands after the gap
    # by the gap's length. The change itself is the first instant after the gap; it lies
    # between the two readings of the wall time.
    later = wall.replace(tzinfo=zone, fold=1).astimezone(dt.UTC)
    low, high = int(min(instant, later).timestamp()), int(max(instant, later).timestamp())
    offset_before = dt.datetime.fromtimestamp(low, zone).utcoffset()
    while high - low > 1:  # transitions fall on whole seconds
        middle = (low + high) // 2
        if dt.datetime.fromtimestamp(middle, zone).utcoffset() == offset_before:
            low = middle
        else:
            high = middle
    return dt.datetime.fromtimestamp(high, dt.UTC)


@dataclass(frozen=True)
class Cadence:
    kind: str
    timezone: str
    time_of_day: str | None = None  # "HH:MM"
    weekday: int | None = None  # 0 = Monday
    day_of_month: int | None = None
    cron: str | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _time(self) -> dt.time:
        assert self.time_of_day is not None
        hour, minute = self.time_of_day.split(":")
        return dt.time(int(hour), int(minute))

    def _local_on(self, day: dt.date) -> dt.datetime | None:
        """The naive local slot on `day`, or None if the cadence has none that day."""
        if self.kind == "weekly" and day.weekday() != self.weekday:
            return None
        if self.kind == "monthly":
            assert self.day_of_month is not None
            last = calendar.monthrange(day.year, day.month)[1]
            if day.day != min(self.day_of_month, last):
                return None
        return dt.datetime.combine(day, self._time())

    def _walls(self, start: dt.datetime, *, reverse: bool) -> Iterator[dt.datetime]:
        """Naive local slots from `start` (a wall time) onwards, or backwards."""
        if self.kind == "cron":
            assert self.cron is not None
            yield from CronSim(self.cron, start, reverse=reverse)
            return
        day = start.date()
        step = -_DAY if reverse else _DAY
        while True:
            wall = self._local_on(day)
            if wall is not None and (wall <= start if reverse else wall >= start):
                yield wall
            day += step

    def next_after(self, instant: dt.datetime) -> dt.datetime | None:
        """The first slot strictly after `instant` (aware), in UTC; None if there is none."""
        zone = self.zone
        start = instant.astimezone(zone).replace(tzinfo=None) - _MARGIN
        for wall in self._walls(start, reverse=False):
            slot = local_to_utc(wall, zone)
            if slot > instant:
                return slot
            if wall - start > _CRON_HORIZON:
                return None
        return None

    def latest_at_or_before(self, instant: dt.datetime) -> dt.datetime | None:
        """The last slot at or before `instant` (aware), in UTC; None if there is none."""
        zone = self.zone
        start = instant.astimezone(zone).replace(tzinfo=None) + _MARGIN
        for wall in self._walls(start, reverse=True):
            slot = local_to_utc(wall, zone)
            if slot <= instant:
                return slot
            if start - wall > _CRON_HORIZON:
                return None
        return None


def make_cadence(
    kind: str,
    *,
    timezone: str,
    time_of_day: str | None,
    weekday: str | None,
    day_of_month: int | None,
    cron: str | None,
) -> Cadence:
    """A validated cadence: each field its cadence uses is given and well-formed, and no field
    it does not use is given (a 422 naming the field, under `body`)."""
    if kind not in CADENCES:
        raise ValidationFailed.field(["body", "cadence"], f"must be one of {', '.join(CADENCES)}")
    uses = {
        "daily": {"time"},
        "weekly": {"time", "weekday"},
        "monthly": {"time", "day_of_month"},
        "cron": {"cron"},
    }[kind]
    given = {
        "time": time_of_day,
        "weekday": weekday,
        "day_of_month": day_of_month,
        "cron": cron,
    }
    for name, value in given.items():
        # Which fields go together is a rule between values: the schema states each alone.
        if name in uses and value is None:
            raise ConflictingParameters.field(["body", name], f"is required for a {kind} cadence")
        if name not in uses and value is not None:
            raise ConflictingParameters.field(["body", name], f"is not used by a {kind} cadence")
    if time_of_day is not None and not _TIME.match(time_of_day):
        raise ValidationFailed.field(
            ["body", "time"], 'must be a local time of day as "HH:MM" (24-hour), such as "06:00"'
        )
    weekday_number = None
    if weekday is not None:
        if weekday not in WEEKDAYS:
            raise ValidationFailed.field(
                ["body", "weekday"], f"must be one of {', '.join(WEEKDAYS)}"
            )
        weekday_number = WEEKDAYS.index(weekday)
    if day_of_month is not None and not 1 <= day_of_month <= 31:
        raise ValidationFailed.field(["body", "day_of_month"], "must be from 1 to 31")
    if cron is not None:
        if not _CRON.match(cron):
            raise ValidationFailed.field(
                ["body", "cron"],
                "must be a five-field cron expression (minute hour day month weekday)",
            )
        try:
            # Cron fields match the local wall clock: a naive time is what cronsim reads.
            CronSim(cron, dt.datetime(2000, 1, 1))  # noqa: DTZ001
        except CronSimError as exc:
            # Each field has the documented form; the values do not go together (a range
            # that runs backwards, a step past the field's end, a day no month has).
            raise ConflictingParameters.field(
                ["body", "cron"], f"is not a valid cron expression: {exc}"
            ) from None
    cadence = Cadence(
        kind=kind,
        timezone=timezone,
        time_of_day=time_of_day,
        weekday=weekday_number,
        day_of_month=day_of_month,
        cron=cron,
    )
    if kind == "cron" and cadence.next_after(dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) is None:
        raise ConflictingParameters.field(["body", "cron"], "never matches a date")
    return cadence
