"""Sequence-shaped line-item group bodies (strict, camelCase on the wire), the response models
that document them, and the group renderer.

Money is rendered as decimal strings with the invoice currency's digits ("51.20"), never as
numbers, following Sequence's published list page. An optional key with no value is left out
of the answer, never sent as null: Sequence's schema types `description`, `taxCategory` and
the page cursors as plain (non-nullable) strings and objects.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, Field, StrictInt, StrictStr, field_validator
from pydantic.json_schema import SkipJsonSchema

from ledgerline.errors import ConflictingParameters
from ledgerline.invoices.totals import Totals
from ledgerline.models import (
    Invoice,
    LineItemGroup,
    RevenueClassification,
    RevenueRecognitionMethod,
    TaxCategory,
)
from ledgerline.money import plain_decimal
from ledgerline.openapi import NO_NUL_PATTERN, NOT_BLANK_PATTERN, SchemaExtra, is_blank
from ledgerline.request_types import IsoDate, StrictBody, WholeNumber
from ledgerline.tax_categories.schemas import TaxCategoryResponse, tax_category_json

# `index` is an INTEGER column on every database.
MAX_INDEX = 2**31 - 1
MAX_TITLE = 200
MAX_DESCRIPTION = 10_000
GroupIndex = Annotated[StrictInt, Field(ge=0, le=MAX_INDEX), WholeNumber]


class ServicePeriod(StrictBody):
    """Sequence's `InclusiveDateRange`: both ends are ISO dates and both are included."""

    start: IsoDate
    end_inclusive: IsoDate = Field(alias="endInclusive")


class GroupBody(StrictBody):
    """`POST` and `PUT` bodies: Sequence's documented fields, plus `index` on POST too."""

    title: Annotated[StrictStr, SchemaExtra(pattern=NOT_BLANK_PATTERN)] = Field(
        min_length=1, max_length=MAX_TITLE
    )
    description: Annotated[StrictStr, SchemaExtra(pattern=NO_NUL_PATTERN)] | None = Field(
        default=None, max_length=MAX_DESCRIPTION
    )
    index: GroupIndex | None = None
    tax_category_id: Annotated[StrictStr, SchemaExtra(pattern=NO_NUL_PATTERN)] | None = Field(
        default=None,
        alias="taxCategoryId",
        max_length=100,
        description="The id of one of the account's tax categories (`POST /tax-categories`).",
    )
    revenue_recognition_method: RevenueRecognitionMethod | None = Field(
        default=None, alias="revenueRecognitionMethod"
    )
    revenue_classification: RevenueClassification | None = Field(
        default=None, alias="revenueClassification"
    )
    service_period: ServicePeriod | None = Field(default=None, alias="servicePeriod")

    @field_validator("title")
    @classmethod
    def _title_not_blank(cls, value: str) -> str:
        if is_blank(value):
            raise ValueError("title must not be blank")
        return value

    @field_validator("title", "description", "tax_category_id")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # PostgreSQL text cannot hold NUL; refuse it on every database alike.
        if value is not None and "\x00" in value:
            raise ValueError("must not contain the NUL character")
        return value


class GroupFields(Protocol):
    """What `group_json` reads of a group: a `LineItemGroup`, or a row of just these columns
    (the list reads rows, not ORM objects: a third of its CPU went to loading 100 objects)."""

    @property
    def id(self) -> int: ...
    @property
    def public_id(self) -> Any: ...
    @property
    def index(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def tax_category_id(self) -> int | None: ...


# The columns of `GroupFields`, in the order a list reads them.
GROUP_FIELDS = (
    LineItemGroup.id,
    LineItemGroup.public_id,
    LineItemGroup.index,
    LineItemGroup.title,
    LineItemGroup.description,
    LineItemGroup.tax_category_id,
)


@dataclass(frozen=True)
class GroupPage:
    """One page of an invoice's groups, with what `page_json` shows besides their columns."""

    groups: list[GroupFields]
    totals: dict[int, Totals]
    tax_categories: dict[int, TaxCategory]
    invoice: Invoice
    after: str | None
    before: str | None
    total: int


class LineItemGroupResponse(BaseModel):
    """One line-item group, as Sequence's `LineItemGroupResponseModel` publishes it."""

    id: str = Field(description="The group's id (a UUID).")
    invoice_id: str = Field(alias="invoiceId", description="The invoice's id, as a string.")
    title: str
    description: str | SkipJsonSchema[None] = Field(
        default=None, description="Absent when the group has none."
    )
    index: int = Field(description="The client's display position; not the list order.")
    net_total: str = Field(alias="netTotal", description="Decimal, in the invoice's currency.")
    total_tax: str = Field(alias="totalTax", description="Decimal, in the invoice's currency.")
    gross_total: str = Field(alias="grossTotal", description="Decimal, in the invoice's currency.")
    tax_category: TaxCategoryResponse | SkipJsonSchema[None] = Field(
        default=None, alias="taxCategory", description="Absent when the group has none."
    )


class PaginationMeta(BaseModel):
    """Cursors to the neighbouring pages, each absent when there is no page on that side."""

    after: str | SkipJsonSchema[None] = None
    before: str | SkipJsonSchema[None] = None
    total_result_size: int = Field(alias="totalResultSize", ge=0)


class LineItemGroupPage(BaseModel):
    items: list[LineItemGroupResponse]
    pagination: PaginationMeta


def group_json(
    group: GroupFields, invoice: Invoice, totals: Totals, tax_category: TaxCategory | None
) -> dict[str, Any]:
    """One group of `invoice` as Sequence shows it; `invoiceId` is the invoice's public id
    (the id the TeamUp-shaped invoice shows), as a string, as in the seed.

    The revenue fields and the service period are kept but not shown: Sequence's published
    response model does not carry them (docs/groups.md).
    """
    body: dict[str, Any] = {
        "id": str(group.public_id),
        "invoiceId": str(invoice.public_id),
        "index": group.index,
        "title": group.title,
    }
    if group.description is not None:
        body["description"] = group.description
    currency = invoice.currency
    body["netTotal"] = plain_decimal(totals.net, currency)
    body["totalTax"] = plain_decimal(totals.tax, currency)
    body["grossTotal"] = plain_decimal(totals.gross, currency)
    if tax_category is not None:
        body["taxCategory"] = tax_category_json(tax_category)
    return body


def pagination_json(after: str | None, before: str | None, total: int) -> dict[str, Any]:
    """Sequence's `pagination` object: a cursor key only when there is a page on its side."""
    body: dict[str, Any] = {}
    if after is not None:
        body["after"] = after
    if before is not None:
        body["before"] = before
    body["totalResultSize"] = total
    return body


def page_json(page: GroupPage) -> dict[str, Any]:
    """The list answer: `{"items", "pagination": {"after"?, "before"?, "totalResultSize"}}`."""
    return {
        "items": [
            group_json(
                group,
                page.invoice,
                page.totals.get(group.id, Totals()),
                page.tax_categories.get(group.tax_category_id or 0),
            )
            for group in page.groups
        ],
        "pagination": pagination_json(page.after, page.before, page.total),
    }


def service_period_dates(body: GroupBody) -> tuple[dt.date | None, dt.date | None]:
    """The period's two ends; a start after the end is a 422 (a rule between two values,
    which the schema cannot state, so it carries the conflicting-parameters type)."""
    period = body.service_period
    if period is None:
        return None, None
    if period.start > period.end_inclusive:
        raise ConflictingParameters.field(
            ["body", "servicePeriod"], "start must be on or before endInclusive"
        )
    return period.start, period.end_inclusive
