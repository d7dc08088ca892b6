"""TeamUp offset pages and Sequence's opaque keyset cursors.

A cursor names a position (a row's creation sequence) inside one scope (e.g. one invoice of
one account) under one sort order. It is encrypted and authenticated with AES-GCM under a key
derived from the server secret, so nothing inside it is readable, and a cursor edited by hand,
taken from another list, or used with another sort order is refused with 400 instead of
revealing, repeating or skipping rows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlencode

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import Depends, Query, Request
from pydantic import WithJsonSchema
from starlette.responses import Response

from ledgerline.crypto import derive_key
from ledgerline.errors import BadRequest, ConflictingParameters, ValidationFailed
from ledgerline.http import JSONResponse

MAX_PAGE_SIZE = 100
# Larger offsets are refused here rather than handed to the database (a BIGINT overflow there).
MAX_OFFSET = 2**53
# The highest page number, whatever its size: the document states one bound for `page`.
MAX_PAGE = MAX_OFFSET // MAX_PAGE_SIZE + 1

# Bumped whenever the plaintext layout changes, so an old cursor fails to decrypt, never misreads.
_CURSOR_VERSION = b"ledgerline-cursor-v2"
_NONCE_BYTES = 12
# Our cursors are under 200 characters; anything far longer is refused before decoding.
_MAX_CURSOR_CHARS = 512


class CursorInvalid(BadRequest):
    code = "cursor-invalid"


@dataclass(frozen=True)
class _CursorKeys:
    cipher: AESGCM
    nonce_key: bytes


@lru_cache(maxsize=8)
def _keys(secret: str) -> _CursorKeys:
    """Two independent keys from the server secret: one encrypts, one derives the nonce."""
    material = derive_key(secret, _CURSOR_VERSION, 64)
    return _CursorKeys(cipher=AESGCM(material[:32]), nonce_key=material[32:])


def encode_cursor(key: str, scope: str, position: int, sort_order: str) -> str:
    """An opaque cursor for `position` in `scope` read under `sort_order`.

    The nonce is derived from the plaintext (a synthetic IV), so the same position always
    gives the same cursor: paging forward then back returns identical pages, cursors included.
    A nonce repeats only with its own plaintext, which reveals nothing but that equality.
    """
    keys = _keys(key)
    plaintext = f"{scope}|{sort_order}|{position}".encode()
    nonce = hmac.new(keys.nonce_key, plaintext, hashlib.sha256).digest()[:_NONCE_BYTES]
    sealed = nonce + keys.cipher.encrypt(nonce, plaintext, _CURSOR_VERSION)
    return base64.urlsafe_b64encode(sealed).decode("ascii").rstrip("=")


def _invalid(param: str, detail: str) -> CursorInvalid:
    return CursorInvalid(detail, errors=[{"loc": ["query", param], "msg": "invalid cursor"}])


def _open(key: str, cursor: str, param: str) -> tuple[str, str, str]:
    """The cursor's (scope, sort order, position text), or 400 if it is not one of ours."""
    if len(cursor) > _MAX_CURSOR_CHARS or not cursor.isascii():
        raise _invalid(param, f"{param} is not a valid cursor.")
    try:
        sealed = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode("ascii"))
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        plaintext = _keys(key).cipher.decrypt(nonce, ciphertext, _CURSOR_VERSION)
        scope, order, position = plaintext.decode("utf-8").rsplit("|", 2)
    except (binascii.Error, InvalidTag, UnicodeError, ValueError) as exc:
        raise _invalid(param, f"{param} is not a valid cursor.") from exc
    return scope, order, position


def decode_cursor(key: str, scope: str, cursor: str, *, param: str, sort_order: str) -> int:
    """The position in `cursor`, or 400 naming `param` if it is not one of ours for `scope`
    read under `sort_order` (a cursor keeps the order it was made in)."""
    cursor_scope, cursor_order, position = _open(key, cursor, param)
    if cursor_scope != scope or not (position.isascii() and position.isdigit()):
        raise _invalid(param, f"{param} is not a valid cursor for this list.")
    if cursor_order != sort_order:
        raise CursorInvalid(
            f"{param} was made for sortOrder={cursor_order}, but this request asks for "
            f"sortOrder={sort_order}; repeat the sortOrder of the page the cursor came from.",
            errors=[
                {"loc": ["query", param], "msg": f"cursor made for sortOrder={cursor_order}"},
                {"loc": ["query", "sortOrder"], "msg": f"must be {cursor_order} with this cursor"},
            ],
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
