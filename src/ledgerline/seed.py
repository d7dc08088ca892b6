"""Realistic generated data for one account, inserted in bulk (`ledgerline seed`, `demo`).

The generator is deterministic for a given seed and end date: the same calls to one
`random.Random` in the same order. Rows get explicit ids, taken after the highest existing
id while the write lock is held, so children reference parents without round trips. Rows go
in with DBAPI `executemany` on SQLite and `COPY` on PostgreSQL, one transaction per chunk.

Money follows SPEC §4 through `ledgerline.money`: `amount = round(quantity × unit_price) −
discount_amount` and `tax_amount = round(amount × tax_rate)`, each rounded once.

Speed comes from a pool of precomputed line templates per (currency, kind): each line costs
one random draw and one tuple.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ledgerline.invoices.schemas import BILLED_ITEM_OBJECTS
from ledgerline.models import INVOICE_STATUSES, LINE_ITEM_TYPES, Account
from ledgerline.money import (
    MICROS,
    SCALE_DIGITS,
    currency_digits,
    line_amount,
    line_tax,
    parse_micros,
    round_half_away,
)

ProgressCallback = Callable[[int], None]

DEFAULT_BATCH_SIZE = 100_000
SPAN_DAYS = 730  # two years of history
POOL_SIZE = 2048  # templates per (currency, kind); a power of two for cheap draws
_POOL_MASK = POOL_SIZE - 1

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
    (`invoices.schemas.BILLED_ITEM_OBJECTS`), or None for a line that bills no record.
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
_PER_THOUSAND_PENCE: dict[str, int] = {"JPY": 1900, "KWD": 3800, "USD": 1250, "EUR": 1150}


# Group UUIDs are derived from the (globally unique) row id and the seeded generator, so they
# are reproducible for a given seed and database state, and never collide across accounts.
_GROUP_NAMESPACE = uuid.UUID("5d7e0c1e-8a3b-4c59-9a57-2f0b6a1c9e42")


class SeedError(ValueError):
    """The seed cannot run (no such account, bad sizes); the message says why."""


@dataclass(frozen=True)
class SeedResult:
    account_id: int
    line_items: int
    invoices: int
    customers: int
    venues: int
    line_item_groups: int
    seconds: float
    # ANALYZE (SQLite) / VACUUM (ANALYZE) (PostgreSQL) of the seeded tables, after `seconds`.
    analyze_seconds: float = 0.0

    @property
    def line_items_per_second(self) -> int:
        return int(self.line_items / self.seconds) if self.seconds > 0 else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "account": self.account_id,
            "line_items": self.line_items,
            "invoices": self.invoices,
            "customers": self.customers,
            "venues": self.venues,
            "line_item_groups": self.line_item_groups,
            "seconds": round(self.seconds, 3),
            "line_items_per_second": self.line_items_per_second,
            "analyze_seconds": round(self.analyze_seconds, 3),
        }


# A line template: everything but the ids, the group and the refund/credit split.
# (type, billed_object, billed_id, description, quantity_micros, unit_price_micros,
#  amount, tax_rate_micros, tax_amount, discount_amount)
Template = tuple[str, str | None, int | None, str, int | None, int | None, int, int, int, int]


def _build_pool(rng: random.Random, currency: str, kind: str) -> list[Template]:
    """POOL_SIZE line templates for `currency`; `kind` is plain, discounted or credit.

    The first thirteen templates are one of each type, so even a tiny seed has them all.
    """
    digits = currency_digits(currency)
    scale = _PER_THOUSAND_PENCE.get(currency, 1000)
    types = list(TYPE_SPECS)
    type_weights = [spec.weight for spec in TYPE_SPECS.values()]
    rates = [rate for rate, _ in TAX_RATES]
    rate_weights = [weight for _, weight in TAX_RATES]
    sign = -1 if kind == "credit" else 1
    pool: list[Template] = []
    for index in range(POOL_SIZE):
        type_ = types[index] if index < len(types) else rng.choices(types, type_weights)[0]
        spec = TYPE_SPECS[type_]
        description = rng.choice(spec.descriptions)
        billed_id = rng.randint(1, 5000) if spec.billed_object else None
        tax_rate_micros = parse_micros(rng.choices(rates, rate_weights)[0], field="tax_rate")
        quantity_micros: int | None
        unit_price_micros: int | None
        discount = 0
        if spec.amount_only:
            quantity_micros = unit_price_micros = None
            base = sign * max(1, rng.randint(spec.low, spec.high) * scale // 1000)
        else:
            if spec.usage:
                # e.g. 12,345.5 API calls at £0.0035 each: below the minor unit, rounded once.
                quantity_micros = rng.randint(100, 50_000) * MICROS + rng.choice((0, 500_000))
                ten_thousandths_of_a_pound = rng.randint(spec.low, spec.high)
                # in micros of the major unit: value × scale / 1000 × 10^(4 − digits)
                unit_price_micros = sign * max(
                    1, ten_thousandths_of_a_pound * scale * 10**SCALE_DIGITS // (10**digits * 10**5)
                )
            else:
                quantity_micros = rng.randint(1, spec.max_quantity) * MICROS
                price_minor = max(1, rng.randint(spec.low, spec.high) * scale // 1000)
                unit_price_micros = sign * price_minor * 10 ** (6 - digits)
            base = line_amount(quantity_micros, unit_price_micros, currency)
            if kind == "discounted":
                discount = round_half_away(base * DISCOUNT_PERCENT, 100)
        amount = base - discount
        pool.append(
            (
                type_,
                spec.billed_object,
                billed_id,
                description,
                quantity_micros,
                unit_price_micros,
                amount,
                tax_rate_micros,
                line_tax(amount, tax_rate_micros),
                discount,
            )
        )
    return pool


@dataclass
class Ids:
    """The next free id of each table, read under the write lock."""

    venue: int
    customer: int
    invoice: int
    group: int
    line: int


@dataclass
class Chunk:
    venues: list[tuple[Any, ...]] = field(default_factory=list)
    customers: list[tuple[Any, ...]] = field(default_factory=list)
    invoices: list[tuple[Any, ...]] = field(default_factory=list)
    groups: list[tuple[Any, ...]] = field(default_factory=list)
    lines: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass(frozen=True)
class Spelling:
    """How a dialect wants timestamps and UUIDs as text: rows are built ready to insert."""

    timestamp_suffix: str  # after 'YYYY-MM-DD HH:MM:SS' (UTC)
    uuid_as_hex: bool


# SQLAlchemy's SQLite DATETIME text form (naive UTC) and its CHAR(32) UUIDs.
SQLITE_SPELLING = Spelling(timestamp_suffix=".000000", uuid_as_hex=True)
POSTGRES_SPELLING = Spelling(timestamp_suffix="+00", uuid_as_hex=False)


def _date(epoch: int) -> dt.date:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).date()


class Generator:
    """Turns one seed into chunks of rows. Not thread-safe; one per run."""

    def __init__(
        self, account_id: int, home_currency: str, seed: int, until: dt.date, spelling: Spelling
    ) -> None:
        self.rng = random.Random(seed)
        self.spelling = spelling
        self.account_id = account_id
        self.home_currency = home_currency
        self.until_epoch = int(
            dt.datetime(until.year, until.month, until.day, tzinfo=dt.UTC).timestamp()
        )
        self.since_epoch = self.until_epoch - SPAN_DAYS * 86_400
        others = [code for code in OTHER_CURRENCIES if code != home_currency]
        self.currencies = [home_currency, *others]
        self.pools: dict[tuple[str, str], list[Template]] = {
            (currency, kind): _build_pool(self.rng, currency, kind)
            for currency in self.currencies
            for kind in ("plain", "discounted", "credit")
        }
        self.statuses = list(STATUS_WEIGHTS)
        self.status_weights = list(STATUS_WEIGHTS.values())
        assert sorted(self.statuses) == sorted(INVOICE_STATUSES)
        self.customer_ids: list[int] = []
        self.venue_ids: list[int] = []
        self.invoices_made = 0
        self.lines_made = 0

    def timestamp(self, epoch: int) -> str:
        return (
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) + self.spelling.timestamp_suffix
        )

    def people(self, ids: Ids, line_items: int, chunk: Chunk) -> None:
        """Venues and customers, sized to the run."""
        rng = self.rng
        venue_count = min(len(VENUE_NAMES), 2 + line_items // 50_000)
        customer_count = max(10, min(50_000, line_items // 40))
        created = self.timestamp(self.since_epoch - 86_400)
        for offset in range(venue_count):
            venue_id = ids.venue + offset
            self.venue_ids.append(venue_id)
            chunk.venues.append((venue_id, self.account_id, VENUE_NAMES[offset], created))
        ids.venue += venue_count
        for offset in range(customer_count):
            customer_id = ids.customer + offset
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = (
                None
                if rng.random() < 0.05
                else f"{first}.{last}{customer_id}@example.com".lower().replace("'", "")
            )
            venue = rng.choice(self.venue_ids) if rng.random() < 0.9 else None
            chunk.customers.append(
                (customer_id, self.account_id, f"{first} {last}", email, venue, created)
            )
            self.customer_ids.append(customer_id)
        ids.customer += customer_count

    def group_uuid(self, group_id: int) -> str:
        value = uuid.uuid5(_GROUP_NAMESPACE, f"{group_id}:{self.rng.getrandbits(64)}")
        return value.hex if self.spelling.uuid_as_hex else str(value)

    def invoices(self, ids: Ids, target: int, chunk: Chunk) -> None:
        """Invoices with their groups and lines until `target` lines are in the chunk."""
        rng = self.rng
        getrandbits = rng.getrandbits
        account_id = self.account_id
        span = SPAN_DAYS * 86_400
        while len(chunk.lines) < target:
            invoice_id = ids.invoice
            ids.invoice += 1
            ordinal = self.invoices_made
            self.invoices_made += 1
            if ordinal < len(self.statuses):
                status = self.statuses[ordinal]
            else:
                status = rng.choices(self.statuses, self.status_weights)[0]
            currency = (
                self.home_currency
                if rng.random() < HOME_CURRENCY_SHARE
                else rng.choice(self.currencies[1:])
            )
            is_credit_note = status == "paid" and rng.random() < CREDIT_NOTE_SHARE * 2
            discounted = not is_credit_note and rng.random() < DISCOUNT_SHARE
            kind = "credit" if is_credit_note else "discounted" if discounted else "plain"
            code_name, code = rng.choice(DISCOUNT_CODES) if discounted else (None, None)

            # created ≤ confirmed ≤ paid ≤ updated ≤ until; drafts are never confirmed.
            created = self.since_epoch + rng.randrange(span - 3 * 86_400)
            confirmed = paid = None
            latest = created
            if status != "draft":
                confirmed = created + rng.randrange(3_600, 3 * 86_400)
                latest = confirmed
            if status == "paid":
                assert confirmed is not None
                paid = min(confirmed + rng.randrange(60, 20 * 86_400), self.until_epoch - 1)
                latest = paid
            updated = min(latest + rng.randrange(0, 86_400), self.until_epoch - 1)
            terms = 14 if rng.random() < 0.5 else 30
            due = _date(confirmed or created) + dt.timedelta(days=terms)
            if status == "upcoming":
                due = _date(self.until_epoch) + dt.timedelta(days=terms)
            created_text = self.timestamp(created)
            chunk.invoices.append(
                (
                    invoice_id,
                    account_id,
                    rng.choice(self.customer_ids),
                    f"{time.gmtime(created).tm_year}-{invoice_id:07d}",
                    status,
                    currency,
                    due.isoformat(),
                    is_credit_note,
                    code_name,
                    code,
                    created_text,
                    self.timestamp(updated),
                    self.timestamp(confirmed) if confirmed is not None else None,
                    self.timestamp(paid) if paid is not None else None,
                )
            )

            line_count = min(rng.randint(1, 14), target - len(chunk.lines))
            group_ids: list[int | None] = [None]
            if line_count >= 4 and rng.random() < GROUPED_INVOICE_SHARE:
                for index in range(rng.randint(2, 3)):
                    group_id = ids.group
                    ids.group += 1
                    title = GROUP_TITLES[(invoice_id + index) % len(GROUP_TITLES)]
                    chunk.groups.append(
                        (
                            group_id,
                            self.group_uuid(group_id),
                            account_id,
                            invoice_id,
                            index,
                            title,
                            None if index else f"{title} on this invoice",
                            created_text,
                        )
                    )
                    group_ids.append(group_id)
            groups_in_turn = len(group_ids)
            pool = self.pools[(currency, kind)]
            refunds_possible = status == "paid" and not is_credit_note
            # The hot loop (millions of iterations): locals, one draw, one tuple per line.
            append = chunk.lines.append
            line_id = ids.line
            first_types = max(0, len(LINE_ITEM_TYPES) - self.lines_made)
            for position in range(line_count):
                draw = getrandbits(20)
                template = pool[
                    self.lines_made + position if position < first_types else draw & _POOL_MASK
                ]
                (type_, billed_object, billed_id, description, quantity, unit_price, amount,
                 tax_rate, tax, discount) = template  # fmt: skip
                credit = refund = 0
                if refunds_possible and amount > 0:
                    pick = draw >> 11  # 0..511: about 2% refunded, 2% half credited
                    if pick < 10:
                        refund = amount
                    elif pick < 20:
                        credit = amount // 2
                append(
                    (
                        line_id + position,
                        account_id,
                        invoice_id,
                        group_ids[position % groups_in_turn],
                        type_,
                        billed_object,
                        billed_id,
                        description,
                        currency,
                        quantity,
                        unit_price,
                        amount,
                        tax_rate,
                        tax,
                        discount,
                        credit,
                        refund,
                        created_text,
                    )
                )
            ids.line = line_id + line_count
            self.lines_made += line_count


VENUE_COLUMNS = ("id", "account_id", "name", "created_at")
CUSTOMER_COLUMNS = ("id", "account_id", "name", "email", "venue_id", "created_at")
INVOICE_COLUMNS = (
    "id",
    "account_id",
    "customer_id",
    "number",
    "status",
    "currency",
    "due_date",
    "is_credit_note",
    "discount_code_name",
    "discount_code_code",
    "created_at",
    "updated_at",
    "confirmed_at",
    "paid_at",
)
GROUP_COLUMNS = (
    "id",
    "public_id",
    "account_id",
    "invoice_id",
    "index",
    "title",
    "description",
    "created_at",
)
LINE_COLUMNS = (
    "id",
    "account_id",
    "invoice_id",
    "group_id",
    "type",
    "billed_item_object",
    "billed_item_id",
    "description",
    "currency",
    "quantity_micros",
    "unit_price_micros",
    "amount",
    "tax_rate_micros",
    "tax_amount",
    "discount_amount",
    "credit_amount",
    "refund_amount",
    "created_at",
)
# Parents before children.
TABLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("venues", "venues", VENUE_COLUMNS),
    ("customers", "customers", CUSTOMER_COLUMNS),
    ("invoices", "invoices", INVOICE_COLUMNS),
    ("groups", "line_item_groups", GROUP_COLUMNS),
    ("lines", "line_items", LINE_COLUMNS),
)


def _column_list(columns: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in columns)


class _Writer:
    spelling: Spelling

    def next_ids(self) -> Ids:
        raise NotImplementedError

    def write(self, chunk: Chunk) -> None:
        raise NotImplementedError

    def analyze(self) -> None:
        """Refresh the planner's statistics for the seeded tables after a bulk load."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


SEEDED_TABLES = ("venues", "customers", "invoices", "line_item_groups", "line_items")


class _SqliteWriter(_Writer):
    """`executemany` in one transaction per chunk; BEGIN IMMEDIATE takes the write lock
    before the highest ids are read.

    Foreign keys are not checked row by row while it writes (the pragma is per connection and
    restored on close): every reference is to a row this run wrote before or to the account,
    checked first. That is a third of SQLite's work per line item.
    """

    spelling = SQLITE_SPELLING

    def __init__(self, engine: Engine) -> None:
        self.raw = engine.raw_connection()
        connection = self.raw.driver_connection
        assert connection is not None
        self.connection: Any = connection
        self.connection.execute("PRAGMA foreign_keys=OFF")

    def next_ids(self) -> Ids:
        self.connection.execute("BEGIN IMMEDIATE")
        values = [
            self.connection.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()[0]
            for table in ("venues", "customers", "invoices", "line_item_groups", "line_items")
        ]
        return Ids(*values)

    def write(self, chunk: Chunk) -> None:
        try:
            for key, table, columns in TABLES:
                rows: list[Any] = getattr(chunk, key)
                if not rows:
                    continue
                placeholders = ", ".join("?" for _ in columns)
                self.connection.executemany(
                    f"INSERT INTO {table} ({_column_list(columns)}) VALUES ({placeholders})",
                    rows,
                )
            self.connection.execute("COMMIT")
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise

    def analyze(self) -> None:
        # Without statistics SQLite's planner guesses; with them it picks the covering
        # indexes for counts and the grouped report (docs/performance.md).
        for table in SEEDED_TABLES:
            self.connection.execute(f"ANALYZE {table}")

    def close(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")
        self.connection.execute("PRAGMA foreign_keys=ON")
        self.raw.close()


class _PostgresWriter(_Writer):
    """COPY in one transaction per chunk, under a lock that lets readers through but holds
    other writers back; the id sequences are moved past the ids used."""

    TABLE_NAMES = ("venues", "customers", "invoices", "line_item_groups", "line_items")
    spelling = POSTGRES_SPELLING

    def __init__(self, engine: Engine) -> None:
        self.raw = engine.raw_connection()
        connection = self.raw.driver_connection
        assert connection is not None
        self.connection: Any = connection

    def next_ids(self) -> Ids:
        cursor = self.connection.cursor()
        cursor.execute(f"LOCK TABLE {', '.join(self.TABLE_NAMES)} IN SHARE ROW EXCLUSIVE MODE")
        values = []
        for table in self.TABLE_NAMES:
            cursor.execute(
                f"SELECT GREATEST(COALESCE(MAX(id), 0) + 1,"
                f" nextval(pg_get_serial_sequence('{table}', 'id'))) FROM {table}"
            )
            values.append(cursor.fetchone()[0])
        return Ids(*values)

    def write(self, chunk: Chunk) -> None:
        cursor = self.connection.cursor()
        try:
            for key, table, columns in TABLES:
                rows: list[Any] = getattr(chunk, key)
                if not rows:
                    continue
                with cursor.copy(f"COPY {table} ({_column_list(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT MAX(id) FROM {table}))"
                )
            self.connection.commit()
        except BaseException:
            self.connection.rollback()
            raise

    def analyze(self) -> None:
        # VACUUM cannot run in a transaction. It sets the visibility map of the freshly
        # copied pages, so a count is an index-only scan with no heap fetches, and ANALYZE
        # gives the planner the new row counts.
        self.connection.rollback()
        self.connection.autocommit = True
        try:
            self.connection.execute(f"VACUUM (ANALYZE) {', '.join(self.TABLE_NAMES)}")
        finally:
            self.connection.autocommit = False

    def close(self) -> None:
        self.connection.rollback()  # nothing is pending unless a chunk failed half-way
        self.raw.close()


def seed_account(
    engine: Engine,
    account_id: int,
    line_items: int,
    *,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    until: dt.date | None = None,
    progress: ProgressCallback | None = None,
) -> SeedResult:
    """Add `line_items` generated lines (with their invoices, groups, customers and venues)
    to an existing account. Dates fall in the two years before `until` (default today, UTC)."""
    if line_items < 1:
        raise SeedError("--line-items must be at least 1")
    if batch_size < 1:
        raise SeedError("--batch-size must be at least 1")
    with Session(engine) as session:
        currency = session.execute(
            select(Account.currency).where(Account.id == account_id)
        ).scalar_one_or_none()
    if currency is None:
        raise SeedError(f"no account with id {account_id}")
    started = time.perf_counter()
    writer: _Writer = (
        _SqliteWriter(engine) if engine.dialect.name == "sqlite" else _PostgresWriter(engine)
    )
    generator = Generator(
        account_id, currency, seed, until or dt.datetime.now(dt.UTC).date(), writer.spelling
    )
    counts = {"venues": 0, "customers": 0, "invoices": 0, "groups": 0}
    done = 0
    try:
        while done < line_items:
            ids = writer.next_ids()
            chunk = Chunk()
            if done == 0:
                generator.people(ids, line_items, chunk)
            generator.invoices(ids, min(batch_size, line_items - done), chunk)
            writer.write(chunk)
            done += len(chunk.lines)
            for key in counts:
                counts[key] += len(getattr(chunk, key))
            if progress is not None:
                progress(len(chunk.lines))
        seconds = time.perf_counter() - started
        writer.analyze()
        analyze_seconds = time.perf_counter() - started - seconds
    finally:
        writer.close()
    return SeedResult(
        account_id=account_id,
        line_items=done,
        invoices=counts["invoices"],
        customers=counts["customers"],
        venues=counts["venues"],
        line_item_groups=counts["groups"],
        seconds=seconds,
        analyze_seconds=analyze_seconds,
    )
