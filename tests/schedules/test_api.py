"""`/export_schedules`: create, list, read, change, delete; next_run_at as the cadence says;
bad input a 422 naming the field that writes nothing; another account's schedule is a 404."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from tests.conftest import Api, TenantFactory, assert_problem
from tests.openapi_check import assert_matches_openapi
from tests.schedules.conftest import utc

PATH = "/export_schedules"
# 2030-01-10 is a Thursday; London is on GMT in January.
NOW = utc("2030-01-10T12:00:00")
DAILY: dict[str, Any] = {
    "report": "invoice_line_items",
    "parameters": {"columns": ["id", "amount"], "invoice_paid_at_timeframe": "last_month"},
    "format": "csv",
    "cadence": "daily",
    "time": "06:00",
    "timezone": "Europe/London",
}


def create(api: Api, **changes: Any) -> dict[str, Any]:
    response = api.post(PATH, json={**DAILY, **changes})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/api/v2/export_schedules/{body['id']}"
    return body


def test_create_read_list_pause_resume_delete(
    app: FastAPI, api: Api, fix_clock: Callable[[dt.datetime], None]
) -> None:
    fix_clock(NOW)
    created = create(api)
    assert_matches_openapi(app, "post", "/api/v2/export_schedules", 201, created)
    assert created == {
        **created,
        "object": "export_schedule",
        "report": "invoice_line_items",
        "parameters": DAILY["parameters"],
        "format": "csv",
        "cadence": "daily",
        "time": "06:00",
        "weekday": None,
        "day_of_month": None,
        "cron": None,
        "timezone": "Europe/London",
        "enabled": True,
        "next_run_at": "2030-01-11T06:00:00+00:00",
        "last_run_at": None,
        "last_job": None,
        "last_error": None,
    }
    schedule_id = created["id"]
    read = api.get(f"{PATH}/{schedule_id}")
    assert read.status_code == 200
    assert read.json() == created
    assert_matches_openapi(app, "get", "/api/v2/export_schedules/{schedule_id}", 200, read.json())
    listed = api.get(PATH)
    assert listed.status_code == 200, listed.text
    assert listed.json()["count"] == 1
    assert listed.json()["results"] == [created]
    assert_matches_openapi(app, "get", "/api/v2/export_schedules", 200, listed.json())

    paused = api.patch(f"{PATH}/{schedule_id}", json={"enabled": False})
    assert paused.status_code == 200, paused.text
    assert paused.json()["enabled"] is False
    assert paused.json()["next_run_at"] is None
    # Resumed a week later: the next slot from then on, not the ones missed while paused.
    fix_clock(NOW + dt.timedelta(days=7))
    resumed = api.patch(f"{PATH}/{schedule_id}", json={"enabled": True})
    assert resumed.json()["next_run_at"] == "2030-01-18T06:00:00+00:00"

    assert api.delete(f"{PATH}/{schedule_id}").status_code == 204
    assert_problem(api.get(f"{PATH}/{schedule_id}"), 404, str(schedule_id))
    assert api.get(PATH).json()["count"] == 0


@pytest.mark.parametrize(
    ("changes", "next_run_at"),
    [
        # Thursday noon: the next Monday 09:00 (GMT).
        ({"cadence": "weekly", "weekday": "monday", "time": "09:00"}, "2030-01-14T09:00:00+00:00"),
        # The 31st at 06:00: January has it.
        ({"cadence": "monthly", "day_of_month": 31}, "2030-01-31T06:00:00+00:00"),
        # 12:00 has passed (the slot at `now` itself is not next): tomorrow's.
        ({"time": "12:00"}, "2030-01-11T12:00:00+00:00"),
        # 06:00 in New York is 11:00 UTC in January (EST).
        ({"timezone": "America/New_York"}, "2030-01-11T11:00:00+00:00"),
        # Weekdays at 07:30, London: Friday's.
        (
            {"cadence": "cron", "cron": "30 7 * * MON-FRI", "time": None},
            "2030-01-11T07:30:00+00:00",
        ),
        ({"enabled": False}, None),
    ],
)
def test_next_run_at_follows_the_cadence(
    api: Api,
    fix_clock: Callable[[dt.datetime], None],
    changes: dict[str, Any],
    next_run_at: str | None,
) -> None:
    fix_clock(NOW)
    body = {key: value for key, value in {**DAILY, **changes}.items() if value is not None}
    response = api.post(PATH, json=body)
    assert response.status_code == 201, response.text
    assert response.json()["next_run_at"] == next_run_at


def test_the_account_zone_is_the_default(
    make_tenant: TenantFactory, fix_clock: Callable[[dt.datetime], None]
) -> None:
    api = make_tenant(timezone="Asia/Tokyo")
    fix_clock(NOW)
    body = {key: value for key, value in DAILY.items() if key != "timezone"}
    created = api.post(PATH, json=body).json()
    # 06:00 in Tokyo (UTC+9) is 21:00 UTC the day before.
    assert created["timezone"] == "Asia/Tokyo"
    assert created["next_run_at"] == "2030-01-10T21:00:00+00:00"


def test_patch_changes_the_cadence_and_keeps_what_it_was_not_given(
    api: Api, fix_clock: Callable[[dt.datetime], None]
) -> None:
    fix_clock(NOW)
    schedule_id = create(api)["id"]
    weekly = api.patch(f"{PATH}/{schedule_id}", json={"cadence": "weekly", "weekday": "sunday"})
    assert weekly.status_code == 200, weekly.text
    body = weekly.json()
    assert (body["cadence"], body["weekday"], body["time"]) == ("weekly", "sunday", "06:00")
    assert body["next_run_at"] == "2030-01-13T06:00:00+00:00"
    assert body["parameters"] == DAILY["parameters"]
    cron = api.patch(f"{PATH}/{schedule_id}", json={"cadence": "cron", "cron": "0 6 1 * *"})
    assert cron.status_code == 200, cron.text
    body = cron.json()
    assert (body["time"], body["weekday"], body["cron"]) == (None, None, "0 6 1 * *")
    assert body["next_run_at"] == "2030-02-01T06:00:00+00:00"
    report = api.patch(
        f"{PATH}/{schedule_id}",
        json={"report": "invoices.grouped", "parameters": {}, "format": "json"},
    )
    assert report.status_code == 200, report.text
    assert (report.json()["report"], report.json()["format"]) == ("invoices.grouped", "json")
    # Not a change of timing: the next slot stays.
    assert report.json()["next_run_at"] == "2030-02-01T06:00:00+00:00"


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"report": "payments"}, "report"),
    ({"parameters": {"nope": "1"}}, "parameters.nope"),
    ({"parameters": {"columns": ["id", "colour"]}}, "parameters.columns"),
    ({"parameters": {"sort": ["-nope"]}}, "parameters.sort"),
    ({"parameters": {"invoice_paid_at_timeframe": "last_fortnight"}}, "invoice_paid_at_timeframe"),
    ({"parameters": {"invoice_paid_at_gte": "yesterday-ish"}}, "invoice_paid_at_gte"),
    ({"parameters": {"format": "json"}}, "parameters.format"),
    ({"format": "xls"}, "format"),
    ({"format": ""}, "format"),
    ({"format": 3}, "format"),
    ({"cadence": "hourly"}, "cadence"),
    ({"time": "25:00"}, "time"),
    ({"time": "6am"}, "time"),
    ({"cadence": "weekly"}, "weekday"),
    ({"weekday": "monday"}, "weekday"),
    ({"cadence": "weekly", "weekday": "someday"}, "weekday"),
    ({"cadence": "monthly"}, "day_of_month"),
    ({"cadence": "monthly", "day_of_month": 32}, "day_of_month"),
    ({"cadence": "monthly", "day_of_month": 0}, "day_of_month"),
    ({"cadence": "cron", "cron": "0 6 * *"}, "cron"),
    ({"cadence": "cron", "time": None, "cron": "0 6 * * * *"}, "cron"),
    ({"cadence": "cron", "time": None, "cron": "61 6 * * *"}, "cron"),
    ({"cadence": "cron", "time": None, "cron": "0 0 30 2 *"}, "cron"),
    ({"cadence": "cron", "cron": "0 6 * * *", "time": "06:00"}, "time"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": "../../etc/passwd"}, "timezone"),
    ({"timezone": ""}, "timezone"),
    ({"enabled": "yes"}, "enabled"),
    ({"colour": "blue"}, "colour"),
]


@pytest.mark.parametrize(("changes", "named"), BAD_BODIES)
def test_bad_input_is_a_422_naming_it_and_writes_nothing(
    api: Api, changes: dict[str, Any], named: str
) -> None:
    body = {key: value for key, value in {**DAILY, **changes}.items() if value is not None}
    assert_problem(api.post(PATH, json=body), 422, named)
    assert api.get(PATH).json()["count"] == 0


@pytest.mark.parametrize(("changes", "named"), BAD_BODIES)
def test_a_bad_change_is_a_422_naming_it_and_changes_nothing(
    api: Api, fix_clock: Callable[[dt.datetime], None], changes: dict[str, Any], named: str
) -> None:
    fix_clock(NOW)
    created = create(api)
    assert_problem(api.patch(f"{PATH}/{created['id']}", json=changes), 422, named)
    assert api.get(f"{PATH}/{created['id']}").json() == created


def test_patch_refuses_null_for_a_required_field(api: Api) -> None:
    created = create(api)
    for name in ("report", "cadence", "timezone", "enabled", "format", "parameters"):
        assert_problem(api.patch(f"{PATH}/{created['id']}", json={name: None}), 422, name)


def test_another_accounts_schedule_is_a_404(api: Api, other_api: Api) -> None:
    mine = create(api)
    path = f"{PATH}/{mine['id']}"
    assert_problem(other_api.get(path), 404)
    assert_problem(other_api.patch(path, json={"enabled": False}), 404)
    assert_problem(other_api.delete(path), 404)
    assert other_api.get(PATH).json()["count"] == 0
    # Its own first schedule has the same public id and is its own.
    theirs = create(other_api, time="07:00")
    assert theirs["id"] == mine["id"]
    assert api.get(path).json() == mine


def test_scopes(make_tenant: TenantFactory) -> None:
    reader = make_tenant(scopes=["read"])
    assert_problem(reader.post(PATH, json=DAILY), 403, "write")
    assert reader.get(PATH).status_code == 200


@pytest.mark.parametrize(
    ("changes", "named", "problem"),
    [
        # Each value as the document allows, wrong only together with another.
        ({"parameters": {"columns": ["number"]}}, "parameters.columns", "conflicting-parameters"),
        ({"cadence": "weekly"}, "weekday", "conflicting-parameters"),
        ({"day_of_month": 3}, "day_of_month", "conflicting-parameters"),
        ({"cadence": "cron", "cron": "0 0 30 2 *", "time": None}, "cron", "conflicting-parameters"),
        (
            {"cadence": "cron", "cron": "5-3 * * * *", "time": None},
            "cron",
            "conflicting-parameters",
        ),
        # A name of the form the document allows that names no zone.
        ({"timezone": "Europe/Atlantis"}, "timezone", "unknown-reference"),
        # Outside the document: a plain validation error.
        ({"cadence": "cron", "cron": "0 6 * * * *", "time": None}, "cron", "unprocessable-content"),
        ({"parameters": {"colour": "red"}}, "parameters.colour", "validation-error"),
    ],
)
def test_problem_types_say_whether_the_document_could_have_known(
    api: Api, changes: dict[str, Any], named: str, problem: str
) -> None:
    body = {key: value for key, value in {**DAILY, **changes}.items() if value is not None}
    response = assert_problem(api.post(PATH, json=body), 422, named)
    assert response["type"].rsplit("/", 1)[-1] == problem
