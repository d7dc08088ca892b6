"""After a bulk load the seed refreshes the planner's statistics of the seeded tables:
ANALYZE on SQLite, VACUUM (ANALYZE) on PostgreSQL (so counts can be index-only scans)."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import text

from ledgerline.db import engine_for
from ledgerline.seed import seed_account
from tests.conftest import Api, Backend

LINES = 2_000
TABLES = ("venues", "customers", "invoices", "line_item_groups", "line_items")


def test_seed_leaves_fresh_statistics_for_every_seeded_table(backend: Backend, api: Api) -> None:
    engine = engine_for(backend.database_url)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT COUNT(*) FROM line_items")).scalar_one()
        started = (
            conn.execute(text("SELECT now()")).scalar_one()
            if engine.dialect.name == "postgresql"
            else None
        )
    began = time.perf_counter()
    result = seed_account(engine, api.account_id, LINES, batch_size=500, until=dt.date(2026, 6, 30))
    elapsed = time.perf_counter() - began
    assert result.line_items == LINES
    # ANALYZE ran, as part of the seed (in seconds, not milliseconds): a part of the whole.
    assert 0 < result.analyze_seconds < elapsed, (result.analyze_seconds, elapsed)
    assert result.analyze_seconds + result.seconds <= elapsed
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # sqlite_stat1's first figure for a table's index is the rows it counted.
            stats: dict[str, str] = dict(
                conn.execute(
                    text("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'line_items'")
                ).all()
            )
            assert "ix_line_items_account_id_type_currency_amount" in stats
            assert all(int(stat.split()[0]) == before + LINES for stat in stats.values())
            tables = {row[0] for row in conn.execute(text("SELECT tbl FROM sqlite_stat1"))}
            assert set(TABLES) <= tables
        else:
            rows = conn.execute(
                text(
                    "SELECT relname, last_vacuum, last_analyze FROM pg_stat_user_tables"
                    " WHERE relname = ANY(:names)"
                ),
                {"names": list(TABLES)},
            ).all()
            assert {row[0] for row in rows} == set(TABLES)
            for name, vacuumed, analyzed in rows:
                assert vacuumed is not None, name
                assert vacuumed >= started, name
                assert analyzed is not None, name
                assert analyzed >= started, name
            # The visibility map covers the copied pages: what an index-only count needs.
            visible, pages = conn.execute(
                text("SELECT relallvisible, relpages FROM pg_class WHERE relname = 'line_items'")
            ).one()
            assert pages > 0
            # Not every page: a transaction still open elsewhere in this shared test database
            # (another fixture's connection) keeps VACUUM from marking its newest pages.
            assert visible >= 0.9 * pages, (visible, pages)
