"""Accounts: created from the command line, the tenant every record belongs to."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from ledgerline.db import utcnow
from ledgerline.models import Account
from ledgerline.money import MoneyError, normalise_currency


class AccountInputError(ValueError):
    pass


def create_account(session: Session, name: str, currency: str, timezone: str) -> Account:
    if not name.strip():
        raise AccountInputError("name must not be empty")
    try:
        code = normalise_currency(currency)
    except MoneyError as exc:
        raise AccountInputError(str(exc)) from exc
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise AccountInputError(f"'{timezone}' is not an IANA time zone") from exc
    account = Account(name=name.strip(), currency=code, timezone=timezone, created_at=utcnow())
    session.add(account)
    session.flush()
    return account


def account_json(account: Account) -> dict[str, object]:
    return {
        "id": account.id,
        "object": "account",
        "name": account.name,
        "currency": account.currency,
        "timezone": account.timezone,
        "created_at": account.created_at.isoformat(),
    }
