"""Migration 0007 creates the row counts (`account_row_counts`, `invoices.line_count`) and fills
them with COUNT(*) of the rows already there, per account and per invoice; writes after it keep
them exact; it downgrades cleanly and upgrades again, on both databases."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from ledgerline.db import make_engine
from ledgerline.models import Invoice
from ledgerline.row_counts import lines_added, rows_added
from tests.groups.test_migration_0003 import empty_database, migrate
from tests.reports.row_count_checks import kept_and_counted

__all__ = ["empty_database"]  # the fixture, shared with migration 0003's test

T = "'2024-01-01 00:00:00'"
# Account 1: invoices 10 (3 lines), 12 (1 line), 13 (none); account 2: invoice 11 (2 lines);
# account 3 has nothing.
ROWS = [
    f"INSERT INTO accounts (id, name, currency, timezone, created_at) VALUES (1, 'a', 'GBP', "
    f"'UTC', {T}), (2, 'b', 'GBP', 'UTC', {T}), (3, 'c', 'GBP', 'UTC', {T})",
    "INSERT INTO invoices (id, public_id, account_id, number, status, currency, "
    f"is_credit_note, created_at, updated_at) VALUES (10, 1, 1, 'N1', 'paid', 'GBP', false, "
    f"{T}, {T}), (11, 1, 2, 'N1', 'voided', 'GBP', false, {T}, {T}), "
    f"(12, 2, 1, 'N2', 'voided', 'GBP', false, {T}, {T}), "
    f"(13, 3, 1, 'N3', 'paid', 'GBP', false, {T}, {T})",
    "INSERT INTO line_items (id, public_id, account_id, invoice_id, type, description, "
    "currency, amount, tax_rate_micros, tax_amount, discount_amount, credit_amount, "
    "refund_amount, created_at) VALUES "
    f"(20, 1, 1, 10, 'flat_fee', '', 'GBP', 1, 0, 0, 0, 0, 0, {T}), "
    f"(21, 1, 2, 11, 'flat_fee', '', 'GBP', 2, 0, 0, 0, 0, 0, {T}), "
    f"(22, 2, 2, 11, 'flat_fee', '', 'GBP', 3, 0, 0, 0, 0, 0, {T}), "
    f"(23, 2, 1, 12, 'flat_fee', '', 'GBP', 4, 0, 0, 0, 0, 0, {T}), "
    f"(24, 3, 1, 10, 'flat_fee', '', 'GBP', 5, 0, 0, 0, 0, 0, {T}), "
    f"(25, 4, 1, 10, 'flat_fee', '', 'GBP', 6, 0, 0, 0, 0, 0, {T})",
]


def test_the_backfill_equals_count_and_later_writes_keep_it(empty_database: str) -> None:
    engine = make_engine(empty_database)
    try:
        migrate(engine, empty_database, command.upgrade, "0006")
        with engine.begin() as connection:
            for statement in ROWS:
                connection.execute(text(statement))
        migrate(engine, empty_database, command.upgrade, "0007")
        with engine.connect() as connection:
            found = {account: kept_and_counted(connection, account) for account in (1, 2, 3)}
        for kept, counted in found.values():
            assert kept == counted
        assert found[1][1] == {
            "invoices": 3,
            "line_items": 4,
            "per_invoice": {10: 3, 12: 1, 13: 0},
            "per_status": {"paid": 3, "voided": 1},
        }
        assert found[2][1]["per_invoice"] == {11: 2}
        assert found[3][1] == {"invoices": 0, "line_items": 0, "per_invoice": {}, "per_status": {}}
        indexes = {index["name"] for index in inspect(engine).get_indexes("invoices")}
        assert "ix_invoices_account_id_status_line_count" in indexes
        assert "ix_invoices_account_id_status" not in indexes

        # A writer after the migration moves the backfilled counts.
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM line_items WHERE id = 25"))
            lines_added(connection, 1, 10, -1)
            connection.execute(
                text(
                    "INSERT INTO invoices (id, public_id, account_id, number, status, currency, "
                    f"is_credit_note, created_at, updated_at) VALUES (14, 1, 3, 'N1', 'open', "
                    f"'GBP', false, {T}, {T})"
                )
            )
            rows_added(connection, 3, Invoice, 1)
        with engine.connect() as connection:
            for account in (1, 2, 3):
                kept, counted = kept_and_counted(connection, account)
                assert kept == counted
            assert counted["invoices"] == 1

        migrate(engine, empty_database, command.downgrade, "0006")
        assert "account_row_counts" not in inspect(engine).get_table_names()
        columns = {column["name"] for column in inspect(engine).get_columns("invoices")}
        assert "line_count" not in columns
        migrate(engine, empty_database, command.upgrade, "head")
        with engine.connect() as connection:
            for account in (1, 2, 3):
                kept, counted = kept_and_counted(connection, account)
                assert kept == counted
    finally:
        engine.dispose()
