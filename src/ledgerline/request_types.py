"""The request-side primitives every domain's bodies and query parameters share: the strict
body, text without NUL, whole numbers, id bounds, ISO dates and aware date-times, and list
query parameters. Neutral ground, so one domain's schemas never import another's.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
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


def query_values(values: Sequence[str] | None) -> list[str]:
    """A list query parameter, repeated (`?x=a&x=b`) or comma-separated (`?x=a,b`), or both;
    blanks dropped."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]
