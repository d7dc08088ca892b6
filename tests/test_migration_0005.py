"""Migration 0005 numbers the existing rows of each account 1, 2, 3… (public ids, in the order
of their internal keys), sets the counters so new rows continue from there, keeps the jobs'
file names and `id_gt` filters meaning the same rows, and downgrades cleanly, on both
databases."""

from __future__ import annotations

import json

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from ledgerline.db import make_engine
from ledgerline.models import Invoice, Job, LineItem, Venue
from ledgerline.public_ids import allocate
from tests.groups.test_migration_0003 import empty_database, migrate

__all__ = ["empty_database"]  # the fixture, shared with migration 0003's test

T = "'2024-01-01 00:00:00'"
# Two accounts whose rows interleave in every table (internal keys are global sequences).
ROWS = [
    f"INSERT INTO accounts (id, name, currency, timezone, created_at) VALUES (1, 'a', 'GBP', "
    f"'UTC', {T}), (2, 'b', 'GBP', 'UTC', {T})",
    f"INSERT INTO venues (id, account_id, name, created_at) VALUES (1, 1, 'v', {T}), "
    f"(2, 2, 'v', {T}), (3, 1, 'v', {T})",
    f"INSERT INTO customers (id, account_id, name, venue_id, created_at) VALUES "
    f"(4, 2, 'c', 2, {T}), (5, 1, 'c', 3, {T}), (6, 1, 'c', 1, {T}), (7, 2, 'c', NULL, {T})",
    "INSERT INTO invoices (id, account_id, customer_id, number, status, currency, "
    f"is_credit_note, created_at, updated_at) VALUES (10, 1, 5, 'N1', 'draft', 'GBP', false, "
    f"{T}, {T}), (11, 2, 4, 'N1', 'draft', 'GBP', false, {T}, {T}), "
    f"(12, 1, NULL, 'N2', 'draft', 'GBP', false, {T}, {T})",
    "INSERT INTO line_items (id, account_id, invoice_id, type, description, currency, amount, "
    "tax_rate_micros, tax_amount, discount_amount, credit_amount, refund_amount, created_at) "
    f"VALUES (20, 1, 10, 'flat_fee', '', 'GBP', 1, 0, 0, 0, 0, 0, {T}), "
    f"(21, 2, 11, 'flat_fee', '', 'GBP', 2, 0, 0, 0, 0, 0, {T}), "
    f"(22, 2, 11, 'flat_fee', '', 'GBP', 3, 0, 0, 0, 0, 0, {T}), "
    f"(23, 1, 12, 'flat_fee', '', 'GBP', 4, 0, 0, 0, 0, 0, {T}), "
    f"(24, 1, 10, 'flat_fee', '', 'GBP', 5, 0, 0, 0, 0, 0, {T})",
]
JOB = (
    "INSERT INTO jobs (id, account_id, type, report, format, params, status, rows_done, "
    "attempts, created_at, file_name) VALUES "
    "(:id, :account, 'report_export', 'invoice_line_items', :format, :params, :status, 0, 0, "
    f"{T}, :file_name)"
)
# Account 1's second line item (internal 23) is its public 2: `id_gt` 22 selects 23 and 24
# (public 2 and 3), i.e. public `id_gt` 1; `id_gt` 20 selects 23 and 24 too.
JOBS = [
    {"id": 30, "account": 2, "format": "csv", "id_gt": 21, "status": "succeeded"},
    {"id": 31, "account": 1, "format": "json", "id_gt": 22, "status": "succeeded"},
    {"id": 32, "account": 1, "format": "csv", "id_gt": None, "status": "queued"},
    {"id": 33, "account": 1, "format": "csv", "id_gt": 20, "status": "queued"},
]
NUMBERED = {
    "venues": {1: 1, 2: 1, 3: 2},
    "customers": {4: 1, 5: 1, 6: 2, 7: 2},
    "invoices": {10: 1, 11: 1, 12: 2},
    "line_items": {20: 1, 21: 1, 22: 2, 23: 2, 24: 3},
    "jobs": {30: 1, 31: 1, 32: 2, 33: 3},
}


def _seed(engine: Engine) -> None:
    with engine.begin() as connection:
        for statement in ROWS:
            connection.execute(text(statement))
        for job in JOBS:
            filters = {} if job["id_gt"] is None else {"id_gt": job["id_gt"]}
            params = {"report": "invoice_line_items", "columns": ["id"], "sort": ["id"]}
            done = job["status"] == "succeeded"
            connection.execute(
                text(JOB),
                {
                    **job,
                    "params": json.dumps({**params, "filters": filters, "format": job["format"]}),
                    "file_name": f"invoice_line_items-{job['id']}.{job['format']}"
                    if done
                    else None,
                },
            )


def _public_ids(engine: Engine, table: str) -> dict[int, int]:
    with engine.connect() as connection:
        rows = connection.execute(text(f"SELECT id, public_id FROM {table}"))
        return {int(row[0]): int(row[1]) for row in rows}


def _jobs(engine: Engine) -> dict[int, tuple[str | None, object]]:
    """Each job's file name and `id_gt`."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, file_name, params FROM jobs")).all()
    found: dict[int, tuple[str | None, object]] = {}
    for job_id, file_name, params in rows:
        decoded = json.loads(params) if isinstance(params, str) else params
        found[int(job_id)] = (file_name, decoded["filters"].get("id_gt"))
    return found


def _counters(engine: Engine) -> dict[tuple[int, str], int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT account_id, entity, last_value FROM account_counters")
        )
        return {(int(row[0]), str(row[1])): int(row[2]) for row in rows}


def test_existing_rows_are_numbered_per_account_and_counters_continue(
    empty_database: str,
) -> None:
    engine = make_engine(empty_database)
    try:
        migrate(engine, empty_database, command.upgrade, "0004")
        _seed(engine)
        before_jobs = _jobs(engine)

        migrate(engine, empty_database, command.upgrade, "0005")
        for table, expected in NUMBERED.items():
            assert _public_ids(engine, table) == expected, table
        # Each account's highest number per table (venues: account 1 has two, account 2 one).
        assert _counters(engine) == {
            (1, "venues"): 2,
            (2, "venues"): 1,
            (1, "customers"): 2,
            (2, "customers"): 2,
            (1, "invoices"): 2,
            (2, "invoices"): 1,
            (1, "line_items"): 3,
            (2, "line_items"): 2,
            (1, "jobs"): 3,
            (2, "jobs"): 1,
        }
        assert _jobs(engine) == {
            30: ("invoice_line_items-1.csv", 1),  # internal 21 is account 2's public 1
            31: ("invoice_line_items-1.json", 1),  # after internal 20, account 1's public 1
            32: (None, None),
            33: (None, 1),  # internal 20 is account 1's public 1
        }

        # New rows continue each account's numbering, one block per allocation.
        with engine.begin() as connection:
            assert allocate(connection, 1, Invoice) == 3
            assert allocate(connection, 2, Invoice) == 2
            assert allocate(connection, 1, LineItem, 1000) == 4
            assert allocate(connection, 1, LineItem) == 1004
            assert allocate(connection, 2, Job) == 2
            assert allocate(connection, 2, Venue) == 2
        # NOT NULL on PostgreSQL; SQLite keeps the column nullable (it cannot add the
        # constraint in place), as docs/decisions.md says.
        nullable = {
            table: {c["name"]: c["nullable"] for c in inspect(engine).get_columns(table)}[
                "public_id"
            ]
            for table in NUMBERED
        }
        sqlite = engine.dialect.name == "sqlite"
        assert nullable == dict.fromkeys(NUMBERED, sqlite)
        if not sqlite:
            for table in NUMBERED:
                with pytest.raises(IntegrityError), engine.begin() as connection:
                    connection.execute(text(f"UPDATE {table} SET public_id = NULL"))
        with pytest.raises(IntegrityError), engine.begin() as connection:  # unique per account
            connection.execute(
                text(
                    "INSERT INTO venues (id, public_id, account_id, name, created_at) "
                    f"VALUES (99, 1, 1, 'taken', {T})"
                )
            )

        migrate(engine, empty_database, command.downgrade, "0004")
        # Back to internal ids: the same file names, and bounds that select the same lines
        # (job 31's 22 comes back as 20: account 1 has no line item between them).
        assert _jobs(engine) == {**before_jobs, 31: (before_jobs[31][0], 20)}
        for table in NUMBERED:
            assert "public_id" not in {c["name"] for c in inspect(engine).get_columns(table)}
        assert "account_counters" not in inspect(engine).get_table_names()
        migrate(engine, empty_database, command.upgrade, "head")
        for table, expected in NUMBERED.items():
            assert _public_ids(engine, table) == expected, table
    finally:
        engine.dispose()
