"""Request bodies (strict: unknown keys and wrong types are 422) and response renderers.

Responses are plain dicts rendered by `ledgerline.http.JSONResponse`, so money objects keep
their exact `Decimal` literals.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)

from ledgerline.models import (
    Customer,
    Invoice,
    InvoiceStatus,
    LineItem,
    LineItemGroup,
    LineItemType,
    Venue,
)
from ledgerline.money import (
    SCALE_DIGITS,
    currency_digits,
    currency_symbol,
    micros_string,
    money_object,
)

if TYPE_CHECKING:
    from ledgerline.invoices.service import Totals


MAX_ID = 2**63 - 1

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> Any:
    """JSON has no date type: a date is the string "YYYY-MM-DD"."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise ValueError('must be a date string such as "2024-07-29"')
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a calendar date") from None


def _aware_datetime(value: Any) -> Any:
    """An ISO 8601 date-time with an offset ("Z" or "+01:00"); a naive one is refused."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except (ValueError, OverflowError):
            raise ValueError(
                'must be an ISO 8601 date-time such as "2024-07-29T15:51:28Z"'
            ) from None
    else:
        raise ValueError('must be an ISO 8601 date-time string such as "2024-07-29T15:51:28Z"')
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError('must include a UTC offset, such as "Z" or "+01:00"')
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL; refuse it as a validation error, not a 500."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[StrictStr, AfterValidator(_no_nul)]
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
AwareDateTime = Annotated[dt.datetime, BeforeValidator(_aware_datetime)]


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class VenueCreate(StrictBody):
    name: Text = Field(min_length=1, max_length=200)


class CustomerCreate(StrictBody):
    name: Text = Field(min_length=1, max_length=200)
    email: Text | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    venue: StrictInt | None = Field(default=None, ge=1)


class DiscountCode(StrictBody):
    name: Text | None = Field(default=None, max_length=200)
    code: Text = Field(min_length=1, max_length=100)


class InvoiceFields(StrictBody):
    """What a client may set on an invoice; PATCH applies only the keys it was sent."""

    number: Text | None = Field(default=None, min_length=1, max_length=64)
    status: InvoiceStatus = "draft"
    currency: Text | None = Field(default=None, min_length=3, max_length=3)
    customer: StrictInt | None = Field(default=None, ge=1, le=MAX_ID)
    due_date: IsoDate | None = None
    is_credit_note: StrictBool = False
    discount_code: DiscountCode | None = None
    confirmed_at: AwareDateTime | None = None
    paid_at: AwareDateTime | None = None


class InvoiceCreate(InvoiceFields):
    pass


class InvoiceUpdate(InvoiceFields):
    pass


class BilledItem(StrictBody):
    object: Text = Field(min_length=1, max_length=60)
    id: StrictInt = Field(ge=0, le=MAX_ID)


class LineItemFields(StrictBody):
    """A line item as a client sends it; money and quantities are decimal strings."""

    type: LineItemType
    group_id: Text | None = None
    billed_item: BilledItem | None = None
    description: Text = Field(default="", max_length=10_000)
    quantity: Text | None = None
    unit_price: Text | None = None
    amount: Text | None = None
    tax_rate: Text = "0"
    discount_amount: Text = "0"
    credit_amount: Text = "0"
    refund_amount: Text = "0"


class LineItemCreate(LineItemFields):
    pass


class LineItemBatch(StrictBody):
    items: list[LineItemCreate] = Field(min_length=1, max_length=1000)


class LineItemUpdate(StrictBody):
    """PATCH: every key optional; `null` is refused where a line needs a value."""

    type: LineItemType | None = None
    group_id: Text | None = None
    billed_item: BilledItem | None = None
    description: Text | None = Field(default=None, max_length=10_000)
    quantity: Text | None = None
    unit_price: Text | None = None
    amount: Text | None = None
    tax_rate: Text | None = None
    discount_amount: Text | None = None
    credit_amount: Text | None = None
    refund_amount: Text | None = None


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


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def invoice_json(invoice: Invoice, totals: Totals) -> dict[str, Any]:
    currency = invoice.currency
    discount = (
        {"name": invoice.discount_code_name, "code": invoice.discount_code_code}
        if invoice.discount_code_code is not None
        else None
    )
    return {
        "id": invoice.id,
        "object": "invoice",
        "number": invoice.number,
        "status": invoice.status,
        "currency": currency,
        "customer": invoice.customer_id,
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "created_at": invoice.created_at.isoformat(),
        "updated_at": invoice.updated_at.isoformat(),
        "confirmed_at": _iso(invoice.confirmed_at),
        "paid_at": _iso(invoice.paid_at),
        "is_credit_note": invoice.is_credit_note,
        "discount_code": discount,
        "net_total": money_object(totals.net, currency),
        "total_tax": money_object(totals.tax, currency),
        "gross_total": money_object(totals.gross, currency),
    }


def unit_price_object(micros: int, currency: str) -> dict[str, Any]:
    """A money object for a unit price, kept to six places ("£0.0035"), never rounded."""
    value = Decimal(micros).scaleb(-SCALE_DIGITS)
    places = max(currency_digits(currency), len(micros_string(abs(micros)).partition(".")[2]))
    number = value.normalize()
    if number.as_tuple().exponent > 0:  # type: ignore[operator]
        number = number.quantize(Decimal(1))
    sign = "-" if micros < 0 else ""
    return {
        "decimal": number,
        "string": f"{sign}{currency_symbol(currency)}{abs(value):,.{places}f}",
        "iso_currency_code": currency.lower(),
        "currency_symbol": currency_symbol(currency),
        "currency_symbol_position": "before",
    }


def line_item_json(line: LineItem, group_public_id: str | None) -> dict[str, Any]:
    currency = line.currency
    billed = (
        {"object": line.billed_item_object, "id": line.billed_item_id}
        if line.billed_item_object is not None
        else None
    )
    return {
        "id": line.id,
        "object": "invoice_line_item",
        "invoice": line.invoice_id,
        "group_id": group_public_id,
        "type": line.type,
        "billed_item": billed,
        "description": line.description,
        "quantity": (
            micros_string(line.quantity_micros) if line.quantity_micros is not None else None
        ),
        "unit_price": (
            unit_price_object(line.unit_price_micros, currency)
            if line.unit_price_micros is not None
            else None
        ),
        "amount": money_object(line.amount, currency),
        "tax_rate": micros_string(line.tax_rate_micros, min_places=2),
        "tax_amount": money_object(line.tax_amount, currency),
        "discount_amount": money_object(line.discount_amount, currency),
        "credit_amount": money_object(line.credit_amount, currency),
        "refund_amount": money_object(line.refund_amount, currency),
    }


def group_public(group: LineItemGroup | None) -> str | None:
    return str(group.public_id) if group is not None else None
