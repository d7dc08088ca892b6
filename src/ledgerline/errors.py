"""`AppError` and its problem+json rendering (RFC 9457), for every error the API gives."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from ledgerline.http import JSONResponse

log = logging.getLogger("ledgerline.errors")

PROBLEM_TYPE_BASE = "https://ledgerline.dev/problems/"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class AppError(Exception):
    """An error a client can act on. Subclasses set `status` and `code`."""

    status: int = 400
    code: str = "bad-request"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = headers


class BadRequest(AppError):
    status, code = 400, "bad-request"


class Unauthorized(AppError):
    status, code = 401, "unauthorized"


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not-found"


class Conflict(AppError):
    status, code = 409, "conflict"


class Gone(AppError):
    status, code = 410, "gone"


class PayloadTooLarge(AppError):
    status, code = 413, "payload-too-large"


class UnsupportedMediaType(AppError):
    status, code = 415, "unsupported-media-type"


class ValidationFailed(AppError):
    status, code = 422, "validation-error"

    @classmethod
    def field(cls, loc: Sequence[str | int], msg: str) -> ValidationFailed:
        """One field is wrong: the detail and `errors` both name it."""
        dotted = ".".join(str(part) for part in loc)
        return cls(f"{dotted}: {msg}", errors=[{"loc": list(loc), "msg": msg}])


class ConflictingParameters(ValidationFailed):
    """Each value is valid alone, but not together (`limit` with `page`, a column listed under
    two of its names): a rule OpenAPI cannot state, so it has a problem type of its own."""

    code = "conflicting-parameters"


class UnknownReference(ValidationFailed):
    """A well-formed id that names nothing in this account (a `customer` that is not one of
    its customers): the schema can say what an id looks like, not which ids exist."""

    code = "unknown-reference"


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (code or TITLES.get(status, "error").lower().replace(" ", "-")),
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )


def _validation_errors(exc: RequestValidationError) -> tuple[int, str, list[dict[str, Any]]]:
    """FastAPI's 422s, renamed for clients: an unparseable JSON body is a 400."""
    errors: list[dict[str, Any]] = []
    for error in exc.errors():
        loc = [part for part in error.get("loc", ()) if part != "body" or len(error["loc"]) == 1]
        if error.get("type") == "json_invalid":
            return (
                400,
                "The request body is not valid JSON.",
                [{"loc": ["body"], "msg": "invalid JSON"}],
            )
        msg = str(error.get("msg", "invalid"))
        errors.append({"loc": loc, "msg": msg})
    summary = "; ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in errors[:5])
    return 422, summary or "The request is not valid.", errors


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route serves at this path: Starlette's own 405 names only the first
    route that matched the path, one per method here."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _child = route.matches({**request.scope, "method": "GET"})
        route_methods = getattr(route, "methods", None)
        if match != Match.NONE and route_methods:
            methods |= set(route_methods)
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> Response:
        return problem(
            exc.status, exc.detail, code=exc.code, errors=exc.errors, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        status, detail, errors = _validation_errors(exc)
        return problem(status, detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "No such resource."
        if exc.status_code == 405:
            detail = "This method is not allowed on this resource."
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(app, request))}
        return problem(exc.status_code, detail, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem(500, "An unexpected error occurred; it has been logged.")
