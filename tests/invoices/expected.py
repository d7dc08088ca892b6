"""Independent arithmetic for tests: what a line and a total should be, by Python's decimal
module alone (not ledgerline.money), from the inputs a test sent."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

DIGITS = {"GBP": 2, "EUR": 2, "USD": 2, "JPY": 0, "KWD": 3}


def round_half_away(value: Decimal, digits: int) -> Decimal:
    """Half away from zero: ROUND_HALF_UP on the absolute value, the sign put back."""
    exponent = Decimal(1).scaleb(-digits)
    rounded = abs(value).quantize(exponent, rounding=ROUND_HALF_UP)
    return -rounded if value < 0 else rounded


def expected_line(item: dict[str, Any], currency: str) -> tuple[Decimal, Decimal]:
    """(amount, tax_amount) in major units for one line item body."""
    digits = DIGITS[currency]
    if "amount" in item:
        amount = Decimal(item["amount"])
    else:
        product = Decimal(item["quantity"]) * Decimal(item["unit_price"])
        amount = round_half_away(product, digits) - Decimal(item.get("discount_amount", "0"))
    tax = round_half_away(amount * Decimal(item.get("tax_rate", "0")), digits)
    return amount, tax


def expected_totals(items: list[dict[str, Any]], currency: str) -> tuple[Decimal, Decimal]:
    """(net, tax) of an invoice: sums of the rounded lines."""
    net = Decimal(0)
    tax = Decimal(0)
    for item in items:
        amount, tax_amount = expected_line(item, currency)
        net += amount
        tax += tax_amount
    return net, tax


def as_decimal(money: dict[str, Any]) -> Decimal:
    """A money object's `decimal`, read exactly (tests parse JSON floats as Decimal)."""
    return Decimal(str(money["decimal"]))


def exact_json(response: Any) -> Any:
    """The response body with every JSON number that has a fraction read as a `Decimal`."""
    return json.loads(response.text, parse_float=Decimal)
