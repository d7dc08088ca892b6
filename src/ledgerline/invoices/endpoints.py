"""TeamUp-shaped venues, customers, invoices and line items."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ledgerline.auth import PrincipalDep
from ledgerline.dependencies import SessionDep
from ledgerline.http import JSONResponse
from ledgerline.invoices import service
from ledgerline.invoices.schemas import CustomerCreate, VenueCreate, customer_json, venue_json
from ledgerline.pagination import offset_page, page_links

router = APIRouter(tags=["customers"])

PageQuery = Annotated[int | None, Query()]


@router.post("/venues", status_code=201)
def create_venue(body: VenueCreate, principal: PrincipalDep, session: SessionDep) -> Response:
    """Create a venue."""
    return JSONResponse(venue_json(service.create_venue(session, principal, body)), status_code=201)


@router.post("/customers", status_code=201)
def create_customer(body: CustomerCreate, principal: PrincipalDep, session: SessionDep) -> Response:
    """Create a customer, optionally at one of the account's venues."""
    customer, venue = service.create_customer(session, principal, body)
    return JSONResponse(customer_json(customer, venue), status_code=201)


@router.get("/customers/{customer_id}")
def get_customer(customer_id: int, principal: PrincipalDep, session: SessionDep) -> Response:
    """One customer."""
    customer, venue = service.get_customer(session, principal, customer_id)
    return JSONResponse(customer_json(customer, venue))


@router.get("/customers")
def list_customers(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    limit: PageQuery = None,
    offset: PageQuery = None,
    page: PageQuery = None,
    page_size: PageQuery = None,
) -> Response:
    """The account's customers, oldest first, paged by limit/offset or page/page_size."""
    window = offset_page(limit, offset, page, page_size)
    count, rows = service.list_customers(session, principal, window)
    next_url, previous_url = page_links(request, window, count)
    return JSONResponse(
        {
            "count": count,
            "next": next_url,
            "previous": previous_url,
            "results": [customer_json(c, v) for c, v in rows],
        }
    )
