"""The OpenAPI document as a contract: shared response shapes, problem responses, security.

Endpoints return `ledgerline.http.JSONResponse` themselves (so money keeps its exact `Decimal`
literals); the `response_model` on a route only documents the shape. The models here are the
pieces several domains share: TeamUp's money object, its list envelope, and the problem body.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, WithJsonSchema
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

Item = TypeVar("Item")


class SchemaExtra:
    """An annotation that adds keywords (a `pattern`, an `enum`) to a type's JSON schema
    without changing how pydantic validates it: our own code checks the value and words the
    error, and the document states the same rule so a client can check it first."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.update(self.keywords)
        return schema


# Patterns read alike by Python's `re` and by ECMA-262 regular expressions (what JSON Schema
# means, and what many validators use): no `\s` (the two disagree on \x1c-\x1f, \x85 and
# \ufeff), and `(?![\s\S])` rather than `$` (which in Python also matches before a final
# newline). WHITESPACE (regular-expression escapes) is what either calls white space.
WHITESPACE = r"\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
END = r"(?![\s\S])"
# Text without NUL (PostgreSQL text cannot hold it), and text with something besides spaces.
NO_NUL_PATTERN = r"^[^\x00]*" + END
NOT_BLANK_PATTERN = r"^[^\x00]*[^\x00" + WHITESPACE + r"][^\x00]*" + END
_BLANK = re.compile("[" + WHITESPACE + "]*")


def is_blank(text: str) -> bool:
    """Nothing but white space, by NOT_BLANK_PATTERN's own definition of it."""
    return _BLANK.fullmatch(text) is not None


def name_list_schema(names: list[str]) -> dict[str, Any]:
    """A list of names from a fixed set. `x-enum-varnames` gives each a distinct identifier in
    generated clients: "invoice.id" is INVOICE_DOT_ID and "-amount" DESC_AMOUNT, so neither
    clashes with an alias ("invoice_id" would otherwise also become INVOICE_ID)."""
    varnames = [
        ("DESC_" if name.startswith("-") else "") + name.lstrip("-").replace(".", "_DOT_").upper()
        for name in names
    ]
    # An empty value lists nothing, as if the parameter were not given (`?columns=`).
    items = {"type": "string", "enum": [*names, ""], "x-enum-varnames": [*varnames, "NOTHING"]}
    # No `uniqueItems`: a repeated empty value is harmless, and where a name may not be given
    # twice (a column, a sort key) the 422 is a conflicting-parameters one.
    return {"type": "array", "items": items}


# A JSON number in the document (pydantic would otherwise describe a Decimal as a string).
ExactNumber = Annotated[Decimal, WithJsonSchema({"type": "number"})]


class MoneyObject(BaseModel):
    """TeamUp's money object; `decimal` is a JSON number whose literal is the exact value."""

    model_config = ConfigDict(title="Money")

    decimal: ExactNumber = Field(description="The exact amount in major units, e.g. 45.5")
    string: str = Field(description='The amount as a person reads it, e.g. "£45.50"')
    iso_currency_code: str = Field(description='Lower-case ISO 4217 code, e.g. "gbp"')
    currency_symbol: str
    currency_symbol_position: Literal["before", "after"]


class TeamUpList(BaseModel, Generic[Item]):
    """TeamUp's list envelope; `next` and `previous` are full URLs, null at either end."""

    count: int = Field(ge=0)
    next: str | None
    previous: str | None
    results: list[Item]


class ProblemError(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem detail, the body of every error (`application/problem+json`)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemError] | None = None


class ExportAccepted(BaseModel):
    """TeamUp's answer to an export request: the job that builds the file."""

    job: int = Field(ge=1, description="Follow `GET /jobs/{id}` until its status is `succeeded`.")


# ---- the document ------------------------------------------------------------------------------

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_MEDIA_TYPE = "application/problem+json"

SECURITY_SCHEMES: dict[str, Any] = {
    "TokenAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "`Token <key_id>.<secret>`, TeamUp's documented form. In the "
        "Authorize dialog, type the word Token, a space, then the token.",
    },
    "BearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Bearer <key_id>.<secret>`, as TeamUp's own code samples send it.",
    },
    "BasicAuth": {
        "type": "http",
        "scheme": "basic",
        "description": "Sequence's form: the key id as the user name, the secret as the password.",
    },
}
SECURITY: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]

# What each error status means, for every operation that can answer it.
ERROR_DESCRIPTIONS = {
    400: "Malformed request: a body that is not JSON, or an invalid cursor.",
    401: "No credentials, or credentials that are not valid.",
    403: "The token lacks the scope this operation needs (`read` for GET, `write` otherwise).",
    404: "No such resource in this account.",
    405: "This method is not allowed on this path.",
    409: "Conflict with the resource's current state.",
    410: "Gone.",
    413: "The request body is over 1 MiB.",
    415: "The body's media type is not accepted here.",
    422: "A parameter or body field is not valid; `errors` names each one.",
    429: (
        "Too many requests: the API key is past its rate limit, this address has failed "
        "authentication too often, or (exports) the account has too many export jobs queued "
        "or running; `detail` says which. Retry after `Retry-After` seconds."
    ),
    500: "An unexpected error; it has been logged with the request id.",
    503: "Not ready.",
}
_BODY_METHODS = ("post", "put", "patch")


def _integer_header(description: str, *, required: bool = False) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": {"type": "integer"}}


# draft-ietf-httpapi-ratelimit-headers-06's fields: on every authenticated answer while a
# per-key limit is on, and on a 429 for a rate limit.
RATE_LIMIT_HEADERS: dict[str, Any] = {
    "RateLimit-Limit": _integer_header("Requests the limit allows in its window."),
    "RateLimit-Remaining": _integer_header("Requests left in the current window."),
    "RateLimit-Reset": _integer_header(
        "Seconds until the oldest counted request leaves the window."
    ),
    "RateLimit-Policy": {
        "description": "The limit and its window in seconds, as `1200;w=60`.",
        "required": False,
        "schema": {"type": "string"},
    },
}
TOO_MANY_REQUESTS_HEADERS: dict[str, Any] = {
    "Retry-After": _integer_header(
        "Whole seconds to wait before retrying (at least 1).", required=True
    ),
    **RATE_LIMIT_HEADERS,
}
_DROPPED_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _problem_schemas() -> dict[str, Any]:
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return {"Problem": schema, **definitions}


def _error_statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The errors any operation of this kind can answer, beside the ones it declares."""
    statuses = {400, 405, 422, 500}
    if path.startswith("/api/"):
        statuses |= {401, 403, 429}
    if "{" in path:
        statuses.add(404)
    if method in _BODY_METHODS:
        statuses |= {413, 415}
    statuses |= {int(code) for code in operation.get("responses", {}) if code.isdigit()}
    return {status for status in statuses if status >= 400}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter is absent, never null: `anyOf: [X, null]` is just X."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [option for option in options if option.get("type") != "null"]
        if len(kept) == 1:
            rest = {key: value for key, value in schema.items() if key != "anyOf"}
            return {**kept[0], **rest}
    return schema


# FastAPI's OpenAPI model keeps numeric bounds as floats (`0.0`), and 2^63 - 1, the BIGINT
# bound of every id, becomes 2.0^63 there: put the exact integers back.
_BIGINT_AS_FLOAT = float(2**63 - 1)
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _exact_bound(value: float) -> int | float:
    if abs(value) == _BIGINT_AS_FLOAT:
        return 2**63 - 1 if value > 0 else -(2**63 - 1)
    return int(value) if value.is_integer() else value


def _exact_bounds(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: (
                _exact_bound(item)
                if key in _BOUNDS and isinstance(item, float)
                else _exact_bounds(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_exact_bounds(item) for item in value]
    return value


def _description(declared: dict[str, Any], status: int) -> str:
    text = declared.get("description")
    # FastAPI's own text for the 422 it adds says less than ours.
    if not text or text == "Validation Error":
        return ERROR_DESCRIPTIONS[status]
    return str(text)


def operation_id(route: APIRoute) -> str:
    """Operation ids are the endpoint functions' names (`list_invoices`), so a generated
    client's functions read like the API, not like `list_invoices_api_v2_invoices_get`."""
    return route.name


def contract_document(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document, made the contract: every error as problem+json, the security schemes
    on every `/api/v2` operation, and none of FastAPI's own validation-error shapes."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in _DROPPED_SCHEMAS:
        schemas.pop(name, None)
    schemas.update(_problem_schemas())
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _without_null(parameter.get("schema", {}))
            responses = operation.setdefault("responses", {})
            for status in sorted(_error_statuses(path, method, operation)):
                declared = responses.get(str(status), {})
                headers = declared.get("headers")
                if status == 429:
                    headers = {**TOO_MANY_REQUESTS_HEADERS, **(headers or {})}
                responses[str(status)] = {
                    "description": _description(declared, status),
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}},
                    **({"headers": headers} if headers else {}),
                }
            if path.startswith("/api/"):
                for status, response in responses.items():
                    if status.startswith("2"):
                        response["headers"] = {**RATE_LIMIT_HEADERS, **response.get("headers", {})}
            if path.startswith("/api/") and "security" not in operation:
                operation["security"] = SECURITY
    return _exact_bounds(document)  # type: ignore[no-any-return]


def install_openapi(app: FastAPI) -> None:
    """Serve `contract_document` at `/openapi.json` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = contract_document(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
