"""Engine, the one transaction helper, naming convention, SQLite pragmas, UTC timestamps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, DateTime, Engine, Integer, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from ledgerline.config import (
    DEFAULT_API_THREADS,
    POOL_SPARE_CONNECTIONS,
    Settings,
    touch_private,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identity.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every database.

    PostgreSQL keeps `timestamptz`; SQLite has no zone, so values are stored as naive UTC
    text (SQLAlchemy's fixed-width format, which sorts and compares correctly as text).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def normalise_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` and use psycopg 3 for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


# The sizes every engine of this process gets. Each SQLite connection keeps its own page
# cache, resident once filled, so the pool times the cache is what SQLite can hold (40
# connections of 64 MiB took the API to 1.96 GB, issue 10): `serve` and `worker` set both
# from their settings (`configure_engines`) before their first engine. The default cache is
# for the one-connection commands: `seed` writes millions of rows into five indexes through
# it. Temporary b-trees (sorts that spill, DISTINCT, GROUP BY without an index) go to files,
# which the OS caches and can drop, not the heap. No mmap: mapped pages count in the RSS.
SQLITE_CACHE_KIB = 65536
SQLITE_TEMP_STORE = "FILE"
POOL_SIZE = DEFAULT_API_THREADS + POOL_SPARE_CONNECTIONS


def configure_engines(settings: Settings, *, sqlite_cache_kib: int | None = None) -> None:
    """Size this process's engines from `settings` (before any engine is made)."""
    global SQLITE_CACHE_KIB, POOL_SIZE
    SQLITE_CACHE_KIB = settings.sqlite_cache_kib if sqlite_cache_kib is None else sqlite_cache_kib
    POOL_SIZE = settings.resolved_db_pool_size


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy own transactions (pysqlite's legacy implicit BEGIN breaks snapshots).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA cache_size=-{int(SQLITE_CACHE_KIB)}")
    cursor.execute(f"PRAGMA temp_store={SQLITE_TEMP_STORE}")
    cursor.close()


# Execution option naming a transaction that will write (set by `transaction(writes=True)`).
SQLITE_BEGIN_IMMEDIATE = "ledgerline_sqlite_begin_immediate"


def _sqlite_begin(conn: Any) -> None:
    # DEFERRED keeps reads (and export snapshots) concurrent. But in WAL mode a transaction
    # that has read cannot upgrade to a write once another connection has committed
    # (SQLITE_BUSY_SNAPSHOT, with no busy wait): a session that will write asks for
    # IMMEDIATE, which takes the write lock up front, waiting up to busy_timeout.
    immediate = conn.get_execution_options().get(SQLITE_BEGIN_IMMEDIATE)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
        if path and path != ":memory:" and not path.startswith("file:"):
            # Customer data: the file (and so its -wal/-shm) 0600, its directory 0700.
            touch_private(Path(path))
        # The pool holds a connection for every request the app runs at once (the
        # `LEDGERLINE_API_THREADS` slots) and a few more, so requests wait for the database,
        # never for a connection; none beyond it, so SQLite's caches stay bounded.
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", 0)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # The same bound on PostgreSQL: it also caps what one API process takes of the server's
    # max_connections (100 by default).
    kwargs.setdefault("pool_size", POOL_SIZE)
    kwargs.setdefault("max_overflow", 0)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def is_sqlite(engine_or_session: Engine | Session) -> bool:
    bind = (
        engine_or_session.get_bind()
        if isinstance(engine_or_session, Session)
        else engine_or_session
    )
    return bind.dialect.name == "sqlite"


@lru_cache
def engine_for(url: str) -> Engine:
    return make_engine(url)


@lru_cache
def sessionmaker_for(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=engine_for(url), expire_on_commit=False)


AFTER_COMMIT = "ledgerline.after_commit"


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction is durable; never if it rolls back.

    For work outside the database that must not happen for a write that fails (handing a
    job to the queue). Only sessions opened by `transaction` run these.
    """
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


@contextmanager
def transaction(sessions: sessionmaker[Session] | str, *, writes: bool) -> Iterator[Session]:
    """One unit of work, for requests, jobs and commands alike.

    Commits when the block ends, rolls back on any exception (BaseException too: a
    cancelled request or a ^C never commits half a block), always closes, and then runs
    the `after_commit` callbacks, only if the commit succeeded. `writes` says the block
    will write: on SQLite it begins IMMEDIATE (see `_sqlite_begin`); PostgreSQL ignores it.
    `sessions` is a sessionmaker (the app's) or a database URL (its cached sessionmaker).
    """
    session = open_session(sessions, writes=writes)
    try:
        yield session
    except BaseException:
        end_session(session, failed=True)
        raise
    end_session(session, failed=False)


def open_session(sessions: sessionmaker[Session] | str, *, writes: bool) -> Session:
    """The session of a `transaction`, for a caller that cannot hold a `with` block (the
    request's session dependency, which ends it with `end_session`). No I/O: the session
    connects at its first statement."""
    factory = sessionmaker_for(sessions) if isinstance(sessions, str) else sessions
    return factory(execution_options={SQLITE_BEGIN_IMMEDIATE: True} if writes else {})


def end_session(session: Session, *, failed: bool) -> None:
    """End what `open_session` began: commit (or, when `failed`, roll back), close, then
    run the `after_commit` callbacks if the commit succeeded."""
    try:
        if failed:
            session.rollback()
        else:
            session.commit()
    except BaseException:
        if not failed:
            session.rollback()
        session.info.pop(AFTER_COMMIT, None)
        session.close()
        raise
    callbacks: list[Callable[[], None]] = session.info.pop(AFTER_COMMIT, [])
    session.close()
    if failed:
        return
    for callback in callbacks:
        callback()


def upgrade_database(url: str) -> None:
    """Apply every Alembic migration to `url` (creating a SQLite file as needed)."""
    from alembic import command
    from alembic.config import Config

    root = Path(__file__).resolve().parents[2]
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    config.attributes["url"] = url
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
