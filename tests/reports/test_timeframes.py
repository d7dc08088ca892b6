"""The `*_timeframe` filters (issue 13): each named range on a fixed clock, in the account's
time zone, against day ranges computed here by plain membership rules (which days share
today's ISO week, month, quarter, year...), never by the code under test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ledgerline.reports.filters import Filters
from ledgerline.reports.query import parse_report_params
from ledgerline.reports.timeframes import TIMEFRAMES, timeframe_days
from tests.conftest import Api, Backend, TenantFactory, assert_problem
from tests.reports.conftest import Data, Line

FLAT = "invoice_line_items"
UTC = dt.UTC
MICROSECOND = dt.timedelta(microseconds=1)
# filter prefix -> the invoice field it bounds.
FIELDS = {
    "invoice_due_date": "due_date",
    "invoice_paid_at": "paid_at",
    "invoice_updated_at": "updated_at",
    "invoice_confirmed_at": "confirmed_at",
}


def _month_index(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def _quarter_index(day: dt.date) -> int:
    return day.year * 4 + (day.month - 1) // 3


def expected_days(name: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of every day near `today` that belongs to the timeframe, by
    the plain rule for each name; the days found must also be one unbroken run."""
    week = today.isocalendar()[:2]
    week_before = (today - dt.timedelta(days=7)).isocalendar()[:2]
    month, quarter = _month_index(today), _quarter_index(today)
    rules: dict[str, Callable[[dt.date], bool]] = {
        "today": lambda day: day == today,
        "yesterday": lambda day: (today - day).days == 1,
        "this_week": lambda day: day.isocalendar()[:2] == week,
        "last_week": lambda day: day.isocalendar()[:2] == week_before,
        "this_month": lambda day: _month_index(day) == month,
        "last_month": lambda day: _month_index(day) == month - 1,
        "this_quarter": lambda day: _quarter_index(day) == quarter,
        "last_quarter": lambda day: _quarter_index(day) == quarter - 1,
        "this_year": lambda day: day.year == today.year,
        "last_year": lambda day: day.year == today.year - 1,
        "last_7_days": lambda day: 0 <= (today - day).days < 7,
        "last_30_days": lambda day: 0 <= (today - day).days < 30,
        "last_90_days": lambda day: 0 <= (today - day).days < 90,
        "last_12_months": lambda day: month - 12 <= _month_index(day) <= month - 1,
    }
    days = [
        today + dt.timedelta(days=offset)
        for offset in range(-800, 400)
        if rules[name](today + dt.timedelta(days=offset))
    ]
    assert (days[-1] - days[0]).days + 1 == len(days)
    return days[0], days[-1]


TODAYS = [
    *(dt.date(2025, month, 1) for month in range(1, 13)),  # the first of every month
    dt.date(2026, 1, 1),  # first day of a year (a Thursday)
    dt.date(2024, 2, 29),  # leap day
    dt.date(2024, 3, 1),
    dt.date(2026, 3, 1),  # a Sunday, first of a month
    dt.date(2026, 3, 2),  # a Monday
    dt.date(2026, 3, 30),  # Monday after London's spring change
    dt.date(2026, 10, 25),  # Sunday of London's autumn change
    dt.date(2026, 12, 31),
]


@pytest.mark.parametrize("today", TODAYS, ids=str)
def test_each_timeframe_names_the_days_of_its_plain_rule(today: dt.date) -> None:
    for name in TIMEFRAMES:
        assert timeframe_days(name, today) == expected_days(name, today), name


@pytest.mark.parametrize(
    ("name", "today", "first", "last"),
    [
        ("last_month", "2026-03-01", "2026-02-01", "2026-02-28"),
        ("last_month", "2026-01-01", "2025-12-01", "2025-12-31"),
        ("last_quarter", "2026-01-01", "2025-10-01", "2025-12-31"),
        ("last_year", "2026-01-01", "2025-01-01", "2025-12-31"),
        ("this_week", "2026-03-01", "2026-02-23", "2026-03-01"),  # Sunday ends its week
        ("this_week", "2026-03-02", "2026-03-02", "2026-03-08"),  # Monday starts one
        ("last_week", "2026-03-02", "2026-02-23", "2026-03-01"),
        ("last_7_days", "2026-03-01", "2026-02-23", "2026-03-01"),
        ("last_12_months", "2026-03-01", "2025-03-01", "2026-02-28"),
        ("last_12_months", "2026-01-01", "2025-01-01", "2025-12-31"),
        # The console's presets are these timeframes (its former own cases).
        ("last_month", "2026-01-15", "2025-12-01", "2025-12-31"),
        ("last_month", "2024-03-01", "2024-02-01", "2024-02-29"),
        ("this_quarter", "2026-01-01", "2026-01-01", "2026-03-31"),
        ("this_quarter", "2026-06-30", "2026-04-01", "2026-06-30"),
        ("this_quarter", "2026-08-10", "2026-07-01", "2026-09-30"),
        ("this_quarter", "2026-12-31", "2026-10-01", "2026-12-31"),
        ("last_30_days", "2026-03-01", "2026-01-31", "2026-03-01"),
    ],
)
def test_definitions_as_documented(name: str, today: str, first: str, last: str) -> None:
    expected = (dt.date.fromisoformat(first), dt.date.fromisoformat(last))
    assert timeframe_days(name, dt.date.fromisoformat(today)) == expected


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("timezone", "now", "name", "gte", "lte"),
    [
        # London's spring change (29 March 2026, 01:00 GMT -> 02:00 BST) inside last_week.
        (
            "Europe/London",
            "2026-03-30T10:00:00+00:00",
            "last_week",
            "2026-03-23T00:00:00+00:00",
            "2026-03-29T22:59:59.999999+00:00",
        ),
        # Its autumn change (25 October 2026, 02:00 BST -> 01:00 GMT) inside this_week.
        (
            "Europe/London",
            "2026-10-25T12:00:00+00:00",
            "this_week",
            "2026-10-18T23:00:00+00:00",
            "2026-10-25T23:59:59.999999+00:00",
        ),
        # 00:30 on 1 March in London: last month is February, whole.
        (
            "Europe/London",
            "2026-03-01T00:30:00+00:00",
            "last_month",
            "2026-02-01T00:00:00+00:00",
            "2026-02-28T23:59:59.999999+00:00",
        ),
        # 31 January in UTC is already 1 February in Auckland (NZDT, +13).
        (
            "Pacific/Auckland",
            "2026-01-31T12:00:00+00:00",
            "this_month",
            "2026-01-31T11:00:00+00:00",
            "2026-02-28T10:59:59.999999+00:00",
        ),
        # UTC+14: 10:00 on 31 December UTC is the first instant of 2027 there.
        (
            "Pacific/Kiritimati",
            "2026-12-31T10:00:00+00:00",
            "this_year",
            "2026-12-31T10:00:00+00:00",
            "2027-12-31T09:59:59.999999+00:00",
        ),
        (
            "Pacific/Kiritimati",
            "2026-12-31T10:00:00+00:00",
            "today",
            "2026-12-31T10:00:00+00:00",
            "2027-01-01T09:59:59.999999+00:00",
        ),
    ],
)
def test_datetime_bounds_are_local_whole_days_across_dst(
    timezone: str, now: str, name: str, gte: str, lte: str
) -> None:
    params = parse_report_params(
        FLAT,
        {"invoice_paid_at_timeframe": name},
        timezone=timezone,
        for_export=False,
        now=at(now),
    )
    filters = params.filters
    assert isinstance(filters, Filters)
    assert filters.invoice_paid_at_gte == at(gte)
    assert filters.invoice_paid_at_lte == at(lte)
    assert filters.invoice_paid_at_timeframe == name
    stored = params.to_json()["filters"]
    assert stored == {
        "invoice_paid_at_gte": gte,
        "invoice_paid_at_lte": lte,
        "invoice_paid_at_timeframe": name,
    }


def test_due_date_bounds_are_local_dates() -> None:
    # 23:30 UTC on 31 December is already 1 January (a Thursday) in Auckland.
    params = parse_report_params(
        FLAT,
        {"invoice_due_date_timeframe": "yesterday"},
        timezone="Pacific/Auckland",
        for_export=True,
        now=at("2025-12-31T23:30:00+00:00"),
    )
    filters = params.filters
    assert isinstance(filters, Filters)
    assert filters.invoice_due_date_gte == dt.date(2025, 12, 31)
    assert filters.invoice_due_date_lte == dt.date(2025, 12, 31)


# ---- /data on each database, on a fixed clock ------------------------------------------------

CLOCKS = [
    ("Europe/London", "2026-03-30T10:00:00+00:00"),  # Monday after the spring change
    ("Europe/London", "2026-10-25T12:00:00+00:00"),  # Sunday of the autumn change
    ("Europe/London", "2026-03-01T00:30:00+00:00"),  # Sunday, first day of a month
    ("Pacific/Auckland", "2026-01-31T12:00:00+00:00"),  # 1 February locally
    ("Pacific/Kiritimati", "2026-12-31T10:00:00+00:00"),  # 1 January 2027 locally
]


def local_bounds(name: str, today: dt.date, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The first and last instant, in UTC, of the timeframe's local days."""
    first, last = expected_days(name, today)
    low = dt.datetime(first.year, first.month, first.day, tzinfo=zone).astimezone(UTC)
    next_day = last + dt.timedelta(days=1)
    after = dt.datetime(next_day.year, next_day.month, next_day.day, tzinfo=zone)
    return low, after.astimezone(UTC) - MICROSECOND


def _ids(lines: list[Line], keep: Callable[[Line], bool]) -> list[int]:
    return sorted(line.id for line in lines if keep(line))


def _within(field: str, low: Any, high: Any) -> Callable[[Line], bool]:
    def keep(line: Line) -> bool:
        value = line.invoice[field]
        return value is not None and low <= value <= high

    return keep


@pytest.mark.parametrize(("timezone", "now"), CLOCKS)
def test_data_rows_and_totals_on_a_fixed_clock(
    backend: Backend,
    make_tenant: TenantFactory,
    fix_clock: Callable[[dt.datetime], None],
    timezone: str,
    now: str,
) -> None:
    api = make_tenant(timezone=timezone)
    data = Data(backend, api)
    zone = ZoneInfo(timezone)
    instant = at(now)
    fix_clock(instant)
    today = instant.astimezone(zone).date()
    bounds = {name: local_bounds(name, today, zone) for name in TIMEFRAMES}
    # For every timeframe, invoices just outside, on and just inside each bound: every date
    # field at the same instant, the due date that instant's local day.
    amount = 0
    for low, high in bounds.values():
        for moment in (low - MICROSECOND, low, high, high + MICROSECOND):
            amount += 1
            data.invoice(
                [{"amount": amount}],
                status="paid",
                due_date=moment.astimezone(zone).date(),
                paid_at=moment,
                confirmed_at=moment,
                updated_at=moment,
            )
    for name, (low, high) in bounds.items():
        for prefix, field in FIELDS.items():
            if field == "due_date":
                keep = _within(field, low.astimezone(zone).date(), high.astimezone(zone).date())
            else:
                keep = _within(field, low, high)
            expected = _ids(data.lines, keep)
            response = api.get(
                f"/reports/{FLAT}/data",
                params={f"{prefix}_timeframe": name, "columns": "id", "limit": 100},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["total"] == len(expected), (name, prefix)
            assert sorted(row["id"] for row in body["rows"]) == expected, (name, prefix)
            assert len(expected) >= 2  # at least the two invoices on its own bounds
    # The grouped report takes the same filters: the sum of this month's paid line items.
    low, high = bounds["this_month"]
    paid = [line for line in data.lines if low <= line.invoice["paid_at"] <= high]
    grouped = api.get(
        f"/reports/{FLAT}.grouped/data",
        params={"invoice_paid_at_timeframe": "this_month", "columns": "total_amount"},
    )
    assert grouped.status_code == 200, grouped.text
    (row,) = grouped.json()["rows"]
    assert row["total_amount"]["string"] == f"£{sum(line.amount for line in paid) / 100:.2f}"


@pytest.mark.parametrize(("timezone", "now"), CLOCKS)
def test_invoices_report_timeframes_on_a_fixed_clock(
    backend: Backend,
    make_tenant: TenantFactory,
    fix_clock: Callable[[dt.datetime], None],
    timezone: str,
    now: str,
) -> None:
    """TeamUp's invoices report takes the same named timeframes under its own names
    (`due_date_timeframe`, `paid_at_timeframe`, ...): the invoices on and just inside each
    bound of each timeframe, and none just outside, on the same fixed clocks."""
    api = make_tenant(timezone=timezone)
    data = Data(backend, api)
    zone = ZoneInfo(timezone)
    instant = at(now)
    fix_clock(instant)
    today = instant.astimezone(zone).date()
    bounds = {name: local_bounds(name, today, zone) for name in TIMEFRAMES}
    for low, high in bounds.values():
        for moment in (low - MICROSECOND, low, high, high + MICROSECOND):
            data.invoice(
                [{"amount": 100}],
                status="paid",
                due_date=moment.astimezone(zone).date(),
                paid_at=moment,
                confirmed_at=moment,
                updated_at=moment,
            )
    for name, (low, high) in bounds.items():
        for field in FIELDS.values():
            if field == "due_date":
                keep = _within(field, low.astimezone(zone).date(), high.astimezone(zone).date())
            else:
                keep = _within(field, low, high)
            expected = sorted({line.invoice_id for line in data.lines if keep(line)})
            response = api.get(
                "/reports/invoices/data",
                params={f"{field}_timeframe": name, "columns": "id", "limit": 100},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["total"] == len(expected), (name, field)
            assert sorted(row["id"] for row in body["rows"]) == expected, (name, field)
            assert len(expected) >= 2  # at least the two invoices on its own bounds


# ---- bad values: 422 naming the key, no job ----------------------------------------------------

KEY = "invoice_paid_at_timeframe"


def _no_jobs(api: Api) -> None:
    listed = api.get("/jobs")
    assert listed.status_code == 200, listed.text
    assert listed.json()["count"] == 0


@pytest.mark.parametrize(
    "query",
    [
        {KEY: "last_fortnight"},
        {KEY: ""},
        {KEY: " "},
        {KEY: "Last_Month"},
        {KEY: ["today", "today"]},
        {KEY: ["today", "yesterday"]},
        {"invoice_due_date_timeframe": "tomorrow"},
    ],
    ids=repr,
)
def test_bad_timeframe_in_a_query_is_422_naming_it(api: Api, query: dict[str, Any]) -> None:
    (key,) = query
    for path in (f"/reports/{FLAT}/data", f"/reports/{FLAT}.grouped/data"):
        assert_problem(api.get(path, params=query), 422, key)
    for path in (f"/reports/{FLAT}/export", f"/reports/{FLAT}.grouped/export"):
        assert_problem(api.post(path, params=query), 422, key)
    _no_jobs(api)


@pytest.mark.parametrize(
    "value",
    ["last_fortnight", "", 5, 1.5, True, [], ["today", "yesterday"], {"name": "today"}],
    ids=repr,
)
def test_bad_timeframe_in_a_json_or_form_body_is_422_and_no_job(api: Api, value: Any) -> None:
    for path in (f"/reports/{FLAT}/export", f"/reports/{FLAT}.grouped/export"):
        assert_problem(api.post(path, json={KEY: value}), 422, KEY)
        if isinstance(value, str):
            assert_problem(api.post(path, data={KEY: value}), 422, KEY)
    _no_jobs(api)


@pytest.mark.parametrize("bound", ["invoice_paid_at_gte", "invoice_paid_at_lte"])
def test_timeframe_with_a_bound_of_its_field_is_a_conflict(api: Api, bound: str) -> None:
    both = {KEY: "last_month", bound: "2026-01-01"}
    body = assert_problem(api.get(f"/reports/{FLAT}/data", params=both), 422, KEY, bound)
    assert body["type"].endswith("conflicting-parameters")
    assert_problem(api.post(f"/reports/{FLAT}/export", json=both), 422, KEY, bound)
    _no_jobs(api)
    # Another field's bound is no conflict.
    other = {KEY: "last_month", "invoice_due_date_gte": "2026-01-01"}
    assert api.get(f"/reports/{FLAT}/data", params=other).status_code == 200


def test_openapi_declares_each_timeframe_with_its_values(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    for path in ("invoice_line_items", "invoice_line_items.grouped"):
        for operation in (
            document["paths"][f"/api/v2/reports/{path}/data"]["get"],
            document["paths"][f"/api/v2/reports/{path}/export"]["post"],
        ):
            declared = {p["name"]: p["schema"] for p in operation["parameters"]}
            for prefix in FIELDS:
                assert declared[f"{prefix}_timeframe"]["enum"] == list(TIMEFRAMES)
