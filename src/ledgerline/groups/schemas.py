"""Sequence-shaped line-item group bodies (strict, camelCase on the wire) and the group renderer.

Money is rendered as decimal strings with the invoice currency's digits ("51.20"), never as
numbers, following Sequence's published list page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, StrictInt, StrictStr, field_validator

from ledgerline.invoices.schemas import StrictBody
from ledgerline.invoices.service import Totals
from ledgerline.models import LineItemGroup
from ledgerline.money import plain_decimal

if TYPE_CHECKING:
    from ledgerline.groups.service import GroupPage

# `index` is an INTEGER column on every database.
MAX_INDEX = 2**31 - 1
MAX_TITLE = 200
MAX_DESCRIPTION = 10_000


class GroupBody(StrictBody):
    """`POST` and `PUT` bodies: a title, an optional description and an optional index."""

    title: StrictStr = Field(min_length=1, max_length=MAX_TITLE)
    description: StrictStr | None = Field(default=None, max_length=MAX_DESCRIPTION)
    index: StrictInt | None = Field(default=None, ge=0, le=MAX_INDEX)

    @field_validator("title")
    @classmethod
    def _title_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("title must not be blank")
        return value

    @field_validator("title", "description")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # PostgreSQL text cannot hold NUL; refuse it on every database alike.
        if value is not None and "\x00" in value:
            raise ValueError("must not contain the NUL character")
        return value


def group_json(group: LineItemGroup, currency: str, totals: Totals) -> dict[str, Any]:
    """One group as Sequence shows it; `invoiceId` is a string, as in the seed."""
    return {
        "id": str(group.public_id),
        "invoiceId": str(group.invoice_id),
        "index": group.index,
        "title": group.title,
        "description": group.description,
        "netTotal": plain_decimal(totals.net, currency),
        "totalTax": plain_decimal(totals.tax, currency),
        "grossTotal": plain_decimal(totals.gross, currency),
    }


def page_json(page: GroupPage) -> dict[str, Any]:
    """The list answer: `{"items": [...], "pagination": {"after", "before", "totalResultSize"}}`."""
    return {
        "items": [
            group_json(group, page.currency, page.totals.get(group.id, Totals()))
            for group in page.groups
        ],
        "pagination": {"after": page.after, "before": page.before, "totalResultSize": page.total},
    }
