"""Rate limits shared by every API process through Redis (issue 10, item 3): two real
`ledgerline serve` processes over one database and one Redis count one limit together.

Each run's counters sit under a key prefix of its own (`LEDGERLINE_RATE_LIMIT_KEY_PREFIX`), so
runs sharing the Redis never see each other's counts; they are deleted afterwards. With
`CI=true` a missing Redis fails this test rather than skipping it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import IN_CI, REDIS_URL, Backend, TenantFactory, require_service
from tests.jobs.conftest import ledgerline_env, serving

pytestmark = pytest.mark.slow

PER_KEY = 6
FAILED_AUTH = 3


def reachable_redis() -> redis.Redis[bytes]:
    url = require_service("Redis", REDIS_URL, "LEDGERLINE_TEST_REDIS_URL")
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"Redis unreachable at {url}: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return client


def test_two_serve_processes_share_the_limits_through_redis(
    backend: Backend, make_tenant: TenantFactory, tmp_path: Path
) -> None:
    store = reachable_redis()
    prefix = f"ledgerline-test-{uuid.uuid4().hex}"
    env = ledgerline_env(
        backend,
        LEDGERLINE_EMBEDDED_WORKERS="0",
        LEDGERLINE_RATE_LIMIT_PER_KEY=f"{PER_KEY}/minute",
        LEDGERLINE_RATE_LIMIT_FAILED_AUTH=f"{FAILED_AUTH}/minute",
        LEDGERLINE_RATE_LIMIT_STORAGE_URL=str(REDIS_URL),
        LEDGERLINE_RATE_LIMIT_KEY_PREFIX=prefix,
    )
    tenant = make_tenant()
    good = {"Authorization": f"Token {tenant.token}"}
    bad = {"Authorization": "Token key_0.wrong"}
    try:
        with (
            serving(env, tmp_path / "first.log") as first,
            serving(env, tmp_path / "second.log") as second,
        ):
            processes = (first, second)
            # Requests alternate between the processes; the remaining count is the total's.
            remaining = []
            for n in range(PER_KEY):
                response = httpx.get(f"{processes[n % 2]}/api/v2/customers", headers=good)
                assert response.status_code == 200, response.text
                remaining.append(int(response.headers["RateLimit-Remaining"]))
            assert remaining == list(range(PER_KEY - 1, -1, -1))
            for base_url in processes:
                refused = httpx.get(f"{base_url}/api/v2/customers", headers=good)
                assert refused.status_code == 429, refused.text
                assert refused.headers["content-type"].startswith("application/problem+json")
                assert f"at most {PER_KEY} requests per minute" in refused.json()["detail"]
                assert int(refused.headers["Retry-After"]) >= 1

            # Failed authentications from this address add up across the processes too. A
            # forwarding header is not believed (no proxy is trusted), so claiming another
            # address each time does not spread the failures over several counters.
            for n in range(FAILED_AUTH):
                spoofed = {
                    **bad,
                    "X-Forwarded-For": f"192.0.2.{n}",
                    "Forwarded": f"for=192.0.2.{n}",
                }
                response = httpx.get(f"{processes[n % 2]}/api/v2/customers", headers=spoofed)
                assert response.status_code == 401, response.text
            for base_url in processes:
                refused = httpx.get(
                    f"{base_url}/api/v2/customers", headers={**bad, "X-Forwarded-For": "192.0.2.99"}
                )
                assert refused.status_code == 429, refused.text
                assert "failed authentications" in refused.json()["detail"]
            # The counters are in Redis, under this run's prefix.
            assert list(store.scan_iter(f"{prefix}:*"))
    finally:
        for key in store.scan_iter(f"{prefix}:*"):
            store.delete(key)
        store.close()
