"""Webhooks received by a real HTTP server on loopback, sent by real consumers.

Every request the receiver gets is verified with the `standardwebhooks` package against the
secret the API showed at creation. Jobs run through the real queue and worker threads.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ledgerline.jobs.queue import EmbeddedWorkers
from ledgerline.webhooks.delivery import Claimed, retry_delay, send
from ledgerline.webhooks.schemas import WebhookEventPayload
from ledgerline.webhooks.signing import seal
from tests.conftest import Api, Backend, assert_problem
from tests.jobs.conftest import create_lines, wait_for_job
from tests.webhooks.conftest import (
    RETRY_BASE_SECONDS,
    Receiver,
    subscribe,
    tenant_of,
    wait_until,
)

# Minted afresh on every read (GET /jobs/{id} and each webhook attempt alike).
LINK_FIELDS = ("result_url",)
RESULT_LINK_FIELDS = ("download_url", "download_url_expires_at")


def without_links(job: dict[str, Any]) -> dict[str, Any]:
    stripped = {k: v for k, v in job.items() if k not in LINK_FIELDS}
    if stripped.get("result") is not None:
        stripped["result"] = {
            k: v for k, v in stripped["result"].items() if k not in RESULT_LINK_FIELDS
        }
    return stripped


def canceled_job(api: Api) -> int:
    """A job created and canceled through the API (on the idle queue): its id."""
    response = api.post("/reports/invoice_line_items/export", json={"format": "csv"})
    assert response.status_code == 200, response.text
    job_id: int = response.json()["job"]
    canceled = api.post(f"/jobs/{job_id}/cancel")
    assert canceled.status_code == 200, canceled.text
    return job_id


def deliveries(api: Api, endpoint_id: int) -> list[dict[str, Any]]:
    response = api.get(f"/webhook_endpoints/{endpoint_id}/deliveries")
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def test_an_export_run_by_a_worker_sends_job_succeeded_with_the_job_as_get_shows_it(
    hook_backend: Backend,
    hook_api: Api,
    hook_workers: EmbeddedWorkers,
    receiver: Receiver,
) -> None:
    endpoint, url = subscribe(hook_api, receiver, ["job.succeeded"])
    unsubscribed, other_url = subscribe(hook_api, receiver, ["job.failed", "job.canceled"])
    create_lines(hook_api)
    response = hook_api.post(
        "/reports/invoice_line_items/export", json={"format": "json", "columns": ["id", "amount"]}
    )
    assert response.status_code == 200, response.text
    job_id = response.json()["job"]
    job = wait_for_job(hook_api, job_id)
    assert job["status"] == "succeeded"
    wait_until(lambda: len(receiver.at(url)) == 1, what="the job.succeeded webhook")

    (request,) = receiver.at(url)
    assert request.verified
    assert request.answered == 200
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"].startswith("msg_")
    sent_at = int(request.headers["webhook-timestamp"])
    assert abs(sent_at - time.time()) < 60
    payload = request.payload
    WebhookEventPayload.model_validate(payload)  # the documented shape, the job schema included
    assert payload["type"] == "job.succeeded"
    assert dt.datetime.fromisoformat(payload["timestamp"]) == dt.datetime.fromisoformat(
        job["finished_at"]
    )
    shown = hook_api.get(f"/jobs/{job_id}").json()
    assert without_links(payload["data"]) == without_links(shown)
    # Its download link is a real one: the file, without credentials.
    link = urlsplit(payload["data"]["result"]["download_url"])
    assert f"{link.scheme}://{link.netloc}" == hook_backend.settings.public_url
    assert payload["data"]["result_url"] == payload["data"]["result"]["download_url"]
    downloaded = hook_api.client.get(f"{link.path}?{link.query}")
    assert downloaded.status_code == 200
    assert downloaded.content == hook_api.get(f"/jobs/{job_id}/download").content

    (delivery,) = deliveries(hook_api, endpoint["id"])
    assert delivery["status"] == "succeeded"
    assert delivery["event_id"] == request.headers["webhook-id"]
    assert delivery["event_type"] == "job.succeeded"
    assert delivery["job"] == job_id
    assert delivery["attempt_count"] == 1
    (attempt,) = delivery["attempts"]
    assert attempt["attempt"] == 1
    assert attempt["status_code"] == 200
    assert attempt["error"] is None
    assert attempt["succeeded"] is True
    assert attempt["duration_ms"] >= 0
    # Subscribed to other events only: nothing sent, nothing logged.
    assert receiver.at(other_url) == []
    assert deliveries(hook_api, unsubscribed["id"]) == []


def test_a_canceled_job_sends_job_canceled(
    hook_backend: Backend,
    hook_workers: EmbeddedWorkers,
    idle_client: TestClient,
    receiver: Receiver,
) -> None:
    api = tenant_of(hook_backend, idle_client)
    _endpoint, url = subscribe(api, receiver, ["job.canceled"])
    job_id = canceled_job(api)
    wait_until(lambda: len(receiver.at(url)) == 1, what="the job.canceled webhook")
    (request,) = receiver.at(url)
    assert request.verified
    assert request.payload["type"] == "job.canceled"
    assert request.payload["data"]["status"] == "canceled"
    assert request.payload["data"]["id"] == job_id
    assert request.payload["data"] == api.get(f"/jobs/{job_id}").json()


def test_a_receiver_failing_five_times_gets_the_event_once_after_back_off(
    hook_backend: Backend,
    hook_workers: EmbeddedWorkers,
    idle_client: TestClient,
    receiver: Receiver,
) -> None:
    api = tenant_of(hook_backend, idle_client)
    endpoint, url = subscribe(api, receiver, ["job.canceled"], script=[500, 503, 502, 500, 429])
    canceled_job(api)
    wait_until(lambda: any(r.answered == 200 for r in receiver.at(url)), what="a 2xx")
    wait_until(lambda: deliveries(api, endpoint["id"])[0]["status"] == "succeeded")
    time.sleep(RETRY_BASE_SECONDS * 64 + 1.5)  # long past any further retry
    requests = receiver.at(url)
    assert [r.answered for r in requests] == [500, 503, 502, 500, 429, 200]
    assert all(r.verified for r in requests)
    assert len({r.headers["webhook-id"] for r in requests}) == 1  # one event, six attempts
    assert len({r.body for r in requests}) == 1

    (delivery,) = deliveries(api, endpoint["id"])
    assert delivery["attempt_count"] == 6
    attempts = delivery["attempts"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4, 5, 6]
    assert [a["status_code"] for a in attempts] == [500, 503, 502, 500, 429, 200]
    assert [a["succeeded"] for a in attempts] == [False] * 5 + [True]
    assert all(a["error"] == f"HTTP {a['status_code']}" for a in attempts[:5])
    # Each retry waited at least its back-off after the attempt before it ended.
    for n, (before, after) in enumerate(itertools.pairwise(attempts), start=1):
        waited = dt.datetime.fromisoformat(after["started_at"]) - dt.datetime.fromisoformat(
            before["finished_at"]
        )
        expected = retry_delay(RETRY_BASE_SECONDS, n)
        assert expected is not None
        assert waited >= expected - dt.timedelta(milliseconds=2), (n, waited)


def test_the_back_off_lasts_more_than_a_day_with_the_default_base() -> None:
    delays = [retry_delay(60.0, n) for n in range(1, 20)]
    schedule = [delay for delay in delays if delay is not None]
    assert schedule[:3] == [
        dt.timedelta(minutes=1),
        dt.timedelta(minutes=2),
        dt.timedelta(minutes=4),
    ]
    assert max(schedule) == dt.timedelta(minutes=256)
    assert len(schedule) == 13  # 14 attempts
    assert sum(schedule, dt.timedelta()) >= dt.timedelta(hours=24)


def test_a_tampered_signature_fails_verification(
    hook_backend: Backend,
    hook_workers: EmbeddedWorkers,
    idle_client: TestClient,
    receiver: Receiver,
) -> None:
    api = tenant_of(hook_backend, idle_client)
    endpoint, url = subscribe(api, receiver, ["job.canceled"])
    canceled_job(api)
    wait_until(lambda: len(receiver.at(url)) == 1)
    (request,) = receiver.at(url)
    secret = receiver.routes[urlsplit(url).path].secret
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "job.canceled"
    tampered_body = request.body.replace(b'"canceled"', b'"succeeded"', 1)
    assert tampered_body != request.body
    signature = request.headers["webhook-signature"]
    version, _, digest = signature.partition(",")
    flipped = digest[:-2] + ("A" if digest[-2] != "A" else "B") + digest[-1]
    for body, headers in (
        (tampered_body, request.headers),
        (request.body, {**request.headers, "webhook-signature": f"{version},{flipped}"}),
        (request.body, {**request.headers, "webhook-id": "msg_other"}),
        (
            request.body,
            {
                **request.headers,
                "webhook-timestamp": str(int(request.headers["webhook-timestamp"]) - 7),
            },
        ),
    ):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body, headers)
    # Another endpoint's secret does not verify it either.
    other = api.post(f"/webhook_endpoints/{endpoint['id']}/rotate_secret").json()["secret"]
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(request.body, request.headers)


def test_rotation_signs_the_next_events_with_the_new_secret_only(
    hook_backend: Backend,
    hook_workers: EmbeddedWorkers,
    idle_client: TestClient,
    receiver: Receiver,
) -> None:
    api = tenant_of(hook_backend, idle_client)
    endpoint, url = subscribe(api, receiver, ["job.canceled"])
    old = endpoint["secret"]
    new = api.post(f"/webhook_endpoints/{endpoint['id']}/rotate_secret").json()["secret"]
    receiver.routes[urlsplit(url).path].secret = new
    canceled_job(api)
    wait_until(lambda: len(receiver.at(url)) == 1)
    (request,) = receiver.at(url)
    assert request.verified
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(request.body, request.headers)


def test_a_redirect_is_a_failure_and_is_not_followed(
    hook_backend: Backend,
    hook_workers: EmbeddedWorkers,
    idle_client: TestClient,
    receiver: Receiver,
) -> None:
    api = tenant_of(hook_backend, idle_client)
    endpoint, url = subscribe(api, receiver, ["job.canceled"], script=[302])
    canceled_job(api)
    wait_until(lambda: deliveries(api, endpoint["id"])[0]["status"] == "succeeded")
    assert [r.answered for r in receiver.at(url)] == [302, 200]
    assert [r for r in receiver.received if r.path == "/redirected"] == []
    first, second = deliveries(api, endpoint["id"])[0]["attempts"]
    assert first["status_code"] == 302
    assert "redirect" in first["error"]
    assert second["status_code"] == 200


def test_redelivery_by_hand_sends_the_same_event_again(
    hook_backend: Backend,
    hook_workers: EmbeddedWorkers,
    idle_client: TestClient,
    receiver: Receiver,
) -> None:
    api = tenant_of(hook_backend, idle_client)
    other = tenant_of(hook_backend, idle_client)
    endpoint, url = subscribe(api, receiver, ["job.canceled"])
    canceled_job(api)
    wait_until(lambda: deliveries(api, endpoint["id"])[0]["status"] == "succeeded")
    (delivery,) = deliveries(api, endpoint["id"])
    path = f"/webhook_endpoints/{endpoint['id']}/deliveries/{delivery['id']}/redeliver"
    # Not another account's to redeliver, nor to see.
    assert_problem(other.post(path), 404)
    assert_problem(other.get(f"/webhook_endpoints/{endpoint['id']}/deliveries"), 404)
    assert_problem(
        api.post(f"/webhook_endpoints/{endpoint['id']}/deliveries/999999/redeliver"), 404
    )
    redelivered = api.post(path)
    assert redelivered.status_code == 200, redelivered.text
    assert redelivered.json()["status"] == "pending"
    wait_until(lambda: len(receiver.at(url)) == 2, what="the redelivery")
    first, second = receiver.at(url)
    assert second.verified
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    wait_until(lambda: deliveries(api, endpoint["id"])[0]["attempt_count"] == 2)
    assert deliveries(api, endpoint["id"])[0]["status"] == "succeeded"


def test_a_host_resolving_to_a_private_address_is_refused_at_send_time(
    hook_backend: Backend, receiver: Receiver
) -> None:
    """A sender with the setting off resolves `localhost`, finds a loopback address, and
    sends nothing: the check is on every resolved address, at every attempt."""
    settings = hook_backend.settings.model_copy(update={"webhook_allow_private": False})
    secret = settings.resolved_secret_key
    path = urlsplit(receiver.route()).path
    port = receiver.server.server_address[1]
    claimed = Claimed(
        delivery_id=1,
        account_id=1,
        attempt=1,
        round_attempts=1,
        url=f"http://localhost:{port}{path}",
        secret_sealed=seal(secret, 1, "whsec_" + "A" * 43),
        message_id="msg_test",
        event_type="job.canceled",
        event_created_at=dt.datetime.now(dt.UTC),
        payload={},
    )
    outcome = send(settings, secret, claimed)
    assert not outcome.succeeded
    assert outcome.status_code is None
    assert outcome.error is not None
    assert "non-public address" in outcome.error
    assert receiver.received == []
    # The same literal address is refused too, whichever way it is written.
    for host in ("127.0.0.1", "[::ffff:127.0.0.1]", "[::1]"):
        literal = Claimed(**{**claimed.__dict__, "url": f"http://{host}:{port}{path}"})
        refused = send(settings, secret, literal)
        assert refused.error is not None
        assert "non-public" in refused.error, refused.error
    assert receiver.received == []


def test_a_request_that_cannot_be_prepared_is_a_recorded_failure_not_a_stuck_delivery(
    hook_backend: Backend, receiver: Receiver
) -> None:
    """A secret sealed under another server secret (the operator changed it) fails the
    attempt with an error the log shows; nothing is sent."""
    settings = hook_backend.settings
    claimed = Claimed(
        delivery_id=1,
        account_id=1,
        attempt=1,
        round_attempts=1,
        url=receiver.route(),
        secret_sealed=seal("another-server-secret", 1, "whsec_" + "A" * 43),
        message_id="msg_test",
        event_type="job.canceled",
        event_created_at=dt.datetime.now(dt.UTC),
        payload={"public_id": 1, "status": "canceled", "params": {}, "rows_done": 0},
    )
    outcome = send(settings, settings.resolved_secret_key, claimed)
    assert outcome.error == "the request could not be prepared (InvalidTag)"
    assert receiver.received == []
