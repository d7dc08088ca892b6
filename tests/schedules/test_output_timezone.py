"""An export schedule's `parameters.timezone` is the file's output time zone, validated by the
export parser and recorded on each run's job; the schedule's own `timezone` is its cadence's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from ledgerline.schedules.runner import run_due_schedules
from tests.conftest import Api, Backend, assert_problem
from tests.schedules.conftest import utc

PATH = "/export_schedules"
NOW = utc("2030-01-10T12:00:00")


def _body(**parameters: Any) -> dict[str, Any]:
    return {
        "report": "invoice_line_items",
        "parameters": {"columns": ["id", "invoice.paid_at"], **parameters},
        "format": "csv",
        "cadence": "daily",
        "time": "06:00",
        "timezone": "Europe/London",
    }


def test_a_schedules_runs_write_in_its_parameters_zone(
    backend: Backend, api: Api, fix_clock: Callable[[dt.datetime], None]
) -> None:
    fix_clock(NOW)
    response = api.post(PATH, json=_body(timezone="America/New_York"))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["parameters"]["timezone"] == "America/New_York"
    assert created["timezone"] == "Europe/London"
    slot = utc("2030-01-11T06:00:00")
    assert created["next_run_at"] == slot.isoformat()
    assert len(run_due_schedules(backend.database_url, slot, lambda _job: None)) == 1
    job_id = api.get(f"{PATH}/{created['id']}").json()["last_job"]
    job = api.get(f"/jobs/{job_id}").json()
    assert job["params"]["output_timezone"] == "America/New_York"


def test_an_unknown_zone_in_a_schedules_parameters_is_a_422(
    api: Api, fix_clock: Callable[[dt.datetime], None]
) -> None:
    fix_clock(NOW)
    for name in ("Mars/Olympus", "", "UTC+5"):
        response = api.post(PATH, json=_body(timezone=name))
        body = assert_problem(response, 422, "timezone")
        assert body["errors"][0]["loc"] == ["body", "parameters", "timezone"]
    assert api.get(PATH).json()["count"] == 0
    assert api.get("/jobs").json()["count"] == 0
