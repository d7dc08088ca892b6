"""Migration 0006 adds the console's two tables and touches nothing else, so it can be
renumbered past another migration; the downgrade drops exactly those tables."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, inspect

from ledgerline.db import make_engine
from tests.groups.test_migration_0003 import empty_database, migrate

__all__ = ["empty_database"]  # the fixture, shared with migration 0003's test

CONSOLE_TABLES = {"console_sessions", "console_links"}


def columns(engine: Engine, table: str) -> list[tuple[str, str, bool]]:
    return [
        (column["name"], str(column["type"]), column["nullable"])
        for column in inspect(engine).get_columns(table)
    ]


def test_upgrade_adds_only_the_console_tables_and_downgrade_removes_them(
    empty_database: str,
) -> None:
    engine = make_engine(empty_database)
    try:
        migrate(engine, empty_database, command.upgrade, "0005")
        before = {name: columns(engine, name) for name in inspect(engine).get_table_names()}
        migrate(engine, empty_database, command.upgrade, "0006")
        after = set(inspect(engine).get_table_names())
        assert after == set(before) | CONSOLE_TABLES
        for name, shape in before.items():
            assert columns(engine, name) == shape, name
        hashes = {
            table: {u["column_names"][0] for u in inspect(engine).get_unique_constraints(table)}
            for table in CONSOLE_TABLES
        }
        assert hashes == {"console_sessions": {"session_hash"}, "console_links": {"token_hash"}}

        migrate(engine, empty_database, command.downgrade, "0005")
        assert set(inspect(engine).get_table_names()) == set(before)
        migrate(engine, empty_database, command.upgrade, "head")
        assert set(inspect(engine).get_table_names()) >= CONSOLE_TABLES
    finally:
        engine.dispose()
