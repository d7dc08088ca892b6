"""Sending webhooks: the consumers claim due deliveries, POST them signed, record each attempt.

Run by every job consumer's sweep (`jobs/queue.Sweeper.sweep_once` → `deliver_in_background`),
never inside an API request. A delivery is claimed by one conditional UPDATE (pending and
due, or sending under a lease that ran out → sending under this sender's lease), chosen on
PostgreSQL with `FOR UPDATE SKIP LOCKED`; SQLite serialises writers. So however many
consumers run, an attempt is sent by one of them. The outcome is written only while the
lease is still the sender's.

The back-off: after the n-th failed attempt of a round the next waits
base × 2^(n−1), at most base × 2^8; a round has `MAX_ROUND_ATTEMPTS` attempts, then the
delivery is `failed` (a redelivery by hand starts a new round). With the default base of
60 s that is 1, 2, 4, … 256 min, then 256 min four more times: 14 attempts over 25 h 35 min.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import ColumnElement, and_, or_, select, update

from ledgerline.auth import across_accounts
from ledgerline.config import Settings
from ledgerline.db import transaction, utcnow
from ledgerline.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from ledgerline.webhooks.addresses import AddressRefused, parse_url, resolve
from ledgerline.webhooks.events import job_from_snapshot
from ledgerline.webhooks.signing import signed_headers, unseal

log = logging.getLogger("ledgerline.webhooks")

MAX_ROUND_ATTEMPTS = 14
MAX_DOUBLINGS = 8
CLAIM_BATCH = 20
SEND_THREADS = 8
# Batches one call sends at most before it returns (the next sweep goes on).
MAX_BATCHES = 10
USER_AGENT = "Ledgerline-Webhooks/1"
MAX_ERROR_CHARS = 500


def retry_delay(base_seconds: float, failed_in_round: int) -> dt.timedelta | None:
    """The wait after the `failed_in_round`-th failed attempt of a round; None: no more."""
    if failed_in_round >= MAX_ROUND_ATTEMPTS:
        return None
    return dt.timedelta(seconds=base_seconds * 2 ** min(failed_in_round - 1, MAX_DOUBLINGS))


def lease_seconds(settings: Settings) -> float:
    """Longer than an attempt can take (resolving, connecting, the timeout, recording)."""
    return max(60.0, settings.webhook_timeout_seconds * 4)


def _due(now: dt.datetime) -> ColumnElement[bool]:
    # Deliveries to a disabled endpoint wait (unclaimed) until it is enabled again.
    enabled = across_accounts(select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True)))
    return and_(
        or_(
            and_(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now),
            and_(WebhookDelivery.state == "sending", WebhookDelivery.lease_expires_at < now),
        ),
        WebhookDelivery.endpoint_id.in_(enabled),
    )


def has_due(settings: Settings, now: dt.datetime) -> bool:
    """A read, so an idle sweep takes no write lock."""
    with transaction(settings.resolved_database_url, writes=False) as session:
        # The sender acts for every account: it holds deliveries by id and lease.
        found = session.execute(
            across_accounts(select(WebhookDelivery.id).where(_due(now)).limit(1))
        ).first()
    return found is not None


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    account_id: int
    attempt: int
    round_attempts: int
    url: str
    secret_sealed: str
    message_id: str
    event_type: str
    event_created_at: dt.datetime
    payload: dict[str, Any]


def claim_due(
    settings: Settings, owner: str, now: dt.datetime, *, limit: int = CLAIM_BATCH
) -> list[Claimed]:
    """Take up to `limit` due deliveries under `owner`'s lease (one write transaction)."""
    until = now + dt.timedelta(seconds=lease_seconds(settings))
    with transaction(settings.resolved_database_url, writes=True) as session:
        chosen = across_accounts(
            select(WebhookDelivery.id)
            .where(_due(now))
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalar_subquery()
        ids = (
            session.execute(
                across_accounts(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_(chosen), _due(now))
                    .values(
                        state="sending",
                        lease_owner=owner,
                        lease_expires_at=until,
                        attempt_count=WebhookDelivery.attempt_count + 1,
                        round_attempts=WebhookDelivery.round_attempts + 1,
                        updated_at=now,
                    )
                    .returning(WebhookDelivery.id)
                    .execution_options(synchronize_session=False)
                )
            )
            .scalars()
            .all()
        )
        if not ids:
            return []
        rows = session.execute(
            across_accounts(
                select(WebhookDelivery, WebhookEndpoint, WebhookEvent)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
                .where(WebhookDelivery.id.in_(list(ids)), WebhookDelivery.lease_owner == owner)
                .order_by(WebhookDelivery.id)
            )
        ).all()
        return [
            Claimed(
                delivery_id=delivery.id,
                account_id=delivery.account_id,
                attempt=delivery.attempt_count,
                round_attempts=delivery.round_attempts,
                url=endpoint.url,
                secret_sealed=endpoint.secret_sealed,
                message_id=event.message_id,
                event_type=event.type,
                event_created_at=event.created_at,
                payload=dict(event.payload),
            )
            for delivery, endpoint, event in rows
        ]


@dataclass(frozen=True)
class Outcome:
    started_at: dt.datetime
    duration_ms: int
    status_code: int | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.error is None


def _link_request(settings: Settings, server_secret: str) -> Any:
    """A request whose URL is the API's public one, for the job renderer's download link
    (the consumer has no request of its own)."""
    from starlette.requests import Request
    from starlette.routing import Route, Router

    from ledgerline.http import JSONResponse

    def never(_request: Request) -> JSONResponse:  # pragma: no cover - never routed to
        raise NotImplementedError

    public = urlsplit(settings.resolved_public_url)
    router = Router(routes=[Route("/api/v2/jobs/{job_id}/download", never, name="download_job")])
    state = SimpleNamespace(settings=settings, secret_key=server_secret)
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": public.scheme or "http",
        "server": None,
        "path": "/",
        "root_path": public.path.rstrip("/"),
        "query_string": b"",
        "headers": [(b"host", public.netloc.encode("ascii"))],
        "app": SimpleNamespace(state=state),
        "router": router,
    }
    return Request(scope)


def event_body(settings: Settings, server_secret: str, claimed: Claimed, now: dt.datetime) -> bytes:
    """The request body: `{type, timestamp, data}`, `data` the job rendered exactly as
    `GET /jobs/{id}` renders it (its download link minted now, as on every read)."""
    from ledgerline.http import JSONResponse
    from ledgerline.jobs.endpoints import job_json

    job = job_from_snapshot(claimed.payload)
    data = job_json(_link_request(settings, server_secret), job, now)
    return bytes(
        JSONResponse(
            {
                "type": claimed.event_type,
                "timestamp": claimed.event_created_at.isoformat(),
                "data": data,
            }
        ).body
    )


def _host_header(url: str) -> str:
    return urlsplit(url).netloc.rsplit("@", 1)[-1]


def send(settings: Settings, server_secret: str, claimed: Claimed) -> Outcome:
    """One attempt: check every address the host resolves to, connect to the checked one,
    POST the signed body; any 2xx is a success, anything else (a 3xx included) a failure."""
    started = utcnow()
    clock = time.monotonic()

    def outcome(status: int | None, error: str | None) -> Outcome:
        elapsed = int((time.monotonic() - clock) * 1000)
        return Outcome(started, elapsed, status, error[:MAX_ERROR_CHARS] if error else None)

    try:
        target = parse_url(claimed.url)
        address = resolve(target, allow_private=settings.webhook_allow_private)
        body = event_body(settings, server_secret, claimed, started)
        secret = unseal(server_secret, claimed.account_id, claimed.secret_sealed)
    except AddressRefused as exc:
        return outcome(None, f"address refused: {exc}")
    except Exception as exc:  # e.g. a secret sealed under another server secret
        log.exception(
            "webhook request could not be prepared", extra={"delivery": claimed.delivery_id}
        )
        return outcome(None, f"the request could not be prepared ({type(exc).__name__})")
    headers = {
        **signed_headers(secret, claimed.message_id, utcnow(), body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        # The URL's own host, while the connection goes to the address checked above.
        "host": _host_header(claimed.url),
    }
    pinned = httpx.URL(claimed.url).copy_with(host=str(address))
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        with (
            httpx.Client(
                timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
            ) as client,
            client.stream(
                "POST", pinned, content=body, headers=headers, extensions=extensions
            ) as response,
        ):
            status = response.status_code
    except httpx.TimeoutException as exc:
        return outcome(None, f"timed out after {settings.webhook_timeout_seconds:g} s ({exc!r})")
    except httpx.HTTPError as exc:
        return outcome(None, f"{type(exc).__name__}: {exc}")
    if 200 <= status < 300:
        return outcome(status, None)
    if 300 <= status < 400:
        return outcome(status, f"HTTP {status}: redirects are not followed")
    return outcome(status, f"HTTP {status}")


def record(settings: Settings, owner: str, claimed: Claimed, result: Outcome) -> bool:
    """The attempt and the delivery's next state, while `owner` still holds it; whether it
    did."""
    finished = result.started_at + dt.timedelta(milliseconds=result.duration_ms)
    values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None, "updated_at": utcnow()}
    if result.succeeded:
        values.update(state="succeeded", next_attempt_at=None)
    else:
        delay = retry_delay(settings.webhook_retry_base_seconds, claimed.round_attempts)
        if delay is None:
            values.update(state="failed", next_attempt_at=None)
        else:
            values.update(state="pending", next_attempt_at=finished + delay)
    with transaction(settings.resolved_database_url, writes=True) as session:
        changed = session.execute(
            across_accounts(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == claimed.delivery_id,
                    WebhookDelivery.lease_owner == owner,
                    WebhookDelivery.state == "sending",
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        ).rowcount  # type: ignore[attr-defined]
        if not changed:
            return False
        session.add(
            WebhookAttempt(
                account_id=claimed.account_id,
                delivery_id=claimed.delivery_id,
                attempt=claimed.attempt,
                started_at=result.started_at,
                duration_ms=result.duration_ms,
                status_code=result.status_code,
                error=result.error,
                succeeded=result.succeeded,
            )
        )
    return True


def deliver_due(settings: Settings, *, now: dt.datetime | None = None) -> int:
    """Send what is due (a few batches, each attempt at once on a small pool of threads);
    how many attempts were made."""
    from ledgerline.jobs.lease import worker_id

    server_secret = settings.resolved_secret_key
    sent = 0
    for _ in range(MAX_BATCHES):
        owner = worker_id()
        claimed = claim_due(settings, owner, now if now is not None else utcnow())
        if not claimed:
            break
        with ThreadPoolExecutor(max_workers=min(SEND_THREADS, len(claimed))) as pool:
            results = list(pool.map(lambda one: send(settings, server_secret, one), claimed))
        for one, result in zip(claimed, results, strict=True):
            if not record(settings, owner, one, result):
                log.info(
                    "webhook delivery taken over; attempt not recorded",
                    extra={"delivery": one.delivery_id},
                )
            elif not result.succeeded:
                log.info(
                    "webhook attempt failed",
                    extra={"delivery": one.delivery_id, "error": result.error},
                )
        sent += len(claimed)
        if len(claimed) < CLAIM_BATCH:
            break
    return sent


_running: dict[tuple[str, str], threading.Thread] = {}
_running_lock = threading.Lock()


def deliver_in_background(settings: Settings) -> bool:
    """What the sweep calls each second: send due deliveries on a thread of their own (one
    per process and database at a time), so a slow receiver never delays the sweep's other
    work. Whether a sender was started."""
    if not has_due(settings, utcnow()):
        return False
    key = (settings.resolved_database_url, settings.resolved_secret_key)
    with _running_lock:
        running = _running.get(key)
        if running is not None and running.is_alive():
            return False

        def run() -> None:
            try:
                deliver_due(settings)
            except Exception:
                log.exception("webhook delivery failed; will retry")

        thread = _running[key] = threading.Thread(
            target=run, name="ledgerline-webhooks", daemon=True
        )
        thread.start()
    return True
