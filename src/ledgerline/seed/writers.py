"""The seed's bulk writers, one per database: DBAPI `executemany` on SQLite and `COPY` on
PostgreSQL, one transaction per chunk, each on its own raw connection (a bulk load is not a
request; its commit and rollback are the connection's own).

Each writer takes its database's write lock before it reads the highest ids (`next_ids`), so
the generator's explicit ids cannot collide with a concurrent writer's. The account's public
id counters (`account_counters`, see `ledgerline.public_ids`) are read under the same lock
(on PostgreSQL their rows are locked first, `FOR UPDATE`, as the API's allocation does) and
moved past the public ids the chunk used before it commits: one block per table per chunk.
The row counts (`ledgerline.row_counts`) move in the same transaction: each invoice is
written with its line count (a chunk holds every line of its invoices), and the account's
counts of invoices and line items are moved by the chunk's, last, as the API's writers do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from ledgerline.seed.generate import Chunk, Ids, Spelling

# SQLAlchemy's SQLite DATETIME text form (naive UTC) and its CHAR(32) UUIDs.
SQLITE_SPELLING = Spelling(timestamp_suffix=".000000", uuid_as_hex=True)
POSTGRES_SPELLING = Spelling(timestamp_suffix="+00", uuid_as_hex=False)


VENUE_COLUMNS = ("id", "public_id", "account_id", "name", "created_at")
CUSTOMER_COLUMNS = ("id", "public_id", "account_id", "name", "email", "venue_id", "created_at")
INVOICE_COLUMNS = (
    "id",
    "public_id",
    "account_id",
    "customer_id",
    "number",
    "status",
    "currency",
    "due_date",
    "is_credit_note",
    "discount_code_name",
    "discount_code_code",
    "created_at",
    "updated_at",
    "confirmed_at",
    "paid_at",
    "line_count",  # not generated: `_with_line_counts` appends it
)
GROUP_COLUMNS = (
    "id",
    "public_id",
    "account_id",
    "invoice_id",
    "index",
    "title",
    "description",
    "created_at",
)
LINE_COLUMNS = (
    "id",
    "public_id",
    "account_id",
    "invoice_id",
    "group_id",
    "type",
    "billed_item_object",
    "billed_item_id",
    "description",
    "currency",
    "quantity_micros",
    "unit_price_micros",
    "amount",
    "tax_rate_micros",
    "tax_amount",
    "discount_amount",
    "credit_amount",
    "refund_amount",
    "created_at",
)
# Parents before children.
TABLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("venues", "venues", VENUE_COLUMNS),
    ("customers", "customers", CUSTOMER_COLUMNS),
    ("invoices", "invoices", INVOICE_COLUMNS),
    ("groups", "line_item_groups", GROUP_COLUMNS),
    ("lines", "line_items", LINE_COLUMNS),
)


# The public id counter of each numbered table the seed writes, and the `Ids` field that
# holds its next value.
COUNTERS: tuple[tuple[str, str], ...] = (
    ("customers", "customer_public"),
    ("invoices", "invoice_public"),
    ("line_items", "line_public"),
    ("venues", "venue_public"),
)
# Makes sure the account has a row per counter, so `FOR UPDATE` has rows to lock.
_ENSURE_COUNTERS = (
    "INSERT INTO account_counters (account_id, entity, last_value) VALUES {rows} "
    "ON CONFLICT (account_id, entity) DO NOTHING"
)
_READ_COUNTERS = (
    "SELECT entity, last_value FROM account_counters WHERE account_id = {param} "
    "ORDER BY entity{lock}"
)
_WRITE_COUNTER = (
    "UPDATE account_counters SET last_value = {param} "
    "WHERE account_id = {param} AND entity = {param}"
)


# Moves an account's count of one table's rows (`row_counts.rows_added`, in plain SQL).
_ADD_ROWS = (
    "INSERT INTO account_row_counts (account_id, entity, row_count) "
    "VALUES ({param}, {param}, {param}) ON CONFLICT (account_id, entity) "
    "DO UPDATE SET row_count = account_row_counts.row_count + excluded.row_count"
)
_INVOICE_KEY = LINE_COLUMNS.index("invoice_id")


def _with_line_counts(chunk: Chunk) -> None:
    """Append each invoice's line count to its row (the lines are all in the same chunk)."""
    counts = Counter(line[_INVOICE_KEY] for line in chunk.lines)
    chunk.invoices = [(*row, counts[row[0]]) for row in chunk.invoices]


def _row_count_updates(account_id: int, chunk: Chunk) -> list[tuple[int, str, int]]:
    return [
        (account_id, "invoices", len(chunk.invoices)),
        (account_id, "line_items", len(chunk.lines)),
    ]


def _column_list(columns: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in columns)


def _with_public_ids(ids: Ids, counters: dict[str, int]) -> Ids:
    """`ids` with each table's next public id: one past the account's counter."""
    for entity, attribute in COUNTERS:
        setattr(ids, attribute, counters[entity] + 1)
    return ids


def _counter_updates(account_id: int, ids: Ids) -> list[tuple[int, int, str]]:
    """(last value, account, entity) of each counter after the chunk: its last public id."""
    return [(getattr(ids, attribute) - 1, account_id, entity) for entity, attribute in COUNTERS]


class BulkWriter:
    """One database's bulk path, on a raw DBAPI connection of the engine (not a session: the
    writer commits one transaction per chunk itself)."""

    spelling: Spelling

    def __init__(self, engine: Engine) -> None:
        self.raw = engine.raw_connection()
        connection = self.raw.driver_connection
        assert connection is not None
        self.connection: Any = connection

    def next_ids(self, account_id: int) -> Ids:
        """Take the write lock and read the next free ids (the account's public ones too)."""
        raise NotImplementedError

    def write(self, chunk: Chunk, account_id: int, ids: Ids) -> None:
        """Insert the chunk, move the account's counters to `ids` (the next free public ids
        after it) and commit."""
        raise NotImplementedError

    def analyze(self) -> None:
        """Refresh the planner's statistics for the seeded tables after a bulk load."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


SEEDED_TABLES = ("venues", "customers", "invoices", "line_item_groups", "line_items")


class _SqliteWriter(BulkWriter):
    """`executemany` in one transaction per chunk; BEGIN IMMEDIATE takes the write lock
    before the highest ids are read.

    Foreign keys are not checked row by row while it writes (the pragma is per connection and
    restored on close): every reference is to a row this run wrote before or to the account,
    checked first. That is a third of SQLite's work per line item.
    """

    spelling = SQLITE_SPELLING

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.connection.execute("PRAGMA foreign_keys=OFF")

    def next_ids(self, account_id: int) -> Ids:
        self.connection.execute("BEGIN IMMEDIATE")
        values = [
            self.connection.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()[0]
            for table in ("venues", "customers", "invoices", "line_item_groups", "line_items")
        ]
        rows = ", ".join("(?, ?, 0)" for _ in COUNTERS)
        self.connection.execute(
            _ENSURE_COUNTERS.format(rows=rows),
            [value for entity, _ in COUNTERS for value in (account_id, entity)],
        )
        counters = self.connection.execute(
            _READ_COUNTERS.format(param="?", lock=""), (account_id,)
        ).fetchall()
        return _with_public_ids(Ids(*values), dict(counters))

    def write(self, chunk: Chunk, account_id: int, ids: Ids) -> None:
        _with_line_counts(chunk)
        try:
            for key, table, columns in TABLES:
                rows: list[Any] = getattr(chunk, key)
                if not rows:
                    continue
                placeholders = ", ".join("?" for _ in columns)
                self.connection.executemany(
                    f"INSERT INTO {table} ({_column_list(columns)}) VALUES ({placeholders})",
                    rows,
                )
            self.connection.executemany(
                _WRITE_COUNTER.format(param="?"), _counter_updates(account_id, ids)
            )
            self.connection.executemany(
                _ADD_ROWS.format(param="?"), _row_count_updates(account_id, chunk)
            )
            self.connection.execute("COMMIT")
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise

    def analyze(self) -> None:
        # Without statistics SQLite's planner guesses; with them it picks the covering
        # indexes for counts and the grouped report (docs/performance.md).
        for table in SEEDED_TABLES:
            self.connection.execute(f"ANALYZE {table}")

    def close(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")
        self.connection.execute("PRAGMA foreign_keys=ON")
        self.raw.close()


class _PostgresWriter(BulkWriter):
    """COPY in one transaction per chunk, under a lock that lets readers through but holds
    other writers back; the id sequences are moved past the ids used."""

    spelling = POSTGRES_SPELLING

    def next_ids(self, account_id: int) -> Ids:
        cursor = self.connection.cursor()
        # The counters' rows before the tables: the API locks a counter row and then inserts,
        # so taking them in the other order could deadlock with a request of this account.
        rows = ", ".join("(%s, %s, 0)" for _ in COUNTERS)
        cursor.execute(
            _ENSURE_COUNTERS.format(rows=rows),
            [value for entity, _ in COUNTERS for value in (account_id, entity)],
        )
        cursor.execute(_READ_COUNTERS.format(param="%s", lock=" FOR UPDATE"), (account_id,))
        counters = dict(cursor.fetchall())
        cursor.execute(f"LOCK TABLE {', '.join(SEEDED_TABLES)} IN SHARE ROW EXCLUSIVE MODE")
        values = []
        for table in SEEDED_TABLES:
            cursor.execute(
                f"SELECT GREATEST(COALESCE(MAX(id), 0) + 1,"
                f" nextval(pg_get_serial_sequence('{table}', 'id'))) FROM {table}"
            )
            values.append(cursor.fetchone()[0])
        return _with_public_ids(Ids(*values), counters)

    def write(self, chunk: Chunk, account_id: int, ids: Ids) -> None:
        _with_line_counts(chunk)
        cursor = self.connection.cursor()
        try:
            for key, table, columns in TABLES:
                rows: list[Any] = getattr(chunk, key)
                if not rows:
                    continue
                with cursor.copy(f"COPY {table} ({_column_list(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT MAX(id) FROM {table}))"
                )
            cursor.executemany(_WRITE_COUNTER.format(param="%s"), _counter_updates(account_id, ids))
            cursor.executemany(_ADD_ROWS.format(param="%s"), _row_count_updates(account_id, chunk))
            self.connection.commit()
        except BaseException:
            self.connection.rollback()
            raise

    def analyze(self) -> None:
        # VACUUM cannot run in a transaction. It sets the visibility map of the freshly
        # copied pages, so a count is an index-only scan with no heap fetches, and ANALYZE
        # gives the planner the new row counts.
        self.connection.rollback()
        self.connection.autocommit = True
        try:
            self.connection.execute(f"VACUUM (ANALYZE) {', '.join(SEEDED_TABLES)}")
        finally:
            self.connection.autocommit = False

    def close(self) -> None:
        self.connection.rollback()  # nothing is pending unless a chunk failed half-way
        self.raw.close()


def writer_for(engine: Engine) -> BulkWriter:
    """The bulk writer for the engine's database."""
    return _SqliteWriter(engine) if engine.dialect.name == "sqlite" else _PostgresWriter(engine)
