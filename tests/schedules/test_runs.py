"""The runner on an injected clock: one run per slot at its exact UTC instant across
daylight-saving changes, cron expressions, one catch-up after downtime, timeframes resolved at
the slot, and a scheduled job's file equal to an ad-hoc export's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import update

from ledgerline.db import engine_for
from ledgerline.jobs.queue import EmbeddedWorkers, JobQueue
from ledgerline.models import ExportSchedule
from ledgerline.schedules.runner import run_due_schedules
from tests.conftest import Api, Backend, TenantFactory
from tests.jobs.conftest import download, wait_for_job
from tests.reports.conftest import Data
from tests.schedules.conftest import drive, runs_of, utc

PATH = "/export_schedules"
QUARTER_HOUR = dt.timedelta(minutes=15)


def schedule(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"report": "invoice_line_items", "parameters": {"columns": ["id"]}, **fields}
    response = api.post(PATH, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# The run instants, worked out by hand from the published rules (not by the code under test):
# Europe/London is GMT (UTC+0) until 01:00 UTC on the last Sunday of March (31 March 2030),
# then BST (UTC+1) until 01:00 UTC on the last Sunday of October (27 October 2030).
# America/New_York is EST (UTC-5) until 07:00 UTC on the second Sunday of March (10 March
# 2030), then EDT (UTC-4) until 06:00 UTC on the first Sunday of November (3 November 2030).
DST_WEEKS: dict[str, tuple[dict[str, Any], str, list[str]]] = {
    # 01:30 does not exist on 31 March: the first instant after the gap, 02:00 BST (01:00Z).
    "london-spring": (
        {"cadence": "daily", "time": "01:30", "timezone": "Europe/London"},
        "2030-03-27T12:00:00",
        [
            "2030-03-28T01:30:00",
            "2030-03-29T01:30:00",
            "2030-03-30T01:30:00",
            "2030-03-31T01:00:00",
            "2030-04-01T00:30:00",
            "2030-04-02T00:30:00",
            "2030-04-03T00:30:00",
        ],
    ),
    # 01:30 happens twice on 27 October: once, at the first (BST, 00:30Z).
    "london-autumn": (
        {"cadence": "daily", "time": "01:30", "timezone": "Europe/London"},
        "2030-10-23T12:00:00",
        [
            "2030-10-24T00:30:00",
            "2030-10-25T00:30:00",
            "2030-10-26T00:30:00",
            "2030-10-27T00:30:00",
            "2030-10-28T01:30:00",
            "2030-10-29T01:30:00",
            "2030-10-30T01:30:00",
        ],
    ),
    # 02:30 does not exist on 10 March: 03:00 EDT (07:00Z).
    "new-york-spring": (
        {"cadence": "daily", "time": "02:30", "timezone": "America/New_York"},
        "2030-03-06T12:00:00",
        [
            "2030-03-07T07:30:00",
            "2030-03-08T07:30:00",
            "2030-03-09T07:30:00",
            "2030-03-10T07:00:00",
            "2030-03-11T06:30:00",
            "2030-03-12T06:30:00",
            "2030-03-13T06:30:00",
        ],
    ),
    # 01:30 happens twice on 3 November: once, at the first (EDT, 05:30Z).
    "new-york-autumn": (
        {"cadence": "daily", "time": "01:30", "timezone": "America/New_York"},
        "2030-10-30T12:00:00",
        [
            "2030-10-31T05:30:00",
            "2030-11-01T05:30:00",
            "2030-11-02T05:30:00",
            "2030-11-03T05:30:00",
            "2030-11-04T06:30:00",
            "2030-11-05T06:30:00",
            "2030-11-06T06:30:00",
        ],
    ),
    # Weekly on Sunday at 02:30 in New York, across the spring change.
    "new-york-weekly": (
        {"cadence": "weekly", "weekday": "sunday", "time": "02:30", "timezone": "America/New_York"},
        "2030-03-01T12:00:00",
        ["2030-03-03T07:30:00", "2030-03-10T07:00:00", "2030-03-17T06:30:00"],
    ),
    # Cron minutes 01:00 and 01:30: both inside London's gap on 31 March, so one run at
    # the gap's end; BST after.
    "london-cron-spring": (
        {"cadence": "cron", "cron": "*/30 1 * * *", "timezone": "Europe/London"},
        "2030-03-29T12:00:00",
        [
            "2030-03-30T01:00:00",
            "2030-03-30T01:30:00",
            "2030-03-31T01:00:00",
            "2030-04-01T00:00:00",
            "2030-04-01T00:30:00",
        ],
    ),
    # ... and on 27 October each at its first occurrence only.
    "london-cron-autumn": (
        {"cadence": "cron", "cron": "*/30 1 * * *", "timezone": "Europe/London"},
        "2030-10-26T12:00:00",
        [
            "2030-10-27T00:00:00",
            "2030-10-27T00:30:00",
            "2030-10-28T01:00:00",
            "2030-10-28T01:30:00",
        ],
    ),
    # Monthly on the 31st: a shorter month runs on its last day; BST from 31 March.
    "monthly-31st": (
        {"cadence": "monthly", "day_of_month": 31, "time": "06:00", "timezone": "Europe/London"},
        "2030-01-30T12:00:00",
        [
            "2030-01-31T06:00:00",
            "2030-02-28T06:00:00",
            "2030-03-31T05:00:00",
            "2030-04-30T05:00:00",
        ],
    ),
    # Cron on weekdays at 09:15 in New York across the spring change.
    "new-york-cron-weekdays": (
        {"cadence": "cron", "cron": "15 9 * * MON-FRI", "timezone": "America/New_York"},
        "2030-03-07T12:00:00",
        [
            "2030-03-07T14:15:00",
            "2030-03-08T14:15:00",
            "2030-03-11T13:15:00",
            "2030-03-12T13:15:00",
        ],
    ),
}


@pytest.mark.parametrize("case", list(DST_WEEKS))
def test_each_slot_runs_once_at_its_exact_instant(
    backend: Backend, api: Api, fix_clock: Callable[[dt.datetime], None], case: str
) -> None:
    fields, created_at, expected = DST_WEEKS[case]
    start = utc(created_at)
    fix_clock(start)
    created = schedule(api, **fields)
    slots = [utc(text) for text in expected]
    assert created["next_run_at"] == slots[0].isoformat()
    # Every quarter of an hour (hourly for the months) until the day after the last slot.
    step = dt.timedelta(hours=1) if case == "monthly-31st" else QUARTER_HOUR
    drive(backend, start, slots[-1] + dt.timedelta(hours=12), step)
    runs = runs_of(backend, api.account_id, created["id"])
    assert [run["slot"] for run in runs] == slots
    # Each run made at the first tick at or after its slot: here the slot itself.
    assert [run["job_created_at"] for run in runs] == slots
    jobs = api.get("/jobs", params={"limit": 100}).json()
    assert jobs["count"] == len(slots)
    assert sorted(job["id"] for job in jobs["results"]) == sorted(run["job"] for run in runs)
    after = api.get(f"{PATH}/{created['id']}").json()
    assert after["last_run_at"] == slots[-1].isoformat()
    assert after["last_job"] == runs[-1]["job"]


def test_after_downtime_one_catch_up_run_for_the_latest_missed_slot(
    backend: Backend, api: Api, fix_clock: Callable[[dt.datetime], None]
) -> None:
    fix_clock(utc("2030-01-10T12:00:00"))
    created = schedule(
        api,
        cadence="daily",
        time="23:30",
        timezone="Europe/London",
        parameters={"columns": ["id"], "invoice_paid_at_timeframe": "last_month"},
    )
    assert created["next_run_at"] == "2030-01-10T23:30:00+00:00"
    # Down from the 10th to 1 February 01:00: 22 slots missed; one run, for the latest.
    back = utc("2030-02-01T01:00:00")
    assert len(drive(backend, back, back, QUARTER_HOUR)) == 1
    assert drive(backend, back, back + dt.timedelta(minutes=30), QUARTER_HOUR) == []
    runs = runs_of(backend, api.account_id, created["id"])
    assert [run["slot"] for run in runs] == [utc("2030-01-31T23:30:00")]
    after = api.get(f"{PATH}/{created['id']}").json()
    assert after["next_run_at"] == "2030-02-01T23:30:00+00:00"
    assert after["last_run_at"] == "2030-01-31T23:30:00+00:00"
    job = api.get(f"/jobs/{after['last_job']}").json()
    assert job["status"] == "queued"
    assert job["created_at"] == back.isoformat()
    # `last_month` at the slot (31 January, local) is December, though the run was in February.
    assert job["params"]["filters"] == {
        "invoice_paid_at_gte": "2029-12-01T00:00:00+00:00",
        "invoice_paid_at_lte": "2029-12-31T23:59:59.999999+00:00",
        "invoice_paid_at_timeframe": "last_month",
    }
    # The next slot runs as usual.
    drive(backend, utc("2030-02-01T23:30:00"), utc("2030-02-01T23:30:00"), QUARTER_HOUR)
    assert len(runs_of(backend, api.account_id, created["id"])) == 2


def test_paused_schedule_never_runs_and_resumes_from_now(
    backend: Backend, api: Api, fix_clock: Callable[[dt.datetime], None]
) -> None:
    fix_clock(utc("2030-01-10T12:00:00"))
    created = schedule(api, cadence="daily", time="06:00", timezone="UTC")
    api.patch(f"{PATH}/{created['id']}", json={"enabled": False})
    drive(backend, utc("2030-01-10T12:00:00"), utc("2030-01-13T12:00:00"), dt.timedelta(hours=1))
    assert runs_of(backend, api.account_id, created["id"]) == []
    fix_clock(utc("2030-01-13T12:00:00"))
    resumed = api.patch(f"{PATH}/{created['id']}", json={"enabled": True}).json()
    assert resumed["next_run_at"] == "2030-01-14T06:00:00+00:00"
    drive(backend, utc("2030-01-13T12:00:00"), utc("2030-01-14T12:00:00"), dt.timedelta(hours=1))
    slots = [run["slot"] for run in runs_of(backend, api.account_id, created["id"])]
    assert slots == [utc("2030-01-14T06:00:00")]


def test_a_slot_whose_parameters_no_longer_parse_records_why_and_moves_on(
    backend: Backend, api: Api, fix_clock: Callable[[dt.datetime], None]
) -> None:
    fix_clock(utc("2030-01-10T12:00:00"))
    created = schedule(api, cadence="daily", time="06:00", timezone="UTC")
    with engine_for(backend.database_url).begin() as conn:
        conn.execute(
            update(ExportSchedule)
            .where(
                ExportSchedule.account_id == api.account_id,
                ExportSchedule.public_id == created["id"],
            )
            .values(parameters={"columns": ["gone"]})
        )
    assert (
        drive(backend, utc("2030-01-11T06:00:00"), utc("2030-01-11T06:00:00"), QUARTER_HOUR) == []
    )
    after = api.get(f"{PATH}/{created['id']}").json()
    assert "columns" in after["last_error"]
    assert after["next_run_at"] == "2030-01-12T06:00:00+00:00"
    assert api.get("/jobs").json()["count"] == 0


@pytest.fixture(scope="module")
def consumer(backend: Backend) -> Iterator[JobQueue]:
    workers = EmbeddedWorkers(backend.settings, 2)
    workers.start()
    yield workers.queue
    workers.stop()


@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_a_scheduled_file_equals_the_ad_hoc_export_of_its_slot(
    backend: Backend,
    make_tenant: TenantFactory,
    fix_clock: Callable[[dt.datetime], None],
    consumer: JobQueue,
    file_format: str,
) -> None:
    api = make_tenant(timezone="Europe/London")
    data = Data(backend, api)
    july = []
    for paid_at in (
        "2031-06-30T22:59:59",
        "2031-06-30T23:00:00",
        "2031-07-31T22:59:59",
        "2031-07-31T23:00:00",
    ):
        lines = data.invoice(
            [{"amount": 1250, "type": "flat_fee"}, {"amount": -75, "type": "service_fee"}],
            status="paid",
            paid_at=utc(paid_at),
        )
        # July in London (BST): 30 June 23:00Z to 31 July 22:59:59Z.
        if utc("2031-06-30T23:00:00") <= utc(paid_at) < utc("2031-07-31T23:00:00"):
            july += [line.id for line in lines]
    parameters = {
        "columns": ["id", "invoice.id", "type", "amount", "invoice.paid_at"],
        "sort": ["-id"],
        "invoice_paid_at_timeframe": "last_month",
    }
    fix_clock(utc("2031-07-20T12:00:00"))
    created = schedule(
        api,
        parameters=parameters,
        format=file_format,
        cadence="monthly",
        day_of_month=1,
        time="06:00",
        timezone="Europe/London",
    )
    slot = utc("2031-08-01T05:00:00")  # 06:00 BST
    assert created["next_run_at"] == slot.isoformat()
    assert len(run_due_schedules(backend.database_url, slot, consumer.enqueue)) == 1
    scheduled_id = api.get(f"{PATH}/{created['id']}").json()["last_job"]
    fix_clock(slot)
    ad_hoc = api.post(
        "/reports/invoice_line_items/export", json={**parameters, "format": file_format}
    )
    assert ad_hoc.status_code == 200, ad_hoc.text
    scheduled = wait_for_job(api, scheduled_id)
    other = wait_for_job(api, ad_hoc.json()["job"])
    assert scheduled["status"] == other["status"] == "succeeded"
    assert scheduled["params"] == other["params"]
    assert scheduled["format"] == other["format"] == file_format
    content = download(api, scheduled)
    assert content == download(api, other)
    assert scheduled["result"]["row_count"] == len(july) == 4
    if file_format == "json":
        import json

        assert [row["id"] for row in json.loads(content)] == sorted(july, reverse=True)
