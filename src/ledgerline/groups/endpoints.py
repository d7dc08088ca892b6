"""Sequence-shaped line-item groups of an invoice (camelCase, UUID ids, cursor pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import WithJsonSchema
from starlette.responses import Response

from ledgerline.dependencies import PrincipalDep, SessionDep
from ledgerline.errors import BadRequest
from ledgerline.groups import service
from ledgerline.groups.schemas import (
    GroupBody,
    LineItemGroupPage,
    LineItemGroupResponse,
    page_json,
)
from ledgerline.groups.schemas import group_json as render_group
from ledgerline.http import JSONResponse
from ledgerline.pagination import MAX_PAGE_SIZE

# The only version Sequence publishes for these endpoints.
SEQUENCE_VERSIONS = ("2024-07-30",)


class SequenceVersionUnknown(BadRequest):
    code = "sequence-version-unknown"


def _sequence_version(
    version: Annotated[
        str | None,
        Header(
            alias="sequence-version",
            description="The Sequence API version the client expects; only 2024-07-30 exists.",
        ),
        WithJsonSchema({"type": "string", "enum": list(SEQUENCE_VERSIONS)}),
    ] = None,
) -> None:
    """Accept Sequence's `sequence-version` header; refuse a version we do not speak."""
    if version is not None and version not in SEQUENCE_VERSIONS:
        raise SequenceVersionUnknown(
            f"sequence-version {version[:40]!r} is not supported; use "
            + " or ".join(SEQUENCE_VERSIONS)
            + ", or leave the header out.",
            errors=[{"loc": ["header", "sequence-version"], "msg": "unsupported version"}],
        )


# Declared on every route of the router (and on the tax categories'), so it is in the document.
SEQUENCE_VERSION = Depends(_sequence_version)

router = APIRouter(tags=["line-item groups"], dependencies=[SEQUENCE_VERSION])

GROUPS = "/invoices/{invoice}/line-item-groups"

# `limit` is read as text and checked for ASCII digits in the service (an int parameter would
# take "１２"); the document still says what a client should send: an integer.
Limit = Annotated[
    str | None,
    Query(description=f"Groups per page, 1 to {MAX_PAGE_SIZE} (default 20)."),
    WithJsonSchema({"type": "integer", "format": "int32", "minimum": 1, "maximum": MAX_PAGE_SIZE}),
]
SortOrder = Annotated[
    str | None,
    Query(alias="sortOrder", description="DESC (the default, newest first) or ASC."),
    WithJsonSchema({"type": "string", "enum": ["ASC", "DESC"]}),
]
# Cursors are URL-safe base64 (empty: no cursor, the URL template's `?after=`); only the
# server can tell whether one names a page of this list (a 400 of type cursor-invalid).
CURSOR_SCHEMA = {"type": "string", "pattern": "^[A-Za-z0-9_-]*(?![\\s\\S])"}
CURSOR_TEXT = (
    "A cursor from `pagination.{}` of the previous answer, with the same `sortOrder`; "
    "leave it out for the first page."
)


Before = Annotated[
    str | None, Query(description=CURSOR_TEXT.format("before")), WithJsonSchema(CURSOR_SCHEMA)
]
After = Annotated[
    str | None, Query(description=CURSOR_TEXT.format("after")), WithJsonSchema(CURSOR_SCHEMA)
]


@router.get(GROUPS, response_model=LineItemGroupPage)
def list_groups(
    request: Request,
    invoice: str,
    principal: PrincipalDep,
    session: SessionDep,
    before: Before = None,
    after: After = None,
    limit: Limit = None,
    sort_order: SortOrder = None,
) -> Response:
    """List the invoice's line-item groups with their totals, in creation order.

    Page with the opaque cursors in `pagination.after` and `pagination.before`; each key is
    absent when there is no page on that side. A bad `limit`, `sortOrder` or cursor, or a
    cursor used with another `sortOrder` than the one it came from, is a 400 naming it.
    """
    page = service.page_request(limit, sort_order, before, after)
    result = service.list_groups(session, principal, invoice, page, request.app.state.secret_key)
    return JSONResponse(page_json(result))


def group_json(view: service.GroupView) -> dict[str, object]:
    return render_group(view.group, view.invoice, view.totals, view.tax_category)


@router.post(GROUPS, status_code=201, response_model=LineItemGroupResponse)
def create_group(
    invoice: str, body: GroupBody, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Create a line-item group on the invoice; `index` defaults to the next one.

    `taxCategoryId` must name one of the account's tax categories (else 422).
    """
    view = service.create_group(session, principal, invoice, body)
    return JSONResponse(group_json(view), status_code=201)


@router.get(GROUPS + "/{group_id}", response_model=LineItemGroupResponse)
def get_group(
    invoice: str, group_id: str, principal: PrincipalDep, session: SessionDep
) -> Response:
    """One line-item group with its net, tax and gross totals."""
    return JSONResponse(group_json(service.get_group(session, principal, invoice, group_id)))


@router.put(GROUPS + "/{group_id}", response_model=LineItemGroupResponse)
def replace_group(
    invoice: str, group_id: str, body: GroupBody, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Replace the group's fields: an optional field left out is cleared; an `index` left out
    keeps the group's place."""
    view = service.replace_group(session, principal, invoice, group_id, body)
    return JSONResponse(group_json(view))


@router.delete(GROUPS + "/{group_id}", response_model=LineItemGroupResponse)
def delete_group(
    invoice: str, group_id: str, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Delete the group and answer it as it was (totals included); its line items stay on the
    invoice, ungrouped."""
    return JSONResponse(group_json(service.delete_group(session, principal, invoice, group_id)))
