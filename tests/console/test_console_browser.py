"""The console in a real headless Chromium (Debian's, driven by playwright) against a real
`ledgerline serve`: sign-in both ways, filters and presets whose numbers equal the API's,
sorting, the grouped chart, an export watched to 100% and downloaded byte for byte, cancel,
an invoice's totals, sign-out; and every page at 1400×900 and 390×844, reachable by keyboard
with every control labelled, screenshotted into docs/console/ for the README.

Each check against "the API" fetches it over HTTP with a token, independently of the page.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from ledgerline.money import currency_digits, decimal_to_scaled, display_string
from tests.conftest import Backend
from tests.console.conftest import Tenant, add_invoice, new_account
from tests.console.test_console_grouped import COLUMNS, api_sums, make_data, own_sums
from tests.contract.conftest import served
from tests.contract.test_docs_browser import chromium_path
from tests.jobs.conftest import bulk_lines, ledgerline_env, serving, start_ledgerline

if TYPE_CHECKING:  # playwright loads when a browser test runs, not at collection
    from playwright.sync_api import Browser, Page, Response

__all__ = ["served"]  # the fixture, shared with the contract tests

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "console"
SIZES = {"wide": (1400, 900), "phone": (390, 844)}
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ZONE = "Pacific/Kiritimati"  # UTC+14: a month's edges there are a day away from UTC's
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=BROWSER_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def new_page(browser: Browser, size: str = "wide") -> Page:
    width, height = SIZES[size]
    context = browser.new_context(
        viewport={"width": width, "height": height}, accept_downloads=True
    )
    context.set_default_timeout(30_000)
    return context.new_page()


def tenant_of(backend: Backend, base_url: str, timezone: str = "Europe/London") -> Tenant:
    account_id, token = new_account(backend, timezone)
    return Tenant(account_id, token, httpx.Client(base_url=base_url, timeout=30))


def sign_in_page(page: Page, base_url: str, token: str) -> None:
    page.goto(base_url + "/sign-in")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/report$"))


def minor_of(money: dict[str, Any]) -> int:
    currency = money["iso_currency_code"].upper()
    return decimal_to_scaled(Decimal(str(money["decimal"])), currency_digits(currency))


def api_rows(tenant: Tenant, report: str, params: dict[str, Any]) -> tuple[int, list[Any]]:
    """Every row of a report's `/data` for these parameters, page by page."""
    rows: list[Any] = []
    while True:
        answer = tenant.get(
            f"/reports/{report}/data", params={**params, "limit": 100, "offset": len(rows)}
        )
        assert answer.status_code == 200, answer.text
        body = json.loads(answer.text, parse_float=Decimal)
        rows += body["rows"]
        if len(rows) >= body["total"] or not body["rows"]:
            return int(body["total"]), rows


def last_month(today: dt.date) -> tuple[dt.date, dt.date]:
    """Worked out here, not by the console's code: the previous calendar month."""
    year, month = (today.year - 1, 12) if today.month == 1 else (today.year, today.month - 1)
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def at(day: dt.date, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(ZONE))


def month_edge_data(tenant: Tenant) -> tuple[dt.date, dt.date]:
    """Invoices on both sides of last month's edges in the account's zone (UTC+14): one paid
    at 00:30 on the 1st of this month local time is still last month in UTC, so a preset
    computed in UTC would count it."""
    today = dt.datetime.now(ZoneInfo(ZONE)).date()
    first, last = last_month(today)
    this_month = last + dt.timedelta(days=1)
    add_invoice(
        tenant, "GBP", "paid", at(last, 23, 30), [("flat_fee", "45.50"), ("service_fee", "-3.25")]
    )
    add_invoice(
        tenant, "EUR", "open", at(first, 0, 10), [("course", "12.35"), ("flat_fee", "0.99")]
    )
    add_invoice(
        tenant, "JPY", "paid", at(first + dt.timedelta(days=9), 12, 0), [("store_order", "1200")]
    )
    add_invoice(
        tenant, "GBP", "draft", at(first + dt.timedelta(days=3), 9, 0), [("flat_fee", "99")]
    )
    add_invoice(tenant, "GBP", "paid", at(this_month, 0, 30), [("flat_fee", "7")])
    return first, last


def test_sign_in_with_a_token_filter_by_statuses_and_last_month_then_sort(
    served: str, backend: Backend, browser: Browser
) -> None:
    tenant = tenant_of(backend, served, ZONE)
    first, last = month_edge_data(tenant)
    page = new_page(browser)
    sign_in_page(page, served, tenant.token)

    page.get_by_label("Invoice statuses").select_option(["paid", "open"])
    page.locator("#paid_at_preset").select_option("last_month")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"paid_at_preset=last_month"))
    state = parse_qs(urlsplit(page.url).query)
    assert sorted(state["invoice_status"]) == ["open", "paid"]  # the filters live in the URL
    assert page.locator("#invoice_paid_at_gte").input_value() == first.isoformat()
    assert page.locator("#invoice_paid_at_lte").input_value() == last.isoformat()

    filters = {
        "invoice_status": "paid,open",
        "invoice_paid_at_gte": first.isoformat(),
        "invoice_paid_at_lte": last.isoformat(),
    }
    total, rows = api_rows(tenant, "invoice_line_items", filters)
    assert total == 5  # 2 GBP + 2 EUR + 1 JPY: not the draft, not the 1st of this month
    assert int(page.locator("#row-count").get_attribute("data-total") or -1) == total
    expected: dict[str, dict[str, int]] = {}
    for row in rows:
        currency = row["amount"]["iso_currency_code"].upper()
        sums = expected.setdefault(currency, {"rows": 0})
        sums["rows"] += 1
        for key in ("amount", "tax_amount", "discount_amount", "credit_amount", "refund_amount"):
            sums[key] = sums.get(key, 0) + minor_of(row[key])
    shown = page.locator("#totals tbody tr")
    assert sorted(shown.evaluate_all("rows => rows.map(r => r.dataset.currency)")) == sorted(
        expected
    )
    for currency, sums in expected.items():
        line = page.locator(f'#totals tr[data-currency="{currency}"]')
        assert line.locator('[data-key="rows"]').inner_text() == str(sums["rows"])
        for key, minor in sums.items():
            if key != "rows":
                assert line.locator(f'[data-key="{key}"]').inner_text() == display_string(
                    minor, currency
                )

    for sort, state_word in (("amount", "ascending"), ("-amount", "descending")):
        page.locator('#rows th[data-key="amount"] a').click()
        page.wait_for_url(re.compile(rf"sort={re.escape(sort)}(&|$)"))
        header = page.locator('#rows th[data-key="amount"]')
        assert header.get_attribute("aria-sort") == state_word
        _total, sorted_rows = api_rows(tenant, "invoice_line_items", {**filters, "sort": sort})
        ids = page.locator("#rows tbody tr td:first-child").all_inner_texts()
        assert ids == [str(row["id"]) for row in sorted_rows]

    # The column picker: which columns, in which order.
    page.goto(served + "/report?columns=amount,id")
    shown_keys = "ths => ths.map(th => th.dataset.key)"
    assert page.locator("#rows thead th").evaluate_all(shown_keys) == ["amount", "id"]
    page.get_by_text("Columns and their order").click()
    page.get_by_role("button", name="Move ID up").click()
    page.get_by_label("Type", exact=True).check()
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"columns=id&columns=amount&columns=type"))
    assert page.locator("#rows thead th").evaluate_all(shown_keys) == ["id", "amount", "type"]


def test_a_one_time_link_from_the_command_line_signs_in_once(
    served: str, backend: Backend, browser: Browser
) -> None:
    tenant = tenant_of(backend, served)
    port = urlsplit(served).port
    made = subprocess.run(
        [
            sys.executable,
            "-c",
            "from ledgerline.cli import main; main()",
            "console-link",
            "--account",
            str(tenant.account_id),
            "--minutes",
            "5",
        ],
        env=ledgerline_env(backend, LEDGERLINE_PORT=str(port)),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    link = json.loads(made.stdout)
    assert link["account"] == tenant.account_id
    assert link["url"].startswith(served + "/sign-in/link?token=")

    page = new_page(browser)
    page.goto(link["url"])
    page.get_by_role("button", name="Continue to the console").click()
    page.wait_for_url(re.compile(r"/report$"))
    assert page.get_by_role("button", name="Sign out").is_visible()

    again = new_page(browser)
    again.goto(link["url"])
    again.get_by_role("button", name="Continue to the console").click()
    assert again.get_by_role("alert").filter(has_text="already used").is_visible()
    again.goto(served + "/report")
    assert urlsplit(again.url).path == "/sign-in"


def _wait_until_finished(page: Page) -> str:
    page.wait_for_function(
        "() => !['queued', 'running'].includes(document.getElementById('job').dataset.status)",
        timeout=60_000,
    )
    return page.locator("#job").get_attribute("data-status") or ""


def test_export_watch_it_reach_100_percent_download_the_same_bytes_then_sign_out(
    served: str, backend: Backend, browser: Browser
) -> None:
    tenant = tenant_of(backend, served)
    for currency in ("GBP", "EUR"):
        add_invoice(
            tenant,
            currency,
            "paid",
            dt.datetime(2024, 7, 29, 12, tzinfo=dt.UTC),
            [("flat_fee", "45.50"), ("course", "0.03"), ("service_fee", "-3.25")],
        )
    page = new_page(browser)
    sign_in_page(page, served, tenant.token)
    job_ids = []
    for export_format in ("csv", "json"):
        page.goto(served + "/report?invoice_status=paid&sort=-amount")
        page.get_by_label("Export as").select_option(export_format)
        page.get_by_role("button", name="Export", exact=True).click()
        page.wait_for_url(re.compile(r"/jobs/\d+$"))
        job_id = int(page.url.rsplit("/", 1)[1])
        job_ids.append(job_id)
        assert _wait_until_finished(page) == "succeeded"
        assert page.locator("#job-progress").get_attribute("value") == "100"
        assert page.locator("#job-progress-text").inner_text() == "6 of 6 rows (100%)"
        with page.expect_download() as download:
            page.get_by_role("link", name=f"Download {export_format.upper()}").click()
        downloaded = Path(download.value.path()).read_bytes()

        job = tenant.get(f"/jobs/{job_id}").json()
        assert job["format"] == export_format
        assert job["params"]["sort"] == ["-amount"]
        from_api = tenant.api.get(job["result"]["download_url"])
        assert from_api.status_code == 200
        assert downloaded == from_api.content
        assert hashlib.sha256(downloaded).hexdigest() == job["result"]["sha256"]
        assert page.locator("dd code.hash").inner_text() == job["result"]["sha256"]

    page.goto(served + "/jobs")
    listed = page.locator("#jobs tbody tr").evaluate_all("rows => rows.map(r => +r.dataset.job)")
    assert listed == sorted(job_ids, reverse=True)
    page.goto(f"{served}/jobs/{job_ids[0]}")
    page.get_by_role("button", name="Run again").click()
    page.wait_for_url(re.compile(r"/jobs/\d+$"))
    again = int(page.url.rsplit("/", 1)[1])
    assert again not in job_ids
    assert _wait_until_finished(page) == "succeeded"
    assert (
        tenant.get(f"/jobs/{again}").json()["params"]
        == tenant.get(f"/jobs/{job_ids[0]}").json()["params"]
    )

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/sign-in$"))
    for protected in ("/report", "/jobs", f"/jobs/{job_ids[0]}/download", "/invoices"):
        page.goto(served + protected)
        assert urlsplit(page.url).path == "/sign-in", protected


@pytest.fixture
def served_without_workers(backend: Backend, tmp_path: Path) -> Iterator[str]:
    """A `serve` with no job consumer: an export stays queued until it is canceled, so the
    cancel button is pressed while the job is live, every time."""
    idle = ledgerline_env(backend, LEDGERLINE_EMBEDDED_WORKERS="0")
    with serving(idle, tmp_path / "serve-idle.log") as base_url:
        yield base_url


def test_cancel_an_export_while_it_runs(
    served_without_workers: str, backend: Backend, browser: Browser
) -> None:
    tenant = tenant_of(backend, served_without_workers)
    page = new_page(browser)
    sign_in_page(page, served_without_workers, tenant.token)
    page.get_by_role("button", name="Export", exact=True).click()
    page.wait_for_url(re.compile(r"/jobs/\d+$"))
    job_id = int(page.url.rsplit("/", 1)[1])
    assert page.locator("#job-status").inner_text() == "queued"
    page.get_by_role("button", name="Cancel export").click()
    page.wait_for_url(re.compile(rf"/jobs/{job_id}$"))
    assert page.locator("#job-status").inner_text() == "canceled"
    assert page.get_by_role("status").filter(has_text="was canceled").is_visible()
    assert page.get_by_role("button", name="Cancel export").count() == 0
    assert page.get_by_role("link", name=re.compile("Download")).count() == 0
    assert tenant.get(f"/jobs/{job_id}").json()["status"] == "canceled"


def test_the_progress_bar_follows_the_job_live_until_100_percent(
    served_without_workers: str, backend: Backend, browser: Browser, tmp_path: Path
) -> None:
    """The job page is open before any consumer runs: its script polls while the job is
    queued, then a `ledgerline worker` starts, and the page follows the job to the end."""
    tenant = tenant_of(backend, served_without_workers)
    rows = 20_000
    bulk_lines(backend, tenant.account_id, rows)
    page = new_page(browser)
    sign_in_page(page, served_without_workers, tenant.token)
    polled: list[dict[str, Any]] = []

    def record(response: Response) -> None:
        if response.url.endswith("/progress"):
            # The last answer may arrive as the page reloads, its body gone with it.
            with suppress(Exception):
                polled.append(response.json())

    page.on("response", record)
    page.get_by_role("button", name="Export", exact=True).click()
    page.wait_for_url(re.compile(r"/jobs/\d+$"))
    assert page.locator("#job-progress").get_attribute("value") == "0"
    page.wait_for_function(
        "() => performance.getEntriesByType('resource').some(e => e.name.endsWith('/progress'))"
    )
    worker = start_ledgerline(
        ledgerline_env(backend), "worker", "--concurrency", "1", log=tmp_path / "worker.log"
    )
    try:
        assert _wait_until_finished(page) == "succeeded"
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    # It polled while the job waited, and never saw the job go backwards.
    assert polled[0] == {"status": "queued", "rows_done": 0, "rows_total": None, "percent": 0}
    assert {answer["status"] for answer in polled} <= {"queued", "running", "succeeded"}
    percents = [answer["percent"] for answer in polled]
    assert percents == sorted(percents)
    assert page.locator("#job-progress").get_attribute("value") == "100"
    assert page.locator("#job-progress-text").inner_text() == f"{rows:,} of {rows:,} rows (100%)"


def test_the_grouped_view_draws_each_currencys_totals_as_the_api_counts_them(
    served: str, backend: Backend, browser: Browser
) -> None:
    tenant = tenant_of(backend, served)
    paid = dt.datetime(2024, 7, 29, 12, tzinfo=dt.UTC)
    add_invoice(
        tenant, "GBP", "paid", paid, [("flat_fee", "45.50"), ("course", "12"), ("flat_fee", "1.25")]
    )
    add_invoice(tenant, "EUR", "paid", paid, [("service_fee", "-3.25"), ("course", "8.40")])
    add_invoice(tenant, "JPY", "open", paid, [("store_order", "1200")])
    page = new_page(browser)
    sign_in_page(page, served, tenant.token)
    page.goto(served + "/report/grouped?invoice_status=paid")

    _total, rows = api_rows(tenant, "invoice_line_items.grouped", {"invoice_status": "paid"})
    expected = {
        (row["total_amount"]["iso_currency_code"].upper(), row["type"]): minor_of(
            row["total_amount"]
        )
        for row in rows
    }
    drawn: dict[tuple[str, str], int] = {}
    charts = page.locator("svg.chart")
    assert sorted(charts.evaluate_all("cs => cs.map(c => c.dataset.currency)")) == ["EUR", "GBP"]
    for index in range(charts.count()):
        chart = charts.nth(index)
        currency = chart.get_attribute("data-currency") or ""
        for bar in chart.locator("g.bar").all():
            kind, minor = (
                bar.get_attribute("data-type") or "",
                int(bar.get_attribute("data-minor") or 0),
            )
            drawn[(currency, kind)] = minor
            assert bar.locator("text.value").inner_html() == display_string(
                minor, currency
            ).replace("&", "&amp;")
            width = int(bar.locator("rect").get_attribute("width") or -1)
            assert width > 0
    assert drawn == expected
    # The longest bar of each chart is the largest magnitude of that currency alone.
    gbp = page.locator('svg.chart[data-currency="GBP"] g.bar')
    widths = {
        b.get_attribute("data-type"): int(b.locator("rect").get_attribute("width") or 0)
        for b in gbp.all()
    }
    assert widths["flat_fee"] == 300 > widths["course"] > 0


@pytest.mark.parametrize("group_by", ["status", "paid_month", "customer"])
def test_group_by_in_the_browser_shows_the_apis_groups_and_exports_them(
    group_by: str, served: str, backend: Backend, browser: Browser
) -> None:
    """Chosen with the "Group by" control: the table's count and totals and each bar equal
    the grouped `/data` for the same columns and the test's own sums (month paid across
    London's month edge, the unpaid as "Not paid"; two customers of one name kept apart);
    then the page's export is a job with the same columns."""
    tenant = tenant_of(backend, served)
    lines = make_data(tenant)
    page = new_page(browser)
    sign_in_page(page, served, tenant.token)
    page.goto(served + "/report/grouped")
    label = {"status": "Invoice status", "paid_month": "Month paid", "customer": "Customer"}
    page.get_by_label("Group by").select_option(label=label[group_by])
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(rf"group_by={group_by}"))
    assert page.locator("h1").inner_text() == f"Line items by {label[group_by].lower()}"

    expected = own_sums(lines, group_by)
    sort = {"sort": "currency,-total_amount"} if group_by == "customer" else {}
    _rows, from_api = api_sums(tenant, COLUMNS[group_by], **sort)
    assert from_api == expected
    shown: dict[tuple[str, str], tuple[int, int, int, int]] = {}
    for row in page.locator("#groups tbody tr").all():
        cells = {cell.get_attribute("data-key"): cell for cell in row.locator("td[data-key]").all()}
        currency = row.get_attribute("data-currency") or ""
        amount, tax, gross = (
            int(cells[key].get_attribute("data-minor") or "")
            for key in ("total_amount", "total_tax_amount", "total_gross_amount")
        )
        for key, value in (("total_amount", amount), ("total_tax_amount", tax)):
            assert cells[key].inner_text() == display_string(value, currency)
        assert cells["total_gross_amount"].inner_text() == display_string(gross, currency)
        count = int(cells["count"].inner_text().replace(",", ""))
        shown[(row.get_attribute("data-group") or "", currency)] = (count, amount, tax, gross)
    assert list(shown.items()) == list(from_api.items())  # the API's order too
    drawn = {}
    for chart in page.locator("svg.chart").all():
        currency = chart.get_attribute("data-currency") or ""
        for bar in chart.locator("g.bar").all():
            drawn[(bar.get_attribute("data-group") or "", currency)] = int(
                bar.get_attribute("data-minor") or ""
            )
    assert drawn == {key: sums[1] for key, sums in expected.items()}
    if group_by == "paid_month":
        labels = page.locator('svg.chart[data-currency="GBP"] text.label').all_text_contents()
        assert labels == ["Jul 2024", "Aug 2024", "Not paid"]

    page.get_by_role("button", name="Export").click()
    page.wait_for_url(re.compile(r"/jobs/\d+$"))
    job = tenant.get(f"/jobs/{page.url.rsplit('/', 1)[1]}").json()
    assert job["report"] == "invoice_line_items.grouped"
    assert job["params"]["columns"] == COLUMNS[group_by].split(",")


def test_open_an_invoice_and_see_the_apis_totals(
    served: str, backend: Backend, browser: Browser
) -> None:
    tenant = tenant_of(backend, served)
    invoice = add_invoice(
        tenant,
        "GBP",
        "paid",
        dt.datetime(2024, 7, 29, 12, tzinfo=dt.UTC),
        [("flat_fee", "45.55"), ("course", "0.35")],
    )
    group = tenant.post(f"/invoices/{invoice['id']}/line-item-groups", json={"title": "Courses"})
    assert group.status_code == 201, group.text
    grouped_line = tenant.post(
        f"/invoices/{invoice['id']}/line_items",
        json={
            "items": [
                {
                    "type": "course",
                    "description": "Term fee",
                    "quantity": "3",
                    "unit_price": "10.333",
                    "tax_rate": "0.175",
                    "group_id": group.json()["id"],
                }
            ]
        },
    )
    assert grouped_line.status_code == 201, grouped_line.text
    page = new_page(browser)
    sign_in_page(page, served, tenant.token)
    page.goto(served + "/invoices")
    page.get_by_label("Number or customer").fill(invoice["number"])
    page.get_by_role("button", name="Search").click()
    assert page.locator("#invoice-count").inner_text() == "1"
    page.get_by_role("link", name=invoice["number"]).click()
    page.wait_for_url(re.compile(rf"/invoices/{invoice['id']}$"))

    from_api = tenant.get(f"/invoices/{invoice['id']}").json()
    for element, key in (
        ("net", "net_total"),
        ("tax", "total_tax"),
        ("gross", "gross_total"),
        ("due", "total_amount_due"),
    ):
        assert page.locator(f"#invoice-{element}").inner_text() == from_api[key]["string"]
    assert page.locator("#lines tbody tr").count() == 3
    group_api = tenant.get(
        f"/invoices/{invoice['id']}/line-item-groups/{group.json()['id']}"
    ).json()
    shown = page.locator(f'#invoice-groups tr[data-group="{group.json()["id"]}"] td')
    assert shown.all_inner_texts()[1:] == [
        display_string(decimal_to_scaled(Decimal(group_api[key]), 2), "GBP")
        for key in ("netTotal", "totalTax", "grossTotal")
    ]


# ---- every page: both sizes, labels, keyboard, screenshots --------------------------------

# A control a screen reader would announce without a name: the role alone, no quoted name.
UNNAMED = re.compile(
    r"^\s*- (button|link|textbox|combobox|listbox|checkbox|searchbox|spinbutton|radio|switch)"
    r"\s*(:|\[|$)"
)
FOCUSABLE = (
    'a[href], button:not([disabled]), input:not([type="hidden"]):not([disabled]), '
    'select:not([disabled]), summary, [tabindex="0"]'
)


def unnamed_controls(page: Page) -> list[str]:
    snapshot = page.locator("body").aria_snapshot()
    return [line for line in snapshot.splitlines() if UNNAMED.match(line)]


def unreachable_by_keyboard(page: Page) -> list[str]:
    """Every visible control, numbered; Tab through the page from the top and return those
    never focused (a date input takes a Tab per part, so allow several presses each)."""
    count = page.evaluate(
        """selector => {
            const visible = [...document.querySelectorAll(selector)]
                .filter(el => el.checkVisibility());
            visible.forEach((el, i) => el.dataset.kbd = String(i));
            return visible.length;
        }""",
        FOCUSABLE,
    )
    seen: set[str] = set()
    page.locator("body").focus()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for _press in range(4 * count + 10):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement && document.activeElement.dataset.kbd")
        if focused is not None:
            seen.add(focused)
        if len(seen) == count:
            break
    missing = page.evaluate(
        "seen => [...document.querySelectorAll('[data-kbd]')]"
        ".filter(el => !seen.includes(el.dataset.kbd)).map(el => el.outerHTML.slice(0, 120))",
        sorted(seen),
    )
    return list(missing)


def check_page(page: Page, name: str, size: str) -> None:
    """Screenshot first (before Tab leaves focus rings and scrolled tables), then check."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"))
    width = SIZES[size][0]
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width, f"{name} at {size} is {overflow}px wide"
    assert unnamed_controls(page) == [], name
    assert unreachable_by_keyboard(page) == [], name


def finished_export(tenant: Tenant) -> int:
    job = tenant.post("/reports/invoice_line_items/export", data={"format": "csv"}).json()["job"]
    for _attempt in range(600):
        if tenant.get(f"/jobs/{job}").json()["status"] == "succeeded":
            return int(job)
        time.sleep(0.1)
    pytest.fail(f"export {job} did not finish")


def test_every_page_at_both_sizes_is_labelled_keyboard_reachable_and_shown(
    served: str, backend: Backend, browser: Browser
) -> None:
    from ledgerline.db import engine_for
    from ledgerline.seed import seed_account

    tenant = tenant_of(backend, served)
    seed_account(engine_for(backend.database_url), tenant.account_id, 1500, seed=12)
    job = finished_export(tenant)
    invoice = tenant.get("/invoices", params={"page_size": 1}).json()["results"][0]["id"]
    pages = {
        "report": "/report?invoice_status=paid&paid_at_preset=this_quarter",
        "grouped": "/report/grouped?invoice_status=paid",
        "grouped-by-month": "/report/grouped?group_by=paid_month&invoice_status=paid",
        "grouped-by-customer": "/report/grouped?group_by=customer",
        "jobs": "/jobs",
        "job": f"/jobs/{job}",
        "invoices": "/invoices",
        "invoice": f"/invoices/{invoice}",
    }
    for size in SIZES:
        page = new_page(browser, size)
        page.goto(served + "/sign-in")
        check_page(page, "sign-in", size)
        sign_in_page(page, served, tenant.token)
        for name, path in pages.items():
            page.goto(served + path)
            check_page(page, name, size)
