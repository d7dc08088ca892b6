"""Realistic generated data for one account, inserted in bulk (`ledgerline seed`, `demo`).

`profile` says what a studio's data looks like, `generate` turns a seed into chunks of rows,
and `writers` puts each chunk in with its database's bulk path; `seed_account` runs the three.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ledgerline.models import Account
from ledgerline.seed.generate import Chunk, Generator
from ledgerline.seed.writers import writer_for

ProgressCallback = Callable[[int], None]

DEFAULT_BATCH_SIZE = 100_000


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
    writer = writer_for(engine)
    generator = Generator(
        account_id, currency, seed, until or dt.datetime.now(dt.UTC).date(), writer.spelling
    )
    counts = {"venues": 0, "customers": 0, "invoices": 0, "groups": 0}
    done = 0
    try:
        while done < line_items:
            ids = writer.next_ids(account_id)
            chunk = Chunk()
            if done == 0:
                generator.people(ids, line_items, chunk)
            generator.invoices(ids, min(batch_size, line_items - done), chunk)
            writer.write(chunk, account_id, ids)
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
