"""Webhook fixtures: a database of their own with real consumers, and a real receiver.

The database is this package's own (SQLite, and PostgreSQL when configured), so no other
test's consumer (which refuses loopback receivers, as the default settings do) sends these
deliveries. Its settings allow private addresses (the receiver is on 127.0.0.1) and shrink
the back-off's base so that six attempts take seconds. The consumer is `EmbeddedWorkers`:
huey threads and the sweep that sends webhooks, as `ledgerline worker` runs them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ledgerline.accounts import create_account
from ledgerline.app import create_app
from ledgerline.auth import issue_token
from ledgerline.config import Settings
from ledgerline.db import engine_for, transaction, upgrade_database
from ledgerline.jobs.queue import EmbeddedWorkers
from tests.conftest import (
    POSTGRES_URL,
    RATE_LIMITS_OFF,
    Api,
    Backend,
    _create_postgres_database,
    require_service,
)

RETRY_BASE_SECONDS = 0.05


def own_backend(kind: str, data_dir: Path) -> tuple[Backend, Callable[[], None]]:
    """A migrated database of its own (and its drop), with the webhook test settings."""
    if kind == "postgres":
        admin_url = require_service("PostgreSQL", POSTGRES_URL, "LEDGERLINE_TEST_POSTGRES_URL")
        url, drop = _create_postgres_database(admin_url)
    else:
        url = f"sqlite:///{data_dir / 'ledgerline.db'}"

        def drop() -> None:
            engine_for(url).dispose()

    upgrade_database(url)
    settings = Settings(
        data_dir=data_dir,
        database_url=url,
        secret_key="hooks-secret-" + kind + "-" + "k" * 32,
        embedded_workers=0,
        webhook_allow_private=True,
        webhook_retry_base_seconds=RETRY_BASE_SECONDS,
        webhook_timeout_seconds=5,
        public_url="http://testserver",
        **RATE_LIMITS_OFF,
    )
    return Backend(kind, url, data_dir, settings), drop


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def hook_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    backend, drop = own_backend(request.param, tmp_path_factory.mktemp(f"hooks-{request.param}"))
    yield backend
    drop()


@pytest.fixture(params=["sqlite", "postgres"])
def quiet_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A database of this test's own that no consumer sends from."""
    backend, drop = own_backend(request.param, tmp_path / "quiet")
    yield backend
    drop()


@pytest.fixture(scope="session")
def hook_app(hook_backend: Backend) -> FastAPI:
    return create_app(hook_backend.settings)


@pytest.fixture(scope="session")
def hook_client(hook_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(hook_app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="session")
def hook_workers(hook_backend: Backend) -> Iterator[EmbeddedWorkers]:
    """Two worker threads and the sweep (which sends webhooks) on this database's queue."""
    workers = EmbeddedWorkers(hook_backend.settings, 2)
    workers.start()
    yield workers
    workers.stop()


def tenant_of(backend: Backend, client: TestClient) -> Api:
    with transaction(backend.database_url, writes=True) as session:
        account = create_account(session, f"hooks-{uuid.uuid4().hex[:8]}", "GBP", "Europe/London")
        issued = issue_token(session, account.id, ["read", "write"])
        return Api(client, issued.token, account.id, account.currency, account.timezone)


@pytest.fixture(scope="session")
def idle_client(hook_backend: Backend) -> Iterator[TestClient]:
    """The same database behind an app whose queue nobody consumes: its jobs stay queued
    until the test cancels them (the session's workers run the other app's)."""
    settings = hook_backend.settings.model_copy(
        update={"queue_name": f"idle-{uuid.uuid4().hex[:8]}"}
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def hook_api(hook_backend: Backend, hook_client: TestClient) -> Api:
    return tenant_of(hook_backend, hook_client)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int
    at: float

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Route:
    secret: str
    # Status codes to answer, in order; 200 once they are used up.
    script: list[int] = field(default_factory=list)


class Receiver:
    """A real HTTP server on loopback that verifies every request's signature with the
    `standardwebhooks` package and answers each route by its script."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.received: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {key.lower(): value for key, value in self.headers.items()}
                with receiver.lock:
                    route = receiver.routes.get(self.path)
                    verified = False
                    if route is not None:
                        try:
                            Webhook(route.secret).verify(body, headers)
                            verified = True
                        except WebhookVerificationError:
                            verified = False
                    status = route.script.pop(0) if route is not None and route.script else 200
                    if route is None:
                        status = 404
                    receiver.received.append(
                        Received(self.path, headers, body, verified, status, time.monotonic())
                    )
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/redirected")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def route(self, secret: str = "", script: list[int] | None = None) -> str:
        """A new path; its URL."""
        path = f"/hook/{uuid.uuid4().hex[:12]}"
        self.routes[path] = Route(secret, list(script or []))
        return self.base_url + path

    def at(self, url: str) -> list[Received]:
        path = url.removeprefix(self.base_url)
        with self.lock:
            return [one for one in self.received if one.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def subscribe(
    api: Api, receiver: Receiver, events: list[str], script: list[int] | None = None
) -> tuple[dict[str, Any], str]:
    """A webhook endpoint at a new receiver route; (the endpoint as created, its URL)."""
    url = receiver.route(script=script)
    created = api.post("/webhook_endpoints", json={"url": url, "events": events})
    assert created.status_code == 201, created.text
    receiver.routes[url.removeprefix(receiver.base_url)].secret = created.json()["secret"]
    return created.json(), url


def wait_until(check: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or check}")
        time.sleep(0.05)


ROOT = Path(__file__).resolve().parents[2]
