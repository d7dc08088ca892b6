"""Webhook endpoint bodies and answers; the delivery log's shape; the event payload's shape."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from pydantic.json_schema import SkipJsonSchema

from ledgerline.jobs.schemas import Job as JobObject
from ledgerline.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventType,
)
from ledgerline.openapi import END
from ledgerline.request_types import StrictBody, Text
from ledgerline.webhooks.addresses import MAX_URL_LENGTH

MAX_DESCRIPTION = 500
# Attempts a delivery shows, newest last (a redelivered one can have had many).
SHOWN_ATTEMPTS = 50

# An http(s) URL with a host (an ASCII name, or an IPv4 address), an optional port, no credentials,
# no spaces or control characters. Whether its address may be sent to is a rule of the
# deployment, checked by the service (`webhook-address-refused`).
_PORT = r"(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
URL_PATTERN = (
    r"^[hH][tT][tT][pP][sS]?://[A-Za-z0-9._~%!$&'()*+,;=-]+"
    + _PORT
    + r"(?:[/?#][^\x00-\x20\x7f]*)?"
    + END
)
Url = Annotated[StrictStr, Field(min_length=1, max_length=MAX_URL_LENGTH, pattern=URL_PATTERN)]
Events = Annotated[
    list[WebhookEventType],
    Field(
        min_length=1,
        max_length=4,
        description="The events sent to this URL, each at most once.",
        json_schema_extra={"uniqueItems": True},
    ),
]
Description = Annotated[Text, Field(max_length=MAX_DESCRIPTION)]


class WebhookEndpointCreate(StrictBody):
    """`POST /webhook_endpoints`."""

    url: Url = Field(description="An http or https URL the events are POSTed to.")
    events: Events
    enabled: StrictBool = True
    description: Description | None = None


class WebhookEndpointUpdate(StrictBody):
    """`PATCH /webhook_endpoints/{id}`: only the keys given change."""

    url: Url | SkipJsonSchema[None] = None
    events: Events | SkipJsonSchema[None] = None
    enabled: StrictBool | SkipJsonSchema[None] = None
    description: Description | None = None


class WebhookEndpointOut(BaseModel):
    model_config = ConfigDict(title="WebhookEndpoint")

    id: int
    object: Literal["webhook_endpoint"]
    url: str
    events: list[WebhookEventType]
    enabled: bool
    description: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookEndpointWithSecret(WebhookEndpointOut):
    """The endpoint with its signing secret: answered once, at creation or rotation."""

    model_config = ConfigDict(title="WebhookEndpointWithSecret")

    secret: str = Field(
        description="`whsec_` + base64 of 32 random bytes (Standard Webhooks); shown only now"
    )


class WebhookAttemptOut(BaseModel):
    attempt: int = Field(ge=1, description="1 for the first request of this delivery")
    started_at: dt.datetime
    finished_at: dt.datetime
    duration_ms: int = Field(ge=0)
    status_code: int | None = Field(description="The receiver's HTTP status; null if none")
    error: str | None = Field(description="Why the attempt failed; null when it succeeded")
    succeeded: bool


class WebhookDeliveryOut(BaseModel):
    model_config = ConfigDict(title="WebhookDelivery")

    id: int
    object: Literal["webhook_delivery"]
    webhook_endpoint: int
    event_id: str = Field(description="The `webhook-id` header of its requests")
    event_type: WebhookEventType
    job: int
    status: Literal["pending", "sending", "succeeded", "failed"]
    attempt_count: int = Field(ge=0)
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    attempts: list[WebhookAttemptOut]


class WebhookEventPayload(BaseModel):
    """The body of every webhook request (documentation: docs/webhooks.md)."""

    type: WebhookEventType
    timestamp: dt.datetime
    data: JobObject


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def endpoint_json(endpoint: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": endpoint.public_id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "events": list(endpoint.events),
        "enabled": endpoint.enabled,
        "description": endpoint.description,
        "created_at": _iso(endpoint.created_at),
        "updated_at": _iso(endpoint.updated_at),
    }
    if secret is not None:
        answer["secret"] = secret
    return answer


def attempt_json(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "attempt": attempt.attempt,
        "started_at": _iso(attempt.started_at),
        "finished_at": _iso(attempt.started_at + dt.timedelta(milliseconds=attempt.duration_ms)),
        "duration_ms": attempt.duration_ms,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "succeeded": attempt.succeeded,
    }


def delivery_json(
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    event: WebhookEvent,
    attempts: list[WebhookAttempt],
) -> dict[str, Any]:
    return {
        "id": delivery.public_id,
        "object": "webhook_delivery",
        "webhook_endpoint": endpoint.public_id,
        "event_id": event.message_id,
        "event_type": event.type,
        "job": event.payload["public_id"],
        "status": delivery.state,
        "attempt_count": delivery.attempt_count,
        "next_attempt_at": _iso(delivery.next_attempt_at),
        "created_at": _iso(delivery.created_at),
        "updated_at": _iso(delivery.updated_at),
        "attempts": [attempt_json(attempt) for attempt in attempts],
    }
