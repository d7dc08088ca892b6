"""The webhook endpoint pages over HTTP (SQLite and PostgreSQL): an endpoint made in the
console is the API's, its signing secret shown once (the one the sender signs with) and not
again on a reload; rotate, disable, enable and delete agree with the API; a private address is
refused with the API's own message and nothing is written; another account's endpoint is a 404
like a missing one; a form without its CSRF token changes nothing. (Deliveries to a real
receiver and redelivery: tests/console/test_console_browser_automation.py.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ledgerline.auth import owned
from ledgerline.db import engine_for
from ledgerline.models import WebhookEndpoint
from ledgerline.webhooks.signing import unseal
from tests.conftest import Backend
from tests.console.conftest import Tenant, csrf_of, new_account, sign_in

URL = "https://hooks.example.com/ledgerline"
SECRET = re.compile(r'id="webhook-secret" value="(whsec_[A-Za-z0-9+/=]+)"')


def signed_in(backend: Backend, client: TestClient) -> tuple[Tenant, str]:
    tenant = Tenant(*new_account(backend), client)
    sign_in(client, tenant.token)
    return tenant, csrf_of(client.get("/webhooks/new").text)


def stored_secret(backend: Backend, tenant: Tenant, endpoint_id: int) -> str:
    """The secret the sender signs with, read from the database and opened with the key."""
    with engine_for(backend.database_url).connect() as conn:
        sealed = conn.execute(
            select(WebhookEndpoint.secret_sealed).where(
                owned(WebhookEndpoint, tenant.account_id),
                WebhookEndpoint.public_id == endpoint_id,
            )
        ).scalar_one()
    return unseal(backend.settings.secret_key or "", tenant.account_id, sealed)


def shown_secret(html: str) -> str | None:
    found = SECRET.search(html)
    return found.group(1) if found else None


def test_an_endpoint_made_in_the_console_shows_its_secret_once_and_is_the_apis(
    backend: Backend, browser_client: TestClient
) -> None:
    tenant, csrf = signed_in(backend, browser_client)
    made = browser_client.post(
        "/webhooks",
        data={
            "url": URL,
            "events": ["job.succeeded", "job.failed"],
            "description": "Month-end files to the ledger",
            "csrf_token": csrf,
        },
    )
    assert made.status_code == 303, made.text
    assert made.headers["location"] == "/webhooks/1?done=created"
    page = browser_client.get(made.headers["location"])
    assert page.status_code == 200
    secret = shown_secret(page.text)
    assert secret is not None, page.text
    assert secret == stored_secret(backend, tenant, 1)
    assert "It will not be shown again." in page.text
    # Gone on a reload, and from the cookie jar.
    again = browser_client.get(made.headers["location"])
    assert shown_secret(again.text) is None
    assert "whsec_" not in again.text

    (endpoint,) = tenant.get("/webhook_endpoints").json()["results"]
    assert endpoint["id"] == 1
    assert endpoint["url"] == URL
    assert endpoint["events"] == ["job.succeeded", "job.failed"]
    assert endpoint["description"] == "Month-end files to the ledger"
    assert endpoint["enabled"] is True
    listing = browser_client.get("/webhooks").text
    assert URL in listing
    assert "Export succeeded" in listing
    assert "Month-end files to the ledger" in listing

    rotated = browser_client.post("/webhooks/1/rotate", data={"csrf_token": csrf})
    assert rotated.status_code == 303
    page = browser_client.get(rotated.headers["location"])
    new_secret = shown_secret(page.text)
    assert new_secret is not None
    assert new_secret != secret
    assert new_secret == stored_secret(backend, tenant, 1)
    assert "The old secret stopped working just now." in page.text
    assert shown_secret(browser_client.get("/webhooks/1").text) is None

    for action, enabled in (("disable", False), ("enable", True)):
        changed = browser_client.post(f"/webhooks/1/{action}", data={"csrf_token": csrf})
        assert changed.status_code == 303
        assert tenant.get("/webhook_endpoints/1").json()["enabled"] is enabled
        shown = browser_client.get(changed.headers["location"]).text
        assert ("Enabled" if enabled else "Disabled") in shown

    deleted = browser_client.post("/webhooks/1/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    assert tenant.get("/webhook_endpoints/1").status_code == 404
    assert "Endpoint 1 was deleted" in browser_client.get(deleted.headers["location"]).text


def test_a_secret_cookie_opens_only_for_its_session(
    backend: Backend, browser_client: TestClient
) -> None:
    """The sealed secret is bound to the session that made it: another session of the same
    account, handed the cookie, is not shown the secret."""
    tenant, csrf = signed_in(backend, browser_client)
    made = browser_client.post(
        "/webhooks", data={"url": URL, "events": ["job.succeeded"], "csrf_token": csrf}
    )
    sealed = made.cookies.get("ledgerline_console_secret")
    assert sealed
    browser_client.cookies.clear()
    sign_in(browser_client, tenant.token)
    browser_client.cookies.set("ledgerline_console_secret", sealed, path="/webhooks/1")
    assert shown_secret(browser_client.get("/webhooks/1").text) is None


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"url": "http://127.0.0.1:8080/hook"}, "url", None),
        ({"url": "http://10.1.2.3/hook"}, "url", None),
        ({"url": "http://localhost/hook"}, "url", None),
        ({"url": "ftp://hooks.example.com/x"}, "url", "http or https URL"),
        ({"url": ""}, "url", "http or https URL"),
        ({"events": []}, "events", "choose one or more of the events"),
        ({"events": ["job.started"]}, "events", "choose one or more of the events"),
        ({"description": "x" * 501}, "description", "at most 500 characters"),
    ],
)
def test_bad_input_is_shown_beside_its_field_and_nothing_is_written(
    data: dict[str, Any],
    field: str,
    says: str | None,
    backend: Backend,
    browser_client: TestClient,
) -> None:
    """A private address is refused with the API's own message for the same URL."""
    tenant, csrf = signed_in(backend, browser_client)
    body = {"url": URL, "events": ["job.succeeded"], **data}
    answer = browser_client.post("/webhooks", data={**body, "csrf_token": csrf})
    assert answer.status_code == 422, answer.text
    assert "The endpoint was not saved." in answer.text
    found = re.search(rf'<p id="{field}-error" class="error" role="alert">([^<]*)</p>', answer.text)
    assert found is not None, answer.text
    if field == "url" and says is None:
        from_api = tenant.post(
            "/webhook_endpoints", json={"url": body["url"], "events": ["job.succeeded"]}
        )
        assert from_api.status_code == 422
        assert from_api.json()["type"].endswith("webhook-address-refused")
        says = from_api.json()["errors"][0]["msg"]
    assert says is not None
    assert says in found.group(1)
    assert tenant.get("/webhook_endpoints").json()["count"] == 0
    assert "whsec_" not in answer.text


def test_another_accounts_endpoint_is_a_404_like_a_missing_one(
    backend: Backend, browser_client: TestClient
) -> None:
    other = Tenant(*new_account(backend), browser_client)
    for _ in range(2):
        made = other.post("/webhook_endpoints", json={"url": URL, "events": ["job.succeeded"]})
        assert made.status_code == 201
    _tenant, csrf = signed_in(backend, browser_client)
    for method, path in (
        ("GET", "/webhooks/{}"),
        ("POST", "/webhooks/{}/disable"),
        ("POST", "/webhooks/{}/enable"),
        ("POST", "/webhooks/{}/rotate"),
        ("POST", "/webhooks/{}/delete"),
        ("POST", "/webhooks/{}/deliveries/1/redeliver"),
    ):
        kwargs: dict[str, Any] = {"data": {"csrf_token": csrf}} if method == "POST" else {}
        theirs = browser_client.request(method, path.format(2), **kwargs)
        missing = browser_client.request(method, path.format(3), **kwargs)
        assert theirs.status_code == missing.status_code == 404, path
        assert theirs.text.replace("2", "3") == missing.text, path
        assert "ledgerline_console_secret" not in theirs.headers.get("set-cookie", "")
    assert [e["enabled"] for e in other.get("/webhook_endpoints").json()["results"]] == [True] * 2
    assert "data-endpoint" not in browser_client.get("/webhooks").text


def test_a_form_without_its_csrf_token_changes_nothing(
    backend: Backend, browser_client: TestClient
) -> None:
    tenant, csrf = signed_in(backend, browser_client)
    body = {"url": URL, "events": ["job.succeeded"]}
    for data in ({}, {"csrf_token": "forged"}):
        assert browser_client.post("/webhooks", data={**body, **data}).status_code == 403
    assert tenant.get("/webhook_endpoints").json()["count"] == 0
    assert browser_client.post("/webhooks", data={**body, "csrf_token": csrf}).is_redirect
    for action in ("disable", "rotate", "delete", "deliveries/1/redeliver"):
        refused = browser_client.post(f"/webhooks/1/{action}")
        assert refused.status_code == 403, action
        assert "whsec_" not in refused.text
    assert tenant.get("/webhook_endpoints/1").json()["enabled"] is True
