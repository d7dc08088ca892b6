"""The per-request dependencies: the database session (commit once at the end of a successful
request), the principal (credentials within the rate limits), declared parameters only.

Work that must happen only once the transaction is durable (handing a job to the queue)
is registered with `after_commit` and runs after the commit, never on rollback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from ledgerline.auth import KeyNotCached, Principal, authenticate
from ledgerline.db import AFTER_COMMIT, end_session, open_session

# Re-exported: endpoints register after-commit work beside the session they depend on.
from ledgerline.db import after_commit as after_commit
from ledgerline.errors import Forbidden, Unauthorized, ValidationFailed
from ledgerline.ratelimit import RateLimits, forwarded_client


def request_now(request: Request) -> dt.datetime:
    """The app's clock (`app.state.clock`, `db.utcnow` unless a test fixes it): the instant
    relative filters such as timeframes are resolved at."""
    clock: Callable[[], dt.datetime] = request.app.state.clock
    return clock()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's session: opened here, in the event loop (a session connects at its first
    statement, not before), and ended in one hop to the thread pool (commit or roll back,
    close, the after-commit work), only if a statement ran. The work that needs the database
    runs on threads (the endpoint's); the loop only opens and hands on (issue 11: each hop
    costs a thread wake-up both ways)."""
    writes = request.method not in ("GET", "HEAD", "OPTIONS")
    session = open_session(request.app.state.sessionmaker, writes=writes)
    try:
        yield session
    except BaseException:
        await _end(session, failed=True)
        raise
    await _end(session, failed=False)


async def _end(session: Session, *, failed: bool) -> None:
    if not session.in_transaction() and not session.info.get(AFTER_COMMIT):
        end_session(session, failed=failed)  # nothing to commit: no I/O
        return
    # Shielded: a request cancelled (its client gone) while its session ends still ends it
    # (rolled back, or committed when the endpoint had finished), never half.
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(partial(end_session, session, failed=failed))


# scope="function": the commit (and the after-commit work) happens before the response is
# sent, so a client never sees success for a write that then failed to commit.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def client_address(request: Request) -> str:
    """The address the failed-authentication limit counts: the peer's as the server saw it
    (hypercorn trusts no proxy header), or, from a proxy in `LEDGERLINE_TRUSTED_PROXIES`, the
    client it forwarded for (docs/decisions.md, issue 10)."""
    peer = request.client.host if request.client is not None else "unknown"
    proxies = request.app.state.trusted_proxies
    if not proxies:
        return peer
    return forwarded_client(peer, request.headers.getlist("x-forwarded-for"), proxies)


def authenticate_request(request: Request, session: Session, *, lookup: bool = True) -> Principal:
    """The request's credentials, within the rate limits (SPEC §6), before any endpoint work:

    1. an address past its failed-authentication limit is refused (429) without its
       credentials being read;
    2. a failed authentication (401) counts against the address;
    3. an authenticated request counts against its API key: past the limit, 429. Where the
       key stands goes into `request.state` for the `RateLimit-*` headers of the answer.

    A 429 raised here rolls the request's transaction back: nothing is written. The key's
    lookup is answered from the app's `KeyCache` when it holds the key (no statement runs);
    with `lookup=False` a key it does not hold raises `KeyNotCached`, nothing counted.
    """
    limits: RateLimits = request.app.state.rate_limits
    address = client_address(request)
    limits.refuse_blocked_address(address)
    try:
        principal = authenticate(
            session,
            request.headers.get("authorization"),
            request.app.state.key_cache,
            lookup=lookup,
        )
    except Unauthorized:
        limits.count_failed_authentication(address)
        raise
    quota = limits.count_request(principal.key_id)
    if quota is not None:
        request.state.rate_limit_headers = quota.headers()
    return principal


async def _principal(request: Request, session: SessionDep) -> Principal:
    """Authenticate, then require `read` for GET/HEAD and `write` for everything else. In
    the event loop when that needs no I/O (a key the cache holds, rate limits counted in
    this process's memory), else on a thread."""
    principal: Principal | None = None
    if request.app.state.auth_in_event_loop:
        with contextlib.suppress(KeyNotCached):
            principal = authenticate_request(request, session, lookup=False)
    if principal is None:
        principal = await anyio.to_thread.run_sync(authenticate_request, request, session)
    needed = "read" if request.method in ("GET", "HEAD") else "write"
    if needed not in principal.scopes:
        raise Forbidden(f"This token lacks the '{needed}' scope.")
    return principal


PrincipalDep = Annotated[Principal, Depends(_principal)]


# ---- declared parameters only ----------------------------------------------------------------

# An integer on the wire is ASCII digits with an optional minus: pydantic would also read
# " 12", "+12", "12.0" and "1_000", and a client that sends those has made a mistake.
_ASCII_INTEGER = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class DeclaredParameters:
    """The query parameters a route declares (through any of its dependencies)."""

    query: frozenset[str]
    integer_query: frozenset[str]
    integer_path: frozenset[str]


def _is_integer(annotation: Any) -> bool:
    if annotation is int:
        return True
    return get_origin(annotation) in (Union, UnionType) and int in get_args(annotation)


def declared_parameters(
    dependant: Dependant, openapi_extra: dict[str, Any] | None = None
) -> DeclaredParameters:
    """The route's parameters: its dependencies' and those only documented in its
    `openapi_extra` (the reports', which their endpoints parse themselves)."""
    query: set[str] = {
        parameter["name"]
        for parameter in (openapi_extra or {}).get("parameters", [])
        if parameter.get("in") == "query"
    }
    integer_query: set[str] = set()
    integer_path: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        for param in current.query_params:
            query.add(param.alias)
            if _is_integer(param.field_info.annotation):
                integer_query.add(param.alias)
        for param in current.path_params:
            if _is_integer(param.field_info.annotation):
                integer_path.add(param.alias)
        pending.extend(current.dependencies)
    return DeclaredParameters(frozenset(query), frozenset(integer_query), frozenset(integer_path))


_DECLARED: dict[int, DeclaredParameters] = {}


async def declared_parameters_only(request: Request) -> None:
    """Refuse, with a 422 naming it, any query parameter the route does not declare, and any
    integer parameter not written in ASCII digits (SPEC §6: a parameter is honoured or refused,
    never silently ignored). `name[]` counts as `name`, the form-encoding of a list. Async:
    it only reads the request, so it runs in the event loop, not on a thread."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    declared = _DECLARED.get(id(route))
    if declared is None:
        declared = declared_parameters(route.dependant, route.openapi_extra)
        _DECLARED[id(route)] = declared
    for key, value in request.query_params.multi_items():
        name = key.removesuffix("[]")
        if name not in declared.query:
            raise ValidationFailed.field(["query", key], "is not a parameter of this endpoint")
        if name in declared.integer_query and value and not _ASCII_INTEGER.fullmatch(value):
            raise ValidationFailed.field(["query", key], "must be an integer in ASCII digits")
    for name in declared.integer_path:
        value = str(request.path_params.get(name, ""))
        if not _ASCII_INTEGER.fullmatch(value):
            raise ValidationFailed.field(["path", name], "must be an integer in ASCII digits")
