"""Scheduled exports and webhook endpoints in a real headless Chromium against a real
`ledgerline serve`: a schedule made, paused, resumed and deleted by clicking, each step what
the API's `/export_schedules` answers; a webhook endpoint made in the browser, its secret shown
once, a real export's `job.succeeded` delivered to a real loopback receiver that verifies the
signature with that secret, the attempt listed on the endpoint's page as the API lists it, then
redelivered by the button. Every new page at 1400×900 and 390×844: no horizontal overflow,
every control named and reached with Tab, and a screenshot in /tmp/console-shots/ (not the
repository; LEDGERLINE_CONSOLE_SHOTS moves it)."""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import Backend
from tests.console.conftest import Tenant
from tests.console.test_console_browser import (
    SIZES,
    browser,
    new_page,
    sign_in_page,
    tenant_of,
    unnamed_controls,
    unreachable_by_keyboard,
)
from tests.contract.conftest import served
from tests.jobs.conftest import ledgerline_env, serving
from tests.webhooks.conftest import Receiver

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["browser", "served"]  # the fixtures, shared with the other browser tests

SHOTS = Path(os.environ.get("LEDGERLINE_CONSOLE_SHOTS", "/tmp/console-shots"))  # noqa: S108
pytestmark = pytest.mark.slow


def shoot(page: Page, name: str, size: str, backend: Backend) -> None:
    """Screenshot first (before Tab leaves focus rings), then the checks every page passes."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{size}-{backend.name}.png"), full_page=True)
    width = SIZES[size][0]
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width, f"{name} at {size} is {overflow}px wide"
    assert unnamed_controls(page) == [], name
    assert unreachable_by_keyboard(page) == [], name


def row_of(page: Page, schedule: int) -> dict[str, str]:
    row = page.locator(f'#schedules tr[data-schedule="{schedule}"]')
    return {
        "enabled": row.get_attribute("data-enabled") or "",
        "next_run": row.get_attribute("data-next-run") or "",
        "text": row.inner_text(),
    }


def same_instant(shown: str, from_api: str | None) -> bool:
    if not shown or from_api is None:
        return not shown and from_api is None
    return dt.datetime.fromisoformat(shown) == dt.datetime.fromisoformat(from_api)


def test_a_schedule_made_paused_resumed_and_deleted_by_clicking_is_the_apis(
    served: str, backend: Backend, browser: Browser
) -> None:
    tenant = tenant_of(backend, served)
    page = new_page(browser)
    sign_in_page(page, served, tenant.token)
    page.get_by_role("link", name="Schedules").click()
    page.wait_for_url(re.compile(r"/schedules$"))
    page.get_by_role("link", name="New schedule").click()
    page.wait_for_url(re.compile(r"/schedules/new$"))

    # Only the chosen cadence's fields show.
    page.get_by_label("Runs").select_option("weekly")
    assert page.get_by_label("Weekday").is_visible()
    assert not page.get_by_label("Day of the month").is_visible()
    assert not page.get_by_label("Cron expression").is_visible()
    page.get_by_label("Runs").select_option("monthly")
    assert page.get_by_label("Day of the month").is_visible()
    assert not page.get_by_label("Weekday").is_visible()

    # A zone that does not exist: said beside the field, nothing written.
    page.get_by_label("Time zone").fill("Europe/Londres")
    page.get_by_role("button", name="Create schedule").click()
    page.wait_for_load_state()
    assert "is not an IANA time zone name" in page.locator("#timezone-error").inner_text()
    assert page.get_by_label("Time zone").get_attribute("aria-invalid") == "true"
    assert tenant.get("/export_schedules").json()["count"] == 0

    page.get_by_label("Report").select_option(label="Line items")
    page.get_by_label("Format").select_option("json")
    page.get_by_label("Day of the month").fill("1")
    page.get_by_label("Time", exact=True).fill("06:00")
    page.get_by_label("Time zone").fill("Europe/London")
    page.get_by_label("Date", exact=True).select_option(label="Paid")
    page.get_by_label("Period").select_option(label="Last month")
    page.get_by_label("Invoice statuses").select_option(["paid"])
    page.get_by_role("button", name="Create schedule").click()
    page.wait_for_url(re.compile(r"/schedules\?done=created&schedule=1$"))
    assert page.get_by_role("status").inner_text() == "Schedule 1 was created."

    schedule = tenant.get("/export_schedules/1").json()
    assert schedule["format"] == "json"
    assert schedule["cadence"] == "monthly"
    assert schedule["day_of_month"] == 1
    assert schedule["time"] == "06:00"
    assert schedule["timezone"] == "Europe/London"
    assert schedule["parameters"] == {
        "invoice_paid_at_timeframe": "last_month",
        "invoice_status": "paid",
    }
    shown = row_of(page, 1)
    assert "Monthly on day 1 at 06:00 Europe/London" in shown["text"]
    assert "Paid: last month" in shown["text"]
    assert "JSON" in shown["text"]
    assert shown["enabled"] == "true"
    assert same_instant(shown["next_run"], schedule["next_run_at"])

    page.get_by_role("button", name="Pause schedule 1").click()
    page.wait_for_url(re.compile(r"done=paused"))
    schedule = tenant.get("/export_schedules/1").json()
    assert schedule["enabled"] is False
    assert schedule["next_run_at"] is None
    assert row_of(page, 1)["enabled"] == "false"
    assert "Paused" in row_of(page, 1)["text"]

    page.get_by_role("button", name="Resume schedule 1").click()
    page.wait_for_url(re.compile(r"done=resumed"))
    schedule = tenant.get("/export_schedules/1").json()
    assert schedule["enabled"] is True
    assert same_instant(row_of(page, 1)["next_run"], schedule["next_run_at"])

    # Delete asks first: declined, nothing happens; accepted, it goes.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete schedule 1").click()
    assert tenant.get("/export_schedules").json()["count"] == 1
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete schedule 1").click()
    page.wait_for_url(re.compile(r"done=deleted"))
    assert tenant.get("/export_schedules").json()["count"] == 0
    assert page.locator("#schedules").count() == 0


@pytest.fixture
def served_with_receiver(backend: Backend, tmp_path: Path) -> Iterator[tuple[str, Receiver]]:
    """A `serve` with its job consumer whose operator allows private addresses (the receiver
    is on loopback), and that receiver."""
    receiver = Receiver()
    env = ledgerline_env(
        backend,
        LEDGERLINE_EMBEDDED_WORKERS="1",
        LEDGERLINE_WEBHOOK_ALLOW_PRIVATE="true",
        LEDGERLINE_WEBHOOK_RETRY_BASE_SECONDS="0.05",
    )
    try:
        with serving(env, tmp_path / "serve-hooks.log") as base_url:
            yield base_url, receiver
    finally:
        receiver.close()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def delivery_row(page: Page, base_url: str, endpoint: int, attempts: int) -> dict[str, str]:
    """The endpoint page's newest delivery once it shows `attempts` finished attempts."""
    deadline = time.monotonic() + 60
    while True:
        page.goto(f"{base_url}/webhooks/{endpoint}")
        row = page.locator("#deliveries tbody > tr").first
        if (
            row.count()
            and row.get_attribute("data-attempts") == str(attempts)
            and row.get_attribute("data-status") in ("succeeded", "failed")
        ):
            return {
                "delivery": row.get_attribute("data-delivery") or "",
                "status": row.get_attribute("data-status") or "",
                "code": row.locator("td.status-code").inner_text(),
                "duration": row.locator("td.duration").inner_text(),
                "text": row.inner_text(),
            }
        if time.monotonic() > deadline:
            pytest.fail(f"no delivery with {attempts} attempts on the page")
        time.sleep(0.3)


def test_a_webhook_endpoint_made_in_the_browser_receives_a_real_job_and_redelivers(
    served_with_receiver: tuple[str, Receiver], backend: Backend, browser: Browser
) -> None:
    base_url, receiver = served_with_receiver
    tenant = tenant_of(backend, base_url)
    url = receiver.route()
    page = new_page(browser)
    sign_in_page(page, base_url, tenant.token)
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_role("link", name="New endpoint").click()
    page.get_by_label("URL").fill(url)
    page.get_by_label("Export failed").uncheck()
    page.get_by_label("Export succeeded").check()
    page.get_by_label("Description").fill("Month-end files")
    page.get_by_role("button", name="Create endpoint").click()
    page.wait_for_url(re.compile(r"/webhooks/1\?done=created$"))
    secret = page.get_by_label("Signing secret of endpoint #1").input_value()
    assert secret.startswith("whsec_")
    assert "It will not be shown again." in page.locator("#secret-box").inner_text()
    receiver.routes[url.removeprefix(receiver.base_url)].secret = secret
    page.reload()
    assert page.locator("#secret-box").count() == 0
    assert "whsec_" not in page.content()
    endpoint = tenant.get("/webhook_endpoints/1").json()
    assert endpoint["url"] == url
    assert endpoint["events"] == ["job.succeeded"]

    job = tenant.post("/reports/invoice_line_items/export", json={"format": "csv"}).json()["job"]
    wait_for(lambda: tenant.get(f"/jobs/{job}").json()["status"] == "succeeded", "the export")
    wait_for(lambda: len(receiver.at(url)) == 1, "the job.succeeded webhook")
    (first,) = receiver.at(url)
    assert first.verified  # signed with the secret the page showed
    assert first.payload["type"] == "job.succeeded"
    assert first.payload["data"]["id"] == job

    shown = delivery_row(page, base_url, 1, attempts=1)
    (delivery,) = tenant.get("/webhook_endpoints/1/deliveries").json()["results"]
    (attempt,) = delivery["attempts"]
    assert shown["delivery"] == str(delivery["id"])
    assert shown["status"] == delivery["status"] == "succeeded"
    assert shown["code"] == str(attempt["status_code"]) == "200"
    assert shown["duration"] == f"{attempt['duration_ms']:,} ms"
    assert "Export succeeded" in shown["text"]
    assert f"#{job}" in shown["text"]
    for size in SIZES:
        sized = new_page(browser, size)
        sign_in_page(sized, base_url, tenant.token)
        for name, path in (
            ("webhooks", "/webhooks"),
            ("webhook", "/webhooks/1"),
            ("webhook-new", "/webhooks/new"),
        ):
            sized.goto(base_url + path)
            shoot(sized, name, size, backend)
        sized.context.close()

    page.get_by_role("button", name=f"Redeliver delivery {delivery['id']}").click()
    page.wait_for_url(re.compile(r"done=redelivered"))
    assert "will be sent again" in page.get_by_role("status").inner_text()
    wait_for(lambda: len(receiver.at(url)) == 2, "the redelivery")
    second = receiver.at(url)[1]
    assert second.verified
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    shown = delivery_row(page, base_url, 1, attempts=2)
    assert shown["code"] == "200"
    assert tenant.get("/webhook_endpoints/1/deliveries").json()["results"][0]["attempt_count"] == 2
    page.get_by_text("All 2 attempts").click()
    assert page.locator("details.attempts tbody tr").count() == 2
    shoot(page, "webhook-redelivered", "wide", backend)

    # The secret with its warning, as a person sees it after rotating.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Rotate secret").click()
    page.wait_for_url(re.compile(r"done=rotated"))
    rotated = page.get_by_label("Signing secret of endpoint #1").input_value()
    assert rotated not in ("", secret)
    shoot(page, "webhook-secret", "wide", backend)


def test_every_schedule_page_at_both_sizes_is_labelled_keyboard_reachable_and_shown(
    served: str, backend: Backend, browser: Browser
) -> None:
    tenant: Tenant = tenant_of(backend, served)
    for body in (
        {
            "report": "invoice_line_items",
            "format": "csv",
            "cadence": "monthly",
            "time": "06:00",
            "day_of_month": 1,
            "timezone": "Europe/London",
            "parameters": {"invoice_paid_at_timeframe": "last_month", "invoice_status": "paid"},
        },
        {
            "report": "invoice_line_items.grouped",
            "format": "json",
            "cadence": "weekly",
            "weekday": "friday",
            "time": "17:30",
            "timezone": "America/New_York",
            "parameters": {"columns": "invoice.paid_at_month,count,total_amount"},
            "enabled": False,
        },
        {
            "report": "invoices",
            "cadence": "cron",
            "cron": "0 7 * * MON-FRI",
            "timezone": "Asia/Tokyo",
        },
    ):
        made = tenant.post("/export_schedules", json=body)
        assert made.status_code == 201, made.text
    for size in SIZES:
        page = new_page(browser, size)
        sign_in_page(page, served, tenant.token)
        page.goto(served + "/schedules")
        shoot(page, "schedules", size, backend)
        page.goto(served + "/schedules/new")
        shoot(page, "schedule-new", size, backend)
        page.get_by_label("Time zone").fill("Mars/Olympus")
        page.get_by_label("Other parameters").fill("colour=red")
        page.get_by_role("button", name="Create schedule").click()
        page.wait_for_load_state()
        assert page.locator("#form-problems").is_visible()
        shoot(page, "schedule-new-problems", size, backend)
        page.goto(served + "/webhooks")
        shoot(page, "webhooks-empty", size, backend)
        page.goto(served + "/report")
        shoot(page, "report-formats", size, backend)
        page.context.close()
