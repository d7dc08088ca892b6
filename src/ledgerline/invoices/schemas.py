"""Request bodies (strict: unknown keys and wrong types are 422) and response renderers.

Responses are plain dicts rendered by `ledgerline.http.JSONResponse`, so money objects keep
their exact `Decimal` literals.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from ledgerline.models import Customer, Venue


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class VenueCreate(StrictBody):
    name: StrictStr = Field(min_length=1, max_length=200)


class CustomerCreate(StrictBody):
    name: StrictStr = Field(min_length=1, max_length=200)
    email: StrictStr | None = Field(
        default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    )
    venue: StrictInt | None = Field(default=None, ge=1)


def venue_json(venue: Venue) -> dict[str, Any]:
    return {
        "id": venue.id,
        "object": "venue",
        "name": venue.name,
        "created_at": venue.created_at.isoformat(),
    }


def customer_json(customer: Customer, venue: Venue | None) -> dict[str, Any]:
    return {
        "id": customer.id,
        "object": "customer",
        "name": customer.name,
        "email": customer.email,
        "venue": {"id": venue.id, "name": venue.name} if venue else None,
        "created_at": customer.created_at.isoformat(),
    }
