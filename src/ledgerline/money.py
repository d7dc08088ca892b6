"""Money: integer minor units, one rounding rule, and the two wire shapes.

`Decimal` appears only at the edges: parsing a client's decimal string and rendering a
TeamUp money object or a Sequence decimal string. Everything in between is `int`.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from functools import cache
from typing import Any

from babel.core import get_global
from babel.numbers import (
    get_currency_precision,
    get_currency_symbol,
    get_territory_currencies,
    list_currencies,
)

# Quantities, unit prices and tax rates are kept exactly, to six decimal places.
MICROS = 1_000_000
SCALE_DIGITS = 6

# ASCII digits only: `\d` would also match "４５" or "٤٥", which Decimal() reads as 45.
_DECIMAL_RE = re.compile(r"^[+-]?([0-9]{1,15})(?:\.([0-9]+))?$", re.ASCII)

_CODE_RE = re.compile(r"^[A-Za-z]{3}$", re.ASCII)


class MoneyError(ValueError):
    """A decimal string that is not acceptable; the message says why, for the client."""


class TooManyPlaces(MoneyError):
    """More decimal places than allowed: for an amount, a rule of the invoice's currency."""


@cache
def known_currencies() -> frozenset[str]:
    """Every ISO 4217 code babel knows, withdrawn ones included (to render stored data)."""
    return frozenset(code.upper() for code in list_currencies())


@cache
def legal_tender_currencies() -> frozenset[str]:
    """The codes that are legal tender somewhere today (CLDR's territory data, tender only).

    That leaves out the X-codes that are not money (`XXX` no currency, `XTS` testing, `XAU`
    `XAG` `XPT` `XPD` metals, `XDR` `XSU` `XUA` `XBA`–`XBD` units of account), the fund codes
    (`BOV`, `CLF`, `USN`, …) and withdrawn currencies (`DEM`, `HRK`, …), while keeping the
    X-codes that are currencies (`XAF`, `XOF`, `XPF`, `XCD`, `XCG`).
    """
    today = dt.datetime.now(dt.UTC).date()
    codes: set[str] = set()
    for territory in get_global("territory_currencies"):
        codes.update(get_territory_currencies(territory, today, tender=True))
    return frozenset(code.upper() for code in codes)


def normalise_currency(code: str) -> str:
    """An input currency code, upper-cased; 422-worthy unless it is legal tender today."""
    if not _CODE_RE.match(code.strip()):
        # ASCII letters only: "uſd".upper() would otherwise be "USD".
        raise MoneyError(f"'{code}' is not an ISO 4217 currency code (three letters A-Z)")
    upper = code.strip().upper()
    if upper in legal_tender_currencies():
        return upper
    if upper in known_currencies():
        raise MoneyError(
            f"'{code}' is not a currency of legal tender (ISO 4217 lists it, but it is "
            "a fund, metal, testing or accounting code, or it was withdrawn)"
        )
    raise MoneyError(f"'{code}' is not an ISO 4217 currency code")


@cache
def currency_digits(currency: str) -> int:
    """Minor-unit digits per ISO 4217: GBP 2, JPY 0, KWD 3."""
    return int(get_currency_precision(currency.upper()))


@cache
def currency_symbol(currency: str) -> str:
    return str(get_currency_symbol(currency.upper(), locale="en"))


def round_half_away(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half away from zero, in integers only."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return -quotient if numerator < 0 else quotient


def parse_decimal(text: str, *, max_places: int, field: str) -> Decimal:
    """A client's decimal string, refusing floats' habits (exponents) and excess places.

    Trailing zeros beyond `max_places` are accepted ("45.000" is exactly 45.00).
    """
    if not isinstance(text, str):
        raise MoneyError(f'{field} must be a decimal string such as "45.00", not a number')
    match = _DECIMAL_RE.fullmatch(text)
    if match is None:
        raise MoneyError(f'{field} must be a decimal string such as "45.00"')
    fraction = (match.group(2) or "").rstrip("0")
    if len(fraction) > max_places:
        raise TooManyPlaces(f"{field} has more than {max_places} decimal places")
    return Decimal(text)


def decimal_to_scaled(value: Decimal, digits: int) -> int:
    """An exactly representable decimal as an integer of 10^-digits units."""
    scaled = value.scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{value} is not a whole number of 10^-{digits} units")
    return int(scaled)


def parse_amount(text: str, currency: str, *, field: str) -> int:
    """A major-unit amount string ("45.50") to minor units (4550) for `currency`."""
    digits = currency_digits(currency)
    return decimal_to_scaled(parse_decimal(text, max_places=digits, field=field), digits)


def parse_micros(text: str, *, field: str) -> int:
    """A quantity, unit price or tax rate string to millionths, kept exactly."""
    return decimal_to_scaled(
        parse_decimal(text, max_places=SCALE_DIGITS, field=field), SCALE_DIGITS
    )


def line_amount(quantity_micros: int, unit_price_micros: int, currency: str) -> int:
    """round(quantity × unit_price) in minor units, half away from zero, once."""
    digits = currency_digits(currency)
    return round_half_away(quantity_micros * unit_price_micros * 10**digits, MICROS * MICROS)


def line_tax(amount_minor: int, tax_rate_micros: int) -> int:
    """round(amount × tax_rate) in minor units, half away from zero, once."""
    return round_half_away(amount_minor * tax_rate_micros, MICROS)


def scaled_to_decimal(value: int, digits: int) -> Decimal:
    return Decimal(value).scaleb(-digits)


def exact_number(value: int, digits: int) -> Decimal:
    """The shortest decimal literal for value × 10^-digits: 4550, 2 → 45.5; 100, 0 → 100."""
    number = scaled_to_decimal(value, digits).normalize()
    if number.as_tuple().exponent > 0:  # type: ignore[operator]
        number = number.quantize(Decimal(1))
    return number


def plain_decimal(value: int, currency: str) -> str:
    """Minor units as a plain decimal string with the currency's digits: "101.23", "-3.50"."""
    digits = currency_digits(currency)
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d}" if digits else f"{sign}{whole}"


def display_string(value: int, currency: str) -> str:
    """ "£1,045.50", "-£3.50", "¥1,200"."""
    digits = currency_digits(currency)
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), 10**digits)
    number = f"{whole:,}.{fraction:0{digits}d}" if digits else f"{whole:,}"
    return f"{sign}{currency_symbol(currency)}{number}"


def money_object(value: int, currency: str) -> dict[str, Any]:
    """TeamUp's money object; `decimal` is a `Decimal`, rendered as an exact JSON number."""
    return {
        "decimal": exact_number(value, currency_digits(currency)),
        "string": display_string(value, currency),
        "iso_currency_code": currency.lower(),
        "currency_symbol": currency_symbol(currency),
        "currency_symbol_position": "before",
    }


def micros_string(value: int, min_places: int = 0) -> str:
    """Millionths as a decimal string without needless zeros, keeping `min_places`."""
    text = f"{scaled_to_decimal(value, SCALE_DIGITS):f}"
    if "." in text:
        whole, fraction = text.split(".")
        fraction = fraction.rstrip("0").ljust(min_places, "0")
        return f"{whole}.{fraction}" if fraction else whole
    return f"{text}.{'0' * min_places}" if min_places else text
