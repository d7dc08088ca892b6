"""Two runner processes driving one clock against one database and the Redis queue, with two
`ledgerline worker` processes running the jobs: every due slot of every schedule is run
exactly once (counted per slot), and every job succeeds."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from ledgerline.db import engine_for
from ledgerline.models import ExportSchedule, ExportScheduleRun, Job
from tests.conftest import REDIS_URL, Api, Backend, require_service
from tests.jobs.conftest import ROOT, ledgerline_env, start_ledgerline
from tests.schedules.conftest import utc

START = utc("2030-06-01T00:00:00")
END = utc("2030-06-01T12:00:00")
STEP_SECONDS = 300

# A runner process: waits for the go file, then runs due schedules at each instant of the
# shared clock, handing jobs to the configured (Redis) queue, and prints the jobs it made.
RUNNER = """
import datetime as dt, json, pathlib, sys, time
from ledgerline.config import Settings
from ledgerline.jobs.queue import queue_for
from ledgerline.schedules.runner import run_due_schedules

settings = Settings()
queue = queue_for(settings)
go, start, end, step = pathlib.Path(sys.argv[1]), *sys.argv[2:4], int(sys.argv[4])
now, end = dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)
while not go.exists():
    time.sleep(0.005)
created = []
while now <= end:
    created += run_due_schedules(settings.resolved_database_url, now, queue.enqueue)
    now += dt.timedelta(seconds=step)
print(json.dumps(created))
"""

# (fields, the local wall-clock rule the slots follow: an independent computation)
SCHEDULES: list[tuple[dict[str, Any], Callable[[dt.datetime], bool]]] = [
    (
        {"cadence": "cron", "cron": "*/20 * * * *", "timezone": "Europe/London"},
        lambda local: local.minute % 20 == 0,
    ),
    (
        {"cadence": "cron", "cron": "5,35 * * * *", "timezone": "America/New_York"},
        lambda local: local.minute in (5, 35),
    ),
    (
        {"cadence": "daily", "time": "06:00", "timezone": "Europe/London"},
        lambda local: (local.hour, local.minute) == (6, 0),
    ),
    (
        {"cadence": "weekly", "weekday": "saturday", "time": "09:10", "timezone": "Asia/Tokyo"},
        lambda local: local.weekday() == 5 and (local.hour, local.minute) == (9, 10),
    ),
]


def expected_slots(zone: str, rule: Callable[[dt.datetime], bool]) -> list[dt.datetime]:
    """Every UTC minute after START up to END whose local time in `zone` the rule accepts."""
    minutes = int((END - START).total_seconds() // 60)
    instants = (START + dt.timedelta(minutes=n) for n in range(1, minutes + 1))
    return [at for at in instants if rule(at.astimezone(ZoneInfo(zone)))]


def test_two_runner_processes_run_each_slot_exactly_once(
    backend: Backend, api: Api, fix_clock: Callable[[dt.datetime], None], tmp_path: Path
) -> None:
    redis_url = require_service("Redis", REDIS_URL, "LEDGERLINE_TEST_REDIS_URL")
    fix_clock(START)
    expected: dict[int, list[dt.datetime]] = {}
    for fields, rule in SCHEDULES:
        body = {"report": "invoice_line_items", "parameters": {"columns": ["id"]}, **fields}
        response = api.post("/export_schedules", json=body)
        assert response.status_code == 201, response.text
        expected[response.json()["id"]] = expected_slots(fields["timezone"], rule)
    total = sum(len(slots) for slots in expected.values())
    assert total == 36 + 24 + 1 + 1

    env = ledgerline_env(
        backend,
        LEDGERLINE_QUEUE_URL=redis_url,
        LEDGERLINE_QUEUE_NAME=f"schedules-{uuid.uuid4().hex[:10]}",
    )
    workers = [
        start_ledgerline(env, "worker", "--concurrency", "2", log=tmp_path / f"worker{n}.log")
        for n in (1, 2)
    ]
    go = tmp_path / "go"
    runners = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                RUNNER,
                str(go),
                START.isoformat(),
                END.isoformat(),
                str(STEP_SECONDS),
            ],
            env=env,
            cwd=str(ROOT),
            stdout=subprocess.PIPE,
            stderr=(tmp_path / f"runner{n}.log").open("wb"),
        )
        for n in (1, 2)
    ]
    try:
        time.sleep(1.0)  # both started and importing; the go file releases them together
        go.touch()
        made: list[list[int]] = []
        for n, runner in enumerate(runners, start=1):
            out, _ = runner.communicate(timeout=300)
            assert runner.returncode == 0, (tmp_path / f"runner{n}.log").read_text()[-3000:]
            made.append(json.loads(out))
        created = made[0] + made[1]
        assert len(created) == len(set(created)) == total

        engine = engine_for(backend.database_url)
        with engine.begin() as conn:
            runs = conn.execute(
                select(
                    ExportSchedule.public_id, ExportScheduleRun.slot_at, ExportScheduleRun.job_id
                )
                .join(ExportSchedule, ExportSchedule.id == ExportScheduleRun.schedule_id)
                .where(ExportSchedule.account_id == api.account_id)
            ).all()
        per_slot = Counter((row[0], row[1]) for row in runs)
        assert all(count == 1 for count in per_slot.values())
        for schedule_id, slots in expected.items():
            assert sorted(slot for (sid, slot) in per_slot if sid == schedule_id) == slots
        assert sorted(row[2] for row in runs) == sorted(created)

        # The workers run every job; jobs per slot stay one.
        deadline = time.monotonic() + 240
        while True:
            with engine.begin() as conn:
                statuses = dict(
                    conn.execute(
                        select(Job.status, func.count())
                        .where(Job.account_id == api.account_id)
                        .group_by(Job.status)
                    ).all()
                )
            if statuses.get("succeeded") == total:
                break
            for n, worker in enumerate(workers, start=1):
                assert worker.poll() is None, (tmp_path / f"worker{n}.log").read_text()[-3000:]
            if time.monotonic() > deadline:
                pytest.fail(f"jobs not all succeeded: {statuses}")
            time.sleep(0.25)
        assert statuses == {"succeeded": total}
        listed = api.get("/jobs", params={"limit": 1}).json()
        assert listed["count"] == total
    finally:
        for process in [*runners, *workers]:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
