"""Plain factory functions over the `Api` test client, for every test package.

Each one talks HTTP like a client, asserts the request succeeded, and returns the decoded
JSON the API answered, so tests build their data the way a user would:

    customer = create_customer(api, name="Ada")
    invoice = create_invoice(api, customer=customer["id"], status="open")
    lines = add_line_items(api, invoice["id"], [random_line_item(rng, "GBP") for _ in range(50)])
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from tests.conftest import Api

LINE_ITEM_TYPES = (
    "pack_membership",
    "prepaid_plan_membership",
    "recurring_plan_membership",
    "membership_purchase",
    "event_registration",
    "course",
    "course_session",
    "store_order",
    "flat_fee",
    "service_fee",
    "membership_penalty_fee",
    "joining_fee",
    "gift_card",
)

# TeamUp's documented `billed_item.object` values (its report pages), kept apart from the code.
TEAMUP_BILLED_OBJECTS = (
    "event",
    "event_registration",
    "appointment_slot",
    "room_rental_slot",
    "course",
    "course_session",
    "customer_membership",
    "customer_membership_setup",
    "purchase_fee",
    "store_order_item",
)

CURRENCY_DIGITS = {"GBP": 2, "EUR": 2, "USD": 2, "JPY": 0, "KWD": 3}

BATCH_SIZE = 1000


def _ok(response: Any, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def create_venue(api: Api, name: str = "Main studio") -> dict[str, Any]:
    """POST /venues."""
    return dict(_ok(api.post("/venues", json={"name": name}), 201))


def create_customer(
    api: Api, name: str = "Ada Lovelace", email: str | None = None, venue: int | None = None
) -> dict[str, Any]:
    """POST /customers; `venue` is a venue id of the same account."""
    body: dict[str, Any] = {"name": name}
    if email is not None:
        body["email"] = email
    if venue is not None:
        body["venue"] = venue
    return dict(_ok(api.post("/customers", json=body), 201))


def create_invoice(api: Api, **fields: Any) -> dict[str, Any]:
    """POST /invoices with `fields` as the body (all optional: number, status, currency,
    customer, due_date, is_credit_note, discount_code, confirmed_at, paid_at)."""
    return dict(_ok(api.post("/invoices", json=fields), 201))


def add_line_item(api: Api, invoice_id: int, **fields: Any) -> dict[str, Any]:
    """POST one line item, e.g. `add_line_item(api, 7, type="flat_fee", amount="10.00")`."""
    return dict(_ok(api.post(f"/invoices/{invoice_id}/line_items", json=fields), 201))


def add_line_items(api: Api, invoice_id: int, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST line items in batches of up to 1,000; the created items, in order."""
    created: list[dict[str, Any]] = []
    for start in range(0, len(items), BATCH_SIZE):
        batch = items[start : start + BATCH_SIZE]
        body = _ok(api.post(f"/invoices/{invoice_id}/line_items", json={"items": batch}), 201)
        created.extend(body["items"])
    return created


def _decimal_text(rng: random.Random, low: int, high: int, places: int) -> str:
    """A decimal string of `places` places between low and high (in major units)."""
    scaled = rng.randint(low * 10**places, high * 10**places)
    return f"{Decimal(scaled).scaleb(-places):f}" if places else str(scaled)


def random_line_item(
    rng: random.Random, currency: str = "GBP", *, negative: bool = False
) -> dict[str, Any]:
    """A realistic line item body in `currency` (GBP, EUR, USD, JPY or KWD).

    Mostly priced lines (whole or metered quantities, sub-minor-unit unit prices now and
    then, an occasional discount), some amount-given lines; tax rates of 0, 5 and 20 percent.
    With `negative=True` some lines are credits (negative amounts or quantities).
    """
    digits = CURRENCY_DIGITS[currency]
    scale = 100 if digits == 0 else 1
    item: dict[str, Any] = {
        "type": rng.choice(LINE_ITEM_TYPES),
        "description": rng.choice(
            ["Monthly membership", "Drop-in class", "API calls", "Set-up", "Gift card", "Course"]
        ),
        "tax_rate": rng.choice(["0", "0.05", "0.20", "0.175"]),
    }
    sign = -1 if negative and rng.random() < 0.3 else 1
    if rng.random() < 0.75:
        if rng.random() < 0.3:
            item["quantity"] = _decimal_text(rng, 1, 50_000, 0)
            item["unit_price"] = _decimal_text(rng, 0, 1 * scale, min(6, digits + 2))
        else:
            item["quantity"] = _decimal_text(rng, 1, 12, rng.choice([0, 0, 1, 2]))
            item["unit_price"] = _decimal_text(rng, 1 * scale, 250 * scale, digits)
        if sign < 0:
            item["quantity"] = "-" + item["quantity"]
        if rng.random() < 0.15:
            item["discount_amount"] = _decimal_text(rng, 0, 5 * scale, digits)
    else:
        amount = _decimal_text(rng, 1 * scale, 500 * scale, digits)
        item["amount"] = ("-" if sign < 0 else "") + amount
    return item


def beyond(ids: Iterable[int], create: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A record made by `create` (in another account) whose id is greater than every id in
    `ids`: ids are numbered per account, so only such an id is one this account lacks, and a
    tenancy check with it cannot pass because the id happens to exist here."""
    highest = max(ids, default=0)
    while True:
        record = create()
        if record["id"] > highest:
            return record
