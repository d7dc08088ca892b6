"""Properties that must hold for all inputs: line arithmetic, totals, and money round trips."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgerline.http import JSONResponse
from ledgerline.money import (
    line_amount,
    line_tax,
    money_object,
    parse_amount,
    parse_micros,
    plain_decimal,
)
from tests.conftest import Api
from tests.factories import create_invoice
from tests.invoices.expected import DIGITS, as_decimal, exact_json, expected_line, round_half_away

CURRENCIES = ("GBP", "JPY", "KWD")


def decimal_text(max_abs: int, places: int, *, signed: bool = True) -> st.SearchStrategy[str]:
    """Decimal strings with up to `places` places and |value| <= max_abs."""
    low = -max_abs * 10**places if signed else 0
    return st.builds(
        lambda scaled, shown: _render(scaled, places, shown),
        st.integers(low, max_abs * 10**places),
        st.integers(0, places),
    )


def _render(scaled: int, places: int, shown: int) -> str:
    value = Decimal(scaled).scaleb(-places)
    text = f"{value:f}"
    # sometimes with fewer places written (when exact) or trailing zeros
    if shown < places and value == value.quantize(Decimal(1).scaleb(-shown)):
        text = f"{value.quantize(Decimal(1).scaleb(-shown)):f}"
    return text


@st.composite
def line_items(draw: Any, currency: str) -> dict[str, Any]:
    digits = DIGITS[currency]
    item: dict[str, Any] = {
        "type": draw(st.sampled_from(["flat_fee", "service_fee", "course", "gift_card"])),
        "tax_rate": draw(decimal_text(1, 6, signed=False)),
    }
    if draw(st.booleans()):
        item["quantity"] = draw(decimal_text(10_000, 6))
        item["unit_price"] = draw(decimal_text(10_000, 6))
        if draw(st.booleans()):
            item["discount_amount"] = draw(decimal_text(1_000, digits))
    else:
        item["amount"] = draw(decimal_text(1_000_000, digits))
    return item


@st.composite
def invoices(draw: Any) -> tuple[str, list[dict[str, Any]]]:
    currency = draw(st.sampled_from(CURRENCIES))
    return currency, draw(st.lists(line_items(currency), min_size=1, max_size=12))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(invoice_lines=invoices())
def test_invoice_totals_equal_sums_of_rounded_lines(
    api: Api, invoice_lines: tuple[str, list[dict[str, Any]]]
) -> None:
    currency, items = invoice_lines
    invoice = create_invoice(api, currency=currency)
    response = api.post(f"/invoices/{invoice['id']}/line_items", json={"items": items})
    assert response.status_code == 201, response.text
    lines = exact_json(response)["items"]
    net = tax = Decimal(0)
    for item, line in zip(items, lines, strict=True):
        amount, tax_amount = expected_line(item, currency)
        assert as_decimal(line["amount"]) == amount, item
        assert as_decimal(line["tax_amount"]) == tax_amount, item
        if "quantity" in item:  # kept exactly as given, all six places
            assert Decimal(line["quantity"]) == Decimal(item["quantity"])
            assert as_decimal(line["unit_price"]) == Decimal(item["unit_price"])
            assert Decimal(_string_number(line["unit_price"]["string"])) == Decimal(
                item["unit_price"]
            )
        net += amount
        tax += tax_amount
    body = exact_json(api.get(f"/invoices/{invoice['id']}"))
    assert as_decimal(body["net_total"]) == net
    assert as_decimal(body["total_tax"]) == tax
    assert as_decimal(body["gross_total"]) == net + tax
    for key in ("net_total", "total_tax", "gross_total"):
        assert parse_amount(_string_number(body[key]["string"]), currency, field=key) == int(
            as_decimal(body[key]).scaleb(DIGITS[currency])
        )


def _string_number(display: str) -> str:
    """ "-£1,045.50" → "-1045.50": the number inside a money object's `string`."""
    sign = "-" if display.startswith("-") else ""
    digits = "".join(ch for ch in display if ch.isdigit() or ch == ".")
    return sign + digits


@settings(max_examples=500)
@given(
    currency=st.sampled_from(CURRENCIES),
    minor=st.integers(-(10**15) + 1, 10**15 - 1),
)
def test_money_renders_and_parses_back(currency: str, minor: int) -> None:
    money = money_object(minor, currency)
    # `decimal`, as it is written in JSON, parses back to the same minor units
    rendered = bytes(JSONResponse(money).body).decode()
    literal = json.loads(rendered, parse_float=Decimal, parse_int=Decimal)["decimal"]
    assert parse_amount(str(literal), currency, field="decimal") == minor
    assert Decimal(str(literal)) == Decimal(minor).scaleb(-DIGITS[currency])
    assert parse_amount(_string_number(money["string"]), currency, field="string") == minor
    assert parse_amount(plain_decimal(minor, currency), currency, field="plain") == minor
    assert money["iso_currency_code"] == currency.lower()


@settings(max_examples=1000)
@given(
    currency=st.sampled_from(CURRENCIES),
    quantity=decimal_text(10**6, 6),
    unit_price=decimal_text(10**6, 6),
    tax_rate=decimal_text(1, 6, signed=False),
)
def test_line_arithmetic_matches_decimal(
    currency: str, quantity: str, unit_price: str, tax_rate: str
) -> None:
    digits = DIGITS[currency]
    amount = line_amount(
        parse_micros(quantity, field="q"), parse_micros(unit_price, field="p"), currency
    )
    expected = round_half_away(Decimal(quantity) * Decimal(unit_price), digits)
    assert Decimal(amount).scaleb(-digits) == expected
    tax = line_tax(amount, parse_micros(tax_rate, field="t"))
    assert Decimal(tax).scaleb(-digits) == round_half_away(expected * Decimal(tax_rate), digits)
