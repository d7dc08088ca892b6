"""Credentials → `Principal`, and tenant scoping in one place. Free of the web framework, so
the command line can issue tokens without importing it; the request dependency built on
`authenticate` is `dependencies.PrincipalDep`.

Accepted forms (SPEC §3): `Token <key_id>.<secret>`, `Bearer <key_id>.<secret>`, and
`Basic base64(<key_id>:<secret>)`. A secret is 32 random bytes, so a single SHA-256 is a
sufficient one-way hash (a slow password hash protects low-entropy secrets, which these
are not) and keeps authentication to one indexed lookup.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar

from sqlalchemy import ColumnElement, Executable, FromClause, Select, select
from sqlalchemy.orm import Session

from ledgerline.db import utcnow
from ledgerline.errors import NotFound, Unauthorized
from ledgerline.models import Account, ApiKey

SCOPES = ("read", "write")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ledgerline", Basic realm="ledgerline"'}


@dataclass(frozen=True)
class Principal:
    account_id: int
    scopes: frozenset[str]
    timezone: str
    currency: str


@dataclass(frozen=True)
class IssuedToken:
    key_id: str
    secret: str
    scopes: list[str]

    @property
    def token(self) -> str:
        return f"{self.key_id}.{self.secret}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(session: Session, account_id: int, scopes: list[str]) -> IssuedToken:
    """Create an API key; the returned secret is never stored or shown again."""
    key_id = "key_" + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiKey(
            account_id=account_id,
            key_id=key_id,
            secret_hash=hash_secret(secret),
            scopes=" ".join(sorted(set(scopes))),
            created_at=utcnow(),
        )
    )
    session.flush()
    return IssuedToken(key_id=key_id, secret=secret, scopes=sorted(set(scopes)))


def parse_authorization(header: str) -> tuple[str, str] | None:
    """(key_id, secret) from an Authorization header, or None when it is not one of ours."""
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    scheme = scheme.lower()
    if scheme in ("token", "bearer"):
        key_id, dot, secret = value.partition(".")
    elif scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        key_id, dot, secret = decoded.partition(":")
    else:
        return None
    if not dot or not key_id or not secret:
        return None
    return key_id, secret


def authenticate(session: Session, header: str | None) -> Principal:
    if not header:
        raise Unauthorized("Credentials are required.", headers=CHALLENGE)
    parsed = parse_authorization(header)
    if parsed is None:
        raise Unauthorized("The Authorization header is not a valid credential.", headers=CHALLENGE)
    key_id, secret = parsed
    row = session.execute(
        across_accounts(
            select(ApiKey, Account)
            .join(Account, Account.id == ApiKey.account_id)
            .where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None))
        )
    ).first()
    if row is None or not hmac.compare_digest(row[0].secret_hash, hash_secret(secret)):
        raise Unauthorized("The credentials are not valid.", headers=CHALLENGE)
    api_key, account = row
    return Principal(
        account_id=account.id,
        scopes=frozenset(api_key.scopes.split()),
        timezone=account.timezone,
        currency=account.currency,
    )


class AccountOwned(Protocol):
    """A table of customer data: every row belongs to one account (in the manner of polar's
    `ModelIDProtocol`). `scoped`, `get_owned` and `owned` take only such models, so passing a
    model without `account_id` is a type error, not a query that forgot the filter."""

    __table__: ClassVar[FromClause]

    @property
    def id(self) -> int: ...

    @property
    def account_id(self) -> int: ...


Owned = TypeVar("Owned", bound=AccountOwned)


def owned(model: type[AccountOwned], account_id: int) -> ColumnElement[bool]:
    """The account filter itself (the Core form), for statements that do not start from
    `scoped`: sums, updates, the reports' joined statements. `account_id = :account`."""
    condition: ColumnElement[bool] = model.__table__.c.account_id == account_id
    return condition


def scoped(model: type[Owned], principal: Principal) -> Select[Owned]:
    """`SELECT model WHERE account_id = principal's`: every read of customer data starts here
    (the ORM form)."""
    return select(model).where(owned(model, principal.account_id))


def get_owned(session: Session, model: type[Owned], ident: int, principal: Principal) -> Owned:
    """One row of the principal's account, or 404 exactly as for an id that does not exist."""
    statement = scoped(model, principal).where(model.__table__.c.id == ident)
    found: Owned | None = session.execute(statement).scalar_one_or_none()
    if found is None:
        raise NotFound(f"No {model.__name__.lower()} with id {ident}.")
    return found


Statement = TypeVar("Statement", bound=Executable)


def across_accounts(statement: Statement) -> Statement:
    """Mark a statement that acts for whichever account owns the rows, on purpose: the token
    lookup (the account is what it finds), and the job consumers and sweeps, which hold a job
    by its id and lease rather than by a principal. It returns the statement unchanged; it
    exists so that such a statement says so, and `tests/test_account_filter.py` accepts it
    where it would refuse a query on an account-owned table without `scoped`/`owned`."""
    return statement
