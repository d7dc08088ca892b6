"""The scheduled exports pages over HTTP (SQLite and PostgreSQL): a schedule made, paused,
resumed and deleted through the console is what the API's `/export_schedules` then answers;
bad input is shown beside its control and writes nothing; another account's schedule is a 404
like a missing one; a form without its CSRF token changes nothing."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ledgerline.auth import owned
from ledgerline.db import transaction
from ledgerline.models import ExportSchedule
from ledgerline.schedules.runner import run_schedule
from tests.conftest import Backend
from tests.console.conftest import Tenant, csrf_of, new_account, sign_in

MONTHLY = {
    "report": "invoice_line_items",
    "format": "csv",
    "cadence": "monthly",
    "time": "06:00",
    "day_of_month": "1",
    "weekday": "friday",  # typed, then the cadence chosen: not sent, not an error
    "cron": "",
    "timezone": "Europe/London",
    "date_range": "paid_at",
    "timeframe": "last_month",
    "statuses": ["paid", "pending_offline"],
    "more": "",
}
NEXT_RUN = re.compile(r'data-schedule="(\d+)" data-enabled="(\w+)" data-next-run="([^"]*)"')


def signed_in(backend: Backend, client: TestClient, **kwargs: Any) -> tuple[Tenant, str]:
    tenant = Tenant(*new_account(backend, **kwargs), client)
    sign_in(client, tenant.token)
    return tenant, csrf_of(client.get("/schedules/new").text)


def first_of_next_month_at_six(now: dt.datetime) -> dt.datetime:
    """Worked out here, not by the schedules' code: 06:00 London on the next 1st."""
    london = ZoneInfo("Europe/London")
    local = now.astimezone(london)
    candidate = dt.datetime(local.year, local.month, 1, 6, tzinfo=london)
    if candidate <= now:
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        candidate = dt.datetime(year, month, 1, 6, tzinfo=london)
    return candidate.astimezone(dt.UTC)


def listed(client: TestClient) -> dict[int, tuple[bool, str]]:
    page = client.get("/schedules")
    assert page.status_code == 200, page.text
    return {int(i): (on == "true", at) for i, on, at in NEXT_RUN.findall(page.text)}


def test_a_schedule_made_paused_resumed_and_deleted_in_the_console_is_the_apis(
    backend: Backend, browser_client: TestClient
) -> None:
    tenant, csrf = signed_in(backend, browser_client)
    before = dt.datetime.now(dt.UTC)
    made = browser_client.post("/schedules", data={**MONTHLY, "csrf_token": csrf})
    assert made.status_code == 303, made.text
    assert made.headers["location"] == "/schedules?done=created&schedule=1"
    after = dt.datetime.now(dt.UTC)

    answer = tenant.get("/export_schedules").json()
    assert answer["count"] == 1
    (schedule,) = answer["results"]
    assert {key: schedule[key] for key in MONTHLY if key in schedule} == {
        "report": "invoice_line_items",
        "format": "csv",
        "cadence": "monthly",
        "time": "06:00",
        "day_of_month": 1,
        "weekday": None,
        "cron": None,
        "timezone": "Europe/London",
    }
    assert schedule["enabled"] is True
    assert schedule["parameters"] == {
        "invoice_paid_at_timeframe": "last_month",
        "invoice_status": "paid,pending_offline",
    }
    next_run = dt.datetime.fromisoformat(schedule["next_run_at"])
    assert next_run in {first_of_next_month_at_six(before), first_of_next_month_at_six(after)}
    # The same body through the API makes the same schedule.
    through_api = tenant.post(
        "/export_schedules",
        json={
            "report": "invoice_line_items",
            "cadence": "monthly",
            "time": "06:00",
            "day_of_month": 1,
            "timezone": "Europe/London",
            "parameters": schedule["parameters"],
        },
    ).json()
    for key in ("parameters", "format", "cadence", "time", "day_of_month", "next_run_at"):
        assert through_api[key] == schedule[key], key
    assert tenant.api.delete("/api/v2/export_schedules/2", headers=tenant.auth).status_code == 204

    page = browser_client.get(made.headers["location"])
    assert "Schedule 1 was created." in page.text
    assert "Monthly on day 1 at 06:00 Europe/London" in page.text
    assert "Paid: last month" in page.text
    assert "Statuses: paid, pending offline" in page.text
    assert "Not run yet" in page.text
    shown = listed(browser_client)
    assert shown[1][0] is True
    assert dt.datetime.fromisoformat(shown[1][1]) == next_run

    paused = browser_client.post("/schedules/1/pause", data={"csrf_token": csrf})
    assert paused.status_code == 303
    assert paused.headers["location"] == "/schedules?done=paused&schedule=1"
    from_api = tenant.get("/export_schedules/1").json()
    assert from_api["enabled"] is False
    assert from_api["next_run_at"] is None
    assert listed(browser_client) == {1: (False, "")}
    assert ">Resume<" in browser_client.get("/schedules").text

    resumed = browser_client.post("/schedules/1/resume", data={"csrf_token": csrf})
    assert resumed.status_code == 303
    from_api = tenant.get("/export_schedules/1").json()
    assert from_api["enabled"] is True
    assert from_api["next_run_at"] is not None
    assert dt.datetime.fromisoformat(listed(browser_client)[1][1]) == dt.datetime.fromisoformat(
        from_api["next_run_at"]
    )

    deleted = browser_client.post("/schedules/1/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    assert tenant.get("/export_schedules/1").status_code == 404
    assert tenant.get("/export_schedules").json()["count"] == 0
    assert "Schedule 1 was deleted." in browser_client.get(deleted.headers["location"]).text


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"time": "25:00"}, "time", "HH:MM"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "is not an IANA time zone name"),
        ({"cadence": "weekly", "weekday": ""}, "weekday", "is required for a weekly cadence"),
        ({"cadence": "monthly", "day_of_month": "32"}, "day_of_month", "from 1 to 31"),
        ({"cadence": "monthly", "day_of_month": "first"}, "day_of_month", "from 1 to 31"),
        ({"cadence": "cron", "cron": "61 * * * *"}, "cron", "five-field cron expression"),
        ({"cadence": "cron", "cron": "0 6 30 2 *"}, "cron", "cron"),
        ({"cadence": "daily", "time": ""}, "time", "is required for a daily cadence"),
        ({"timeframe": "last_fortnight"}, "timeframe", "is not a timeframe"),
        ({"more": "invoice_status=nope"}, "more", "invoice_status"),
        ({"more": "colour=red"}, "more", "colour: is not a parameter of this report"),
        ({"more": "invoice_paid_at_timeframe=last_year"}, "more", "chosen above already"),
        ({"format": "docx"}, "format", "choose a format"),
        ({"report": "nope"}, "report", "choose a report"),
    ],
)
def test_bad_input_is_shown_beside_its_field_and_nothing_is_written(
    changes: dict[str, str],
    field: str,
    says: str,
    backend: Backend,
    browser_client: TestClient,
) -> None:
    tenant, csrf = signed_in(backend, browser_client)
    answer = browser_client.post("/schedules", data={**MONTHLY, **changes, "csrf_token": csrf})
    assert answer.status_code == 422, answer.text
    text = answer.text
    assert "The schedule was not saved." in text
    found = re.search(rf'<p id="{field}-error" class="error" role="alert">([^<]*)</p>', text)
    assert found is not None, text
    assert says in found.group(1).replace("&#34;", '"').replace("&#39;", "'")
    # Named in the summary too, by its label, linked to the control.
    assert f'<li><a href="#{field}">' in text
    # What was typed is kept.
    for key, value in changes.items():
        if key not in ("report", "format", "cadence", "weekday", "timeframe") and value:
            assert f'value="{value}"' in text, key
    assert tenant.get("/export_schedules").json()["count"] == 0


def test_an_invoices_report_schedule_takes_its_own_filter_names(
    backend: Backend, browser_client: TestClient
) -> None:
    tenant, csrf = signed_in(backend, browser_client)
    made = browser_client.post(
        "/schedules",
        data={
            **MONTHLY,
            "report": "invoices.grouped",
            "format": "json",
            "cadence": "weekly",
            "weekday": "monday",
            "time": "07:30",
            "timezone": "America/New_York",
            "date_range": "due_date",
            "statuses": ["paid"],
            "csrf_token": csrf,
        },
    )
    assert made.status_code == 303, made.text
    schedule = tenant.get("/export_schedules/1").json()
    assert schedule["parameters"] == {"due_date_timeframe": "last_month", "status": "paid"}
    assert schedule["weekday"] == "monday"
    assert schedule["day_of_month"] is None
    page = browser_client.get("/schedules").text
    assert "Weekly on Monday at 07:30 America/New_York" in page
    assert "Due date: last month" in page


def test_another_accounts_schedule_is_a_404_like_a_missing_one(
    backend: Backend, browser_client: TestClient
) -> None:
    other = Tenant(*new_account(backend), browser_client)
    for _ in range(2):
        body = {"report": "invoice_line_items", "cadence": "daily", "time": "05:00"}
        assert other.post("/export_schedules", json=body).status_code == 201
    tenant, csrf = signed_in(backend, browser_client)
    assert tenant.get("/export_schedules").json()["count"] == 0
    for action in ("pause", "resume", "delete"):
        theirs = browser_client.post(f"/schedules/2/{action}", data={"csrf_token": csrf})
        missing = browser_client.post(f"/schedules/3/{action}", data={"csrf_token": csrf})
        assert theirs.status_code == missing.status_code == 404
        assert theirs.text.replace("2", "3") == missing.text
    assert [s["enabled"] for s in other.get("/export_schedules").json()["results"]] == [True] * 2
    assert "data-schedule" not in browser_client.get("/schedules").text


def test_a_form_without_its_csrf_token_or_a_read_only_sign_in_changes_nothing(
    backend: Backend, browser_client: TestClient
) -> None:
    tenant, csrf = signed_in(backend, browser_client)
    for data in ({}, {"csrf_token": "forged"}):
        refused = browser_client.post("/schedules", data={**MONTHLY, **data})
        assert refused.status_code == 403
    assert tenant.get("/export_schedules").json()["count"] == 0
    assert browser_client.post("/schedules", data={**MONTHLY, "csrf_token": csrf}).is_redirect
    for action in ("pause", "delete"):
        assert browser_client.post(f"/schedules/1/{action}").status_code == 403
    assert tenant.get("/export_schedules/1").json()["enabled"] is True

    reader = Tenant(*new_account(backend, scopes=("read",)), browser_client)
    browser_client.cookies.clear()
    sign_in(browser_client, reader.token)
    page = browser_client.get("/schedules/new")
    assert page.status_code == 200
    refused = browser_client.post("/schedules", data={**MONTHLY, "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 403
    assert "write scope" in refused.text
    assert reader.get("/export_schedules").json()["count"] == 0


def test_no_session_goes_to_sign_in(browser_client: TestClient) -> None:
    for path in ("/schedules", "/schedules/new", "/webhooks", "/webhooks/new", "/webhooks/1"):
        answer = browser_client.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/sign-in?next=")


def test_a_run_shows_its_slot_and_links_its_export(
    backend: Backend, browser_client: TestClient
) -> None:
    """The runner (the consumers' own code, called here at the slot) makes the job; the list
    shows the slot in the schedule's zone and links the export the API names `last_job`."""
    tenant, csrf = signed_in(backend, browser_client)
    browser_client.post("/schedules", data={**MONTHLY, "csrf_token": csrf})
    slot = dt.datetime.fromisoformat(tenant.get("/export_schedules/1").json()["next_run_at"])
    with transaction(backend.database_url, writes=True) as session:
        internal = session.execute(
            select(ExportSchedule.id).where(
                owned(ExportSchedule, tenant.account_id), ExportSchedule.public_id == 1
            )
        ).scalar_one()
        assert run_schedule(session, internal, slot, slot) is not None
    schedule = tenant.get("/export_schedules/1").json()
    job = schedule["last_job"]
    assert tenant.get(f"/jobs/{job}").json()["params"]["filters"]
    page = browser_client.get("/schedules").text
    local = slot.astimezone(ZoneInfo("Europe/London"))
    assert f"{local:%a} {local.day} {local:%b %Y}, 06:00 GMT" in page
    assert f'<a href="/jobs/{job}">Export #{job}</a>' in page
    assert "Not run yet" not in page
