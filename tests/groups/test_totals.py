"""Group totals reconcile with their rounded lines; group writes and the lines they leave."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Api, assert_problem
from tests.factories import add_line_item, add_line_items, create_invoice

DIGITS = {"GBP": 2, "JPY": 0, "KWD": 3}


def groups_url(invoice_id: int) -> str:
    return f"/invoices/{invoice_id}/line-item-groups"


def decimal_text(scaled: int, places: int) -> str:
    return f"{Decimal(scaled).scaleb(-places):f}"


def round_half_away(value: Decimal, digits: int) -> Decimal:
    """Round to `digits` places, half away from zero: ROUND_HALF_UP on the absolute value."""
    rounded = abs(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return -rounded if value < 0 else rounded


def expected_line(line: dict[str, Any], digits: int) -> tuple[Decimal, Decimal]:
    """(net amount, tax) of one line body, by SPEC §4, in major units."""
    if "amount" in line:
        amount = Decimal(line["amount"])
    else:
        product = Decimal(line["quantity"]) * Decimal(line["unit_price"])
        amount = round_half_away(product, digits) - Decimal(line.get("discount_amount", "0"))
    tax = round_half_away(amount * Decimal(line["tax_rate"]), digits)
    return amount, tax


def as_text(value: Decimal, digits: int) -> str:
    """The decimal string Sequence shows: exactly `digits` places, no negative zero."""
    quantized = value.quantize(Decimal(1).scaleb(-digits))
    return f"{abs(quantized) if quantized == 0 else quantized:f}"


@st.composite
def line_bodies(draw: st.DrawFn, currency: str) -> dict[str, Any]:
    digits = DIGITS[currency]
    tax_rate = draw(
        st.one_of(
            st.sampled_from(["0", "0.05", "0.20", "0.175", "0.5"]),
            st.integers(0, 1_000_000).map(lambda micros: decimal_text(micros, 6)),
        )
    )
    line: dict[str, Any] = {"type": "flat_fee", "tax_rate": tax_rate}
    if draw(st.booleans()):
        line["amount"] = decimal_text(draw(st.integers(-(10**7), 10**8)), digits)
    else:
        quantity_places = draw(st.integers(0, 6))
        price_places = draw(st.integers(0, 6))
        # |quantity × unit_price| stays under the API's 10^10 major units.
        line["quantity"] = decimal_text(draw(st.integers(-1000, 10**4 - 1)), quantity_places)
        line["unit_price"] = decimal_text(draw(st.integers(0, 10**6)), price_places)
        if draw(st.booleans()):
            line["discount_amount"] = decimal_text(draw(st.integers(0, 10**4)), digits)
    return line


@st.composite
def invoices(draw: st.DrawFn) -> tuple[str, int, list[tuple[int | None, dict[str, Any]]]]:
    """A currency, a number of groups, and lines each in a group (by position) or in none."""
    currency = draw(st.sampled_from(sorted(DIGITS)))
    group_count = draw(st.integers(1, 4))
    slot = st.one_of(st.none(), st.integers(0, group_count - 1))
    lines = draw(st.lists(st.tuples(slot, line_bodies(currency)), max_size=14))
    return currency, group_count, lines


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=invoices())
def test_group_totals_are_sums_of_rounded_lines(
    api: Api, case: tuple[str, int, list[tuple[int | None, dict[str, Any]]]]
) -> None:
    currency, group_count, lines = case
    digits = DIGITS[currency]
    invoice_id = create_invoice(api, currency=currency)["id"]
    groups = []
    for number in range(group_count):
        response = api.post(groups_url(invoice_id), json={"title": f"Group {number}"})
        assert response.status_code == 201, response.text
        groups.append(response.json()["id"])
    bodies = [
        {**line, "group_id": groups[slot]} if slot is not None else line for slot, line in lines
    ]
    if bodies:
        add_line_items(api, invoice_id, bodies)

    expected = {group_id: [Decimal(0), Decimal(0)] for group_id in groups}
    for slot, line in lines:
        if slot is not None:
            amount, tax = expected_line(line, digits)
            expected[groups[slot]][0] += amount
            expected[groups[slot]][1] += tax

    listed = api.get(groups_url(invoice_id), params={"sortOrder": "ASC"}).json()
    assert [group["id"] for group in listed["items"]] == groups
    for group in listed["items"]:
        net, tax = expected[group["id"]]
        assert (group["netTotal"], group["totalTax"], group["grossTotal"]) == (
            as_text(net, digits),
            as_text(tax, digits),
            as_text(net + tax, digits),
        ), (currency, group["title"])
        # The single-group answer agrees with the list.
        assert api.get(f"{groups_url(invoice_id)}/{group['id']}").json() == group


def test_totals_with_currency_digits_and_half_away_rounding(api: Api) -> None:
    """A fixed case whose answer is worked by hand, so a wrong rule cannot agree with itself."""
    for currency, lines, totals in (
        (
            "GBP",
            # 0.5 × 0.01 = 0.005 → 0.01; tax 0.01 × 0.5 = 0.005 → 0.01. -2.5 × 0.01 → -0.03.
            [
                {"quantity": "0.5", "unit_price": "0.01", "tax_rate": "0.5"},
                {"quantity": "-2.5", "unit_price": "0.01", "tax_rate": "0"},
                {"amount": "45.50", "tax_rate": "0.20"},
            ],
            ("45.48", "9.11", "54.59"),
        ),
        ("JPY", [{"quantity": "3", "unit_price": "0.5", "tax_rate": "0.1"}], ("2", "0", "2")),
        ("KWD", [{"amount": "1.005", "tax_rate": "0.5"}], ("1.005", "0.503", "1.508")),
    ):
        invoice_id = create_invoice(api, currency=currency)["id"]
        group = api.post(groups_url(invoice_id), json={"title": currency}).json()
        add_line_items(
            api,
            invoice_id,
            [{"type": "flat_fee", "group_id": group["id"], **line} for line in lines],
        )
        shown = api.get(f"{groups_url(invoice_id)}/{group['id']}").json()
        assert (shown["netTotal"], shown["totalTax"], shown["grossTotal"]) == totals


def test_deleting_a_group_leaves_its_lines_ungrouped(api: Api) -> None:
    invoice = create_invoice(api, currency="GBP")
    url = groups_url(invoice["id"])
    doomed = api.post(url, json={"title": "Doomed"}).json()
    kept = api.post(url, json={"title": "Kept"}).json()
    lines = add_line_items(
        api,
        invoice["id"],
        [
            {"type": "flat_fee", "amount": "10.00", "group_id": doomed["id"]},
            {"type": "flat_fee", "amount": "2.50", "group_id": doomed["id"]},
            {"type": "flat_fee", "amount": "1.25", "group_id": kept["id"]},
        ],
    )
    assert api.delete(f"{url}/{doomed['id']}").status_code == 200

    listed = api.get(f"/invoices/{invoice['id']}/line_items").json()
    by_id = {line["id"]: line for line in listed["results"]}
    assert set(by_id) == {line["id"] for line in lines}
    assert [by_id[line["id"]]["group_id"] for line in lines] == [None, None, kept["id"]]
    remaining = api.get(url).json()
    assert [(g["title"], g["netTotal"]) for g in remaining["items"]] == [("Kept", "1.25")]
    # A deleted group can no longer take lines.
    refused = api.post(
        f"/invoices/{invoice['id']}/line_items",
        json={"type": "flat_fee", "amount": "1.00", "group_id": doomed["id"]},
    )
    assert_problem(refused, 422, "group_id")


def test_totals_follow_line_changes_and_ignore_other_invoices(api: Api) -> None:
    invoice = create_invoice(api, currency="GBP")
    other = create_invoice(api, currency="GBP")
    url = groups_url(invoice["id"])
    group = api.post(url, json={"title": "Seats"}).json()
    line = add_line_item(
        api, invoice["id"], type="flat_fee", amount="20.00", tax_rate="0.20", group_id=group["id"]
    )
    add_line_item(api, invoice["id"], type="flat_fee", amount="99.00")  # ungrouped
    add_line_item(api, other["id"], type="flat_fee", amount="7.00")
    shown = api.get(f"{url}/{group['id']}").json()
    assert (shown["netTotal"], shown["totalTax"], shown["grossTotal"]) == ("20.00", "4.00", "24.00")
    changed = api.patch(f"/invoices/{invoice['id']}/line_items/{line['id']}", json={"amount": "5"})
    assert changed.status_code == 200, changed.text
    shown = api.get(f"{url}/{group['id']}").json()
    assert (shown["netTotal"], shown["totalTax"], shown["grossTotal"]) == ("5.00", "1.00", "6.00")


def test_every_group_write_moves_the_invoices_updated_at(api: Api) -> None:
    invoice = create_invoice(api, currency="GBP")
    url = groups_url(invoice["id"])

    def updated_at() -> dt.datetime:
        return dt.datetime.fromisoformat(api.get(f"/invoices/{invoice['id']}").json()["updated_at"])

    seen = [updated_at()]
    group = api.post(url, json={"title": "A"}).json()
    seen.append(updated_at())
    api.put(f"{url}/{group['id']}", json={"title": "B"})
    seen.append(updated_at())
    api.delete(f"{url}/{group['id']}")
    seen.append(updated_at())
    assert seen == sorted(seen)
    assert len(set(seen)) == 4, seen
    # Reading does not.
    api.get(url)
    assert updated_at() == seen[-1]
