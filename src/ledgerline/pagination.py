"""TeamUp offset pages and Sequence's opaque keyset cursors.

A cursor names a position (the group's creation sequence) inside one scope (one invoice of
one account) and is signed with the server key, so a cursor edited by hand, or taken from
another invoice or account, is refused with 400 instead of revealing or skipping rows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from pydantic import WithJsonSchema
from starlette.responses import Response

from ledgerline.errors import BadRequest, ConflictingParameters, ValidationFailed
from ledgerline.http import JSONResponse

MAX_PAGE_SIZE = 100
# Larger offsets are refused here rather than handed to the database (a BIGINT overflow there).
MAX_OFFSET = 2**53
# The highest page number, whatever its size: the document states one bound for `page`.
MAX_PAGE = MAX_OFFSET // MAX_PAGE_SIZE + 1


class CursorInvalid(BadRequest):
    code = "cursor-invalid"


def _tag(key: str, payload: str) -> str:
    digest = hmac.new(key.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode().rstrip("=")


def encode_cursor(key: str, scope: str, position: int) -> str:
    payload = f"{scope}:{position}"
    raw = f"{payload}.{_tag(key, payload)}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(key: str, scope: str, cursor: str, *, param: str) -> int:
    """The position in `cursor`, or 400 naming `param` if it is not one of ours for `scope`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        payload, _, tag = raw.rpartition(".")
        cursor_scope, _, position = payload.rpartition(":")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise CursorInvalid(
            f"{param} is not a valid cursor.",
            errors=[{"loc": ["query", param], "msg": "invalid cursor"}],
        ) from exc
    if (
        not payload
        or not hmac.compare_digest(tag, _tag(key, payload))
        or cursor_scope != scope
        or not position.isdigit()
    ):
        raise CursorInvalid(
            f"{param} is not a valid cursor for this list.",
            errors=[{"loc": ["query", param], "msg": "invalid cursor"}],
        )
    return int(position)


@dataclass(frozen=True)
class OffsetPage:
    limit: int
    offset: int


def offset_page(
    limit: int | None,
    offset: int | None,
    page: int | None,
    page_size: int | None,
    *,
    default_limit: int = 50,
) -> OffsetPage:
    """`limit`/`offset` or `page` (from 1)/`page_size`; both bounded to 1..100 rows."""
    if (page is not None or page_size is not None) and (limit is not None or offset is not None):
        raise ConflictingParameters.field(
            ["query", "page"], "use either limit/offset or page/page_size"
        )
    if page is not None or page_size is not None:
        size = default_limit if page_size is None else page_size
        number = 1 if page is None else page
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValidationFailed.field(
                ["query", "page_size"], f"must be between 1 and {MAX_PAGE_SIZE}"
            )
        if not 1 <= number <= MAX_PAGE:
            raise ValidationFailed.field(["query", "page"], f"must be between 1 and {MAX_PAGE}")
        return _bounded(OffsetPage(limit=size, offset=(number - 1) * size), "page")
    size = default_limit if limit is None else limit
    start = 0 if offset is None else offset
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValidationFailed.field(["query", "limit"], f"must be between 1 and {MAX_PAGE_SIZE}")
    if start < 0:
        raise ValidationFailed.field(["query", "offset"], "must be 0 or more")
    return _bounded(OffsetPage(limit=size, offset=start), "offset")


def _bounded(window: OffsetPage, name: str) -> OffsetPage:
    if window.offset > MAX_OFFSET:
        raise ValidationFailed.field(["query", name], f"is too large (at most {MAX_OFFSET})")
    return window


def page_links(request: Request, page: OffsetPage, count: int) -> tuple[str | None, str | None]:
    """Full `next` and `previous` URLs in the limit/offset form, null at either end."""
    params = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in ("limit", "offset", "page", "page_size")
    ]
    base = str(request.url.replace(query=""))

    def link(offset: int) -> str:
        return base + "?" + urlencode([*params, ("limit", page.limit), ("offset", offset)])

    next_url = link(page.offset + page.limit) if page.offset + page.limit < count else None
    previous_url = link(max(page.offset - page.limit, 0)) if page.offset > 0 else None
    return next_url, previous_url


def _bounded_integer(minimum: int, maximum: int) -> WithJsonSchema:
    """The document's schema for a paging integer; `offset_page` enforces the same bounds."""
    return WithJsonSchema({"type": "integer", "minimum": minimum, "maximum": maximum})


def _page_window(
    limit: Annotated[
        int | None,
        _bounded_integer(1, MAX_PAGE_SIZE),
        Query(description="Rows a page (1-100, default 50); not with page/page_size."),
    ] = None,
    offset: Annotated[
        int | None,
        _bounded_integer(0, MAX_OFFSET),
        Query(description="Rows to skip; not with page/page_size."),
    ] = None,
    page: Annotated[
        int | None,
        _bounded_integer(1, MAX_PAGE),
        Query(description="Page number, from 1; not with limit/offset."),
    ] = None,
    page_size: Annotated[
        int | None,
        _bounded_integer(1, MAX_PAGE_SIZE),
        Query(description="Rows a page (1-100, default 50); not with limit/offset."),
    ] = None,
) -> OffsetPage:
    return offset_page(limit, offset, page, page_size)


# The four paging query parameters of every TeamUp-shaped list, validated into one window.
PageWindow = Annotated[OffsetPage, Depends(_page_window)]


def list_response(
    request: Request, window: OffsetPage, count: int, results: list[dict[str, Any]]
) -> Response:
    """TeamUp's list envelope: `{"count", "next", "previous", "results"}`."""
    next_url, previous_url = page_links(request, window, count)
    return JSONResponse(
        {"count": count, "next": next_url, "previous": previous_url, "results": results}
    )
