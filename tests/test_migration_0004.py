"""Migration 0004 adds `api_keys.last_used_at` in place: existing keys keep working (and show
no last use), and the downgrade drops only the column, on both databases."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, inspect, text

from ledgerline.db import make_engine
from tests.groups.test_migration_0003 import empty_database, migrate

__all__ = ["empty_database"]  # the fixture, shared with migration 0003's test

ROWS = [
    "INSERT INTO accounts (id, name, currency, timezone, created_at) "
    "VALUES (1, 'a', 'GBP', 'UTC', '2024-01-01 00:00:00')",
    "INSERT INTO api_keys (id, account_id, key_id, secret_hash, scopes, created_at) "
    "VALUES (5, 1, 'key_0123456789abcdef', 'hash', 'read write', '2024-01-01 00:00:00')",
]


def keys(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, key_id, scopes FROM api_keys ORDER BY id"))
        return [tuple(row) for row in rows]


def columns(engine: Engine) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns("api_keys")}


def test_upgrade_and_downgrade_keep_the_keys(empty_database: str) -> None:
    engine = make_engine(empty_database)
    try:
        migrate(engine, empty_database, command.upgrade, "0003")
        with engine.begin() as connection:
            for statement in ROWS:
                connection.execute(text(statement))
        expected = [(5, "key_0123456789abcdef", "read write")]
        before = columns(engine)

        migrate(engine, empty_database, command.upgrade, "0004")
        assert keys(engine) == expected
        assert columns(engine) == before | {"last_used_at"}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT last_used_at FROM api_keys")).scalar() is None

        migrate(engine, empty_database, command.downgrade, "0003")
        assert keys(engine) == expected
        assert columns(engine) == before
        migrate(engine, empty_database, command.upgrade, "head")
        assert keys(engine) == expected
    finally:
        engine.dispose()
