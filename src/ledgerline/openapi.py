"""The OpenAPI document as a contract: shared response shapes, problem responses, security.

Endpoints return `ledgerline.http.JSONResponse` themselves (so money keeps its exact `Decimal`
literals); the `response_model` on a route only documents the shape. The models here are the
pieces several domains share: TeamUp's money object, its list envelope, and the problem body.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

Item = TypeVar("Item")

# A JSON number in the document (pydantic would otherwise describe a Decimal as a string).
ExactNumber = Annotated[Decimal, WithJsonSchema({"type": "number"})]


class MoneyObject(BaseModel):
    """TeamUp's money object; `decimal` is a JSON number whose literal is the exact value."""

    model_config = ConfigDict(title="Money")

    decimal: ExactNumber = Field(description="The exact amount in major units, e.g. 45.5")
    string: str = Field(description='The amount as a person reads it, e.g. "£45.50"')
    iso_currency_code: str = Field(description='Lower-case ISO 4217 code, e.g. "gbp"')
    currency_symbol: str
    currency_symbol_position: Literal["before", "after"]


class TeamUpList(BaseModel, Generic[Item]):
    """TeamUp's list envelope; `next` and `previous` are full URLs, null at either end."""

    count: int = Field(ge=0)
    next: str | None
    previous: str | None
    results: list[Item]


class ProblemError(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem detail, the body of every error (`application/problem+json`)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemError] | None = None
