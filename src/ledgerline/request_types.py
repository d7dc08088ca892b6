"""The request-side primitives every domain's bodies and query parameters share: the strict
body, text without NUL, whole numbers, id bounds, ISO dates and aware date-times, list query
parameters, and the two rules every JSON body obeys before any schema reads it (its depth, and
text that has a UTF-8 form). Neutral ground, so one domain's schemas never import another's.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
)

from ledgerline.openapi import NO_NUL_PATTERN, SchemaExtra

# Ids are BIGINT on PostgreSQL and 64-bit INTEGER on SQLite; a larger number cannot exist.
MAX_ID = 2**63 - 1

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> Any:
    """JSON has no date type: a date is the string "YYYY-MM-DD"."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise ValueError('must be a date string such as "2024-07-29"')
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a calendar date") from None


def _aware_datetime(value: Any) -> Any:
    """An ISO 8601 date-time with an offset ("Z" or "+01:00"); a naive one is refused."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except (ValueError, OverflowError):
            raise ValueError(
                'must be an ISO 8601 date-time such as "2024-07-29T15:51:28Z"'
            ) from None
    else:
        raise ValueError('must be an ISO 8601 date-time string such as "2024-07-29T15:51:28Z"')
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError('must include a UTC offset, such as "Z" or "+01:00"')
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL; refuse it as a validation error, not a 500."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _whole_number(value: Any) -> Any:
    """JSON Schema's integer includes `5.0`; it is the number 5, so it is read as 5."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Text = Annotated[StrictStr, AfterValidator(_no_nul), SchemaExtra(pattern=NO_NUL_PATTERN)]


# Integers read from a JSON integer or an integral number such as `5.0`. The bounds sit on the
# integer, inside the validator, so that the document shows them as minimum and maximum.
WholeNumber = BeforeValidator(_whole_number)
Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID), WholeNumber]
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
AwareDateTime = Annotated[dt.datetime, BeforeValidator(_aware_datetime)]


class StrictBody(BaseModel):
    # Python's `re` for patterns, as the JSON Schema validators clients use read them.
    model_config = ConfigDict(extra="forbid", strict=True, regex_engine="python-re")


# ---- rules over a whole JSON body (enforced for every body by http.JSONBodyRulesMiddleware) --

# Deeper than any body we define (a batch of line items is 4 levels), shallow enough that no
# parser or renderer downstream ever recurses near Python's limit.
MAX_JSON_DEPTH = 32

# A UTF-16 surrogate on its own (JSON's "\ud800") is a Python str but has no UTF-8 form: it can
# be neither stored nor written back in an answer. A JSON body is the only way one arrives
# (query strings, forms and paths are decoded from UTF-8 bytes, with replacement characters).
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
UNENCODABLE = "must be valid Unicode text: it holds a lone UTF-16 surrogate"


@dataclass(frozen=True)
class BodyViolation:
    """Where a JSON body breaks a rule, as a problem's `loc`; the value is never kept, so no
    answer can echo it."""

    loc: list[str | int]
    msg: str
    too_deep: bool = False


def json_body_violation(body: bytes) -> BodyViolation | None:
    """Where a JSON body is nested past MAX_JSON_DEPTH or holds text with a lone surrogate (in
    a value or a key); None when it has neither, or is not JSON at all (its endpoint answers
    that)."""
    if not _may_violate(body):
        return None
    try:
        document = json.loads(body)
    except RecursionError:  # deeper than the parser itself can go
        return _too_deep()
    except ValueError:  # UnicodeDecodeError included
        return None
    return _first_violation(document)


# A surrogate reaches parsed text only through a `\uD800`-`\uDFFF` escape: raw UTF-8 cannot
# carry one (the decoder refuses it), and UTF-16/32 bodies, which json.loads also reads, hold NUL
# bytes, so they are always parsed.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _may_violate(body: bytes) -> bool:
    """Whether the body can break either rule at all, read from its bytes: a body with no more
    than MAX_JSON_DEPTH brackets cannot nest deeper, and one without a surrogate escape (nor a
    NUL byte) cannot hold a lone surrogate. Most bodies are neither, and skip the second parse."""
    too_many_brackets = body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH
    return too_many_brackets or b"\x00" in body or _SURROGATE_ESCAPE.search(body) is not None


def _too_deep() -> BodyViolation:
    return BodyViolation(["body"], f"nested deeper than {MAX_JSON_DEPTH} levels", too_deep=True)


def _unencodable(text: str) -> bool:
    return not text.isascii() and LONE_SURROGATE.search(text) is not None


def _first_violation(document: Any) -> BodyViolation | None:
    """One pass over every container (without recursion, so any depth the parser returned is
    safe); only a body that holds unencodable text is walked again to say where."""
    if isinstance(document, str):
        return BodyViolation(["body"], UNENCODABLE) if _unencodable(document) else None
    pending: list[tuple[Any, int]] = [(document, 1)] if isinstance(document, dict | list) else []
    unencodable = False
    while pending:
        container, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            return _too_deep()
        if isinstance(container, dict):
            unencodable = unencodable or any(_unencodable(key) for key in container)
            container = container.values()
        for item in container:
            if isinstance(item, str):
                unencodable = unencodable or _unencodable(item)
            elif isinstance(item, dict | list):
                pending.append((item, depth + 1))
    return _unencodable_text(document) if unencodable else None


def _unencodable_text(document: Any) -> BodyViolation | None:
    """Where the first lone surrogate is: the path of keys and indexes to a value, or to the
    object whose key holds it (the key itself is never repeated)."""
    pending: list[tuple[Any, list[str | int]]] = [(document, [])]
    while pending:
        value, loc = pending.pop()
        if isinstance(value, str) and LONE_SURROGATE.search(value):
            return BodyViolation(loc or ["body"], UNENCODABLE)
        if isinstance(value, list):
            pending.extend((item, [*loc, index]) for index, item in enumerate(value))
        elif isinstance(value, dict):
            for key, item in value.items():
                if LONE_SURROGATE.search(key):
                    return BodyViolation(loc or ["body"], "a key " + UNENCODABLE)
                pending.append((item, [*loc, key]))
    return None


def query_values(values: Sequence[str] | None) -> list[str]:
    """A list query parameter, repeated (`?x=a&x=b`) or comma-separated (`?x=a,b`), or both;
    blanks dropped."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]
