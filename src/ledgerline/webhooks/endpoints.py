"""Webhook endpoints: where job events are sent, their delivery log, redelivery by hand.

docs/webhooks.md is the integrator's contract (headers, payload, retries, verification).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from ledgerline.dependencies import PrincipalDep, SessionDep, request_now
from ledgerline.http import JSONResponse
from ledgerline.openapi import TeamUpList
from ledgerline.pagination import PageWindow, list_response
from ledgerline.request_types import MAX_ID
from ledgerline.webhooks import service
from ledgerline.webhooks.schemas import (
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointOut,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
    delivery_json,
    endpoint_json,
)

router = APIRouter(tags=["webhooks"])

EndpointId = Annotated[int, Path(ge=1, le=MAX_ID)]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post(
    "/webhook_endpoints",
    status_code=201,
    response_model=WebhookEndpointWithSecret,
    responses={409: {"description": "The account already has the most endpoints it may have"}},
)
def create_webhook_endpoint(
    body: WebhookEndpointCreate, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Subscribe a URL to job events. The answer holds the endpoint's signing `secret`, shown
    only this once (and again at each rotation); requests are signed per Standard Webhooks.
    A URL whose host is a private, loopback or link-local address is refused (422)."""
    settings = request.app.state.settings
    endpoint, secret = service.create_endpoint(
        session,
        principal,
        body,
        server_secret=request.app.state.secret_key,
        allow_private=settings.webhook_allow_private,
        now=request_now(request),
    )
    return JSONResponse(
        endpoint_json(endpoint, secret),
        status_code=201,
        headers={"Location": f"/api/v2/webhook_endpoints/{endpoint.public_id}"},
    )


@router.get("/webhook_endpoints", response_model=TeamUpList[WebhookEndpointOut])
def list_webhook_endpoints(
    request: Request, principal: PrincipalDep, session: SessionDep, window: PageWindow
) -> Response:
    """The account's webhook endpoints, oldest first (secrets are never shown)."""
    count, endpoints = service.list_endpoints(session, principal, window)
    return list_response(request, window, count, [endpoint_json(e) for e in endpoints])


@router.post(
    "/webhook_endpoints/{endpoint_id}/rotate_secret", response_model=WebhookEndpointWithSecret
)
def rotate_webhook_secret(
    endpoint_id: EndpointId, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Replace the signing secret at once; the answer holds the new one (the only time it is
    shown). Every request from then on, retries included, is signed with the new secret."""
    endpoint, secret = service.rotate_secret(
        session,
        principal,
        endpoint_id,
        server_secret=request.app.state.secret_key,
        now=request_now(request),
    )
    return JSONResponse(endpoint_json(endpoint, secret))


@router.get(
    "/webhook_endpoints/{endpoint_id}/deliveries",
    response_model=TeamUpList[WebhookDeliveryOut],
)
def list_webhook_deliveries(
    endpoint_id: EndpointId,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    window: PageWindow,
) -> Response:
    """The endpoint's deliveries, newest first, each with its attempts (status code, duration,
    error, attempt number, times)."""
    endpoint, count, views = service.list_deliveries(session, principal, endpoint_id, window)
    results = [delivery_json(d, endpoint, event, attempts) for d, event, attempts in views]
    return list_response(request, window, count, results)


@router.post(
    "/webhook_endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    response_model=WebhookDeliveryOut,
    responses={409: {"description": "An attempt of this delivery is being sent right now"}},
)
def redeliver_webhook(
    endpoint_id: EndpointId,
    delivery_id: DeliveryId,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
) -> Response:
    """Send the delivery again as soon as a consumer picks it up (within about a second),
    with the retry schedule started afresh."""
    endpoint, (delivery, event, attempts) = service.redeliver(
        session, principal, endpoint_id, delivery_id, request_now(request)
    )
    return JSONResponse(delivery_json(delivery, endpoint, event, attempts))


@router.get("/webhook_endpoints/{endpoint_id}", response_model=WebhookEndpointOut)
def get_webhook_endpoint(
    endpoint_id: EndpointId, principal: PrincipalDep, session: SessionDep
) -> Response:
    """One webhook endpoint (without its secret)."""
    return JSONResponse(endpoint_json(service.get_endpoint(session, principal, endpoint_id)))


@router.patch("/webhook_endpoints/{endpoint_id}", response_model=WebhookEndpointOut)
def update_webhook_endpoint(
    endpoint_id: EndpointId,
    body: WebhookEndpointUpdate,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
) -> Response:
    """Change the URL, events, `enabled` or description; keys not given stay as they are.
    Deliveries to a disabled endpoint wait and are sent once it is enabled again."""
    endpoint = service.update_endpoint(
        session,
        principal,
        endpoint_id,
        body,
        allow_private=request.app.state.settings.webhook_allow_private,
        now=request_now(request),
    )
    return JSONResponse(endpoint_json(endpoint))


@router.delete("/webhook_endpoints/{endpoint_id}", response_model=WebhookEndpointOut)
def delete_webhook_endpoint(
    endpoint_id: EndpointId, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Delete the endpoint with its delivery log; answers the deleted endpoint."""
    endpoint = service.get_endpoint(session, principal, endpoint_id)
    shown = endpoint_json(endpoint)
    service.delete_endpoint(session, principal, endpoint_id)
    return JSONResponse(shown)
