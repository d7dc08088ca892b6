"""Tax category bodies and answers: Sequence's `{id, name}` (`TaxCategoryResponse`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictStr, field_validator

from ledgerline.models import TaxCategory
from ledgerline.openapi import NOT_BLANK_PATTERN, SchemaExtra, is_blank
from ledgerline.request_types import StrictBody

MAX_NAME = 200


class TaxCategoryBody(StrictBody):
    """`POST /tax-categories`: a name, validated as a group title is."""

    name: Annotated[StrictStr, SchemaExtra(pattern=NOT_BLANK_PATTERN)] = Field(
        min_length=1, max_length=MAX_NAME, description='e.g. "VAT"'
    )

    @field_validator("name")
    @classmethod
    def _name_is_text(cls, value: str) -> str:
        if is_blank(value):
            raise ValueError("name must not be blank")
        # PostgreSQL text cannot hold NUL; refuse it on every database alike.
        if "\x00" in value:
            raise ValueError("must not contain the NUL character")
        return value


class TaxCategoryResponse(BaseModel):
    """A tax category: its id (a UUID) and its name."""

    id: str = Field(description="The tax category's id (a UUID).")
    name: str


class TaxCategoryList(BaseModel):
    """Every tax category of the account, oldest first (not paged: see docs/groups.md)."""

    items: list[TaxCategoryResponse]


def tax_category_json(category: TaxCategory) -> dict[str, Any]:
    return {"id": str(category.public_id), "name": category.name}
