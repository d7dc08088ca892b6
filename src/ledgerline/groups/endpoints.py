"""Sequence-shaped line-item groups of an invoice (camelCase, UUID ids, cursor pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ledgerline.auth import PrincipalDep
from ledgerline.dependencies import SessionDep
from ledgerline.groups import service
from ledgerline.groups.schemas import GroupBody, group_json, page_json
from ledgerline.http import JSONResponse
from ledgerline.invoices.service import Totals

router = APIRouter(tags=["line-item groups"])

GROUPS = "/invoices/{invoice}/line-item-groups"


@router.get(GROUPS)
def list_groups(
    request: Request,
    invoice: str,
    principal: PrincipalDep,
    session: SessionDep,
    before: Annotated[str | None, Query(description="Cursor: the page before this one.")] = None,
    after: Annotated[str | None, Query(description="Cursor: the page after this one.")] = None,
    limit: Annotated[int | None, Query(description="Groups per page, 1 to 100.")] = None,
    sort_order: Annotated[
        str | None, Query(alias="sortOrder", description="DESC (default, newest first) or ASC.")
    ] = None,
) -> Response:
    """List the invoice's line-item groups with their totals, in creation order.

    Page with the opaque cursors in `pagination.after` and `pagination.before`; each is null
    when there is no page on that side.
    """
    page = service.page_request(limit, sort_order, before, after)
    result = service.list_groups(session, principal, invoice, page, request.app.state.secret_key)
    return JSONResponse(page_json(result))


@router.post(GROUPS, status_code=201)
def create_group(
    invoice: str, body: GroupBody, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Create a line-item group on the invoice; `index` defaults to the next one."""
    group, owner = service.create_group(session, principal, invoice, body)
    return JSONResponse(group_json(group, owner.currency, Totals()), status_code=201)


@router.get(GROUPS + "/{group_id}")
def get_group(
    invoice: str, group_id: str, principal: PrincipalDep, session: SessionDep
) -> Response:
    """One line-item group with its net, tax and gross totals."""
    group, owner, totals = service.get_group(session, principal, invoice, group_id)
    return JSONResponse(group_json(group, owner.currency, totals))


@router.put(GROUPS + "/{group_id}")
def replace_group(
    invoice: str, group_id: str, body: GroupBody, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Replace the group's title and description (and index, when given)."""
    group, owner, totals = service.replace_group(session, principal, invoice, group_id, body)
    return JSONResponse(group_json(group, owner.currency, totals))


@router.delete(GROUPS + "/{group_id}", status_code=204)
def delete_group(
    invoice: str, group_id: str, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Delete the group; its line items stay on the invoice, ungrouped."""
    service.delete_group(session, principal, invoice, group_id)
    return Response(status_code=204)
