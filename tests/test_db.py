"""`db.transaction`, the one unit of work of requests, jobs and commands."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text

from ledgerline.accounts import create_account
from ledgerline.db import after_commit, transaction, upgrade_database
from ledgerline.models import Account
from tests.conftest import Backend


def _exists(backend: Backend, name: str) -> bool:
    with transaction(backend.database_url, writes=False) as session:
        found = session.execute(select(Account.id).where(Account.name == name)).first()
    return found is not None


def test_commits_then_runs_the_callbacks(backend: Backend) -> None:
    name = f"committed-{uuid.uuid4().hex[:8]}"
    seen: list[bool] = []
    with transaction(backend.database_url, writes=True) as session:
        create_account(session, name, "GBP", "UTC")
        # Run in another session: it sees the row only if the commit came first.
        after_commit(session, lambda: seen.append(_exists(backend, name)))
        assert seen == []
    assert seen == [True]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_any_exception_rolls_back_and_skips_the_callbacks(
    backend: Backend, error: type[BaseException]
) -> None:
    name = f"rolled-back-{uuid.uuid4().hex[:8]}"
    ran: list[str] = []

    def write_then_fail() -> None:
        with transaction(backend.database_url, writes=True) as session:
            create_account(session, name, "GBP", "UTC")
            session.flush()
            after_commit(session, lambda: ran.append("callback"))
            raise error

    with pytest.raises(error):
        write_then_fail()
    assert ran == []
    assert not _exists(backend, name)


def test_a_writer_holds_the_sqlite_write_lock_from_its_first_statement(tmp_path: Path) -> None:
    """IMMEDIATE: a writer that reads first cannot later hit SQLITE_BUSY_SNAPSHOT."""
    path = tmp_path / "ledgerline.db"
    url = f"sqlite:///{path}"
    upgrade_database(url)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with transaction(url, writes=False) as session:
            session.execute(text("SELECT 1"))
            other.execute("BEGIN IMMEDIATE")  # a reader leaves the write lock free
            other.execute("ROLLBACK")
        with transaction(url, writes=True) as session:
            session.execute(text("SELECT 1"))
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()
