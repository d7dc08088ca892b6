"""`/docs` in a real headless Chromium, with nothing reachable beyond loopback.

Every request the page makes is checked: one to any host but 127.0.0.1 fails the test (the
assets must come from the package, not a CDN). The page must list every operation of the
document, and its Authorize dialog must make "Try it out" send our token: the answer to
`GET /api/v2/customers` shown on the page is a 200.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from ledgerline.accounts import create_account
from ledgerline.auth import issue_token
from ledgerline.db import transaction, upgrade_database
from tests.conftest import IN_CI
from tests.jobs.conftest import free_port, start_ledgerline, wait_ready

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's Chromium; without it the test skips, but fails in CI (.ci/run installs it)."""
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("CI needs Chromium (apt-get install chromium)")
        pytest.skip("Chromium is not installed")
    return CHROMIUM


@pytest.fixture
def docs_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A `ledgerline serve` on a fresh SQLite data dir, and a read-write token for it."""
    url = f"sqlite:///{tmp_path / 'ledgerline.db'}"
    upgrade_database(url)
    with transaction(url, writes=True) as session:
        account = create_account(session, f"docs-{uuid.uuid4().hex[:6]}", "GBP", "Europe/London")
        token = issue_token(session, account.id, ["read", "write"]).token
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        "PATH": "/usr/bin:/bin",
        "LEDGERLINE_DATA_DIR": str(tmp_path),
        "LEDGERLINE_DATABASE_URL": url,
        "LEDGERLINE_EMBEDDED_WORKERS": "0",
        "LEDGERLINE_LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "serve.log"
    server = start_ledgerline(env, "serve", "--port", str(port), log=log)
    try:
        wait_ready(server, base_url, log)
        yield base_url, token
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_docs_render_offline_list_operations_and_authorize(docs_server: tuple[str, str]) -> None:
    from playwright.sync_api import Route, sync_playwright

    base_url, token = docs_server
    document = httpx.get(base_url + "/openapi.json").json()
    operations = sum(
        1
        for item in document["paths"].values()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    )
    outside: list[str] = []

    def only_loopback(route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if host == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_loopback)
            page.goto(base_url + "/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            assert page.locator(".opblock").count() == operations
            assert "Ledgerline" in page.locator(".title").first.inner_text()

            page.get_by_role("button", name="Authorize").first.click()
            dialog = page.locator(".auth-container").filter(has_text="TokenAuth")
            dialog.locator("input").fill(f"Token {token}")
            dialog.get_by_role("button", name="Apply credentials").click()
            page.get_by_role("button", name="Close").first.click()

            customers = page.locator("#operations-customers-list_customers")
            customers.locator(".opblock-summary").click()
            customers.get_by_role("button", name="Try it out").click()
            customers.get_by_role("button", name="Execute").click()
            status = customers.locator(".live-responses-table .response .response-col_status")
            status.first.wait_for(timeout=30_000)
            answered: Any = status.first.inner_text().strip()
            assert answered == "200", customers.inner_text()
        finally:
            browser.close()
    assert outside == [], outside
