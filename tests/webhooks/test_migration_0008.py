"""Migration 0008 adds the four webhook tables and touches nothing else, so it can be
re-chained past another migration; the downgrade drops exactly those tables."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from ledgerline.db import make_engine
from tests.console.test_migration_0006 import columns
from tests.groups.test_migration_0003 import empty_database, migrate

__all__ = ["empty_database"]  # the fixture, shared with migration 0003's test

WEBHOOK_TABLES = {"webhook_endpoints", "webhook_events", "webhook_deliveries", "webhook_attempts"}
ROOT = Path(__file__).resolve().parents[2]


def previous_revision() -> str:
    """What 0008 follows (read from the migration, so re-chaining it needs no edit here)."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    down = ScriptDirectory.from_config(config).get_revision("0008").down_revision
    assert isinstance(down, str)
    return down


def test_upgrade_adds_only_the_webhook_tables_and_downgrade_removes_them(
    empty_database: str,
) -> None:
    engine = make_engine(empty_database)
    try:
        previous = previous_revision()
        migrate(engine, empty_database, command.upgrade, previous)
        before = {name: columns(engine, name) for name in inspect(engine).get_table_names()}
        migrate(engine, empty_database, command.upgrade, "0008")
        after = set(inspect(engine).get_table_names())
        assert after == set(before) | WEBHOOK_TABLES
        for name, shape in before.items():
            assert columns(engine, name) == shape, name
        unique = {
            index["name"]
            for index in inspect(engine).get_indexes("webhook_deliveries")
            if index["unique"]
        }
        assert unique == {"ix_webhook_deliveries_account_id_public_id"}

        migrate(engine, empty_database, command.downgrade, previous)
        assert set(inspect(engine).get_table_names()) == set(before)
        migrate(engine, empty_database, command.upgrade, "head")
        assert set(inspect(engine).get_table_names()) >= WEBHOOK_TABLES
    finally:
        engine.dispose()
