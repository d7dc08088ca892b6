"""Request bodies (strict: unknown keys and wrong types are 422) and response renderers.

Responses are plain dicts rendered by `ledgerline.http.JSONResponse`, so money objects keep
their exact `Decimal` literals.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)
from pydantic.json_schema import SkipJsonSchema

from ledgerline.invoices.totals import Totals
from ledgerline.models import (
    BilledItemObject,
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
    legal_tender_currencies,
    micros_string,
    money_object,
)
from ledgerline.openapi import END, WHITESPACE, MoneyObject, SchemaExtra
from ledgerline.request_types import (
    MAX_ID,
    AwareDateTime,
    Id,
    IsoDate,
    StrictBody,
    Text,
    WholeNumber,
)

# The invoice bodies' decimal-string types. Decimal strings are checked by `money` (whose errors
# name the rule); the patterns state the same rules in the document (see openapi.END).
# An amount: |amount| < 10^10 (its places are the currency's rule, checked with the invoice).
MONEY_PATTERN = r"^[+-]?[0-9]{1,10}(\.[0-9]+)?" + END
# A quantity or unit price: six places at most (more zeros are fine).
SCALED_PATTERN = r"^[+-]?[0-9]{1,10}(\.[0-9]{1,6}0*)?" + END
# A tax rate: a fraction from 0 to 10.
RATE_PATTERN = r"^\+?(10(\.0+)?|[0-9](\.[0-9]{1,6}0*)?)" + END
# An address: something, @, something with a dot; no spaces and no control characters.
_ADDRESS = r"[^@\x00-\x20\x7f-\x9f" + WHITESPACE + "]+"
EMAIL_PATTERN = "^" + _ADDRESS + "@" + _ADDRESS + r"\." + _ADDRESS + END

MoneyText = Annotated[StrictStr, SchemaExtra(pattern=MONEY_PATTERN, examples=["45.00"])]
ScaledText = Annotated[StrictStr, SchemaExtra(pattern=SCALED_PATTERN, examples=["0.0035"])]
RateText = Annotated[StrictStr, SchemaExtra(pattern=RATE_PATTERN, examples=["0.20"])]
_CURRENCIES = sorted(legal_tender_currencies())
# Upper or lower case ("gbp", as TeamUp's money objects write it); each gets its own name
# in a generated client's enum (GBP, LOWER_GBP).
CurrencyCode = Annotated[
    StrictStr,
    SchemaExtra(
        enum=[*_CURRENCIES, *(code.lower() for code in _CURRENCIES)],
        **{"x-enum-varnames": [*_CURRENCIES, *(f"LOWER_{code}" for code in _CURRENCIES)]},
    ),
]


class VenueCreate(StrictBody):
    name: Text = Field(min_length=1, max_length=200)


class CustomerCreate(StrictBody):
    name: Text = Field(min_length=1, max_length=200)
    # Not `Text`: its no-NUL pattern would stand in the document instead of this one.
    email: StrictStr | None = Field(default=None, max_length=320, pattern=EMAIL_PATTERN)
    venue: Id | None = None


class DiscountCode(StrictBody):
    name: Text | None = Field(default=None, max_length=200)
    code: Text = Field(min_length=1, max_length=100)


class InvoiceFields(StrictBody):
    """What a client may set on an invoice; PATCH applies only the keys it was sent."""

    number: Text | None = Field(default=None, min_length=1, max_length=64)
    status: InvoiceStatus = "draft"
    currency: CurrencyCode | None = None
    customer: Id | None = None
    due_date: IsoDate | None = None
    is_credit_note: StrictBool = False
    discount_code: DiscountCode | None = None
    confirmed_at: AwareDateTime | None = None
    paid_at: AwareDateTime | None = None


class InvoiceCreate(InvoiceFields):
    pass


class InvoiceUpdate(InvoiceFields):
    """PATCH: a null `number` or `currency` is refused (they always have a value)."""

    number: Annotated[Text, Field(min_length=1, max_length=64)] | SkipJsonSchema[None] = None
    currency: CurrencyCode | SkipJsonSchema[None] = None


class BilledItem(StrictBody):
    object: BilledItemObject
    id: Annotated[StrictInt, Field(ge=0, le=MAX_ID), WholeNumber]


class LineItemFields(StrictBody):
    """A line item as a client sends it; money and quantities are decimal strings."""

    type: LineItemType
    group_id: Text | None = None
    billed_item: BilledItem | None = None
    description: Text = Field(default="", max_length=10_000)
    quantity: ScaledText | None = None
    unit_price: ScaledText | None = None
    amount: MoneyText | None = None
    tax_rate: RateText = "0"
    discount_amount: MoneyText = "0"
    credit_amount: MoneyText = "0"
    refund_amount: MoneyText = "0"


class LineItemCreate(LineItemFields):
    pass


class LineItemBatch(StrictBody):
    items: list[LineItemCreate] = Field(min_length=1, max_length=1000)


class LineItemUpdate(StrictBody):
    """PATCH: every key optional; `null` is refused where a line needs a value."""

    type: LineItemType | SkipJsonSchema[None] = None
    group_id: Text | None = None
    billed_item: BilledItem | None = None
    description: Annotated[Text, Field(max_length=10_000)] | SkipJsonSchema[None] = None
    quantity: ScaledText | SkipJsonSchema[None] = None
    unit_price: ScaledText | SkipJsonSchema[None] = None
    amount: MoneyText | SkipJsonSchema[None] = None
    tax_rate: RateText | SkipJsonSchema[None] = None
    discount_amount: MoneyText | SkipJsonSchema[None] = None
    credit_amount: MoneyText | SkipJsonSchema[None] = None
    refund_amount: MoneyText | SkipJsonSchema[None] = None


# Every id rendered here is a per-account public id (`ledgerline.public_ids`), never an
# internal key: the callers hand over the public ids of the records a row refers to.


def venue_json(venue: Venue) -> dict[str, Any]:
    return {
        "id": venue.public_id,
        "object": "venue",
        "name": venue.name,
        "created_at": venue.created_at.isoformat(),
    }


def customer_json(customer: Customer, venue: Venue | None) -> dict[str, Any]:
    return {
        "id": customer.public_id,
        "object": "customer",
        "name": customer.name,
        "email": customer.email,
        "venue": {"id": venue.public_id, "name": venue.name} if venue else None,
        "created_at": customer.created_at.isoformat(),
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def invoice_json(
    invoice: Invoice,
    totals: Totals,
    customer_public_id: int | None,
    line_items: list[tuple[LineItem, str | None]] | None = None,
) -> dict[str, Any]:
    """An invoice; with `line_items` (expanded) they are embedded, rendered as on their own.
    `customer_public_id` is the public id of `invoice.customer_id`'s customer."""
    currency = invoice.currency
    discount = (
        {"name": invoice.discount_code_name, "code": invoice.discount_code_code}
        if invoice.discount_code_code is not None
        else None
    )
    rendered: dict[str, Any] = {
        "id": invoice.public_id,
        "object": "invoice",
        "number": invoice.number,
        "status": invoice.status,
        "currency": currency,
        "customer": customer_public_id,
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
        "total_amount_due": money_object(totals.amount_due, currency),
    }
    if line_items is not None:
        rendered["line_items"] = [
            line_item_json(line, group, invoice.public_id) for line, group in line_items
        ]
    return rendered


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


def line_item_json(
    line: LineItem, group_public_id: str | None, invoice_public_id: int
) -> dict[str, Any]:
    """A line item; `invoice_public_id` is the public id of its invoice (`line.invoice_id`)."""
    currency = line.currency
    billed = (
        {"object": line.billed_item_object, "id": line.billed_item_id}
        if line.billed_item_object is not None
        else None
    )
    return {
        "id": line.public_id,
        "object": "invoice_line_item",
        "invoice": invoice_public_id,
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
        # TeamUp's two money fields of a line (docs/invoices.md "TeamUp's money fields").
        "price": money_object(line_price(line), currency),
        "total_amount_due": money_object(line_amount_due(line), currency),
    }


def line_price(line: LineItem) -> int:
    """TeamUp's `price`: the line before its discount and tax (`amount` is after discount)."""
    return line.amount + line.discount_amount


def line_amount_due(line: LineItem) -> int:
    """TeamUp's `total_amount_due`: gross (amount + tax) less the credit and refund applied."""
    return line.amount + line.tax_amount - line.credit_amount - line.refund_amount


def group_public(group: LineItemGroup | None) -> str | None:
    return str(group.public_id) if group is not None else None


# ---------------------------------------------------------------------------------------------
# Response models: documentation of exactly what the renderers above answer (`response_model=`
# on the routes; the endpoints still return `JSONResponse` themselves).


class VenueOut(BaseModel):
    model_config = ConfigDict(title="Venue")

    id: int
    object: Literal["venue"]
    name: str
    created_at: dt.datetime


class CustomerVenue(BaseModel):
    id: int
    name: str


class CustomerOut(BaseModel):
    model_config = ConfigDict(title="Customer")

    id: int
    object: Literal["customer"]
    name: str
    email: str | None
    venue: CustomerVenue | None
    created_at: dt.datetime


class DiscountCodeOut(BaseModel):
    name: str | None
    code: str


class BilledItemOut(BaseModel):
    object: str = Field(description="One of TeamUp's documented billed item objects")
    id: int


class LineItemOut(BaseModel):
    """A line item. Money as TeamUp money objects in the invoice's currency; `quantity` and
    `tax_rate` as decimal strings; `unit_price` kept to six places."""

    model_config = ConfigDict(title="LineItem")

    id: int
    object: Literal["invoice_line_item"]
    invoice: int
    group_id: str | None = Field(description="The line-item group's UUID, or null")
    type: LineItemType
    billed_item: BilledItemOut | None
    description: str
    quantity: str | None
    unit_price: MoneyObject | None
    amount: MoneyObject = Field(description="round(quantity × unit_price) − discount, or as given")
    tax_rate: str
    tax_amount: MoneyObject
    discount_amount: MoneyObject
    credit_amount: MoneyObject
    refund_amount: MoneyObject
    price: MoneyObject = Field(description="TeamUp's price: amount + discount_amount (before tax)")
    total_amount_due: MoneyObject = Field(
        description="TeamUp's amount due: amount + tax_amount − credit_amount − refund_amount"
    )


class LineItemBatchOut(BaseModel):
    items: list[LineItemOut]


class InvoiceOut(BaseModel):
    """An invoice with its totals, exact sums of its rounded lines. `line_items` is present
    only when asked for (`expand=line_items`, or named in `fields`)."""

    model_config = ConfigDict(title="Invoice")

    id: int
    object: Literal["invoice"]
    number: str
    status: InvoiceStatus
    currency: str
    customer: int | None
    due_date: dt.date | None
    created_at: dt.datetime
    updated_at: dt.datetime
    confirmed_at: dt.datetime | None
    paid_at: dt.datetime | None
    is_credit_note: bool
    discount_code: DiscountCodeOut | None
    net_total: MoneyObject
    total_tax: MoneyObject
    gross_total: MoneyObject
    total_amount_due: MoneyObject = Field(
        description="gross_total less the credits and refunds applied to its lines"
    )
    line_items: list[LineItemOut] | SkipJsonSchema[None] = Field(
        default=None, description="Only with expand=line_items (or when named in fields)"
    )
