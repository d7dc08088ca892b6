"""TeamUp's invoice line item reports: one page of rows, flat or grouped (`/data`).

The file exports of the same reports (`…/export`) are jobs, declared in `jobs/endpoints.py`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema
from starlette.responses import Response

from ledgerline.dependencies import PrincipalDep, SessionDep, request_now
from ledgerline.http import JSONResponse
from ledgerline.openapi import name_list_schema
from ledgerline.pagination import OffsetPage, PageWindow
from ledgerline.reports.columns import CATALOGS, FLAT, GROUPED, INVOICES, INVOICES_GROUPED
from ledgerline.reports.query import COMPRESSIONS, FORMATS, parse_report_params, report_page

router = APIRouter(tags=["reports"])


def report_parameter_schemas(
    report: str, *, for_export: bool
) -> dict[str, tuple[dict[str, Any], str]]:
    """Every report parameter but paging: its JSON schema and description, from the catalog
    and the filters, so the document can never list a filter the parser does not know."""
    catalog = CATALOGS[report]
    sortable = [name for name, column in catalog.by_name.items() if column.sortable]
    parameters: dict[str, tuple[dict[str, Any], str]] = {
        "columns": (
            name_list_schema(list(catalog.by_name)),
            "Column keys (or aliases) in order; repeated or comma-separated.",
        ),
        "sort": (
            name_list_schema([*sortable, *(f"-{name}" for name in sortable)]),
            "Sortable column keys, earlier first; a '-' prefix sorts descending. Money "
            "columns compare amounts in major units.",
        ),
    }
    if for_export:
        parameters["format"] = (
            {"type": "string", "enum": list(FORMATS), "default": "csv"},
            "The file format: csv, json (one array), ndjson (a JSON object a line), xlsx "
            "(a spreadsheet with number, date and currency cells) or parquet (typed columns; "
            "money as decimal(38,4) beside its currency).",
        )
        parameters["compression"] = (
            {"type": "string", "enum": list(COMPRESSIONS)},
            "gzip: the file gzip-compressed (csv, json and ndjson only; the name ends .gz).",
        )
    parameters["timezone"] = (
        {"type": "string", "minLength": 1, "maxLength": 64, "default": "UTC"},
        "The IANA time zone (such as Europe/London) every date-time is written in, with that "
        "zone's UTC offset at that instant: 2026-03-29T02:30:00+01:00. Default UTC (+00:00). "
        "Only how instants are written: local periods, timeframes and date-time filters "
        "without an offset keep the account's time zone. An unknown name is a 422.",
    )
    family = catalog.filters
    for key in family.keys:
        # A vendor filter the family refuses by name (no description) is not offered.
        if key in family.descriptions:
            parameters[key] = (family.schema(key), family.descriptions[key])
    return parameters


def report_query_doc(report: str, *, for_export: bool) -> dict[str, Any]:
    """The report's query parameters as OpenAPI parameter objects, for a route's
    `openapi_extra`: documented, and accepted by `declared_parameters_only` (which reads them
    there), but not parsed by FastAPI on every request. `parse_report_params` reads and
    validates them; as a dependency, solving some forty optional parameters that are then
    ignored cost about a tenth of a report page's CPU (issue 11)."""
    return {
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": description,
                # As FastAPI documents a declared parameter: titled, and no default (a
                # generated client would send it, and the body may name another).
                "schema": {
                    **{key: value for key, value in schema.items() if key != "default"},
                    "title": name.replace("_", " ").title(),
                },
            }
            for name, (schema, description) in report_parameter_schemas(
                report, for_export=for_export
            ).items()
        ]
    }


def report_query(report: str, *, for_export: bool) -> Callable[..., None]:
    """A dependency that declares the report's query parameters (documented in the OpenAPI
    document and accepted by `declared_parameters_only`); `parse_report_params` reads and
    validates the values, so each keeps one parser and one error message."""
    declared = []
    for name, (schema, description) in report_parameter_schemas(
        report, for_export=for_export
    ).items():
        # A list for repeated keys; the schema, not this type, is what the document shows.
        raw: Any = list[str] | None if schema.get("type") == "array" else str | None
        annotation = Annotated[raw, WithJsonSchema(schema), Query(description=description)]
        declared.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
            )
        )

    def declare(**_values: Any) -> None:
        return None

    declare.__signature__ = inspect.Signature(declared)  # type: ignore[attr-defined]
    return declare


class SortedAt(BaseModel):
    order: str = Field(pattern="^(asc|desc)$")
    priority: int = Field(ge=1)


class ColumnHeader(BaseModel):
    label: str
    key: str
    sortable: bool
    holds_customer_id: bool
    sorted: SortedAt | SkipJsonSchema[None] = Field(
        default=None, description="Where this column is in the sort; absent when it is not."
    )
    required: bool


class ReportData(BaseModel):
    """One page of a report. Rows are nested objects following the dot-notation column
    keys; money columns are TeamUp money objects."""

    total: int = Field(ge=0, description="Rows matching the filters, on every page.")
    column_headers: list[ColumnHeader]
    rows: list[dict[str, Any]]


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
        report,
        query_mapping(request),
        timezone=principal.timezone,
        for_export=False,
        now=request_now(request),
    )
    body = report_page(
        session.connection(),
        principal.account_id,
        params,
        limit=window.limit,
        offset=window.offset,
    )
    return JSONResponse(body)


@router.get(
    "/reports/invoice_line_items/data",
    response_model=ReportData,
    openapi_extra=report_query_doc(FLAT, for_export=False),
)
def invoice_line_items_data(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    window: PageWindow,
) -> Response:
    """One page of invoice line items.

    Filtered by the query parameters below, each described there (every bound is inclusive;
    a date-time without an offset is read in the account's timezone). Paged by `limit`
    (default 50) and `offset`, or `page` and `page_size` (at most 100). Default sort: `id`.
    """
    return _data(FLAT, request, principal, session, window)


@router.get(
    "/reports/invoice_line_items.grouped/data",
    response_model=ReportData,
    openapi_extra=report_query_doc(GROUPED, for_export=False),
)
def invoice_line_items_grouped_data(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    window: PageWindow,
) -> Response:
    """One page of invoice line items grouped by `type` and currency, with `total_amount`.

    Columns `type` and `total_amount` (default both); with only `total_amount` there is one
    row per currency. Currencies are never added together. Same filters and paging as the
    flat report. Default sort: `type`, then currency.

    Beyond TeamUp's columns: any attribute column of the flat report (with its aliases),
    `currency`, and the local `_month`, `_quarter` or `_year` of each invoice date in the
    account's time zone (`invoice.paid_at_month`, alias `paid_at_month`: "2026-03",
    "2026-Q1", "2026") as grouping keys; `count` (a JSON string, as TeamUp publishes it),
    `total_amount`, `total_tax_amount`, `total_discount_amount`, `total_credit_amount`,
    `total_refund_amount` and `total_gross_amount` (amount + tax) as aggregates. Rows are
    split by currency whenever a money total is requested; a count alone is not split.
    A sort key must be one of the requested columns, aggregates included.
    """
    return _data(GROUPED, request, principal, session, window)


@router.get(
    "/reports/invoices/data",
    response_model=ReportData,
    openapi_extra=report_query_doc(INVOICES, for_export=False),
)
def invoices_data(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    window: PageWindow,
) -> Response:
    """One page of invoices, one row per invoice (TeamUp's invoices report).

    Money columns are computed from the invoice's line items: `total_amount` (its
    gross_total), `subtotal_amount` (before discounts and tax), `discount_amount`,
    `tax_amount`, `credit_amount`, `refund_amount`, `expected_payment_amount` (total less
    credits and refunds) and `adjustment_amount` (always zero). Filtered by the query
    parameters below (every bound inclusive). Paged by `limit`/`offset` or
    `page`/`page_size`. Default sort: `id`.
    """
    return _data(INVOICES, request, principal, session, window)


@router.get(
    "/reports/invoices.grouped/data",
    response_model=ReportData,
    openapi_extra=report_query_doc(INVOICES_GROUPED, for_export=False),
)
def invoices_grouped_data(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    window: PageWindow,
) -> Response:
    """One page of invoices grouped by the requested keys, with `count` and money totals.

    Keys: `status`, the customer's id, name or email, `purchase_type`, `due_date_month`
    ("2026-03"), `due_date_year` ("2026"), `payment_month` (1-12) and `payment_year` (paid_at
    in the account's time zone). Aggregates: `count` (invoices, a JSON string) and the sums of
    the invoices' money columns, split by currency (never added together). Default columns
    `status`, `count`, `total_amount`; default sort: the keys, then currency.
    """
    return _data(INVOICES_GROUPED, request, principal, session, window)
