"""The one layer that gives every answer its request id, rate-limit fields, `/metrics` count
and log line (`http.RequestContextMiddleware`; it was three middlewares before issue 11)."""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from ledgerline.app import create_app
from ledgerline.http import JSONLogFormatter
from tests.conftest import Backend, TenantFactory, assert_problem

# The route as the included router declares it (the label /metrics has always used).
ROUTE = "/customers/{customer_id}"


@pytest.fixture
def limited_client(backend: Backend) -> Iterator[TestClient]:
    settings = backend.settings.model_copy(
        update={
            "rate_limit_per_key": "50/minute",
            "rate_limit_failed_auth": "50/minute",
            "queue_name": f"context-{uuid.uuid4().hex[:10]}",
        }
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def count(method: str, route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "ledgerline_http_requests_total", {"method": method, "route": route, "status": status}
    )
    return value or 0.0


def test_an_error_after_authentication_carries_every_field(
    limited_client: TestClient, make_tenant: TenantFactory, caplog: pytest.LogCaptureFixture
) -> None:
    api = dataclasses.replace(make_tenant(), client=limited_client)
    before_404 = count("GET", ROUTE, "404")
    before_head = count("HEAD", ROUTE, "404")
    with caplog.at_level(logging.INFO, logger="ledgerline.http"):
        missing = api.get("/customers/999999", headers={"X-Request-ID": "context-test-1"})
    assert_problem(missing, 404)
    assert missing.headers["X-Request-ID"] == "context-test-1"
    assert missing.headers["RateLimit-Limit"] == "50"
    assert missing.headers["RateLimit-Remaining"] == "49"
    assert missing.headers["RateLimit-Policy"] == "50;w=60"
    assert count("GET", ROUTE, "404") == before_404 + 1
    lines = [
        json.loads(JSONLogFormatter().format(record))
        for record in caplog.records
        if getattr(record, "request_id", None) == "context-test-1"
    ]
    assert len(lines) == 1
    assert lines[0]["status"] == 404
    assert lines[0]["path"] == "/api/v2/customers/999999"

    head = api.request("HEAD", "/customers/999999")
    assert head.status_code == 404
    assert head.content == b""
    assert head.headers["RateLimit-Remaining"] == "48"
    assert len(head.headers["X-Request-ID"]) == 32  # a new id when the client sends none
    assert count("HEAD", ROUTE, "404") == before_head + 1


def test_no_rate_limit_fields_before_authentication(limited_client: TestClient) -> None:
    refused = limited_client.get("/api/v2/customers", headers={"X-Request-ID": "x" * 101})
    assert_problem(refused, 401)
    assert not any(name.lower().startswith("ratelimit") for name in refused.headers)
    assert refused.headers["X-Request-ID"] != "x" * 101  # over 100 characters: replaced
