"""Line arithmetic: one line item's decimal inputs parsed, bounded and rounded (SPEC §4).

Pure Python over `ledgerline.money`, with no database: the service feeds it a body's strings
(or a stored line's values written back as strings, for a PATCH) and stores what comes out.
Kept apart from `totals.py`, which sums stored lines in SQL and is shared by the invoice and
group schemas; this module is only the invoice service's, and reads no rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ledgerline.errors import ConflictingParameters, UnknownReference, ValidationFailed
from ledgerline.models import LineItem
from ledgerline.money import (
    MICROS,
    MoneyError,
    TooManyPlaces,
    currency_digits,
    line_amount,
    line_tax,
    parse_amount,
    parse_micros,
)

# Bounds that keep every value and every sum inside a 64-bit integer (SQLite's SUM raises on
# overflow): |money| < 10^10 major units, |quantity|, |unit price| < 10^10, 0 <= tax rate <= 10.
MAX_MAJOR_DIGITS = 10
MAX_TAX_RATE_MICROS = 10 * MICROS

MONEY_FIELDS = ("discount_amount", "credit_amount", "refund_amount")


# What a line item error is about: a value alone (the schema rules it out), two values that
# cannot go together, or an id that names nothing in the account (docs/decisions.md).
ProblemKind = Literal["value", "conflict", "reference"]
_PROBLEM_TYPES: dict[ProblemKind, type[ValidationFailed]] = {
    "value": ValidationFailed,
    "conflict": ConflictingParameters,
    "reference": UnknownReference,
}


class LineItemProblems:
    """Collects every field error of a request, so a batch reports all of them at once."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []
        self.kinds: set[ProblemKind] = set()

    def add(self, loc: list[str | int], msg: str, kind: ProblemKind = "value") -> None:
        self.errors.append({"loc": loc, "msg": msg})
        self.kinds.add(kind)

    def raise_if_any(self) -> None:
        if self.errors:
            shown = self.errors[:100]
            summary = "; ".join(
                ".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in shown[:5]
            )
            # A value error among them is the one to fix first; then a conflict.
            kind = next(k for k in ("value", "conflict", "reference") if k in self.kinds)
            raise _PROBLEM_TYPES[kind](summary, errors=shown)


def _money(
    text: str, currency: str, loc: list[str | int], problems: LineItemProblems
) -> int | None:
    try:
        value = parse_amount(text, currency, field=str(loc[-1]))
    except TooManyPlaces as exc:  # the invoice's currency allows fewer
        problems.add(loc, str(exc), "conflict")
        return None
    except MoneyError as exc:
        problems.add(loc, str(exc))
        return None
    if abs(value) >= 10 ** (MAX_MAJOR_DIGITS + currency_digits(currency)):
        problems.add(loc, f"must be less than 10^{MAX_MAJOR_DIGITS} in absolute value")
        return None
    return value


def _micros(text: str, loc: list[str | int], problems: LineItemProblems) -> int | None:
    try:
        value = parse_micros(text, field=str(loc[-1]))
    except MoneyError as exc:
        problems.add(loc, str(exc))
        return None
    if abs(value) >= 10**MAX_MAJOR_DIGITS * MICROS:
        problems.add(loc, f"must be less than 10^{MAX_MAJOR_DIGITS} in absolute value")
        return None
    return value


@dataclass
class LineValues:
    """One line's inputs, parsed; `amount` is the rounded, discounted line amount."""

    quantity_micros: int | None
    unit_price_micros: int | None
    amount: int
    tax_rate_micros: int
    tax_amount: int
    discount_amount: int
    credit_amount: int
    refund_amount: int

    def apply_to(self, line: LineItem) -> None:
        line.quantity_micros = self.quantity_micros
        line.unit_price_micros = self.unit_price_micros
        line.amount = self.amount
        line.tax_rate_micros = self.tax_rate_micros
        line.tax_amount = self.tax_amount
        line.discount_amount = self.discount_amount
        line.credit_amount = self.credit_amount
        line.refund_amount = self.refund_amount


def compute_line(
    currency: str,
    *,
    quantity: str | None,
    unit_price: str | None,
    amount: str | None,
    tax_rate: str,
    discount_amount: str,
    credit_amount: str,
    refund_amount: str,
    loc: list[str | int],
    problems: LineItemProblems,
) -> LineValues | None:
    """SPEC §4: amount = round(quantity × unit_price) − discount, or the amount as given;
    tax = round(amount × tax_rate); rounding half away from zero, once each."""
    priced = quantity is not None or unit_price is not None
    if priced and amount is not None:
        problems.add(
            [*loc, "amount"], "give either quantity and unit_price, or amount, not both", "conflict"
        )
        return None
    if not priced and amount is None:
        problems.add([*loc, "amount"], "give either quantity and unit_price, or amount", "conflict")
        return None
    if priced and quantity is None:
        problems.add([*loc, "quantity"], "is required with unit_price", "conflict")
    if priced and unit_price is None:
        problems.add([*loc, "unit_price"], "is required with quantity", "conflict")
    before = len(problems.errors)
    rate = _micros(tax_rate, [*loc, "tax_rate"], problems)
    if rate is not None and not 0 <= rate <= MAX_TAX_RATE_MICROS:
        problems.add([*loc, "tax_rate"], 'must be a fraction between 0 and 10, such as "0.20"')
    extras = {
        name: _money(text, currency, [*loc, name], problems)
        for name, text in (
            ("discount_amount", discount_amount),
            ("credit_amount", credit_amount),
            ("refund_amount", refund_amount),
        )
    }
    quantity_micros = (
        _micros(quantity, [*loc, "quantity"], problems) if quantity is not None else None
    )
    price_micros = (
        _micros(unit_price, [*loc, "unit_price"], problems) if unit_price is not None else None
    )
    given = _money(amount, currency, [*loc, "amount"], problems) if amount is not None else None
    if len(problems.errors) > before or (priced and (quantity is None or unit_price is None)):
        return None
    assert rate is not None
    discount = extras["discount_amount"] or 0
    if given is not None:
        line = given
    else:
        assert quantity_micros is not None
        assert price_micros is not None
        line = line_amount(quantity_micros, price_micros, currency) - discount
        if abs(line) >= 10 ** (MAX_MAJOR_DIGITS + currency_digits(currency)):
            problems.add(
                [*loc, "amount"],
                f"quantity × unit_price must be less than 10^{MAX_MAJOR_DIGITS} in absolute value",
                "conflict",
            )
            return None
    return LineValues(
        quantity_micros=quantity_micros,
        unit_price_micros=price_micros,
        amount=line,
        tax_rate_micros=rate,
        tax_amount=line_tax(line, rate),
        discount_amount=discount,
        credit_amount=extras["credit_amount"] or 0,
        refund_amount=extras["refund_amount"] or 0,
    )
