"""TeamUp's invoice line item reports: one page of rows, flat or grouped (`/data`).

The file exports of the same reports (`…/export`) are jobs, declared in `jobs/endpoints.py`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ledgerline.auth import PrincipalDep
from ledgerline.dependencies import SessionDep
from ledgerline.http import JSONResponse
from ledgerline.pagination import OffsetPage, PageWindow
from ledgerline.reports.columns import FLAT, GROUPED
from ledgerline.reports.query import parse_report_params, report_page

router = APIRouter(tags=["reports"])

ColumnsQuery = Annotated[
    list[str] | None,
    Query(description="Column keys (or aliases) in order; repeated or comma-separated."),
]
SortQuery = Annotated[
    list[str] | None,
    Query(description="Sortable column keys, earlier first; '-' prefix for descending."),
]


def query_mapping(request: Request) -> dict[str, Any]:
    """Query parameters as a mapping: a repeated key becomes a list of its values."""
    raw: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key in raw:
            previous = raw[key]
            raw[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            raw[key] = value
    return raw


def _data(
    report: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    window: OffsetPage,
) -> Response:
    params = parse_report_params(
        report, query_mapping(request), timezone=principal.timezone, for_export=False
    )
    body = report_page(
        session.connection(),
        principal.account_id,
        params,
        limit=window.limit,
        offset=window.offset,
    )
    return JSONResponse(body)


@router.get("/reports/invoice_line_items/data")
def invoice_line_items_data(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    window: PageWindow,
    columns: ColumnsQuery = None,
    sort: SortQuery = None,
) -> Response:
    """One page of invoice line items.

    Filters: `id_gt`, `invoice_status` (one or comma-separated), `invoice_due_date_gte|lte`
    (dates), `invoice_paid_at_gte|lte`, `invoice_updated_at_gte|lte`,
    `invoice_confirmed_at_gte|lte` (date-times; without an offset, in the account's timezone).
    Every bound is inclusive. Paged by `limit` (default 50) and `offset`, or `page` and
    `page_size` (at most 100). Default sort: `id`.
    """
    return _data(FLAT, request, principal, session, window)


@router.get("/reports/invoice_line_items.grouped/data")
def invoice_line_items_grouped_data(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    window: PageWindow,
    columns: ColumnsQuery = None,
    sort: SortQuery = None,
) -> Response:
    """One page of invoice line items grouped by `type` and currency, with `total_amount`.

    Columns `type` and `total_amount` (default both); with only `total_amount` there is one
    row per currency. Currencies are never added together. Same filters and paging as the
    flat report. Default sort: `type`, then currency.
    """
    return _data(GROUPED, request, principal, session, window)
