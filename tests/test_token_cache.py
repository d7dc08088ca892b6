"""The per-process token cache (issue 11, `auth.KeyCache`): what a key's lookup found is kept
for `LEDGERLINE_TOKEN_CACHE_SECONDS`, at most `KEY_CACHE_MAX_ENTRIES` keys, and answers only
to the key's own secret. A revoke is seen within that time, by an app on an injected clock
and by a real `serve` process with a short setting, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from ledgerline.app import create_app
from ledgerline.auth import KeyCache, owned, revoke_token
from ledgerline.db import transaction
from ledgerline.models import ApiKey
from tests.conftest import Api, Backend, TenantFactory, assert_problem
from tests.jobs.conftest import ledgerline_env, serving


class Clock:
    """The cache's clock, moved by the test instead of slept for."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def app_with_cache(backend: Backend, clock: Clock, seconds: float, max_entries: int) -> FastAPI:
    app = create_app(backend.settings.model_copy(update={"token_cache_seconds": seconds}))
    app.state.key_cache = KeyCache(seconds, max_entries=max_entries, clock=clock)
    return app


@pytest.fixture
def cached_client(backend: Backend, clock: Clock) -> Iterator[TestClient]:
    with TestClient(app_with_cache(backend, clock, 5, 100), raise_server_exceptions=False) as c:
        yield c


def on(client: TestClient, tenant: Api) -> Api:
    return dataclasses.replace(tenant, client=client)


def revoke(backend: Backend, token: str) -> None:
    with transaction(backend.database_url, writes=True) as session:
        revoke_token(session, token.partition(".")[0])


def test_a_revoked_token_is_refused_once_its_entry_lapses(
    backend: Backend, cached_client: TestClient, clock: Clock, make_tenant: TenantFactory
) -> None:
    api = on(cached_client, make_tenant())
    assert api.get("/customers").status_code == 200
    revoke(backend, api.token)
    # Within the bound the process still answers from what it looked up: the cache is used.
    clock.now += 4.9
    assert api.get("/customers").status_code == 200
    # A hit does not extend the entry: it lapses 5 s after the lookup, however busy the key.
    clock.now += 0.1
    assert_problem(api.get("/customers"), 401)
    assert_problem(api.get("/customers"), 401)  # a refused key is never cached


def test_no_cache_reads_the_key_every_time(
    backend: Backend, clock: Clock, make_tenant: TenantFactory
) -> None:
    with TestClient(app_with_cache(backend, clock, 0, 100), raise_server_exceptions=False) as c:
        api = on(c, make_tenant())
        assert api.get("/customers").status_code == 200
        assert len(c.app.state.key_cache) == 0  # type: ignore[attr-defined]
        revoke(backend, api.token)
        assert_problem(api.get("/customers"), 401)


def test_the_cache_holds_at_most_its_size_least_recently_used_out_first(
    backend: Backend, clock: Clock, make_tenant: TenantFactory
) -> None:
    with TestClient(app_with_cache(backend, clock, 5, 3), raise_server_exceptions=False) as c:
        tenants = [on(c, make_tenant()) for _ in range(5)]
        for tenant in tenants:
            assert tenant.get("/customers").status_code == 200
        cache: KeyCache = c.app.state.key_cache  # type: ignore[attr-defined]
        assert len(cache) == 3
        # The first two were evicted: revoked now, they are refused at once (read again),
        # while the last, still held, is answered from the cache until it lapses.
        for tenant in (tenants[0], tenants[1], tenants[4]):
            revoke(backend, tenant.token)
        assert_problem(tenants[0].get("/customers"), 401)
        assert_problem(tenants[1].get("/customers"), 401)
        assert tenants[4].get("/customers").status_code == 200
        assert len(cache) == 3


def test_a_cached_key_answers_only_to_its_own_secret_and_account(
    cached_client: TestClient, make_tenant: TenantFactory
) -> None:
    first = on(cached_client, make_tenant())
    second = on(cached_client, make_tenant())
    created = first.post("/customers", json={"name": "Only the first's"})
    assert created.status_code == 201, created.text
    assert second.get("/customers").status_code == 200  # both keys are cached now
    # The second account never sees the first's customer through the cache.
    assert [c["name"] for c in first.get("/customers").json()["results"]] == ["Only the first's"]
    assert second.get("/customers").json()["results"] == []
    assert_problem(second.get(f"/customers/{created.json()['id']}"), 404)
    # The first's key id with the second's secret (or any other) is not the first's key.
    first_key, _, _ = first.token.partition(".")
    _, _, second_secret = second.token.partition(".")
    forged = dataclasses.replace(first, token=f"{first_key}.{second_secret}")
    assert_problem(forged.get("/customers"), 401)
    forged = dataclasses.replace(first, token=f"{first_key}.{'x' * 43}")
    assert_problem(forged.get("/customers"), 401)
    assert first.get("/customers").status_code == 200


def test_scopes_come_from_the_cached_lookup(
    cached_client: TestClient, make_tenant: TenantFactory
) -> None:
    reader = on(cached_client, make_tenant(scopes=["read"]))
    assert reader.get("/customers").status_code == 200
    assert_problem(reader.post("/customers", json={"name": "No"}), 403, "write")
    assert_problem(reader.post("/customers", json={"name": "No"}), 403, "write")


def last_used(backend: Backend, api: Api) -> Any:
    with transaction(backend.database_url, writes=False) as session:
        return session.execute(
            select(ApiKey.last_used_at).where(
                owned(ApiKey, api.account_id), ApiKey.key_id == api.token.partition(".")[0]
            )
        ).scalar_one()


def test_last_used_is_recorded_through_the_cache(
    backend: Backend, cached_client: TestClient, make_tenant: TenantFactory
) -> None:
    api = on(cached_client, make_tenant())
    assert last_used(backend, api) is None
    assert api.get("/customers").status_code == 200
    first = last_used(backend, api)
    assert first is not None
    for _ in range(3):
        assert api.get("/customers").status_code == 200
    assert last_used(backend, api) == first  # once per LAST_USED_GRANULARITY, not per request


def test_serve_refuses_a_revoked_token_within_the_setting(
    backend: Backend, make_tenant: TenantFactory, tmp_path: Path
) -> None:
    """A real `serve` and a real `ledgerline tokens revoke` in another process: with a 1 s
    cache the key is refused within about a second, and answered until then."""
    env = ledgerline_env(
        backend, LEDGERLINE_EMBEDDED_WORKERS="0", LEDGERLINE_TOKEN_CACHE_SECONDS="1"
    )
    tenant = make_tenant()
    headers = {"Authorization": f"Token {tenant.token}"}
    with serving(env, tmp_path / "serve.log") as base_url:
        assert httpx.get(f"{base_url}/api/v2/customers", headers=headers).status_code == 200
        key_id = tenant.token.partition(".")[0]
        revoked = subprocess.run(
            [
                sys.executable,
                "-c",
                "from ledgerline.cli import main; main()",
                "tokens",
                "revoke",
                key_id,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(revoked.stdout)["revoked_at"] is not None
        revoked_at = time.monotonic()
        statuses = []
        while time.monotonic() - revoked_at < 3:
            statuses.append(httpx.get(f"{base_url}/api/v2/customers", headers=headers).status_code)
            if statuses[-1] == 401:
                break
            time.sleep(0.05)
        assert statuses[-1] == 401, statuses
        assert time.monotonic() - revoked_at < 2.0
        assert set(statuses) <= {200, 401}
