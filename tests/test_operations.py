"""Operations endpoints, auth and the HTTP rules every endpoint shares."""

from __future__ import annotations

import base64
from collections.abc import Iterator

from fastapi.testclient import TestClient

from tests.conftest import Api, TenantFactory, assert_problem


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


def test_request_id_is_returned_and_echoed(client: TestClient) -> None:
    assert len(client.get("/healthz").headers["x-request-id"]) >= 16
    echoed = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "ledgerline_http_requests_total" in response.text


def test_unknown_route_is_problem_json(api: Api) -> None:
    assert_problem(api.get("/no-such-thing"), 404)


def test_wrong_method_is_problem_json(client: TestClient) -> None:
    assert_problem(client.post("/healthz"), 405)


def test_missing_and_bad_credentials_are_401_with_challenge(client: TestClient, api: Api) -> None:
    for headers in (
        {},
        {"Authorization": "Token nope"},
        {"Authorization": "Token key_x.y"},
        {"Authorization": f"Token {api.token}x"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Digest abc"},
    ):
        response = client.get("/api/v2/customers", headers=headers)
        assert_problem(response, 401)
        assert "WWW-Authenticate" in response.headers


def test_token_bearer_and_basic_all_authenticate(client: TestClient, api: Api) -> None:
    key_id, secret = api.token.split(".", 1)
    basic = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    for header in (f"Token {api.token}", f"Bearer {api.token}", f"Basic {basic}"):
        response = client.get("/api/v2/customers", headers={"Authorization": header})
        assert response.status_code == 200, (header, response.text)


def test_missing_scope_is_403(make_tenant: TenantFactory) -> None:
    reader = make_tenant(scopes=["read"])
    assert reader.get("/customers").status_code == 200
    assert_problem(reader.post("/venues", json={"name": "Hall"}), 403, "write")
    writer = make_tenant(scopes=["write"])
    assert_problem(writer.get("/customers"), 403, "read")


def test_body_over_one_mebibyte_is_413(api: Api) -> None:
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    response = api.post("/venues", content=big, headers={"Content-Type": "application/json"})
    assert_problem(response, 413)


def test_chunked_body_over_one_mebibyte_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must count the stream
        for _ in range(20):
            yield b"x" * 65536

    response = api.post("/venues", content=chunks(), headers={"Content-Type": "application/json"})
    assert_problem(response, 413)


def test_doubled_slash_is_served_as_single(api: Api) -> None:
    response = api.get("/api/v2//customers")
    assert response.status_code == 200, response.text
