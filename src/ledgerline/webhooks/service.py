"""Webhook endpoints of an account, their delivery log, and redelivery by hand."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ledgerline.auth import Principal, get_owned_by_public_id, owned, scoped
from ledgerline.errors import Conflict, NotFound, ValidationFailed
from ledgerline.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from ledgerline.pagination import OffsetPage
from ledgerline.public_ids import allocate
from ledgerline.webhooks.addresses import AddressRefused, NotPublic, check_url
from ledgerline.webhooks.schemas import (
    SHOWN_ATTEMPTS,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
)
from ledgerline.webhooks.signing import new_secret, seal

# Endpoints per account: each event is one outbox row per endpoint.
MAX_ENDPOINTS = 20


class TooManyEndpoints(Conflict):
    code = "too-many-webhook-endpoints"


class WebhookAddressRefused(ValidationFailed):
    """A well-formed URL whose host is a private, loopback or link-local address (refused
    unless LEDGERLINE_WEBHOOK_ALLOW_PRIVATE): a rule of the deployment, not of the URL's form."""

    code = "webhook-address-refused"


class DeliveryInProgress(Conflict):
    code = "webhook-delivery-in-progress"


def _checked_url(url: str, allow_private: bool) -> str:
    try:
        check_url(url, allow_private=allow_private)
    except NotPublic as exc:
        raise WebhookAddressRefused(
            f"body.url: {exc}", errors=[{"loc": ["body", "url"], "msg": str(exc)}]
        ) from exc
    except AddressRefused as exc:
        raise ValidationFailed.field(["body", "url"], str(exc)) from exc
    return url


def _checked_events(events: list[str]) -> list[str]:
    if len(set(events)) != len(events):
        raise ValidationFailed.field(["body", "events"], "must not name an event twice")
    return list(events)


def create_endpoint(
    session: Session,
    principal: Principal,
    body: WebhookEndpointCreate,
    *,
    server_secret: str,
    allow_private: bool,
    now: dt.datetime,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (the only time it is returned)."""
    url = _checked_url(body.url, allow_private)
    events = _checked_events(list(body.events))
    count = session.execute(
        scoped(WebhookEndpoint, principal).with_only_columns(func.count())
    ).scalar_one()
    if count >= MAX_ENDPOINTS:
        raise TooManyEndpoints(
            f"This account has {count} webhook endpoints; at most {MAX_ENDPOINTS} may exist. "
            "Delete one first."
        )
    secret = new_secret()
    endpoint = WebhookEndpoint(
        public_id=allocate(session, principal.account_id, WebhookEndpoint),
        account_id=principal.account_id,
        url=url,
        events=events,
        enabled=body.enabled,
        description=body.description,
        secret_sealed=seal(server_secret, principal.account_id, secret),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def get_endpoint(session: Session, principal: Principal, endpoint_id: int) -> WebhookEndpoint:
    return get_owned_by_public_id(session, WebhookEndpoint, endpoint_id, principal)


def list_endpoints(
    session: Session, principal: Principal, window: OffsetPage
) -> tuple[int, list[WebhookEndpoint]]:
    """The account's endpoints, oldest first."""
    statement = scoped(WebhookEndpoint, principal)
    count = session.execute(statement.with_only_columns(func.count())).scalar_one()
    endpoints = session.execute(
        statement.order_by(WebhookEndpoint.public_id).limit(window.limit).offset(window.offset)
    ).scalars()
    return count, list(endpoints)


def update_endpoint(
    session: Session,
    principal: Principal,
    endpoint_id: int,
    body: WebhookEndpointUpdate,
    *,
    allow_private: bool,
    now: dt.datetime,
) -> WebhookEndpoint:
    endpoint = get_endpoint(session, principal, endpoint_id)
    given = body.model_fields_set
    for key in ("url", "events", "enabled"):
        if key in given and getattr(body, key) is None:
            raise ValidationFailed.field(["body", key], "must not be null")
    if body.url is not None:
        endpoint.url = _checked_url(body.url, allow_private)
    if body.events is not None:
        endpoint.events = _checked_events(list(body.events))
    if body.enabled is not None:
        endpoint.enabled = body.enabled
    if "description" in given:
        endpoint.description = body.description
    endpoint.updated_at = now
    session.flush()
    return endpoint


def rotate_secret(
    session: Session,
    principal: Principal,
    endpoint_id: int,
    *,
    server_secret: str,
    now: dt.datetime,
) -> tuple[WebhookEndpoint, str]:
    """A new secret at once: every request from now on is signed with it alone."""
    endpoint = get_endpoint(session, principal, endpoint_id)
    secret = new_secret()
    endpoint.secret_sealed = seal(server_secret, principal.account_id, secret)
    endpoint.updated_at = now
    session.flush()
    return endpoint, secret


def delete_endpoint(session: Session, principal: Principal, endpoint_id: int) -> None:
    """The endpoint, its deliveries and their attempts; events other endpoints still send stay."""
    endpoint = get_endpoint(session, principal, endpoint_id)
    deliveries = (
        select(WebhookDelivery.id)
        .where(owned(WebhookDelivery, principal.account_id))
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .scalar_subquery()
    )
    session.execute(
        delete(WebhookAttempt)
        .where(
            owned(WebhookAttempt, principal.account_id), WebhookAttempt.delivery_id.in_(deliveries)
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(WebhookDelivery)
        .where(
            owned(WebhookDelivery, principal.account_id),
            WebhookDelivery.endpoint_id == endpoint.id,
        )
        .execution_options(synchronize_session=False)
    )
    session.delete(endpoint)
    session.flush()


DeliveryView = tuple[WebhookDelivery, WebhookEvent, list[WebhookAttempt]]


def _attempts_of(
    session: Session, account_id: int, delivery_ids: list[int]
) -> dict[int, list[WebhookAttempt]]:
    found: dict[int, list[WebhookAttempt]] = defaultdict(list)
    if not delivery_ids:
        return found
    rows = session.execute(
        select(WebhookAttempt)
        .where(owned(WebhookAttempt, account_id), WebhookAttempt.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt)
    ).scalars()
    for attempt in rows:
        found[attempt.delivery_id].append(attempt)
    return {key: value[-SHOWN_ATTEMPTS:] for key, value in found.items()}


def list_deliveries(
    session: Session, principal: Principal, endpoint_id: int, window: OffsetPage
) -> tuple[WebhookEndpoint, int, list[DeliveryView]]:
    """The endpoint's deliveries, newest first, each with its attempts."""
    endpoint = get_endpoint(session, principal, endpoint_id)
    statement = scoped(WebhookDelivery, principal).where(WebhookDelivery.endpoint_id == endpoint.id)
    count = session.execute(statement.with_only_columns(func.count())).scalar_one()
    rows = session.execute(
        statement.add_columns(WebhookEvent)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(window.limit)
        .offset(window.offset)
    ).all()
    attempts = _attempts_of(session, principal.account_id, [row[0].id for row in rows])
    return (
        endpoint,
        count,
        [(row[0], row[1], attempts.get(row[0].id, [])) for row in rows],
    )


def redeliver(
    session: Session,
    principal: Principal,
    endpoint_id: int,
    delivery_id: int,
    now: dt.datetime,
) -> tuple[WebhookEndpoint, DeliveryView]:
    """Send the delivery again now, with its back-off schedule from the start (a delivery
    already waiting is simply made due); 409 while an attempt of it is in flight."""
    endpoint = get_endpoint(session, principal, endpoint_id)
    delivery = session.execute(
        scoped(WebhookDelivery, principal).where(
            WebhookDelivery.public_id == delivery_id,
            WebhookDelivery.endpoint_id == endpoint.id,
        )
    ).scalar_one_or_none()
    if delivery is None:
        raise NotFound(f"No delivery with id {delivery_id} for webhook endpoint {endpoint_id}.")
    changed = session.execute(
        update(WebhookDelivery)
        .where(
            owned(WebhookDelivery, principal.account_id),
            WebhookDelivery.id == delivery.id,
            WebhookDelivery.state != "sending",
        )
        .values(state="pending", next_attempt_at=now, round_attempts=0, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if not changed:
        raise DeliveryInProgress(
            f"Delivery {delivery_id} is being sent right now; retry once the attempt is recorded."
        )
    session.refresh(delivery)
    event = session.execute(
        select(WebhookEvent).where(
            owned(WebhookEvent, principal.account_id), WebhookEvent.id == delivery.event_id
        )
    ).scalar_one()
    attempts = _attempts_of(session, principal.account_id, [delivery.id])
    return endpoint, (delivery, event, attempts.get(delivery.id, []))
