"""The console's sign-in: sessions, one-time sign-in links and CSRF tokens.

Free of the web framework, so `ledgerline console-link` issues links without loading it.
Session ids and link tokens are 32 random bytes; only their SHA-256 is stored (as for API
keys, a single hash is enough for a secret of that entropy, and a lookup stays one probe).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from ledgerline.auth import Principal, across_accounts, hash_secret, live_key, owned
from ledgerline.models import Account, ApiKey, ConsoleLink, ConsoleSession

SESSION_LIFETIME = dt.timedelta(hours=8)
LINK_MINUTES = 15
# Sessions made from a link may export: the operator who ran `console-link` chose to let
# this person in, as they would hand over a read-write token.
LINK_SCOPES = ("read", "write")


@dataclass(frozen=True)
class SignedIn:
    """A live console session: who it acts for and the raw id behind its CSRF token."""

    principal: Principal
    account_name: str
    session_pk: int


def issue_link(
    session: Session, account_id: int, now: dt.datetime, minutes: int = LINK_MINUTES
) -> tuple[str, dt.datetime]:
    """A one-time sign-in token and when it stops working; the token is shown only now."""
    token = secrets.token_urlsafe(32)
    expires_at = now + dt.timedelta(minutes=minutes)
    session.add(
        ConsoleLink(
            account_id=account_id,
            token_hash=hash_secret(token),
            created_at=now,
            expires_at=expires_at,
        )
    )
    session.flush()
    return token, expires_at


def redeem_link(session: Session, token: str, now: dt.datetime) -> int | None:
    """The account a live, unused link signs in to, marking it used; None otherwise.

    One conditional UPDATE: of two browsers racing with the same link exactly one wins.
    """
    digest = hash_secret(token)
    result = session.execute(
        across_accounts(  # the link is what tells us the account
            update(ConsoleLink)
            .where(
                ConsoleLink.token_hash == digest,
                ConsoleLink.used_at.is_(None),
                ConsoleLink.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    assert isinstance(result, CursorResult)
    if result.rowcount != 1:
        return None
    account_id: int = session.execute(
        across_accounts(select(ConsoleLink.account_id).where(ConsoleLink.token_hash == digest))
    ).scalar_one()
    return account_id


@dataclass(frozen=True)
class TokenSignIn:
    account_id: int
    scopes: tuple[str, ...]
    api_key_pk: int


def check_token(session: Session, text: str) -> TokenSignIn | None:
    """Who a live API token with at least `read` signs in as; None otherwise.

    Accepts the token as `make run` prints it, or pasted with its `Token `/`Bearer ` prefix.
    """
    words = text.strip().split()
    key_id, dot, secret = (words[-1] if words else "").partition(".")
    if not dot or not key_id or not secret:
        return None
    found = live_key(session, key_id, secret)
    if found is None:
        return None
    scopes = tuple(sorted(found[0].scopes.split()))
    if "read" not in scopes:
        return None
    return TokenSignIn(found[1].id, scopes, found[0].id)


def start_session(
    session: Session,
    account_id: int,
    scopes: tuple[str, ...],
    now: dt.datetime,
    api_key_pk: int | None = None,
) -> str:
    """A new session; returns the raw id for the cookie (never stored)."""
    raw_id = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            account_id=account_id,
            session_hash=hash_secret(raw_id),
            scopes=" ".join(scopes),
            api_key_id=api_key_pk,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    session.flush()
    return raw_id


def load_session(session: Session, raw_id: str, now: dt.datetime) -> SignedIn | None:
    """The live session a cookie names: not signed out and not expired."""
    console_session = session.execute(
        across_accounts(  # the cookie is what tells us the account
            select(ConsoleSession).where(
                ConsoleSession.session_hash == hash_secret(raw_id),
                ConsoleSession.ended_at.is_(None),
                ConsoleSession.expires_at > now,
            )
        )
    ).scalar_one_or_none()
    if console_session is None or _token_revoked(session, console_session):
        return None
    account = session.get(Account, console_session.account_id)
    if account is None:
        return None
    principal = Principal(
        account_id=account.id,
        # No API key stands behind a link's session; the console's pages are not counted
        # by the API's per-key limit, so this only names the session in that field.
        key_id=f"console-session-{console_session.id}",
        scopes=frozenset(console_session.scopes.split()),
        timezone=account.timezone,
        currency=account.currency,
    )
    return SignedIn(principal, account.name, console_session.id)


def _token_revoked(session: Session, console_session: ConsoleSession) -> bool:
    """Whether the token this session signed in with has been revoked since (a session from a
    one-time link has none)."""
    if console_session.api_key_id is None:
        return False
    revoked = session.execute(
        select(ApiKey.revoked_at).where(
            owned(ApiKey, console_session.account_id), ApiKey.id == console_session.api_key_id
        )
    ).first()
    return revoked is None or revoked[0] is not None


def end_session(session: Session, signed_in: SignedIn, now: dt.datetime) -> None:
    session.execute(
        update(ConsoleSession)
        .where(
            owned(ConsoleSession, signed_in.principal.account_id),
            ConsoleSession.id == signed_in.session_pk,
        )
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )


def csrf_token(secret_key: str, raw_id: str) -> str:
    """The CSRF token of a session (or of a signed-out browser's pre-session cookie): an HMAC
    of the raw id, so it needs no storage and a page of another session cannot forge it."""
    return hmac.new(secret_key.encode(), b"csrf:" + raw_id.encode(), hashlib.sha256).hexdigest()


def csrf_matches(secret_key: str, raw_id: str | None, sent: str | None) -> bool:
    if not raw_id or not sent:
        return False
    return hmac.compare_digest(csrf_token(secret_key, raw_id), sent)
