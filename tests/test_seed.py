"""The data generator: exact counts, the money rules, consistent statuses and references.

Every check recomputes what it expects from the stored inputs with Python's `decimal`, not
with `ledgerline.money`, so a rounding bug in either would show.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

import pytest
from sqlalchemy import func, select

from ledgerline.db import engine_for, transaction
from ledgerline.models import Customer, Invoice, LineItem, LineItemGroup, Venue
from ledgerline.seed import SeedError, SeedResult, seed_account
from tests.conftest import Api, Backend, TenantFactory
from tests.factories import LINE_ITEM_TYPES, TEAMUP_BILLED_OBJECTS

LINES = 3_000
UNTIL = dt.date(2026, 6, 30)
ALL_STATUSES = {
    "draft",
    "upcoming",
    "open",
    "pending",
    "pending_offline",
    "paid",
    "failed",
    "retrying",
    "retry_failed",
    "voided",
    "skipped",
}
ALL_TYPES = set(LINE_ITEM_TYPES)  # the spec's list, kept apart from the code's
DIGITS = {"GBP": 2, "EUR": 2, "USD": 2, "JPY": 0, "KWD": 3}


def seed(backend: Backend, api: Api, lines: int = LINES, **kwargs: Any) -> SeedResult:
    # A small batch so the run spans several chunks (transactions).
    kwargs.setdefault("batch_size", 700)
    kwargs.setdefault("until", UNTIL)
    return seed_account(engine_for(backend.database_url), api.account_id, lines, **kwargs)


def rounded(value: Decimal) -> int:
    """Half away from zero, as SPEC §4 says (decimal's ROUND_HALF_UP is exactly that)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def load(backend: Backend, account_id: int) -> dict[str, list[Any]]:
    with transaction(backend.database_url, writes=False) as session:
        return {
            name: list(
                session.execute(
                    select(model).where(model.account_id == account_id).order_by(model.id)
                ).scalars()
            )
            for name, model in (
                ("venues", Venue),
                ("customers", Customer),
                ("invoices", Invoice),
                ("groups", LineItemGroup),
                ("lines", LineItem),
            )
        }


@pytest.fixture
def seeded(backend: Backend, api: Api) -> tuple[SeedResult, dict[str, list[Any]]]:
    result = seed(backend, api, seed=11)
    return result, load(backend, api.account_id)


def test_counts_are_exact_and_reported(seeded: tuple[SeedResult, dict[str, list[Any]]]) -> None:
    result, rows = seeded
    assert result.line_items == LINES == len(rows["lines"])
    assert result.invoices == len(rows["invoices"]) > 0
    assert result.customers == len(rows["customers"]) > 0
    assert result.venues == len(rows["venues"]) > 0
    assert result.line_item_groups == len(rows["groups"]) > 0
    assert len({line.invoice_id for line in rows["lines"]}) == result.invoices
    body = result.as_json()
    assert body["line_items"] == LINES
    assert body["line_items_per_second"] == int(LINES / result.seconds)


def test_every_type_and_status_and_several_currencies(
    seeded: tuple[SeedResult, dict[str, list[Any]]],
) -> None:
    _, rows = seeded
    assert {line.type for line in rows["lines"]} == ALL_TYPES
    assert {invoice.status for invoice in rows["invoices"]} == ALL_STATUSES
    currencies = Counter(invoice.currency for invoice in rows["invoices"])
    assert len(currencies) >= 3
    assert currencies.most_common(1)[0][0] == "GBP"  # the account's own currency leads
    assert any(invoice.is_credit_note for invoice in rows["invoices"])
    assert any(invoice.discount_code_code for invoice in rows["invoices"])


def test_billed_items_are_only_teamups_documented_objects(
    seeded: tuple[SeedResult, dict[str, list[Any]]],
) -> None:
    _, rows = seeded
    billed = Counter(line.billed_item_object for line in rows["lines"])
    assert set(billed) - {None} <= set(TEAMUP_BILLED_OBJECTS), billed
    assert len(set(billed) - {None}) >= 5  # a realistic mix, not one value
    assert None in billed  # lines that bill no record (flat fees) stay null
    assert all(
        (line.billed_item_id is None) == (line.billed_item_object is None) for line in rows["lines"]
    )


def test_amounts_and_taxes_follow_the_rounding_rule(
    seeded: tuple[SeedResult, dict[str, list[Any]]],
) -> None:
    _, rows = seeded
    invoices = {invoice.id: invoice for invoice in rows["invoices"]}
    sub_minor_prices = 0
    with localcontext() as context:
        context.prec = 60
        for line in rows["lines"]:
            invoice = invoices[line.invoice_id]
            assert line.currency == invoice.currency
            digits = DIGITS[line.currency]
            if line.quantity_micros is None:
                assert line.unit_price_micros is None
                assert line.discount_amount == 0
            else:
                quantity = Decimal(line.quantity_micros) / 10**6
                unit_price = Decimal(line.unit_price_micros) / 10**6
                if unit_price * 10**digits != int(unit_price * 10**digits):
                    sub_minor_prices += 1
                before_discount = rounded(quantity * unit_price * 10**digits)
                assert line.amount == before_discount - line.discount_amount, line.id
                if line.discount_amount:
                    assert invoice.discount_code_code is not None
                    assert line.discount_amount == rounded(Decimal(before_discount) / 10)
            tax_rate = Decimal(line.tax_rate_micros) / 10**6
            assert line.tax_amount == rounded(line.amount * tax_rate), line.id
            if invoice.is_credit_note:
                assert line.amount < 0
            else:
                assert line.amount > 0
            assert 0 <= line.refund_amount <= max(line.amount, 0)
            assert 0 <= line.credit_amount <= max(line.amount, 0)
    assert sub_minor_prices > 0  # usage priced below the minor unit is exercised


def test_statuses_and_timestamps_are_consistent(
    seeded: tuple[SeedResult, dict[str, list[Any]]],
) -> None:
    _, rows = seeded
    end = dt.datetime(UNTIL.year, UNTIL.month, UNTIL.day, tzinfo=dt.UTC)
    start = end - dt.timedelta(days=730)
    created_span = [invoice.created_at for invoice in rows["invoices"]]
    assert max(created_span) - min(created_span) > dt.timedelta(days=365)
    for invoice in rows["invoices"]:
        assert start <= invoice.created_at <= invoice.updated_at <= end
        if invoice.status == "draft":
            assert invoice.confirmed_at is None
        else:
            assert invoice.confirmed_at is not None
            assert invoice.created_at <= invoice.confirmed_at <= invoice.updated_at
        if invoice.status == "paid":
            assert invoice.paid_at is not None
            assert invoice.confirmed_at is not None
            assert invoice.confirmed_at <= invoice.paid_at <= invoice.updated_at
        else:
            assert invoice.paid_at is None
        assert invoice.due_date is not None
        assert invoice.due_date >= invoice.created_at.date()
        if invoice.is_credit_note:
            assert invoice.discount_code_code is None


def test_references_stay_inside_the_account_and_the_invoice(
    seeded: tuple[SeedResult, dict[str, list[Any]]],
) -> None:
    _, rows = seeded
    venue_ids = {venue.id for venue in rows["venues"]}
    customer_ids = {customer.id for customer in rows["customers"]}
    group_invoice = {group.id: group.invoice_id for group in rows["groups"]}
    assert all(c.venue_id is None or c.venue_id in venue_ids for c in rows["customers"])
    assert all(invoice.customer_id in customer_ids for invoice in rows["invoices"])
    assert len({invoice.number for invoice in rows["invoices"]}) == len(rows["invoices"])
    grouped = [line for line in rows["lines"] if line.group_id is not None]
    assert grouped
    for line in grouped:
        assert group_invoice[line.group_id] == line.invoice_id
    for invoice_id in set(group_invoice.values()):
        indexes = sorted(g.index for g in rows["groups"] if g.invoice_id == invoice_id)
        assert indexes == list(range(len(indexes)))


def test_same_seed_same_data(backend: Backend, make_tenant: TenantFactory) -> None:
    first, second, other = make_tenant(), make_tenant(), make_tenant()
    for tenant, seed_value in ((first, 5), (second, 5), (other, 6)):
        seed(backend, tenant, 800, seed=seed_value)

    def shape(account_id: int) -> tuple[list[Any], list[Any]]:
        rows = load(backend, account_id)
        invoices = [
            (i.status, i.currency, i.due_date, i.created_at, i.paid_at, i.is_credit_note)
            for i in rows["invoices"]
        ]
        lines = [
            (li.type, li.description, li.quantity_micros, li.unit_price_micros, li.amount)
            for li in rows["lines"]
        ]
        return invoices, lines

    assert shape(first.account_id) == shape(second.account_id)
    assert shape(first.account_id) != shape(other.account_id)


def test_seeded_data_reads_back_through_the_api(backend: Backend, api: Api) -> None:
    result = seed(backend, api, 600, seed=3)
    customers = api.get("/customers", params={"limit": 5})
    assert customers.status_code == 200, customers.text
    assert customers.json()["count"] == result.customers
    invoices = api.get("/invoices", params={"limit": 100})
    assert invoices.status_code == 200, invoices.text
    assert invoices.json()["count"] == result.invoices
    for invoice in invoices.json()["results"][:10]:
        lines = api.get(f"/invoices/{invoice['id']}/line_items", params={"limit": 100}).json()
        digits = DIGITS[invoice["currency"]]
        net = sum(
            (Decimal(str(line["amount"]["decimal"])) for line in lines["results"]), Decimal(0)
        )
        assert Decimal(str(invoice["net_total"]["decimal"])) == net
        assert all(
            line["amount"]["iso_currency_code"] == invoice["currency"].lower()
            for line in lines["results"]
        )
        assert net == net.quantize(Decimal(1).scaleb(-digits))


def test_ids_continue_after_a_seed(backend: Backend, api: Api) -> None:
    """Explicit ids move the id sequences on: the next row the API creates does not clash,
    and its public id continues the account's numbering."""
    result = seed(backend, api, 300, seed=1)
    with transaction(backend.database_url, writes=False) as session:
        highest_venue = session.execute(select(func.max(Venue.id))).scalar_one()
    created = api.post("/venues", json={"name": "After the seed"})
    assert created.status_code == 201, created.text
    assert created.json()["id"] == result.venues + 1
    venues = load(backend, api.account_id)["venues"]
    assert venues[-1].public_id == created.json()["id"]
    assert venues[-1].id > highest_venue


def test_public_ids_number_each_account_from_one_across_chunks_and_runs(
    backend: Backend, make_tenant: TenantFactory
) -> None:
    """The seed numbers each account's rows 1, 2, 3… in creation order (a block per chunk),
    whatever another account holds, and a second run (or the API) continues from there."""
    first, second = make_tenant(), make_tenant()
    seed(backend, first, 1_500, seed=3)
    seed(backend, second, 800, seed=4)
    seed(backend, first, 900, seed=5)
    invoice = first.post("/invoices", json={})
    assert invoice.status_code == 201, invoice.text
    for tenant in (first, second):
        rows = load(backend, tenant.account_id)
        for name in ("venues", "customers", "invoices", "lines"):
            numbers = [row.public_id for row in rows[name]]  # in internal (creation) order
            assert numbers == list(range(1, len(numbers) + 1)), (tenant.account_id, name)
        invoices = {row.id: row.public_id for row in rows["invoices"]}
        # Seeded invoice numbers carry the account's own count, not the global key.
        seeded = [row for row in rows["invoices"] if not row.number.startswith("INV-")]
        assert seeded
        assert all(row.number.endswith(f"-{row.public_id:07d}") for row in seeded)
        assert {line.invoice_id for line in rows["lines"]} <= set(invoices)
    assert invoice.json()["id"] == len(load(backend, first.account_id)["invoices"])


def test_unknown_account_and_bad_sizes_are_refused(backend: Backend, api: Api) -> None:
    engine = engine_for(backend.database_url)
    with pytest.raises(SeedError, match="no account"):
        seed_account(engine, 10**12, 10)
    with pytest.raises(SeedError, match="at least 1"):
        seed_account(engine, api.account_id, 0)
    with pytest.raises(SeedError, match="at least 1"):
        seed_account(engine, api.account_id, 10, batch_size=0)


def test_sqlite_foreign_keys_hold_and_are_checked_again_after_a_seed(
    backend: Backend, api: Api
) -> None:
    """The SQLite writer skips per-row foreign key checks; the rows must still satisfy them,
    and the pooled connection must check them again afterwards."""
    if backend.name != "sqlite":
        pytest.skip("SQLite's foreign_keys pragma")
    seed(backend, api, 500, seed=2)
    engine = engine_for(backend.database_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
