"""Invoice numbers: unique per account, given by the client or allocated as INV-000001.

A given number that is taken is a 409; an allocated one is retried in a savepoint when a
concurrent writer took it first, under a lock on the account row so auto-numbered creates of
one account take turns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledgerline.auth import Principal, scoped
from ledgerline.errors import Conflict
from ledgerline.models import Account, Invoice

NUMBER_PREFIX = "INV-"
_AUTO_NUMBER_ATTEMPTS = 20


class InvoiceNumberTaken(Conflict):
    code = "invoice-number-taken"


def number_taken(session: Session, principal: Principal, number: str) -> bool:
    return (
        session.execute(
            scoped(Invoice, principal).where(Invoice.number == number).with_only_columns(Invoice.id)
        ).first()
        is not None
    )


def _next_number(session: Session, principal: Principal) -> str:
    """INV-000001-style: one more than the highest `INV-<digits>` among the account's most
    recent invoices; if a hand-given number already holds that, one more than the highest of
    all of them. The common case reads a few rows through the (account_id, id) index."""
    auto_numbers = scoped(Invoice, principal).where(Invoice.number.like(NUMBER_PREFIX + "%"))
    recent = session.execute(
        auto_numbers.order_by(Invoice.id.desc()).limit(50).with_only_columns(Invoice.number)
    ).scalars()
    candidate = f"{NUMBER_PREFIX}{_highest_auto(recent) + 1:06d}"
    if not number_taken(session, principal, candidate):
        return candidate
    every = session.execute(auto_numbers.with_only_columns(Invoice.number)).scalars()
    return f"{NUMBER_PREFIX}{_highest_auto(every) + 1:06d}"


def _highest_auto(numbers: Iterable[str]) -> int:
    highest = 0
    for number in numbers:
        suffix = number[len(NUMBER_PREFIX) :]
        if _AUTO_DIGITS.match(suffix):
            highest = max(highest, int(suffix))
    return highest


_AUTO_DIGITS = re.compile(r"^[0-9]{1,18}$")


def number_taken_error(number: str) -> InvoiceNumberTaken:
    return InvoiceNumberTaken(
        f"Invoice number {number!r} is already used in this account.",
        errors=[{"loc": ["body", "number"], "msg": "already used"}],
    )


def insert_invoice(session: Session, principal: Principal, invoice: Invoice, auto: bool) -> None:
    """Insert; a number clash with a concurrent writer is a 409 for a given number, or the
    next auto number (the insert runs in a savepoint so a clash can be retried)."""
    if not auto:
        session.add(invoice)
        try:
            session.flush()
        except IntegrityError as exc:  # the request's transaction is rolled back
            raise number_taken_error(invoice.number) from exc
        return
    # Auto-numbered creates of one account take turns (PostgreSQL row lock, held to commit;
    # NO KEY UPDATE so inserts referencing the account are not blocked). SQLite serialises
    # writers anyway. The savepoint retry below covers a racing hand-given number.
    session.execute(
        select(Account.id).where(Account.id == principal.account_id).with_for_update(key_share=True)
    )
    invoice.number = _next_number(session, principal)
    for _attempt in range(_AUTO_NUMBER_ATTEMPTS):
        try:
            with session.begin_nested():
                session.add(invoice)
                session.flush()
            return
        except IntegrityError:
            invoice.number = _next_number(session, principal)
    raise Conflict("Could not allocate an invoice number; try again.")
