"""Sequence's published line-item group contract, re-written by us as data the tests use.

`SCHEMAS` restates the component schemas of Sequence's OpenAPI description for these endpoints
(types, required keys, enums; nothing nullable, because nothing is published as nullable;
`additionalProperties` left open, as published). Two things are built from it:

- `validate(name, body)`: JSON Schema validation of an answer (jsonschema, 2020-12); a `null`
  where a string is typed fails it.
- `OPENAPI`: an OpenAPI 3.0 description of the same paths, parameters and schemas, from which
  the tests generate a typed client with openapi-python-client.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema

REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


_TEXT = {"type": "string"}

SCHEMAS: dict[str, dict[str, Any]] = {
    "TaxCategoryResponse": {
        "type": "object",
        "required": ["id", "name"],
        "properties": {"id": _TEXT, "name": _TEXT},
    },
    "LineItemGroupResponseModel": {
        "type": "object",
        "required": ["id", "invoiceId", "title", "index", "netTotal", "totalTax", "grossTotal"],
        "properties": {
            "id": _TEXT,
            "invoiceId": _TEXT,
            "title": _TEXT,
            "description": _TEXT,
            "index": {"type": "integer"},
            "netTotal": _TEXT,
            "totalTax": _TEXT,
            "grossTotal": _TEXT,
            "taxCategory": _ref("TaxCategoryResponse"),
        },
    },
    # Sequence requires none of the three keys; that `totalResultSize` is always there is
    # our promise, checked by the tests on its own.
    "PaginationMeta6": {
        "type": "object",
        "properties": {
            "after": _TEXT,
            "before": _TEXT,
            "totalResultSize": {"type": "integer", "format": "int64"},
        },
    },
    "ListLineItemGroupEndpointProductListLineItemGroupPaginatedResponseModel": {
        "type": "object",
        "required": ["items", "pagination"],
        "properties": {
            "items": {"type": "array", "items": _ref("LineItemGroupResponseModel")},
            "pagination": _ref("PaginationMeta6"),
        },
    },
    "RevenueRecognitionMethod": {
        "type": "string",
        "enum": ["STRAIGHT_LINE", "USAGE", "MILESTONE", "POINT_IN_TIME"],
    },
    "RevenueClassification": {"type": "string", "enum": ["PREPAYMENT", "EARNED", "BURNDOWN"]},
    "InclusiveDateRange": {
        "type": "object",
        "required": ["start", "endInclusive"],
        "properties": {"start": _TEXT, "endInclusive": _TEXT},
    },
}

_REQUEST_FIELDS: dict[str, Any] = {
    "title": _TEXT,
    "description": _TEXT,
    "taxCategoryId": _TEXT,
    "revenueRecognitionMethod": _ref("RevenueRecognitionMethod"),
    "revenueClassification": _ref("RevenueClassification"),
    "servicePeriod": _ref("InclusiveDateRange"),
}
SCHEMAS["CreateLineItemGroupRequestModel"] = {
    "type": "object",
    "required": ["title"],
    "properties": dict(_REQUEST_FIELDS),
}
SCHEMAS["UpdateLineItemGroupRequestModel"] = {
    "type": "object",
    "required": ["title"],
    "properties": {**_REQUEST_FIELDS, "index": {"type": "integer"}},
}

GROUP = "LineItemGroupResponseModel"
PAGE = "ListLineItemGroupEndpointProductListLineItemGroupPaginatedResponseModel"


def validate(name: str, body: Any) -> None:
    """Raise `jsonschema.ValidationError` unless `body` matches the component `name`."""
    root = {"$ref": REF + name, "components": {"schemas": SCHEMAS}}
    jsonschema.Draft202012Validator(root).validate(body)


def _header(name: str, required: bool, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "schema": schema}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


_COMMON = [
    _header("Authorization", True, {"type": "string"}),
    _header("sequence-version", False, {"type": "string", "enum": ["2024-07-30"]}),
]
_ERRORS = {
    "400": {"description": "Bad Request"},
    "401": {"description": "Unauthorized"},
    "500": {"description": "Internal Server Error"},
}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


_OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Sequence line-item groups", "version": "2024-07-30"},
    "paths": {
        "/invoices/{invoice}/line-item-groups": {
            "get": {
                "operationId": "getInvoicesByInvoiceLineItemGroups",
                "parameters": [
                    _path("invoice"),
                    *_COMMON,
                    _query("before", {"type": "string"}),
                    _query("after", {"type": "string"}),
                    _query("limit", {"type": "integer", "format": "int32"}),
                    _query("sortOrder", {"type": "string", "enum": ["ASC", "DESC"]}),
                ],
                "responses": {"200": _json(PAGE, "OK"), **_ERRORS},
            },
            "post": {
                "operationId": "postInvoicesByInvoiceLineItemGroups",
                "parameters": [_path("invoice"), *_COMMON],
                "requestBody": _body("CreateLineItemGroupRequestModel"),
                "responses": {"201": _json(GROUP, "Created"), **_ERRORS},
            },
        },
        "/invoices/{invoice}/line-item-groups/{id}": {
            "put": {
                "operationId": "putInvoicesByInvoiceLineItemGroupsById",
                "parameters": [_path("invoice"), _path("id"), *_COMMON],
                "requestBody": _body("UpdateLineItemGroupRequestModel"),
                "responses": {"200": _json(GROUP, "OK"), **_ERRORS},
            },
            "delete": {
                "operationId": "deleteInvoicesByInvoiceLineItemGroupsById",
                "parameters": [_path("invoice"), _path("id"), *_COMMON],
                "responses": {"200": _json(GROUP, "OK"), **_ERRORS},
            },
        },
    },
    "components": {"schemas": SCHEMAS},
}


def openapi() -> dict[str, Any]:
    """A fresh copy of the OpenAPI description (callers may edit theirs)."""
    return copy.deepcopy(_OPENAPI)
