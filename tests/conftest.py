"""Real databases built by the migrations; one account per test.

Every test that takes `backend` (directly or through `tenant`, `api`, `app`) runs on SQLite and,
when `LEDGERLINE_TEST_POSTGRES_URL` is set, again on PostgreSQL in a database of its own
made for this run. With `CI=true` an unreachable PostgreSQL or Redis fails the tests that
need them instead of skipping them.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ledgerline.accounts import create_account
from ledgerline.app import create_app
from ledgerline.auth import issue_token
from ledgerline.config import Settings
from ledgerline.db import normalise_url, transaction, upgrade_database

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("LEDGERLINE_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("LEDGERLINE_TEST_REDIS_URL")


def require_service(name: str, configured: str | None, reason: str = "") -> str:
    """The service's URL; skip when it is not configured, but fail in CI."""
    if configured:
        return configured
    message = f"{name} not configured ({reason or 'set its LEDGERLINE_TEST_* variable'})"
    if IN_CI:
        pytest.fail(f"CI needs {name}: {message}")
    pytest.skip(message)


# Settings that switch every rate limit and the export cap off (see the `backend` fixture).
RATE_LIMITS_OFF: dict[str, Any] = {
    "rate_limit_per_key": "off",
    "rate_limit_failed_auth": "off",
    "max_active_exports_per_account": 0,
}


@dataclass
class Backend:
    name: str
    database_url: str
    data_dir: Path
    settings: Settings


def _create_postgres_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    name = f"ledgerline_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        if IN_CI:
            pytest.fail(f"PostgreSQL unreachable at {admin_url}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {admin_url}: {exc}")
    url = (
        make_url(normalise_url(admin_url)).set(database=name).render_as_string(hide_password=False)
    )

    def drop() -> None:
        from ledgerline.db import engine_for

        engine_for(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    data_dir = tmp_path_factory.mktemp(f"data-{request.param}")
    drop: Callable[[], None] | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'ledgerline.db'}"
    else:
        admin_url = require_service("PostgreSQL", POSTGRES_URL, "LEDGERLINE_TEST_POSTGRES_URL")
        url, drop = _create_postgres_database(admin_url)
    upgrade_database(url)
    settings = Settings(
        data_dir=data_dir,
        database_url=url,
        secret_key="test-secret-" + request.param,
        embedded_workers=0,
        # Off for the suite's shared app: its many tests (some sending bad tokens on
        # purpose) share one client address and run faster than any limit allows. The
        # limits are the subject of tests/test_rate_limits.py, which builds apps of its own.
        **RATE_LIMITS_OFF,
    )
    yield Backend(request.param, url, data_dir, settings)
    if drop is not None:
        drop()


@pytest.fixture(scope="session")
def app(backend: Backend) -> FastAPI:
    return create_app(backend.settings)


@pytest.fixture
def fix_clock(app: FastAPI) -> Iterator[Callable[[dt.datetime], None]]:
    """Stop the app's clock (`app.state.clock`) at an instant for this test: the clock the
    endpoints resolve relative filters at, injected, never slept for. (Not monkeypatch:
    its undo deletes an attribute of starlette's `State` instead of restoring it.)"""
    running = app.state.clock

    def fix(instant: dt.datetime) -> None:
        app.state.clock = lambda: instant

    yield fix
    app.state.clock = running


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass
class Api:
    """A client of one account: adds its credentials and the `/api/v2` prefix."""

    client: TestClient
    token: str
    account_id: int
    currency: str
    timezone: str
    headers: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {
            "Authorization": f"Token {self.token}",
            **self.headers,
            **kwargs.pop("headers", {}),
        }
        url = path if path.startswith("/api/") or path.startswith("http") else "/api/v2" + path
        return self.client.request(method, url, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


TenantFactory = Callable[..., Api]


@pytest.fixture
def make_tenant(backend: Backend, client: TestClient) -> TenantFactory:
    """A new account with a token: `make_tenant(currency="JPY", scopes=["read"])`."""

    def make(
        currency: str = "GBP", timezone: str = "Europe/London", scopes: list[str] | None = None
    ) -> Api:
        with transaction(backend.database_url, writes=True) as session:
            account = create_account(session, f"test-{uuid.uuid4().hex[:8]}", currency, timezone)
            issued = issue_token(session, account.id, scopes or ["read", "write"])
            return Api(client, issued.token, account.id, account.currency, account.timezone)

    return make


@pytest.fixture
def api(make_tenant: TenantFactory) -> Api:
    """A client of a fresh GBP account in Europe/London, so tests never see each other's rows."""
    return make_tenant()


@pytest.fixture
def other_api(make_tenant: TenantFactory) -> Api:
    """A second, unrelated account, for tenancy tests."""
    return make_tenant()


def assert_problem(response: Any, status: int, *names: str) -> dict[str, Any]:
    """A problem+json answer with `status` whose text names each of `names`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= body.keys()
    text_of_body = response.text
    for name in names:
        assert name in text_of_body, f"{name!r} not named in {text_of_body}"
    return body
