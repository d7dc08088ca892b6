"""What a typical studio's data looks like: the status mix, currencies, shares of credit
notes, discounts and grouped invoices, tax rates, names, and how each purchase type's lines
are priced. Data only; `generate` draws from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledgerline.models import BILLED_ITEM_OBJECTS, LINE_ITEM_TYPES

# Status mix of a typical studio's invoices; every status appears in the first eleven.
STATUS_WEIGHTS: dict[str, int] = {
    "paid": 52,
    "open": 8,
    "draft": 6,
    "upcoming": 6,
    "voided": 5,
    "pending": 4,
    "failed": 4,
    "pending_offline": 3,
    "retrying": 3,
    "retry_failed": 3,
    "skipped": 3,
}
OTHER_CURRENCIES = ("EUR", "USD", "JPY", "KWD")
HOME_CURRENCY_SHARE = 0.75
CREDIT_NOTE_SHARE = 0.03
DISCOUNT_SHARE = 0.10
GROUPED_INVOICE_SHARE = 0.30
DISCOUNT_CODES = (
    ("Spring sale", "SPRING10"),
    ("New member welcome", "WELCOME10"),
    ("Black Friday", "BF2025"),
    ("Staff discount", "STAFF10"),
)
DISCOUNT_PERCENT = 10
TAX_RATES = (("0.2", 50), ("0", 25), ("0.05", 10), ("0.175", 5), ("0.125", 5), ("0.0825", 5))
GROUP_TITLES = ("Memberships", "Classes", "Courses", "Retail", "Fees", "Events", "Gift cards")

VENUE_NAMES = (
    "Shoreditch Studio",
    "Clapham Loft",
    "Brixton Hall",
    "Camden Yard",
    "Islington Works",
    "Peckham Rooms",
    "Hackney Wick Space",
    "Greenwich Pier",
    "Bermondsey Arches",
    "Stoke Newington Barn",
    "Richmond Boathouse",
    "Wimbledon Court",
)
FIRST_NAMES = (
    "Amelia",
    "Oliver",
    "Isla",
    "George",
    "Ava",
    "Noah",
    "Mia",
    "Arthur",
    "Ivy",
    "Leo",
    "Freya",
    "Oscar",
    "Priya",
    "Mohammed",
    "Chloe",
    "Kwame",
    "Zara",
    "Tomasz",
    "Aoife",
    "Mateo",
    "Yuki",
    "Fatima",
    "Ewan",
    "Sofia",
)
LAST_NAMES = (
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Patel",
    "Khan",
    "Evans",
    "Nowak",
    "Murphy",
    "O'Brien",
    "Okafor",
    "Garcia",
    "Tanaka",
    "Hughes",
    "Ahmed",
    "Campbell",
    "Rossi",
    "Walsh",
)


@dataclass(frozen=True)
class TypeSpec:
    """How lines of one purchase type look: what they bill, and their price range (in GBP).

    `billed_object` is one of TeamUp's documented `billed_item.object` values
    (`models.BILLED_ITEM_OBJECTS`), or None for a line that bills no record.
    """

    weight: int
    billed_object: str | None
    descriptions: tuple[str, ...]
    low: int  # unit price range in pence (GBP); other currencies are scaled
    high: int
    max_quantity: int = 1
    amount_only: bool = False  # given as `amount`, without quantity and unit price
    usage: bool = False  # many units priced below the minor unit


TYPE_SPECS: dict[str, TypeSpec] = {
    "pack_membership": TypeSpec(
        10, "customer_membership", ("10-class pack", "5-class pack"), 4500, 18000
    ),
    "prepaid_plan_membership": TypeSpec(
        6, "customer_membership", ("3-month prepaid plan", "Annual prepaid plan"), 9000, 90000
    ),
    "recurring_plan_membership": TypeSpec(
        18, "customer_membership", ("Monthly unlimited", "Monthly off-peak"), 2900, 12000
    ),
    "membership_purchase": TypeSpec(
        5, "customer_membership_setup", ("Membership purchase",), 2000, 20000
    ),
    "event_registration": TypeSpec(
        8, "event_registration", ("Workshop registration", "Open day"), 1000, 6000, max_quantity=4
    ),
    "course": TypeSpec(5, "course", ("8-week beginners course", "Teacher training"), 8000, 60000),
    "course_session": TypeSpec(
        8, "course_session", ("Course session", "Drop-in session"), 800, 3000, max_quantity=10
    ),
    "store_order": TypeSpec(
        12,
        "store_order_item",
        ("Water bottle", "Yoga mat", "Grip socks", "Protein bar", "Towel hire"),
        199,
        6000,
        max_quantity=6,
    ),
    "flat_fee": TypeSpec(6, None, ("Room hire", "Admin fee"), 500, 25000, amount_only=True),
    "service_fee": TypeSpec(
        8, "purchase_fee", ("Card processing fee", "Booking fee", "API usage"), 1, 99, usage=True
    ),
    "membership_penalty_fee": TypeSpec(
        4, "customer_membership", ("Late cancellation fee", "No-show fee"), 500, 2000
    ),
    "joining_fee": TypeSpec(4, "customer_membership_setup", ("Joining fee",), 1000, 5000),
    "gift_card": TypeSpec(6, "store_order_item", ("Gift card",), 1000, 10000, amount_only=True),
}
assert tuple(TYPE_SPECS) == LINE_ITEM_TYPES
assert {spec.billed_object for spec in TYPE_SPECS.values()} - {None} <= set(BILLED_ITEM_OBJECTS)

# Rough minor units per thousand pence, so prices look right in each currency (¥190 or
# 0.380 KWD a pound). Integers: no float ever touches an amount.
PER_THOUSAND_PENCE: dict[str, int] = {"JPY": 1900, "KWD": 3800, "USD": 1250, "EUR": 1150}
