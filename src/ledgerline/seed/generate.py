"""The seed's generator: one `random.Random` turned into chunks of rows, ready to insert.

Deterministic for a given seed and end date: the same calls to one `random.Random` in the
same order. Rows get explicit ids (`Ids`, read by the writer under its lock), so children
reference parents without round trips: the internal keys, and the per-account public ids
the API shows (`ledgerline.public_ids`), numbered on from the account's counters.

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
from dataclasses import dataclass, field
from typing import Any

from ledgerline.models import INVOICE_STATUSES, LINE_ITEM_TYPES
from ledgerline.money import (
    MICROS,
    SCALE_DIGITS,
    currency_digits,
    line_amount,
    line_tax,
    parse_micros,
    round_half_away,
)
from ledgerline.seed.profile import (
    CREDIT_NOTE_SHARE,
    DISCOUNT_CODES,
    DISCOUNT_PERCENT,
    DISCOUNT_SHARE,
    FIRST_NAMES,
    GROUP_TITLES,
    GROUPED_INVOICE_SHARE,
    HOME_CURRENCY_SHARE,
    LAST_NAMES,
    OTHER_CURRENCIES,
    PER_THOUSAND_PENCE,
    STATUS_WEIGHTS,
    TAX_RATES,
    TYPE_SPECS,
    VENUE_NAMES,
)

SPAN_DAYS = 730  # two years of history
POOL_SIZE = 2048  # templates per (currency, kind); a power of two for cheap draws
_POOL_MASK = POOL_SIZE - 1

# Group UUIDs are derived from the (globally unique) row id and the seeded generator, so they
# are reproducible for a given seed and database state, and never collide across accounts.
_GROUP_NAMESPACE = uuid.UUID("5d7e0c1e-8a3b-4c59-9a57-2f0b6a1c9e42")


# A line template: everything but the ids, the group and the refund/credit split.
# (type, billed_object, billed_id, description, quantity_micros, unit_price_micros,
#  amount, tax_rate_micros, tax_amount, discount_amount)
Template = tuple[str, str | None, int | None, str, int | None, int | None, int, int, int, int]


def _build_pool(rng: random.Random, currency: str, kind: str) -> list[Template]:
    """POOL_SIZE line templates for `currency`; `kind` is plain, discounted or credit.

    The first thirteen templates are one of each type, so even a tiny seed has them all.
    """
    digits = currency_digits(currency)
    scale = PER_THOUSAND_PENCE.get(currency, 1000)
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
    """The next free id of each table, read under the write lock: the internal keys, and
    the account's next public ids (`*_public`; line-item groups show UUIDs instead)."""

    venue: int
    customer: int
    invoice: int
    group: int
    line: int
    venue_public: int = 1
    customer_public: int = 1
    invoice_public: int = 1
    line_public: int = 1


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
            chunk.venues.append(
                (
                    venue_id,
                    ids.venue_public + offset,
                    self.account_id,
                    VENUE_NAMES[offset],
                    created,
                )
            )
        ids.venue += venue_count
        ids.venue_public += venue_count
        for offset in range(customer_count):
            customer_id = ids.customer + offset
            public_id = ids.customer_public + offset
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = (
                None
                if rng.random() < 0.05
                else f"{first}.{last}{public_id}@example.com".lower().replace("'", "")
            )
            venue = rng.choice(self.venue_ids) if rng.random() < 0.9 else None
            chunk.customers.append(
                (customer_id, public_id, self.account_id, f"{first} {last}", email, venue, created)
            )
            self.customer_ids.append(customer_id)
        ids.customer += customer_count
        ids.customer_public += customer_count

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
            invoice_public_id = ids.invoice_public
            ids.invoice_public += 1
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
                    invoice_public_id,
                    account_id,
                    rng.choice(self.customer_ids),
                    # The account's own invoice count, not the global key (issue 10).
                    f"{time.gmtime(created).tm_year}-{invoice_public_id:07d}",
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
                    title = GROUP_TITLES[(invoice_public_id + index) % len(GROUP_TITLES)]
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
            line_public_id = ids.line_public
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
                        line_public_id + position,
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
            ids.line_public = line_public_id + line_count
            self.lines_made += line_count
