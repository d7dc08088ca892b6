"""Tax categories: the account's own `{id, name}` list that a group's `taxCategoryId` names.

Sequence's schema has this shape (`TaxCategoryResponse`) but publishes no endpoint for it, so
these three are ours; they accept the `sequence-version` header like the group endpoints.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from ledgerline.dependencies import PrincipalDep, SessionDep
from ledgerline.groups.endpoints import SEQUENCE_VERSION
from ledgerline.http import JSONResponse
from ledgerline.tax_categories import service
from ledgerline.tax_categories.schemas import (
    TaxCategoryBody,
    TaxCategoryList,
    TaxCategoryResponse,
    tax_category_json,
)

router = APIRouter(tags=["tax categories"], dependencies=[SEQUENCE_VERSION])


@router.post("/tax-categories", status_code=201, response_model=TaxCategoryResponse)
def create_tax_category(
    body: TaxCategoryBody, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Create a tax category of the account; its `id` is a new UUID."""
    category = service.create_tax_category(session, principal, body)
    return JSONResponse(tax_category_json(category), status_code=201)


@router.get("/tax-categories", response_model=TaxCategoryList)
def list_tax_categories(principal: PrincipalDep, session: SessionDep) -> Response:
    """Every tax category of the account, oldest first, as `{"items": [...]}` (not paged)."""
    categories = service.list_tax_categories(session, principal)
    return JSONResponse({"items": [tax_category_json(category) for category in categories]})


@router.get("/tax-categories/{tax_category_id}", response_model=TaxCategoryResponse)
def get_tax_category(
    tax_category_id: str, principal: PrincipalDep, session: SessionDep
) -> Response:
    """One tax category of the account; another account's, or a malformed id, is a 404."""
    category = service.get_tax_category(session, principal, tax_category_id)
    return JSONResponse(tax_category_json(category))
