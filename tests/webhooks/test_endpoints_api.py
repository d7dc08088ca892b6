"""The webhook endpoints API: create (secret shown once), read, change, rotate, delete; bad
input refused with nothing written; private addresses refused; another account's ids 404."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi import FastAPI

from tests.conftest import Api, assert_problem
from tests.openapi_check import assert_matches_openapi

PUBLIC_URL = "https://hooks.example.com/ledgerline"


def create(api: Api, **body: Any) -> Any:
    return api.post(
        "/webhook_endpoints", json={"url": PUBLIC_URL, "events": ["job.succeeded"], **body}
    )


def test_create_shows_the_secret_once_and_the_endpoint_reads_back(api: Api, app: FastAPI) -> None:
    response = create(api, description="month end", events=["job.succeeded", "job.failed"])
    assert response.status_code == 201, response.text
    created = response.json()
    assert_matches_openapi(app, "POST", "/api/v2/webhook_endpoints", 201, created)
    assert response.headers["location"] == f"/api/v2/webhook_endpoints/{created['id']}"
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert created["events"] == ["job.succeeded", "job.failed"]
    assert created["enabled"] is True
    assert created["description"] == "month end"
    assert created["url"] == PUBLIC_URL

    shown = api.get(f"/webhook_endpoints/{created['id']}")
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    assert shown.json() == {k: v for k, v in created.items() if k != "secret"}
    assert_matches_openapi(app, "GET", "/api/v2/webhook_endpoints/{endpoint_id}", 200, shown.json())
    listed = api.get("/webhook_endpoints")
    assert listed.status_code == 200
    assert listed.json()["count"] == 1
    assert listed.json()["results"] == [shown.json()]
    assert secret not in listed.text
    assert_matches_openapi(app, "GET", "/api/v2/webhook_endpoints", 200, listed.json())


def test_patch_changes_only_what_is_given_and_rotation_gives_a_new_secret(api: Api) -> None:
    created = create(api, description="first").json()
    changed = api.patch(
        f"/webhook_endpoints/{created['id']}",
        json={"events": ["job.canceled", "job.expired"], "enabled": False},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["events"] == ["job.canceled", "job.expired"]
    assert body["enabled"] is False
    assert body["description"] == "first"
    assert body["url"] == PUBLIC_URL
    cleared = api.patch(f"/webhook_endpoints/{created['id']}", json={"description": None})
    assert cleared.json()["description"] is None

    rotated = api.post(f"/webhook_endpoints/{created['id']}/rotate_secret")
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != created["secret"]
    assert "secret" not in api.get(f"/webhook_endpoints/{created['id']}").json()

    deleted = api.delete(f"/webhook_endpoints/{created['id']}")
    assert deleted.status_code == 200
    assert deleted.json()["id"] == created["id"]
    assert_problem(api.get(f"/webhook_endpoints/{created['id']}"), 404)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"url": PUBLIC_URL, "events": []}, "events"),
        ({"url": PUBLIC_URL, "events": ["job.started"]}, "events"),
        ({"url": PUBLIC_URL, "events": ["job.failed", "job.failed"]}, "events"),
        ({"url": PUBLIC_URL}, "events"),
        ({"events": ["job.failed"]}, "url"),
        ({"url": "ftp://hooks.example.com/x", "events": ["job.failed"]}, "url"),
        ({"url": "https://user:pw@hooks.example.com/x", "events": ["job.failed"]}, "url"),
        ({"url": "not a url", "events": ["job.failed"]}, "url"),
        ({"url": "https:///nohost", "events": ["job.failed"]}, "url"),
        ({"url": PUBLIC_URL, "events": ["job.failed"], "enabled": "yes"}, "enabled"),
        ({"url": PUBLIC_URL, "events": ["job.failed"], "secret": "whsec_x"}, "secret"),
        ({"url": PUBLIC_URL, "events": ["job.failed"], "description": "x" * 501}, "description"),
    ],
)
def test_bad_input_is_a_422_naming_it_and_writes_nothing(
    api: Api, body: dict[str, Any], named: str
) -> None:
    assert_problem(api.post("/webhook_endpoints", json=body), 422, named)
    assert api.get("/webhook_endpoints").json()["count"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://127.1.2.3/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.1/hook",
        "http://172.16.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://224.0.0.1/hook",
        "http://240.0.0.1/hook",
        "http://100.64.0.1/hook",
        "http://localhost:9000/hook",
        "http://api.localhost/hook",
    ],
)
def test_private_addresses_are_refused_at_create_and_update(api: Api, url: str) -> None:
    """With LEDGERLINE_WEBHOOK_ALLOW_PRIVATE off (the default, as in this app)."""
    assert_problem(
        api.post("/webhook_endpoints", json={"url": url, "events": ["job.failed"]}), 422, "url"
    )
    created = create(api).json()
    assert_problem(api.patch(f"/webhook_endpoints/{created['id']}", json={"url": url}), 422, "url")
    assert api.get(f"/webhook_endpoints/{created['id']}").json()["url"] == PUBLIC_URL
    assert api.get("/webhook_endpoints").json()["count"] == 1


def test_patch_refuses_null_for_required_fields(api: Api) -> None:
    created = create(api).json()
    for key in ("url", "events", "enabled"):
        assert_problem(api.patch(f"/webhook_endpoints/{created['id']}", json={key: None}), 422, key)
    assert api.get(f"/webhook_endpoints/{created['id']}").json() == {
        k: v for k, v in created.items() if k != "secret"
    }


def test_another_accounts_endpoints_answer_404(api: Api, other_api: Api) -> None:
    mine = create(api).json()
    theirs = create(other_api).json()
    assert mine["id"] == theirs["id"] == 1  # numbered per account: the same number, two rows
    api.delete(f"/webhook_endpoints/{mine['id']}")
    path = f"/webhook_endpoints/{theirs['id']}"
    assert_problem(api.get(path), 404)
    assert_problem(api.patch(path, json={"enabled": False}), 404)
    assert_problem(api.post(path + "/rotate_secret"), 404)
    assert_problem(api.get(path + "/deliveries"), 404)
    assert_problem(api.post(path + "/deliveries/1/redeliver"), 404)
    assert_problem(api.delete(path), 404)
    assert api.get("/webhook_endpoints").json()["count"] == 0
    assert other_api.get(path).json() == {k: v for k, v in theirs.items() if k != "secret"}


def test_read_scope_lists_but_cannot_create(make_tenant: Any) -> None:
    reader = make_tenant(scopes=["read"])
    assert reader.get("/webhook_endpoints").status_code == 200
    assert_problem(create(reader), 403)
