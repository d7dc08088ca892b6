"""Check an answer against the OpenAPI document the app publishes for it.

The document is what schemathesis and generated clients trust; this makes a test fail when
a `response_model=` stops describing exactly what an endpoint really sends.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from jsonschema import Draft202012Validator


def assert_matches_openapi(app: FastAPI, method: str, path: str, status: int, body: Any) -> None:
    """`body` validates against the schema of `method path` (the route's template, e.g.
    "/api/v2/invoices/{invoice_id}") for `status`, with additional keys refused."""
    document = app.openapi()
    operation = document["paths"][path][method.lower()]
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    components = _closed(document.get("components", {}))
    validator = Draft202012Validator({**_closed(schema), "components": components})
    errors = sorted(validator.iter_errors(body), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def _closed(schema: Any) -> Any:
    """Every object schema with properties also refuses keys it does not list, so an
    undocumented key in an answer fails the check (the document itself stays open)."""
    if isinstance(schema, dict):
        closed = {key: _closed(value) for key, value in schema.items()}
        if "properties" in closed and "additionalProperties" not in closed:
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema
