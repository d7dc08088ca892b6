"""A real `ledgerline worker` runs due schedules from its sweep on the real clock: a schedule
whose slots passed while no worker ran gets one catch-up run, for the latest slot, and its job
is run to success by the same worker."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Api, Backend
from tests.jobs.conftest import ledgerline_env, start_ledgerline, wait_for_job
from tests.schedules.conftest import runs_of


def test_a_worker_sweep_catches_up_once_and_runs_the_job(
    backend: Backend, api: Api, fix_clock: Callable[[dt.datetime], None], tmp_path: Path
) -> None:
    # Created three days ago (by the app's clock): three midnights have passed since.
    fix_clock(dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    body = {
        "report": "invoice_line_items",
        "parameters": {"columns": ["id", "amount"]},
        "cadence": "daily",
        "time": "00:00",
        "timezone": "UTC",
    }
    created = api.post("/export_schedules", json=body)
    assert created.status_code == 201, created.text
    schedule_id = created.json()["id"]
    assert dt.datetime.fromisoformat(created.json()["next_run_at"]) < dt.datetime.now(dt.UTC)

    log = tmp_path / "worker.log"
    worker = start_ledgerline(ledgerline_env(backend), "worker", "--concurrency", "1", log=log)
    try:
        deadline = time.monotonic() + 120
        while (last_job := api.get(f"/export_schedules/{schedule_id}").json()["last_job"]) is None:
            assert worker.poll() is None, log.read_text()[-3000:]
            if time.monotonic() > deadline:
                pytest.fail(f"the worker never ran the schedule: {log.read_text()[-3000:]}")
            time.sleep(0.2)
        job = wait_for_job(api, last_job, timeout=120)
        assert job["status"] == "succeeded", job
        time.sleep(2)  # later sweeps: nothing more to run
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    runs = runs_of(backend, api.account_id, schedule_id)
    assert len(runs) == 1
    created_at = runs[0]["job_created_at"]
    midnight = created_at.replace(hour=0, minute=0, second=0, microsecond=0)
    assert runs[0]["slot"] == midnight
    after = api.get(f"/export_schedules/{schedule_id}").json()
    assert after["next_run_at"] == (midnight + dt.timedelta(days=1)).isoformat()
    assert after["last_run_at"] == midnight.isoformat()
    assert api.get("/jobs").json()["count"] == 1
