"""Row counts kept by the writers, so a report's exact `total` never counts the table.

Two counts, each moved by `n = n + :k` in the transaction that inserts or deletes the rows:

- `account_row_counts`: per account, how many invoices and line items it has (one row per
  (account, table)); the unfiltered total of each report family reads one row.
- `invoices.line_count`: per invoice, how many line items it has; a line items report filtered
  on invoice fields sums it over the matching invoices only.

Being ordinary rows changed in the writing transaction, the counts are exactly as old as the
rows they count in every snapshot (a reader sees both changes or neither). On PostgreSQL the
UPDATE takes the counter row's lock until commit, so concurrent writers of one account add
their deltas in turn; SQLite serialises writers anyway. Every writer updates the account's
counter last (after its inserts, deletes and invoice updates), so the locks are always taken
in the same order (docs/decisions.md "Row counts").
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledgerline.auth import AccountOwned, owned
from ledgerline.models import AccountRowCount, Invoice, LineItem

CountedModel = type[Invoice] | type[LineItem]
# One row per (account, table) and no `id`, so not an `AccountOwned` to the type checker;
# read through `owned` all the same, as every account-owned table is.
_COUNTS = cast("type[AccountOwned]", AccountRowCount)
COUNTED: tuple[CountedModel, ...] = (Invoice, LineItem)


def _dialect(executor: Session | Connection) -> str:
    if isinstance(executor, Session):
        return executor.get_bind().dialect.name
    return executor.dialect.name


def rows_added(
    executor: Session | Connection, account_id: int, model: CountedModel, count: int
) -> None:
    """Move the account's count of `model` rows by `count` (negative: rows deleted). Call it
    in the writing transaction, after the rows are written."""
    if count == 0:
        return
    insert: Any = postgresql.insert if _dialect(executor) == "postgresql" else sqlite.insert
    table = AccountRowCount.__table__
    executor.execute(
        insert(table)
        .values(account_id=account_id, entity=model.__tablename__, row_count=count)
        .on_conflict_do_update(
            index_elements=[table.c.account_id, table.c.entity],
            set_={"row_count": table.c.row_count + count},
        )
    )


def lines_added(
    executor: Session | Connection, account_id: int, invoice_id: int, count: int
) -> None:
    """`count` line items were inserted into (negative: deleted from) the invoice with internal
    key `invoice_id`: its line count, then the account's."""
    if count == 0:
        return
    executor.execute(
        update(Invoice)
        .where(owned(Invoice, account_id), Invoice.id == invoice_id)
        .values(line_count=Invoice.line_count + count)
        .execution_options(synchronize_session=False)
    )
    rows_added(executor, account_id, LineItem, count)


def account_rows(executor: Session | Connection, account_id: int, model: CountedModel) -> int:
    """How many `model` rows the account has, as of the caller's snapshot: one row read."""
    value = executor.execute(
        select(AccountRowCount.row_count).where(
            owned(_COUNTS, account_id),
            AccountRowCount.entity == model.__tablename__,
        )
    ).scalar_one_or_none()
    return int(value or 0)


def invoice_lines(executor: Session | Connection, account_id: int, where: list[Any]) -> int:
    """How many line items the account's invoices matching `where` (clauses on `invoices`
    only) have: the sum of their line counts, read from the invoices alone."""
    value = executor.execute(
        select(func.coalesce(func.sum(Invoice.line_count), 0)).where(
            owned(Invoice, account_id), *where
        )
    ).scalar_one()
    return int(value)
