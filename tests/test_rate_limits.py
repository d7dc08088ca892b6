"""Rate limits (issue 10, item 3): per API key, per client address for failed authentication,
and the cap on export jobs queued or running per account.

Each test builds an app of its own over the backend's database, with small limits and its own
in-memory counters (the suite's shared app has the limits off), and a queue name of its own, so
no consumer runs the jobs it creates. The Redis storage, shared by two real `serve` processes,
is tested in tests/test_rate_limits_redis.py.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select

from ledgerline.app import create_app
from ledgerline.auth import owned
from ledgerline.config import Settings
from ledgerline.db import transaction
from ledgerline.models import Customer, Job
from tests.conftest import Api, Backend, TenantFactory, assert_problem
from tests.jobs.conftest import free_port

EXPORT = "/reports/invoice_line_items/export"
GROUPED_EXPORT = "/reports/invoice_line_items.grouped/export"

# A client of the app under test: `limited(**settings)`, then `api_of(client, tenant)`.
Limited = Callable[..., TestClient]


@pytest.fixture
def limited(backend: Backend) -> Iterator[Limited]:
    """Apps over the backend's database with the given settings (limits on, unless said)."""
    clients: list[TestClient] = []

    def make(client: tuple[str, int] = ("203.0.113.7", 50000), **overrides: Any) -> TestClient:
        settings = backend.settings.model_copy(
            update={
                "rate_limit_per_key": "1000/minute",
                "rate_limit_failed_auth": "1000/minute",
                "max_active_exports_per_account": 0,
                "queue_name": f"ratelimit-{uuid.uuid4().hex[:10]}",
                **overrides,
            }
        )
        test_client = TestClient(create_app(settings), raise_server_exceptions=False, client=client)
        clients.append(test_client)
        return test_client

    yield make
    for test_client in clients:
        test_client.close()


def api_of(client: TestClient, tenant: Api) -> Api:
    """The tenant's credentials, sent to another app."""
    return dataclasses.replace(tenant, client=client)


def bad_token(client: TestClient) -> Any:
    return client.get("/api/v2/customers", headers={"Authorization": "Token key_0.wrong"})


def customer_count(backend: Backend, account_id: int) -> int:
    with transaction(backend.database_url, writes=False) as session:
        count: int = session.execute(
            select(func.count()).select_from(Customer).where(owned(Customer, account_id))
        ).scalar_one()
    return count


def job_count(backend: Backend, account_id: int) -> int:
    with transaction(backend.database_url, writes=False) as session:
        count: int = session.execute(
            select(func.count()).select_from(Job).where(owned(Job, account_id))
        ).scalar_one()
    return count


# ---- per API key ------------------------------------------------------------------------------


def test_a_key_past_its_limit_gets_429_with_retry_after_and_ratelimit_headers(
    limited: Limited, make_tenant: TenantFactory
) -> None:
    client = limited(rate_limit_per_key="5/minute")
    api = api_of(client, make_tenant())
    for expected_remaining in (4, 3, 2, 1, 0):
        response = api.get("/customers")
        assert response.status_code == 200, response.text
        assert response.headers["RateLimit-Limit"] == "5"
        assert response.headers["RateLimit-Remaining"] == str(expected_remaining)
        assert 1 <= int(response.headers["RateLimit-Reset"]) <= 60
        assert response.headers["RateLimit-Policy"] == "5;w=60"
        assert "Retry-After" not in response.headers

    refused = api.get("/customers")
    body = assert_problem(refused, 429, "at most 5 requests per minute per API key")
    assert body["type"].endswith("/rate-limited")
    assert body["title"] == "Too Many Requests"
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["RateLimit-Limit"] == "5"

    # The limit is the key's, not the app's: another account's key still has its own.
    other = api_of(client, make_tenant())
    fresh = other.get("/customers")
    assert fresh.status_code == 200, fresh.text
    assert fresh.headers["RateLimit-Remaining"] == "4"


def test_every_authenticated_answer_carries_the_keys_quota_errors_included(
    limited: Limited, make_tenant: TenantFactory
) -> None:
    """A 404, a 422 and a 403 after authentication count and say where the key stands."""
    client = limited(rate_limit_per_key="10/minute")
    api = api_of(client, make_tenant())
    read_only = api_of(client, make_tenant(scopes=["read"]))
    missing = api.get("/customers/999999999")
    assert_problem(missing, 404)
    assert missing.headers["RateLimit-Remaining"] == "9"
    invalid = api.post("/customers", json={"name": 5})
    assert_problem(invalid, 422)
    assert invalid.headers["RateLimit-Remaining"] == "8"
    forbidden = read_only.post("/customers", json={"name": "A"})
    assert_problem(forbidden, 403)
    assert forbidden.headers["RateLimit-Remaining"] == "9"


def test_a_refused_post_writes_nothing(
    backend: Backend, limited: Limited, make_tenant: TenantFactory
) -> None:
    client = limited(rate_limit_per_key="2/minute")
    tenant = make_tenant()
    api = api_of(client, tenant)
    for name in ("First", "Second"):
        assert api.post("/customers", json={"name": name}).status_code == 201
    assert_problem(api.post("/customers", json={"name": "Third"}), 429, "per API key")
    assert customer_count(backend, tenant.account_id) == 2
    assert_problem(api.post(EXPORT, json={}), 429)
    assert job_count(backend, tenant.account_id) == 0


def test_limits_switched_off_send_no_headers_and_never_refuse(
    limited: Limited, make_tenant: TenantFactory
) -> None:
    client = limited(rate_limit_per_key="off", rate_limit_failed_auth="0")
    api = api_of(client, make_tenant())
    for _ in range(15):
        response = api.get("/customers")
        assert response.status_code == 200
        assert "RateLimit-Limit" not in response.headers
    for _ in range(15):
        assert_problem(bad_token(client), 401)


def test_operations_endpoints_are_not_rate_limited(limited: Limited) -> None:
    client = limited(rate_limit_per_key="1/minute", rate_limit_failed_auth="1/minute")
    assert_problem(bad_token(client), 401)
    assert_problem(bad_token(client), 429)  # this address is now refused on the API
    for path in ("/healthz", "/readyz", "/openapi.json", "/metrics", "/docs"):
        for _ in range(3):
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
            assert "RateLimit-Limit" not in response.headers


# ---- failed authentication, per client address -----------------------------------------------


def test_an_address_that_fails_authentication_too_often_gets_429_whatever_it_sends(
    limited: Limited, make_tenant: TenantFactory
) -> None:
    client = limited(rate_limit_failed_auth="3/minute")
    tenant = make_tenant()
    api = api_of(client, tenant)
    # Successful requests do not count against the address.
    for _ in range(5):
        assert api.get("/customers").status_code == 200
    # A missing, a malformed and a wrong credential each count.
    assert_problem(client.get("/api/v2/customers"), 401)
    assert_problem(
        client.get("/api/v2/customers", headers={"Authorization": "Token nonsense"}), 401
    )
    assert_problem(bad_token(client), 401)

    refused = bad_token(client)
    assert_problem(refused, 429, "Too many failed authentications", "at most 3 per minute")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert "WWW-Authenticate" not in refused.headers
    # A valid token from the refused address is refused too: its credentials are not read
    # (answering a right guess differently would make guessing useful again).
    good = api.get("/customers")
    assert_problem(good, 429, "failed authentications")
    assert "Retry-After" in good.headers

    # Another address is not affected, with a good token or a bad one.
    elsewhere = limited_twin(client, ("198.51.100.9", 40000))
    assert api_of(elsewhere, tenant).get("/customers").status_code == 200
    assert_problem(bad_token(elsewhere), 401)


def test_a_forwarding_header_is_believed_only_from_a_trusted_proxy(limited: Limited) -> None:
    """By default the address is the TCP peer's: a client that claims another address each
    time in `X-Forwarded-For` is still counted as itself. From a proxy named in
    `LEDGERLINE_TRUSTED_PROXIES`, the client it forwarded for is counted, and what that
    client wrote further left in the header is not believed."""
    direct = limited(rate_limit_failed_auth="2/minute", client=("198.51.100.20", 1))
    for n in range(2):
        claimed = {"Authorization": "Token key_0.wrong", "X-Forwarded-For": f"192.0.2.{n}"}
        assert_problem(direct.get("/api/v2/customers", headers=claimed), 401)
    assert_problem(direct.get("/api/v2/customers", headers=claimed), 429)

    proxied = limited(
        rate_limit_failed_auth="2/minute",
        trusted_proxies="10.0.0.0/8, 10.1.2.3",
        client=("10.0.0.1", 1),
    )

    def through_proxy(forwarded_for: str) -> Any:
        headers = {"Authorization": "Token key_0.wrong", "X-Forwarded-For": forwarded_for}
        return proxied.get("/api/v2/customers", headers=headers)

    # Two clients behind the proxy (and a second proxy hop) have a counter each.
    for _ in range(2):
        assert_problem(through_proxy("203.0.113.1"), 401)
        assert_problem(through_proxy("203.0.113.2, 10.1.2.3"), 401)
    assert_problem(through_proxy("203.0.113.1"), 429)
    assert_problem(through_proxy("203.0.113.2"), 429)
    # A spoofed entry left of the one the proxy appended changes nothing.
    assert_problem(through_proxy("192.0.2.50, 203.0.113.1"), 429)
    assert_problem(through_proxy("203.0.113.3"), 401)


def limited_twin(client: TestClient, address: tuple[str, int]) -> TestClient:
    """The same app (the same counters) as seen from another client address."""
    return TestClient(client.app, raise_server_exceptions=False, client=address)


def test_a_revoked_token_counts_as_a_failed_authentication(
    backend: Backend, limited: Limited, make_tenant: TenantFactory
) -> None:
    from ledgerline.auth import revoke_token

    # No token cache: the revoke is seen by the next request (how soon it is seen with the
    # cache is tests/test_token_cache.py's subject).
    client = limited(rate_limit_failed_auth="2/minute", token_cache_seconds=0)
    api = api_of(client, make_tenant())
    assert api.get("/customers").status_code == 200
    with transaction(backend.database_url, writes=True) as session:
        revoke_token(session, api.token.partition(".")[0])
    assert_problem(api.get("/customers"), 401)
    assert_problem(api.get("/customers"), 401)
    assert_problem(api.get("/customers"), 429, "failed authentications")


def test_the_download_endpoint_counts_against_the_same_limits(
    limited: Limited, make_tenant: TenantFactory
) -> None:
    """`GET /jobs/{id}/download` authenticates by itself (it also takes signed links): its
    bad credentials count and its requests count against the key like every other's."""
    client = limited(rate_limit_per_key="2/minute", rate_limit_failed_auth="1/minute")
    api = api_of(client, make_tenant())
    assert_problem(api.get("/jobs/1/download"), 404)
    assert_problem(api.get("/jobs/1/download"), 404)
    assert_problem(api.get("/jobs/1/download"), 429, "per API key")
    wrong = {"Authorization": "Token key_0.wrong"}
    assert_problem(client.get("/api/v2/jobs/1/download", headers=wrong), 401)
    assert_problem(client.get("/api/v2/jobs/1/download", headers=wrong), 429)


# ---- the cap on active exports ---------------------------------------------------------------


def test_exports_past_the_accounts_cap_get_429_and_create_no_job(
    backend: Backend, limited: Limited, make_tenant: TenantFactory
) -> None:
    client = limited(max_active_exports_per_account=2)
    tenant = make_tenant()
    api = api_of(client, tenant)
    first = api.post(EXPORT, json={"format": "csv"}, headers={"Idempotency-Key": "first"})
    assert first.status_code == 200, first.text
    assert api.post(GROUPED_EXPORT, json={}).status_code == 200

    for path in (EXPORT, GROUPED_EXPORT):
        refused = api.post(path, json={"format": "json"})
        body = assert_problem(refused, 429, "2 export jobs queued or running", "at most 2")
        assert body["type"].endswith("/too-many-active-exports")
        assert refused.headers["Retry-After"] == "30"
    assert job_count(backend, tenant.account_id) == 2

    # A retry of the first request returns its job (it creates none), cap or not.
    replay = api.post(EXPORT, json={"format": "csv"}, headers={"Idempotency-Key": "first"})
    assert replay.status_code == 200, replay.text
    assert replay.json() == first.json()

    # A job that ends frees its place.
    assert api.post(f"/jobs/{first.json()['job']}/cancel").status_code == 200
    assert api.post(EXPORT, json={}).status_code == 200
    assert job_count(backend, tenant.account_id) == 3


def test_concurrent_exports_cannot_pass_the_cap_together(
    backend: Backend, limited: Limited, make_tenant: TenantFactory
) -> None:
    """On PostgreSQL, requests counting the account's jobs at once would each see room: the
    lock on the account row makes them take turns. (SQLite serialises writers anyway.)"""
    cap, attempts = 3, 10
    client = limited(max_active_exports_per_account=cap)
    with client:  # one event loop for all threads: the requests really overlap
        tenant = make_tenant()
        api = api_of(client, tenant)
        statuses: list[int] = []
        start = threading.Barrier(attempts)

        def submit() -> None:
            start.wait()
            statuses.append(api.post(EXPORT, json={}).status_code)

        threads = [threading.Thread(target=submit) for _ in range(attempts)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert sorted(statuses) == [200] * cap + [429] * (attempts - cap), statuses
    assert job_count(backend, tenant.account_id) == cap


# ---- storage and settings --------------------------------------------------------------------


def test_an_unreachable_redis_lets_requests_through_uncounted(
    limited: Limited, make_tenant: TenantFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Fail open: a rate limit protects the API; its storage being down must not take the
    API down with it (never a 500). The failure is logged."""
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    client = limited(
        rate_limit_per_key="1/minute", rate_limit_failed_auth="1/minute", rate_limit_storage_url=url
    )
    api = api_of(client, make_tenant())
    with caplog.at_level(logging.WARNING, logger="ledgerline.ratelimit"):
        for _ in range(3):
            response = api.get("/customers")
            assert response.status_code == 200, response.text
            assert "RateLimit-Limit" not in response.headers
            assert_problem(bad_token(client), 401)
    # Logged once, not once per request.
    warnings = [r for r in caplog.records if "storage unavailable" in r.getMessage()]
    assert len(warnings) == 1, warnings


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("rate_limit_per_key", "banana", "is not a rate limit"),
        ("rate_limit_per_key", "0/minute", "at least 1"),
        ("rate_limit_failed_auth", "10/second;100/minute", "one limit"),
        ("rate_limit_storage_url", "memcached://127.0.0.1:11211", "must be one of"),
        ("max_active_exports_per_account", "-1", "greater than or equal to 0"),
        ("trusted_proxies", "10.0.0.1,proxy.internal", "'proxy.internal' is not an IP"),
    ],
)
def test_invalid_limit_settings_are_refused_at_start(
    variable: str, value: str, named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGERLINE_" + variable.upper(), value)
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None)
    assert variable in str(raised.value)
    assert named in str(raised.value)


def test_serve_with_an_invalid_limit_exits_naming_the_variable(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if not key.startswith("LEDGERLINE_")}
    env.update(LEDGERLINE_DATA_DIR=str(tmp_path / "data"), LEDGERLINE_RATE_LIMIT_PER_KEY="lots")
    finished = subprocess.run(
        [sys.executable, "-c", "from ledgerline.cli import main; main()", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 2, finished.stderr
    assert "LEDGERLINE_RATE_LIMIT_PER_KEY" in finished.stderr
    assert "'lots' is not a rate limit" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_the_storage_follows_the_queue_unless_set(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def settings(**values: Any) -> Settings:
        return Settings(data_dir=tmp_path, _env_file=None, **values)

    assert settings().resolved_rate_limit_storage_url == "memory://"
    redis_queue = settings(queue_url="redis://queue.example:6379/3")
    assert redis_queue.resolved_rate_limit_storage_url == "redis://queue.example:6379/3"
    chosen = settings(
        queue_url="redis://queue.example:6379/3", rate_limit_storage_url="redis://other:6379/1"
    )
    assert chosen.resolved_rate_limit_storage_url == "redis://other:6379/1"

    postgres_queue = settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", queue_url="postgresql://db/ledgerline"
    )
    assert postgres_queue.resolved_rate_limit_storage_url == "memory://"
    assert postgres_queue.rate_limits_per_process_only
    with caplog.at_level(logging.WARNING, logger="ledgerline.ratelimit"):
        create_app(postgres_queue)
    assert any("counted per process" in record.getMessage() for record in caplog.records)


def test_retry_after_is_whole_seconds_until_a_slot_frees(
    limited: Limited, make_tenant: TenantFactory
) -> None:
    """With a 3-second window, the refusal's Retry-After is 1 to 3, never 0."""
    client = limited(rate_limit_per_key="1 per 3 seconds")
    api = api_of(client, make_tenant())
    assert api.get("/customers").status_code == 200
    refused = api.get("/customers")
    assert_problem(refused, 429, "at most 1 request per 3 seconds per API key")
    assert 1 <= int(refused.headers["Retry-After"]) <= 3


def test_the_document_describes_the_429_and_the_fields_the_api_sends(
    limited: Limited, make_tenant: TenantFactory
) -> None:
    client = limited(rate_limit_per_key="1/minute")
    document = client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            too_many = operation["responses"]["429"]
            assert too_many["headers"]["Retry-After"]["required"] is True, (method, path)
            assert "application/problem+json" in too_many["content"]
            for status, response in operation["responses"].items():
                if status.startswith("2"):
                    assert "RateLimit-Remaining" in response["headers"], (method, path, status)

    api = api_of(client, make_tenant())
    documented = document["paths"]["/api/v2/customers"]["get"]["responses"]
    answered = api.get("/customers")
    refused = api.get("/customers")
    assert refused.status_code == 429
    for response, status in ((answered, "200"), (refused, "429")):
        for name, header in documented[status]["headers"].items():
            if header.get("required") or name.startswith("RateLimit-"):
                assert name in response.headers, (status, name)


def test_the_consoles_sign_in_forms_count_against_the_failed_authentication_limit(
    limited: Limited, make_tenant: TenantFactory
) -> None:
    """The console's token and link forms are no way around the API's limit: a wrong token or
    a used-up link counts against the address, and past the limit the form answers 429 with
    Retry-After without reading what was sent, a valid token included."""
    from tests.console.conftest import csrf_of

    client = limited(rate_limit_failed_auth="2/minute")
    tenant = make_tenant()

    def post_form(path: str, token: str) -> Any:
        form = client.get("/sign-in")
        return client.post(
            path, data={"token": token, "csrf_token": csrf_of(form.text)}, follow_redirects=False
        )

    assert post_form("/sign-in", "key_nothing.wrong").status_code == 401
    assert post_form("/sign-in/link", "no-such-link").status_code == 401
    refused = post_form("/sign-in", tenant.token)
    assert refused.status_code == 429, refused.text
    assert "Too many failed authentications" in refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "ledgerline_console=" not in refused.headers.get("set-cookie", "")
    # The API refuses the address too: the limit is one, whichever door was knocked on.
    assert_problem(api_of(client, tenant).get("/customers"), 429, "failed authentications")
    # Another address signs in with the same token.
    elsewhere = limited_twin(client, ("198.51.100.9", 40000))
    form = elsewhere.get("/sign-in")
    signed_in = elsewhere.post(
        "/sign-in",
        data={"token": tenant.token, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert signed_in.status_code == 303, signed_in.text
