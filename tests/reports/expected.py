"""Independent computations of what a report should answer, from the test's own inputs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.reports.conftest import Line

# ISO 4217 minor-unit digits of the currencies the tests use.
DIGITS = {"GBP": 2, "EUR": 2, "JPY": 0, "KWD": 3}
SYMBOLS = {"GBP": "£", "EUR": "€", "JPY": "¥"}


def major(minor: int, currency: str) -> Decimal:
    """Minor units as an exact Decimal in major units."""
    return Decimal(minor) / (Decimal(10) ** DIGITS[currency])


def plain(minor: int, currency: str) -> str:
    """The CSV form: the currency's digits, no grouping: 4550 GBP -> "45.50"."""
    digits = DIGITS[currency]
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**digits)
    return f"{sign}{whole}.{str(fraction).zfill(digits)}" if digits else f"{sign}{whole}"


def guarded(text: str | None) -> str:
    if text is None:
        return ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r", "\n") else text


def field(line: Line, key: str) -> Any:
    """The raw value of a canonical column key for a line, as the test created it."""
    if key == "id":
        return line.id
    if key.startswith("invoice."):
        name = key.removeprefix("invoice.")
        if name == "discount_code.name":
            return line.invoice["discount_code_name"]
        if name == "discount_code.code":
            return line.invoice["discount_code_code"]
        return line.invoice[name]
    if key == "customer.id":
        return line.customer["id"] if line.customer else None
    if key in ("customer.name", "customer.email"):
        return line.customer[key.split(".")[1]] if line.customer else None
    if key == "customer.venue.id":
        return line.venue["id"] if line.venue else None
    if key == "customer.venue.name":
        return line.venue["name"] if line.venue else None
    return getattr(line, key)
