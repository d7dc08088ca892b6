"""Per-account public ids: what the API shows as a TeamUp-shaped record's integer `id`.

A global autoincrement key shown as the id would tell an account how many invoices every
other account created between two of its own. So each account numbers its own venues,
customers, invoices, line items and jobs 1, 2, 3… in creation order (`public_id`, unique per
(account_id, public_id)); the internal primary and foreign keys stay as they are and joins
keep using them. Only the API boundary translates: paths and references in bodies are looked
up by (account, public id) (`auth.get_owned_by_public_id`, `scoped(...)` on `public_id`), and
rendered references are mapped back (`public_ids_of`). Per-account numbers keep `id_gt`
(incremental sync) and sorting by id meaningful, which random ids would not.

Allocation is one statement on `account_counters`, one row per (account, table):

    INSERT … VALUES (:account, :table, :count)
    ON CONFLICT (account_id, entity) DO UPDATE SET last_value = last_value + :count
    RETURNING last_value

On PostgreSQL the row lock it takes (held to commit) makes concurrent writers of the same
account and table take turns, and nobody else; on SQLite a writing transaction already holds
the database's write lock from `BEGIN IMMEDIATE`. A rolled-back transaction gives its block
back with it, so ids are consecutive unless a row is deleted. A batch of 1,000 line items
takes one block of 1,000 in the same statement.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledgerline.auth import owned
from ledgerline.models import (
    AccountCounter,
    Customer,
    ExportSchedule,
    Invoice,
    Job,
    LineItem,
    Venue,
    WebhookDelivery,
    WebhookEndpoint,
)

# The tables numbered per account; `entity` in account_counters is the table name.
NumberedModel = (
    type[Venue]
    | type[Customer]
    | type[Invoice]
    | type[LineItem]
    | type[Job]
    | type[WebhookEndpoint]
    | type[WebhookDelivery]
    | type[ExportSchedule]
)


def allocate(
    executor: Session | Connection, account_id: int, model: NumberedModel, count: int = 1
) -> int:
    """Reserve `count` consecutive public ids of `model` in the account; the first of them.

    Call it in the transaction that inserts the rows, right before inserting them (the
    reservation lasts as long as that transaction, and its row lock too on PostgreSQL).
    """
    if count < 1:
        raise ValueError("allocate at least one id")
    dialect = (
        executor.get_bind().dialect.name if isinstance(executor, Session) else executor.dialect.name
    )
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = AccountCounter.__table__
    statement = (
        insert(table)
        .values(account_id=account_id, entity=model.__tablename__, last_value=count)
        .on_conflict_do_update(
            index_elements=[table.c.account_id, table.c.entity],
            set_={"last_value": table.c.last_value + count},
        )
        .returning(table.c.last_value)
    )
    last = int(executor.execute(statement).scalar_one())
    return last - count + 1


def public_ids_of(
    session: Session, model: NumberedModel, account_id: int, ids: Collection[int]
) -> dict[int, int]:
    """internal id → public id, for rows of the account (references a response shows)."""
    if not ids:
        return {}
    rows = session.execute(
        select(model.id, model.public_id).where(owned(model, account_id), model.id.in_(list(ids)))
    ).all()
    return {int(row[0]): int(row[1]) for row in rows}
