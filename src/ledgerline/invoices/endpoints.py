"""TeamUp-shaped venues, customers, invoices and line items."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import TypeAdapter, WithJsonSchema
from starlette.responses import Response

from ledgerline.dependencies import PrincipalDep, SessionDep
from ledgerline.http import JSONResponse
from ledgerline.invoices import service
from ledgerline.invoices.fieldsets import (
    Selection,
    field_paths,
    parse_fields,
    select_fields,
    sparse_model,
)
from ledgerline.invoices.listing import (
    INVOICE_EXPANDABLE,
    INVOICE_SORT_KEYS,
    MAX_IDS,
    MAX_SEARCH_LENGTH,
    CustomerFilter,
    InvoiceListQuery,
)
from ledgerline.invoices.schemas import (
    CustomerCreate,
    CustomerOut,
    InvoiceCreate,
    InvoiceOut,
    InvoiceUpdate,
    LineItemBatch,
    LineItemBatchOut,
    LineItemCreate,
    LineItemOut,
    LineItemUpdate,
    VenueCreate,
    VenueOut,
    customer_json,
    invoice_json,
    line_item_json,
    venue_json,
)
from ledgerline.invoices.service import InvoiceView
from ledgerline.models import INVOICE_STATUSES
from ledgerline.openapi import END, NO_NUL_PATTERN, TeamUpList, name_list_schema
from ledgerline.pagination import PageWindow, list_response
from ledgerline.request_types import MAX_ID

router = APIRouter()

# Path ids are the account's public ids (`ledgerline.public_ids`); the services look them up
# within the principal's account. A line item's `invoice` is the path's invoice id: the
# service found the line through that invoice, so it is the line's invoice's public id.
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID)]
InvoiceId = Annotated[int, Path(ge=1, le=MAX_ID)]
LineItemId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _inlined_schema(schema: Any, definitions: dict[str, Any]) -> Any:
    """A JSON schema with its local `$defs` references written out in place."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inlined_schema(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {k: _inlined_schema(v, definitions) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inlined_schema(v, definitions) for v in schema]
    return schema


_LINE_ITEM_BODY = TypeAdapter(LineItemCreate | LineItemBatch).json_schema()
LINE_ITEM_BODY_SCHEMA = _inlined_schema(_LINE_ITEM_BODY, _LINE_ITEM_BODY.get("$defs", {}))

LINE_ITEM_BODY_EXAMPLES: dict[str, Any] = {
    "priced": {
        "summary": "One line, quantity × unit price",
        "value": {
            "type": "service_fee",
            "description": "API calls",
            "quantity": "12000",
            "unit_price": "0.0035",
            "tax_rate": "0.20",
        },
    },
    "amount": {
        "summary": "One line, amount given",
        "value": {"type": "flat_fee", "description": "Set-up", "amount": "45.00"},
    },
    "batch": {
        "summary": "Up to 1,000 lines, all or none",
        "value": {"items": [{"type": "flat_fee", "amount": "10.00"}]},
    },
}


# Free text for the customer filters: no NUL (PostgreSQL text cannot hold it), bounded.
SEARCH_TEXT_SCHEMA = {"type": "string", "pattern": NO_NUL_PATTERN, "maxLength": MAX_SEARCH_LENGTH}

# `fields` and `expand`, as TeamUp documents them on the invoice list and retrieve.
FieldsParam = Annotated[
    list[str] | None,
    WithJsonSchema(name_list_schema(field_paths(InvoiceOut))),
    Query(
        description="Only these fields, comma-separated or repeated; dot-notation for nested "
        "ones (`id,status,gross_total.decimal,line_items.amount`). Naming `line_items` (or one "
        "of its fields) embeds the line items as `expand=line_items` does."
    ),
]
ExpandParam = Annotated[
    list[str] | None,
    WithJsonSchema(name_list_schema(list(INVOICE_EXPANDABLE))),
    Query(description="`line_items`: embed each invoice's line items, in id order"),
]
SparseInvoice: Any = sparse_model(InvoiceOut)


def _render_invoice(view: InvoiceView, selection: Selection | None) -> dict[str, Any]:
    rendered = invoice_json(view.invoice, view.totals, view.customer_public_id, view.line_items)
    return rendered if selection is None else dict(select_fields(rendered, selection))


def _wants_line_items(query: InvoiceListQuery, selection: Selection | None) -> bool:
    return "line_items" in query.expand or (selection is not None and "line_items" in selection)


@router.post("/venues", status_code=201, tags=["customers"], response_model=VenueOut)
def create_venue(body: VenueCreate, principal: PrincipalDep, session: SessionDep) -> Response:
    """Create a venue."""
    return JSONResponse(venue_json(service.create_venue(session, principal, body)), status_code=201)


@router.post("/customers", status_code=201, tags=["customers"], response_model=CustomerOut)
def create_customer(body: CustomerCreate, principal: PrincipalDep, session: SessionDep) -> Response:
    """Create a customer, optionally at one of the account's venues."""
    customer, venue = service.create_customer(session, principal, body)
    return JSONResponse(customer_json(customer, venue), status_code=201)


@router.get("/customers/{customer_id}", tags=["customers"], response_model=CustomerOut)
def get_customer(customer_id: CustomerId, principal: PrincipalDep, session: SessionDep) -> Response:
    """One customer."""
    customer, venue = service.get_customer(session, principal, customer_id)
    return JSONResponse(customer_json(customer, venue))


@router.get("/customers", tags=["customers"], response_model=TeamUpList[CustomerOut])
def list_customers(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    window: PageWindow,
    ids: Annotated[
        list[str] | None,
        WithJsonSchema(
            {
                "type": "array",
                # An empty value names no id, as if not given.
                "items": {"type": "string", "pattern": "^([1-9][0-9]{0,18})?" + END},
                "maxItems": MAX_IDS,
            }
        ),
        Query(description="Only these customers: ids, comma-separated or repeated"),
    ] = None,
    query: Annotated[
        str | None,
        WithJsonSchema(SEARCH_TEXT_SCHEMA),
        Query(description="Free text found anywhere in the name or email (any case)"),
    ] = None,
    autocomplete: Annotated[
        str | None,
        WithJsonSchema(SEARCH_TEXT_SCHEMA),
        Query(
            description="Free text the name, a word of the name, or the email starts with "
            "(any case)"
        ),
    ] = None,
) -> Response:
    """The account's customers, oldest first, paged by limit/offset or page/page_size.

    `ids`, `query` and `autocomplete` narrow the list (given together, all must match);
    `count` is the number of customers matching. Case is ignored for the letters A-Z."""
    where = CustomerFilter.parse(ids, query, autocomplete)
    count, rows = service.list_customers(session, principal, window, where)
    return list_response(request, window, count, [customer_json(c, v) for c, v in rows])


NUMBER_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"description": "The invoice number is already used in this account."}
}


@router.post(
    "/invoices",
    status_code=201,
    tags=["invoices"],
    response_model=InvoiceOut,
    responses=NUMBER_TAKEN,
)
def create_invoice(body: InvoiceCreate, principal: PrincipalDep, session: SessionDep) -> Response:
    """Create an invoice. `number` defaults to the account's next `INV-000001`-style number,
    `currency` to the account's, `status` to `draft`. Leaving draft sets `confirmed_at` and
    `paid` sets `paid_at` unless given (ISO 8601 with an offset)."""
    view = service.create_invoice(session, principal, body)
    return JSONResponse(_render_invoice(view, None), status_code=201)


@router.get("/invoices", tags=["invoices"], response_model=TeamUpList[SparseInvoice])
def list_invoices(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    window: PageWindow,
    sort: Annotated[
        list[str] | None,
        WithJsonSchema(
            name_list_schema([*INVOICE_SORT_KEYS, *(f"-{key}" for key in INVOICE_SORT_KEYS)])
        ),
        Query(
            description="Order by `due_date`, `id`, `created_at` or `updated_at`; `-` before "
            "a key for descending; several keys comma-separated or repeated, earlier first. "
            "Equal keys keep id order; no due date sorts last (first descending). Default: id."
        ),
    ] = None,
    status: Annotated[
        list[str] | None,
        WithJsonSchema(name_list_schema(list(INVOICE_STATUSES))),
        Query(description="Only invoices in these statuses, comma-separated or repeated"),
    ] = None,
    fields: FieldsParam = None,
    expand: ExpandParam = None,
) -> Response:
    """The account's invoices with their totals, paged; `count` is the number matching.

    Every property is present unless `fields` leaves it out (hence none is required in this
    schema); `line_items` only with `expand=line_items` or when `fields` names it."""
    query = InvoiceListQuery.parse(sort=sort, status=status, expand=expand)
    selection = parse_fields(fields, InvoiceOut)
    count, views = service.list_invoices(
        session, principal, window, query, line_items=_wants_line_items(query, selection)
    )
    return list_response(
        request, window, count, [_render_invoice(view, selection) for view in views]
    )


@router.get("/invoices/{invoice_id}", tags=["invoices"], response_model=SparseInvoice)
def get_invoice(
    invoice_id: InvoiceId,
    principal: PrincipalDep,
    session: SessionDep,
    fields: FieldsParam = None,
    expand: ExpandParam = None,
) -> Response:
    """One invoice with its totals (exact sums of its rounded lines); `fields` and `expand`
    as on the list."""
    query = InvoiceListQuery.parse(expand=expand)
    selection = parse_fields(fields, InvoiceOut)
    view = service.get_invoice_view(
        session, principal, invoice_id, line_items=_wants_line_items(query, selection)
    )
    return JSONResponse(_render_invoice(view, selection))


@router.patch(
    "/invoices/{invoice_id}",
    tags=["invoices"],
    response_model=InvoiceOut,
    responses={409: {"description": "The number is taken, or the currency is locked"}},
)
def update_invoice(
    invoice_id: InvoiceId, body: InvoiceUpdate, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Change the keys sent. The currency is fixed once the invoice has line items (409);
    a number already used in the account is a 409."""
    view = service.update_invoice(session, principal, invoice_id, body)
    return JSONResponse(_render_invoice(view, None))


@router.post(
    "/invoices/{invoice_id}/line_items",
    status_code=201,
    tags=["line items"],
    response_model=LineItemOut | LineItemBatchOut,
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": LINE_ITEM_BODY_SCHEMA}}}
    },
)
def create_line_items(
    invoice_id: InvoiceId,
    payload: Annotated[Any, Body(openapi_examples=LINE_ITEM_BODY_EXAMPLES)],
    principal: PrincipalDep,
    session: SessionDep,
) -> Response:
    """Add one line item (answered with it), or `{"items": [...]}` of 1 to 1,000 (answered
    `{"items": [...]}` in order, all or none). Give `quantity` and `unit_price`, or `amount`."""
    lines, batch = service.add_line_items(session, principal, invoice_id, payload)
    rendered = [line_item_json(line, group, invoice_id) for line, group in lines]
    return JSONResponse({"items": rendered} if batch else rendered[0], status_code=201)


@router.get(
    "/invoices/{invoice_id}/line_items",
    tags=["line items"],
    response_model=TeamUpList[LineItemOut],
)
def list_line_items(
    request: Request,
    invoice_id: InvoiceId,
    principal: PrincipalDep,
    session: SessionDep,
    window: PageWindow,
) -> Response:
    """The invoice's line items, oldest first."""
    count, rows = service.list_line_items(session, principal, invoice_id, window)
    return list_response(
        request, window, count, [line_item_json(li, g, invoice_id) for li, g in rows]
    )


@router.get(
    "/invoices/{invoice_id}/line_items/{line_item_id}",
    tags=["line items"],
    response_model=LineItemOut,
)
def get_line_item(
    invoice_id: InvoiceId, line_item_id: LineItemId, principal: PrincipalDep, session: SessionDep
) -> Response:
    """One line item."""
    line, group = service.get_line_item(session, principal, invoice_id, line_item_id)
    return JSONResponse(line_item_json(line, group, invoice_id))


@router.patch(
    "/invoices/{invoice_id}/line_items/{line_item_id}",
    tags=["line items"],
    response_model=LineItemOut,
)
def update_line_item(
    invoice_id: InvoiceId,
    line_item_id: LineItemId,
    body: LineItemUpdate,
    principal: PrincipalDep,
    session: SessionDep,
) -> Response:
    """Change the keys sent; amount and tax are recomputed from the merged inputs."""
    line, group = service.update_line_item(session, principal, invoice_id, line_item_id, body)
    return JSONResponse(line_item_json(line, group, invoice_id))


@router.delete(
    "/invoices/{invoice_id}/line_items/{line_item_id}", status_code=204, tags=["line items"]
)
def delete_line_item(
    invoice_id: InvoiceId, line_item_id: LineItemId, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Remove a line item from its invoice."""
    service.delete_line_item(session, principal, invoice_id, line_item_id)
    return Response(status_code=204)
