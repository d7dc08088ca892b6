"""`AppError` and its subclasses: every error a client can act on, with its status and type.

Plain Python, so the command line can use them without the web stack; `http.py` renders them
as RFC 9457 problem details."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
