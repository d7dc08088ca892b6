"""Credentials → `Principal`, and tenant scoping in one place. Free of the web framework, so
the command line can issue tokens without importing it; the request dependency built on
`authenticate` is `dependencies.PrincipalDep`.

Accepted forms (SPEC §3): `Token <key_id>.<secret>`, `Bearer <key_id>.<secret>`, and
`Basic base64(<key_id>:<secret>)`. A secret is 32 random bytes, so a single SHA-256 is a
sufficient one-way hash (a slow password hash protects low-entropy secrets, which these
are not) and keeps authentication to one indexed lookup.

What a lookup finds (the principal, the secret's hash, `last_used_at`) is kept in a
`KeyCache` of the process for `LEDGERLINE_TOKEN_CACHE_SECONDS` (5 s, at most
`KEY_CACHE_MAX_ENTRIES` keys): the lookup was a fifth of a cheap request's CPU (issue 11).
So a revoked key, or an account's changed zone or currency, is seen within that time rather
than by the next request; 0 turns the cache off. `last_used_at` is kept to within
`LAST_USED_GRANULARITY`: a request writes it only when the value it knows is older than that
(see `_record_use`), so the cost is one write per key per five minutes, not one per request.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from sqlalchemy import ColumnElement, Executable, FromClause, Select, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ledgerline.db import after_commit, transaction, utcnow
from ledgerline.errors import NotFound, Unauthorized
from ledgerline.models import Account, ApiKey

log = logging.getLogger("ledgerline.auth")

SCOPES = ("read", "write")
# How stale `api_keys.last_used_at` may be before a request writes it again.
LAST_USED_GRANULARITY = dt.timedelta(minutes=5)
# Keys one process keeps in its `KeyCache` at most: the least recently used goes first.
KEY_CACHE_MAX_ENTRIES = 10_000
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ledgerline", Basic realm="ledgerline"'}


@dataclass(frozen=True)
class Principal:
    account_id: int
    # The API key that authenticated: what the per-key rate limit counts against.
    key_id: str
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


def live_key(session: Session, key_id: str, secret: str) -> tuple[ApiKey, Account] | None:
    """The key (and its account) that `key_id` and `secret` name, unless it is revoked."""
    row = session.execute(
        across_accounts(
            select(ApiKey, Account)
            .join(Account, Account.id == ApiKey.account_id)
            .where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None))
        )
    ).first()
    if row is None or not hmac.compare_digest(row[0].secret_hash, hash_secret(secret)):
        return None
    return row[0], row[1]


@dataclass
class CachedKey:
    """What authenticating with one key needs, as a lookup found it."""

    principal: Principal
    secret_hash: str
    api_key_pk: int
    # The newest `last_used_at` this process knows of (read, or recorded since).
    last_used_at: dt.datetime | None
    expires_at: float  # on the cache's clock


class KeyCache:
    """Successful key lookups of one process, each for `seconds` after it was read from the
    database, at most `max_entries` of them (least recently used out first). Only what the
    database said of a live key is kept: a key that is unknown, revoked, or given with a
    wrong secret is looked up every time, so a new key works at once and a failure is never
    remembered. Entries are found by key id and the secret's hash must match the stored one,
    so a cached key answers only to its own secret. Shared by the threads of the process."""

    def __init__(
        self,
        seconds: float,
        max_entries: int = KEY_CACHE_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, CachedKey] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key_id: str, secret_hash: str) -> CachedKey | None:
        with self._lock:
            entry = self._entries.get(key_id)
            if entry is None:
                return None
            if entry.expires_at <= self.clock():
                del self._entries[key_id]
                return None
            self._entries.move_to_end(key_id)
        if not hmac.compare_digest(entry.secret_hash, secret_hash):
            return None
        return entry

    def put(self, key_id: str, entry: CachedKey) -> None:
        if self.seconds <= 0 or self.max_entries <= 0:
            return
        with self._lock:
            self._entries[key_id] = entry
            self._entries.move_to_end(key_id)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


class KeyNotCached(Exception):
    """`authenticate(..., lookup=False)` would have had to read the key."""


def authenticate(
    session: Session, header: str | None, cache: KeyCache | None = None, *, lookup: bool = True
) -> Principal:
    """The principal of the request's credentials, or 401. With a `cache`, a key looked up
    within its time is not read again; `session` is then not used for any statement (it
    only carries the after-commit record of `last_used_at`). With `lookup=False`, a key
    the cache does not hold raises `KeyNotCached` instead of being read (the caller is in
    the event loop and reads it on a thread)."""
    if not header:
        raise Unauthorized("Credentials are required.", headers=CHALLENGE)
    parsed = parse_authorization(header)
    if parsed is None:
        raise Unauthorized("The Authorization header is not a valid credential.", headers=CHALLENGE)
    key_id, secret = parsed
    now = utcnow()
    entry = cache.get(key_id, hash_secret(secret)) if cache is not None else None
    if entry is None:
        if not lookup:
            raise KeyNotCached(key_id)
        row = live_key(session, key_id, secret)
        if row is None:
            raise Unauthorized("The credentials are not valid.", headers=CHALLENGE)
        api_key, account = row
        entry = CachedKey(
            principal=Principal(
                account_id=account.id,
                key_id=api_key.key_id,
                scopes=frozenset(api_key.scopes.split()),
                timezone=account.timezone,
                currency=account.currency,
            ),
            secret_hash=api_key.secret_hash,
            api_key_pk=api_key.id,
            last_used_at=api_key.last_used_at,
            expires_at=cache.clock() + cache.seconds if cache is not None else 0.0,
        )
        if cache is not None:
            cache.put(key_id, entry)
    if entry.last_used_at is None or entry.last_used_at < now - LAST_USED_GRANULARITY:
        _record_use(session, entry.api_key_pk, now)
        # The other requests of this process need not record it again; if this one rolls
        # back, the next lookup reads the stored value and records it then.
        entry.last_used_at = now
    return entry.principal


def _record_use(session: Session, api_key_pk: int, now: dt.datetime) -> None:
    """Set the key's `last_used_at` once the request's transaction has committed, in a short
    write transaction of its own.

    Not in the request's transaction: a read request would then hold a write lock (all of
    SQLite's, or the key's row on PostgreSQL, blocking its other requests) until it ends,
    and on SQLite its read snapshot could not be upgraded to a write at all. The UPDATE is
    conditional, so of concurrent requests that all saw a stale value one changes the row.
    A request that fails (rolls back) does not count; recording is best-effort and never
    fails the request that triggered it.
    """
    engine = session.get_bind()
    stale_before = now - LAST_USED_GRANULARITY

    def record() -> None:
        try:
            with transaction(sessionmaker(bind=engine), writes=True) as own:
                own.execute(
                    across_accounts(  # the key authentication found, whoever owns it
                        update(ApiKey)
                        .where(
                            ApiKey.id == api_key_pk,
                            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < stale_before),
                        )
                        .values(last_used_at=now)
                        .execution_options(synchronize_session=False)
                    )
                )
        except Exception:
            log.warning("could not record a token's last use", exc_info=True)

    after_commit(session, record)


# ---- the command line's token lifecycle ------------------------------------------------------


class TokenNotFound(LookupError):
    """No API key with that key id."""


def list_tokens(session: Session, account_id: int) -> list[ApiKey]:
    """The account's keys, oldest first, revoked ones included (they say so)."""
    return list(
        session.execute(
            select(ApiKey).where(owned(ApiKey, account_id)).order_by(ApiKey.id)
        ).scalars()
    )


def revoke_token(session: Session, key_id: str) -> ApiKey:
    """Revoke the key now; revoking it again keeps the first `revoked_at`. Requests with it
    answer 401 once the API processes' `KeyCache` entries for it have lapsed
    (`LEDGERLINE_TOKEN_CACHE_SECONDS`, 5 s)."""
    session.execute(
        across_accounts(  # an operator's command: the key id names the key, in any account
            update(ApiKey)
            .where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    )
    key = session.execute(
        across_accounts(select(ApiKey).where(ApiKey.key_id == key_id))
    ).scalar_one_or_none()
    if key is None:
        raise TokenNotFound(key_id)
    return key


def token_json(key: ApiKey) -> dict[str, Any]:
    """What `tokens list` and `tokens revoke` print of a key: never its secret or hash."""

    def when(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "key_id": key.key_id,
        "account": key.account_id,
        "scopes": key.scopes.split(),
        "created_at": when(key.created_at),
        "last_used_at": when(key.last_used_at),
        "revoked_at": when(key.revoked_at),
    }


class AccountOwned(Protocol):
    """A table of customer data: every row belongs to one account (in the manner of polar's
    `ModelIDProtocol`). `scoped`, `get_owned_by_public_id` and `owned` take only such
    models, so passing a model without `account_id` is a type error, not a query that forgot
    the filter."""

    __table__: ClassVar[FromClause]

    @property
    def id(self) -> int: ...

    @property
    def account_id(self) -> int: ...


Owned = TypeVar("Owned", bound=AccountOwned)


class PubliclyNumbered(AccountOwned, Protocol):
    """An account-owned table whose API id is its per-account `public_id` (see
    `ledgerline.public_ids`): unique only together with the account."""

    @property
    def public_id(self) -> int: ...


Numbered = TypeVar("Numbered", bound=PubliclyNumbered)


def owned(model: type[AccountOwned], account_id: int) -> ColumnElement[bool]:
    """The account filter itself (the Core form), for statements that do not start from
    `scoped`: sums, updates, the reports' joined statements. `account_id = :account`."""
    condition: ColumnElement[bool] = model.__table__.c.account_id == account_id
    return condition


def scoped(model: type[Owned], principal: Principal) -> Select[Owned]:
    """`SELECT model WHERE account_id = principal's`: every read of customer data starts here
    (the ORM form)."""
    return select(model).where(owned(model, principal.account_id))


def get_owned_by_public_id(
    session: Session, model: type[Numbered], public_id: int, principal: Principal
) -> Numbered:
    """The principal's row with this public id, or 404 exactly as for an id that does not
    exist. A public id alone names a row in every account that has one; the account filter
    is what makes it this account's."""
    statement = scoped(model, principal).where(model.__table__.c.public_id == public_id)
    found: Numbered | None = session.execute(statement).scalar_one_or_none()
    if found is None:
        raise NotFound(f"No {model.__name__.lower()} with id {public_id}.")
    return found


Statement = TypeVar("Statement", bound=Executable)


def across_accounts(statement: Statement) -> Statement:
    """Mark a statement that acts for whichever account owns the rows, on purpose: the token
    lookup (the account is what it finds), and the job consumers and sweeps, which hold a job
    by its id and lease rather than by a principal. It returns the statement unchanged; it
    exists so that such a statement says so, and `tests/test_account_filter.py` accepts it
    where it would refuse a query on an account-owned table without `scoped`/`owned`."""
    return statement
