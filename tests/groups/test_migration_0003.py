"""Migration 0003 adds the group columns in place: existing groups and their line items'
grouping survive the upgrade, and the downgrade, on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from ledgerline.db import make_engine
from tests.conftest import POSTGRES_URL, _create_postgres_database, require_service

ROOT = Path(__file__).resolve().parents[2]

ROWS = [
    "INSERT INTO accounts (id, name, currency, timezone, created_at) "
    "VALUES (1, 'a', 'GBP', 'UTC', '2024-01-01 00:00:00')",
    "INSERT INTO invoices (id, account_id, number, status, currency, is_credit_note, "
    "created_at, updated_at) VALUES (1, 1, 'N1', 'draft', 'GBP', false, "
    "'2024-01-01 00:00:00', '2024-01-01 00:00:00')",
    'INSERT INTO line_item_groups (id, public_id, account_id, invoice_id, "index", title, '
    "description, created_at) VALUES (7, '0123456789abcdef0123456789abcdef', 1, 1, 3, 'Users', "
    "'kept', '2024-01-01 00:00:00')",
    "INSERT INTO line_items (id, account_id, invoice_id, group_id, type, description, currency, "
    "amount, tax_rate_micros, tax_amount, discount_amount, credit_amount, refund_amount, "
    "created_at) VALUES (11, 1, 1, 7, 'flat_fee', '', 'GBP', 500, 0, 0, 0, 0, 0, "
    "'2024-01-01 00:00:00'), (12, 1, 1, NULL, 'flat_fee', '', 'GBP', 1, 0, 0, 0, 0, 0, "
    "'2024-01-01 00:00:00')",
]


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    url, drop = _create_postgres_database(require_service("PostgreSQL", POSTGRES_URL))
    yield url
    drop()


def migrate(engine: Engine, url: str, action: Callable[[Config, str], None], target: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["url"] = url
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        action(config, target)


def state(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        lines = connection.execute(text("SELECT id, group_id FROM line_items ORDER BY id"))
        groups = connection.execute(
            text('SELECT id, "index", title, description FROM line_item_groups')
        )
        return [*map(tuple, lines), *map(tuple, groups)]


def test_upgrade_and_downgrade_keep_groups_and_grouping(empty_database: str) -> None:
    engine = make_engine(empty_database)
    try:
        migrate(engine, empty_database, command.upgrade, "0002")
        with engine.begin() as connection:
            for statement in ROWS:
                connection.execute(text(statement))
        expected = [(11, 7), (12, None), (7, 3, "Users", "kept")]
        assert state(engine) == expected

        migrate(engine, empty_database, command.upgrade, "0003")
        assert state(engine) == expected
        with engine.connect() as connection:
            added = connection.execute(
                text(
                    "SELECT tax_category_id, revenue_recognition_method, revenue_classification,"
                    " service_period_start, service_period_end FROM line_item_groups"
                )
            ).one()
        assert tuple(added) == (None, None, None, None, None)

        migrate(engine, empty_database, command.downgrade, "0002")
        assert state(engine) == expected
        migrate(engine, empty_database, command.upgrade, "head")
        assert state(engine) == expected
    finally:
        engine.dispose()
