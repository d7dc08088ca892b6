"""The console's doors: sign-in and its cookie, CSRF on every form that changes something,
sessions that end, and no page, form or download that reaches another account's data.

Plain HTTP against the app on real databases built by the migrations (both backends)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from ledgerline.auth import revoke_token
from ledgerline.console.sessions import issue_link
from ledgerline.db import engine_for, transaction, utcnow
from tests.conftest import Backend
from tests.console.conftest import Tenant, add_invoice, csrf_of, new_account, sign_in

PAGES = [
    "/",
    "/report",
    "/report?invoice_status=paid",
    "/report/grouped",
    "/jobs",
    "/jobs/1",
    "/jobs/1/progress",
    "/jobs/1/download",
    "/invoices",
    "/invoices/1",
    "/schedules",
    "/schedules/new",
    "/webhooks",
    "/webhooks/new",
    "/webhooks/1",
]
FORMS = [
    "/sign-out",
    "/exports",
    "/jobs/1/cancel",
    "/jobs/1/again",
    "/schedules",
    "/schedules/1/pause",
    "/schedules/1/resume",
    "/schedules/1/delete",
    "/webhooks",
    "/webhooks/1/enable",
    "/webhooks/1/disable",
    "/webhooks/1/rotate",
    "/webhooks/1/delete",
    "/webhooks/1/deliveries/1/redeliver",
]


def _goes_to_sign_in(answer: object, back_to: str | None = None) -> None:
    status = getattr(answer, "status_code", None)
    location = getattr(answer, "headers", {}).get("location", "")
    assert status == 303, (status, getattr(answer, "text", ""))
    assert urlsplit(location).path == "/sign-in"
    if back_to is not None:
        assert parse_qs(urlsplit(location).query)["next"] == [back_to]


@pytest.fixture
def tenant(backend: Backend, browser_client: TestClient) -> Tenant:
    account_id, token = new_account(backend)
    return Tenant(account_id, token, browser_client)


@pytest.fixture
def other_browser(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client


def test_without_a_session_every_page_and_form_goes_to_sign_in(
    browser_client: TestClient,
) -> None:
    for page in PAGES:
        _goes_to_sign_in(browser_client.get(page), back_to=page)
    for form in FORMS:
        _goes_to_sign_in(browser_client.post(form, data={"csrf_token": "x"}))
    # A made-up cookie is no session either, and is told to go.
    browser_client.cookies.set("ledgerline_console", "made-up")
    answer = browser_client.get("/report")
    _goes_to_sign_in(answer, back_to="/report")
    assert "expired=1" in answer.headers["location"]


def test_the_api_and_operations_stay_where_they_were(browser_client: TestClient) -> None:
    assert browser_client.get("/healthz").json() == {"status": "ok"}
    assert browser_client.get("/api/v2/customers").status_code == 401
    assert browser_client.get("/assets/console.css").status_code == 200
    assert browser_client.get("/openapi.json").status_code == 200


def test_token_sign_in_sets_an_httponly_samesite_cookie(
    tenant: Tenant, browser_client: TestClient
) -> None:
    answer = sign_in(browser_client, tenant.token)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/report"
    cookie = next(
        value
        for value in answer.headers.get_list("set-cookie")
        if value.startswith("ledgerline_console=")
    )
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=lax", "path=/"} <= flags
    assert "secure" not in flags  # plain HTTP here; see the HTTPS test
    assert browser_client.get("/report").status_code == 200


def test_over_https_the_cookie_is_secure(app: FastAPI, backend: Backend) -> None:
    _account, token = new_account(backend)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as https_client:
        answer = sign_in(https_client, token)
    cookie = next(
        value
        for value in answer.headers.get_list("set-cookie")
        if value.startswith("ledgerline_console=")
    )
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}


def test_only_a_hash_of_the_session_id_is_stored(
    tenant: Tenant, browser_client: TestClient, backend: Backend
) -> None:
    sign_in(browser_client, tenant.token)
    raw = browser_client.cookies["ledgerline_console"]
    with engine_for(backend.database_url).connect() as conn:
        stored = conn.execute(
            text("SELECT session_hash FROM console_sessions WHERE account_id = :a"),
            {"a": tenant.account_id},
        ).scalar_one()
    assert stored == hashlib.sha256(raw.encode()).hexdigest() != raw


def test_a_bad_or_read_less_token_is_refused_beside_the_field(
    backend: Backend, browser_client: TestClient
) -> None:
    answer = sign_in(browser_client, "key_nothing.nothing")
    assert answer.status_code == 401
    assert 'id="token-error"' in answer.text
    assert "not valid" in answer.text
    assert "ledgerline_console=" not in answer.headers.get("set-cookie", "")
    assert sign_in(browser_client, "").status_code == 422


def test_a_read_only_token_signs_in_but_cannot_export(
    backend: Backend, browser_client: TestClient
) -> None:
    _account, token = new_account(backend, scopes=("read",))
    assert sign_in(browser_client, token).status_code == 303
    page = browser_client.get("/report")
    assert page.status_code == 200
    assert "Read-only sign-in" in page.text
    refused = browser_client.post(
        "/exports", data={"csrf_token": csrf_of(page.text), "format": "csv"}
    )
    assert refused.status_code == 403


def test_every_form_without_its_csrf_token_is_refused(
    tenant: Tenant, browser_client: TestClient
) -> None:
    # The sign-in form itself (login CSRF): no token, or another browser's.
    assert browser_client.post("/sign-in", data={"token": tenant.token}).status_code == 403
    assert (
        browser_client.post(
            "/sign-in", data={"token": tenant.token, "csrf_token": "0" * 64}
        ).status_code
        == 403
    )
    sign_in(browser_client, tenant.token)
    job = tenant.post("/reports/invoice_line_items/export", data={"format": "csv"}).json()["job"]
    for form in ["/sign-out", "/exports", f"/jobs/{job}/cancel", f"/jobs/{job}/again"]:
        for sent in ({}, {"csrf_token": "wrong"}):
            assert browser_client.post(form, data=sent).status_code == 403, form
    # Nothing happened: still signed in, no job canceled or added.
    assert browser_client.get("/report").status_code == 200
    jobs = tenant.get("/jobs").json()
    assert jobs["count"] == 1
    assert jobs["results"][0]["status"] != "canceled"


def test_sign_out_ends_the_session_for_good(tenant: Tenant, browser_client: TestClient) -> None:
    sign_in(browser_client, tenant.token)
    raw = browser_client.cookies["ledgerline_console"]
    page = browser_client.get("/report")
    answer = browser_client.post("/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in"
    browser_client.cookies.set("ledgerline_console", raw)  # a copy kept from before
    _goes_to_sign_in(browser_client.get("/report"))


def test_revoking_the_token_ends_the_sessions_made_with_it(
    tenant: Tenant, browser_client: TestClient, backend: Backend
) -> None:
    sign_in(browser_client, tenant.token)
    assert browser_client.get("/report").status_code == 200
    with transaction(backend.database_url, writes=True) as session:
        revoke_token(session, tenant.token.split(".")[0])
    _goes_to_sign_in(browser_client.get("/report"), back_to="/report")


def test_an_expired_session_goes_back_to_sign_in(
    tenant: Tenant, browser_client: TestClient, backend: Backend
) -> None:
    sign_in(browser_client, tenant.token)
    with engine_for(backend.database_url).begin() as conn:
        conn.execute(
            text("UPDATE console_sessions SET expires_at = :t WHERE account_id = :a"),
            {"t": utcnow() - dt.timedelta(seconds=1), "a": tenant.account_id},
        )
    answer = browser_client.get("/jobs")
    _goes_to_sign_in(answer, back_to="/jobs")
    assert "expired=1" in answer.headers["location"]
    assert "session has ended" in browser_client.get(answer.headers["location"]).text


def _link(backend: Backend, account_id: int, now: dt.datetime, minutes: int = 15) -> str:
    with transaction(backend.database_url, writes=True) as session:
        token, _expires = issue_link(session, account_id, now, minutes)
    return token


def _use_link(client: TestClient, token: str) -> object:
    landing = client.get("/sign-in/link", params={"token": token})
    assert landing.status_code == 200
    return client.post("/sign-in/link", data={"token": token, "csrf_token": csrf_of(landing.text)})


def test_a_one_time_link_signs_in_once_and_only_while_fresh(
    tenant: Tenant, backend: Backend, app: FastAPI, other_browser: TestClient
) -> None:
    token = _link(backend, tenant.account_id, utcnow())
    first = _use_link(tenant.api, token)  # type: ignore[arg-type]
    assert getattr(first, "status_code", None) == 303
    assert tenant.api.get("/report").status_code == 200
    again = _use_link(other_browser, token)
    assert getattr(again, "status_code", None) == 401
    assert "already used" in getattr(again, "text", "")
    stale = _link(backend, tenant.account_id, utcnow() - dt.timedelta(minutes=16))
    assert getattr(_use_link(other_browser, stale), "status_code", None) == 401
    _goes_to_sign_in(other_browser.get("/report"))


def test_a_redirect_after_sign_in_stays_on_this_site(
    tenant: Tenant, browser_client: TestClient
) -> None:
    form = browser_client.get("/sign-in", params={"next": "//evil.example/x"})
    answer = browser_client.post(
        "/sign-in",
        data={"token": tenant.token, "csrf_token": csrf_of(form.text), "next": "//evil.example"},
    )
    assert answer.headers["location"] == "/report"


def test_another_accounts_invoices_jobs_and_files_stay_out_of_reach(
    backend: Backend, browser_client: TestClient, other_browser: TestClient
) -> None:
    owner = Tenant(*new_account(backend), browser_client)
    invoice = add_invoice(
        owner, "GBP", "paid", dt.datetime(2024, 7, 1, 12, tzinfo=dt.UTC), [("flat_fee", "10")]
    )
    job = owner.post("/reports/invoice_line_items/export", data={"format": "csv"}).json()["job"]
    _account, intruder_token = new_account(backend)
    assert sign_in(other_browser, intruder_token).status_code == 303

    for page in [
        f"/jobs/{job}",
        f"/jobs/{job}/progress",
        f"/jobs/{job}/download",
        f"/invoices/{invoice['id']}",
    ]:
        assert other_browser.get(page).status_code == 404, page
    csrf = csrf_of(other_browser.get("/jobs").text)
    for form in [f"/jobs/{job}/cancel", f"/jobs/{job}/again"]:
        assert other_browser.post(form, data={"csrf_token": csrf}).status_code == 404, form
    listed = other_browser.get("/jobs").text
    assert f'data-job="{job}"' not in listed
    report = other_browser.get("/report")
    assert 'data-total="0"' in report.text
    assert invoice["number"] not in report.text
    invoices = other_browser.get("/invoices")
    assert invoice["number"] not in invoices.text
    # The owner's job was neither canceled nor run again by the intruder.
    jobs = owner.get("/jobs").json()
    assert jobs["count"] == 1
    assert jobs["results"][0]["status"] != "canceled"


@pytest.mark.parametrize(
    "query",
    [
        "invoice_status=nope",
        "invoice_paid_at_gte=2024-02-30",
        "paid_at_preset=next_year",
        "sort=-billed_item",
        "columns=nope",
        "columns=id,id",
        "page=0",
        "page=abc",
        "invoice_due_date_lte=%00",
        "id_gt=99999999999999999999999",
        "unknown=1",
    ],
)
def test_bad_filters_are_a_clear_4xx_never_a_500(
    query: str, tenant: Tenant, browser_client: TestClient
) -> None:
    sign_in(browser_client, tenant.token)
    answer = browser_client.get(f"/report?{query}")
    assert 400 <= answer.status_code < 500, (query, answer.status_code)
    # The grouped view shares the URL but shows fixed columns: it ignores `columns` and
    # `sort`, and refuses the rest as the report does.
    grouped = browser_client.get(f"/report/grouped?{query}")
    ignored = query.startswith(("sort=", "columns="))
    assert grouped.status_code == 200 if ignored else 400 <= grouped.status_code < 500


def test_a_filter_problem_is_shown_beside_its_control(
    tenant: Tenant, browser_client: TestClient
) -> None:
    sign_in(browser_client, tenant.token)
    answer = browser_client.get("/report?invoice_due_date_gte=2024-02-30&paid_at_preset=soon")
    assert answer.status_code == 422
    html = answer.text
    # The preset problem is found first; the control names its message, the message its field.
    assert 'id="paid_at_preset-error"' in html
    assert 'aria-describedby="paid_at_preset-error"' in html
    dated = browser_client.get("/report?invoice_due_date_gte=2024-02-30").text
    assert 'aria-invalid="true" aria-describedby="invoice_due_date_gte-error"' in dated
    assert "is not a valid date" in dated
    # What was asked for stays in the form, so it can be corrected.
    assert 'value="2024-02-30"' in dated
