"""Migration 0009 adds the two schedule tables exactly as the models declare them (nothing
else), and its downgrade removes them, on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from ledgerline.db import Base, make_engine
from tests.groups.test_migration_0003 import ROOT, empty_database, migrate

__all__ = ["empty_database"]

TABLES = {"export_schedules", "export_schedule_runs"}


def test_upgrade_adds_the_schedule_tables_as_modelled_and_downgrade_removes_them(
    empty_database: str,
) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    before = ScriptDirectory.from_config(config).get_revision("0009").down_revision
    assert isinstance(before, str)
    engine = make_engine(empty_database)
    try:
        migrate(engine, empty_database, command.upgrade, before)
        tables_before = set(inspect(engine).get_table_names())
        assert not TABLES & tables_before
        migrate(engine, empty_database, command.upgrade, "0009")
        assert set(inspect(engine).get_table_names()) == tables_before | TABLES
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = [
                diff
                for diff in compare_metadata(context, Base.metadata)
                if any(name in repr(diff) for name in TABLES)
            ]
        assert differences == []
        migrate(engine, empty_database, command.downgrade, before)
        assert set(inspect(engine).get_table_names()) == tables_before
    finally:
        engine.dispose()
