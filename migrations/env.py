"""Alembic environment: batch mode on SQLite, psycopg 3 on PostgreSQL."""

from __future__ import annotations

from alembic import context

from ledgerline import models  # noqa: F401  (registers the tables)
from ledgerline.config import get_settings
from ledgerline.db import Base, make_engine

config = context.config
url = config.attributes.get("url") or get_settings().resolved_database_url


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
