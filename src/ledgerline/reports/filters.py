"""The report filters (SPEC §5): parsing and their WHERE clauses. Every bound is inclusive.

Date-time bounds are resolved to aware UTC datetimes when the request is parsed, so an
export job runs exactly the query the client asked for whenever it starts:

- a value with an offset (`2024-07-29T15:51:28Z`, `…+02:00`) is that instant;
- a value without one (`2024-07-29T15:51:28`) is a wall time in the account's timezone;
- a bare date (`2024-07-29`) is that whole day in the account's timezone: as a `_gte`
  bound it is the day's first instant, as a `_lte` bound its last (23:59:59.999999).

A `<prefix>_timeframe` (`last_month`, see `reports.timeframes`) is resolved the same way, at
the moment of the request, into that prefix's `_gte` and `_lte` bounds; its name is kept for
information only (the bounds are what filters). Given with either bound it is a 422.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func

from ledgerline.db import utcnow
from ledgerline.errors import ConflictingParameters, ValidationFailed
from ledgerline.models import INVOICE_STATUSES, Customer, Invoice, LineItem
from ledgerline.openapi import name_list_schema
from ledgerline.reports.timeframes import TIMEFRAMES, day_end, day_start, resolve_timeframe
from ledgerline.request_types import MAX_ID

# ASCII digits only (`\d` would also match "１２"); RFC 3339's lower-case t and z, and
# fractions of any length (the database keeps microseconds; see `parse_datetime_bound`).
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_DATETIME_RE = re.compile(
    r"^(?P<stamp>[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2})"
    r"(:(?P<seconds>[0-9]{2})(\.(?P<fraction>[0-9]+))?)?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:?[0-9]{2})?$"
)

line_items = LineItem.__table__
invoices = Invoice.__table__


class ReportFilters(Protocol):
    """A report family's parsed filters: stored on a job as JSON, and their WHERE clauses
    with the joins (or derived tables) the clauses read."""

    def to_json(self) -> dict[str, Any]: ...

    def needs(self) -> frozenset[str]: ...

    def clauses(self) -> list[ColumnElement[bool]]: ...


@dataclass(frozen=True)
class FilterFamily:
    """The filters a catalog names: their keys, parser, JSON round trip and OpenAPI text."""

    keys: tuple[str, ...]
    parse: Callable[[dict[str, Any], str, dt.datetime | None], ReportFilters]
    from_json: Callable[[dict[str, Any]], ReportFilters]
    schema: Callable[[str], dict[str, Any]]
    descriptions: Mapping[str, str]


# filter key -> invoices column, for the date-time bounds.
DATETIME_FILTERS: dict[str, str] = {
    "invoice_paid_at": "paid_at",
    "invoice_updated_at": "updated_at",
    "invoice_confirmed_at": "confirmed_at",
}


def filters_json(filters: Any) -> dict[str, Any]:
    """A filters dataclass as a job records it: only the filters that are set, dates and UTC
    date-times as ISO strings, lists for tuples."""
    data: dict[str, Any] = {}
    for item in fields(filters):
        value = getattr(filters, item.name)
        if value is None or value == ():
            continue
        if isinstance(value, dt.date):  # date and datetime
            data[item.name] = value.isoformat()
        elif isinstance(value, tuple):
            data[item.name] = list(value)
        else:
            data[item.name] = value
    return data


@dataclass(frozen=True)
class Filters:
    id_gt: int | None = None
    invoice_status: tuple[str, ...] = ()
    invoice_due_date_gte: dt.date | None = None
    invoice_due_date_lte: dt.date | None = None
    invoice_paid_at_gte: dt.datetime | None = None
    invoice_paid_at_lte: dt.datetime | None = None
    invoice_updated_at_gte: dt.datetime | None = None
    invoice_updated_at_lte: dt.datetime | None = None
    invoice_confirmed_at_gte: dt.datetime | None = None
    invoice_confirmed_at_lte: dt.datetime | None = None
    # The named timeframes the bounds above came from (information; the bounds filter).
    invoice_due_date_timeframe: str | None = None
    invoice_paid_at_timeframe: str | None = None
    invoice_updated_at_timeframe: str | None = None
    invoice_confirmed_at_timeframe: str | None = None

    def to_json(self) -> dict[str, Any]:
        return filters_json(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Filters:
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name == "id_gt":
                values[name] = int(value)
            elif name == "invoice_status":
                values[name] = tuple(value)
            elif name.endswith(TIMEFRAME_SUFFIX):
                values[name] = str(value)
            elif name.startswith("invoice_due_date_"):
                values[name] = dt.date.fromisoformat(value)
            else:
                values[name] = dt.datetime.fromisoformat(value).astimezone(dt.UTC)
        return cls(**values)

    def needs(self) -> frozenset[str]:
        """Every filter but `id_gt` is on the invoice."""
        for item in fields(self):
            if item.name != "id_gt" and getattr(self, item.name) not in (None, ()):
                return frozenset({"invoice"})
        return frozenset()

    def clauses(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.id_gt is not None:
            # The line item id a client knows is its per-account public id (incremental
            # sync: "everything after the last id I saw"); (account_id, public_id) serves it.
            where.append(line_items.c.public_id > self.id_gt)
        where += invoice_field_clauses(
            self, "invoice_status", {"invoice_due_date": "due_date", **DATETIME_FILTERS}
        )
        return where


def invoice_field_clauses(
    filters: object, status_key: str, bounded: Mapping[str, str]
) -> list[ColumnElement[bool]]:
    """The clauses on an invoice's own fields, which both report families filter by under
    their own names: the statuses in `filters.<status_key>`, and for each prefix of
    `bounded` (prefix -> invoices column) its inclusive `<prefix>_gte` and `_lte` bounds."""
    where: list[ColumnElement[bool]] = []
    if statuses := getattr(filters, status_key):
        where.append(invoices.c.status.in_(statuses))
    for prefix, column_name in bounded.items():
        column = invoices.c[column_name]
        if (low := getattr(filters, prefix + "_gte")) is not None:
            where.append(column >= low)
        if (high := getattr(filters, prefix + "_lte")) is not None:
            where.append(column <= high)
    return where


FILTER_KEYS = tuple(item.name for item in fields(Filters))
TIMEFRAME_SUFFIX = "_timeframe"


def _invalid(key: str, msg: str) -> ValidationFailed:
    return ValidationFailed.field([key], msg)


def _single(key: str, value: Any) -> Any:
    """One value; a key repeated in a query string is a list, refused for single filters."""
    if isinstance(value, list):
        if len(value) != 1:
            raise _invalid(key, "give this filter once")
        return value[0]
    return value


def _not_given(value: Any) -> bool:
    """No value, an empty one, or nothing but empty ones (a repeated `?customers=`, as URL
    templates send): the filter is not given, as the documented schemas say."""
    if isinstance(value, list):
        return all(item == "" for item in value)
    return value is None or value == ""


def parse_id_gt(key: str, value: Any) -> int:
    value = _single(key, value)
    if isinstance(value, bool):
        raise _invalid(key, "must be an integer")
    if isinstance(value, float) and value.is_integer():  # JSON Schema's integer: 5.0 is 5
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"-?[0-9]{1,19}", text):
            raise _invalid(key, "must be an integer")
        value = int(text)
    if not isinstance(value, int):
        raise _invalid(key, "must be an integer")
    if not -MAX_ID <= value <= MAX_ID:
        raise _invalid(key, "is out of range")
    return value


def parse_statuses(key: str, value: Any) -> tuple[str, ...]:
    """One status, comma-separated statuses, or a list of them (repeated in a query)."""
    items: Sequence[Any] = value if isinstance(value, list) else [value]
    statuses: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise _invalid(key, "must be a status or a comma-separated list of statuses")
        for part in item.split(","):
            status = part.strip()
            if not status:
                continue
            if status not in INVOICE_STATUSES:
                raise _invalid(
                    key, f"'{status}' is not a status; use one of {', '.join(INVOICE_STATUSES)}"
                )
            if status not in statuses:
                statuses.append(status)
    if not statuses:
        raise _invalid(key, "must name at least one status")
    return tuple(statuses)


def parse_date(key: str, value: Any) -> dt.date:
    value = _single(key, value)
    if not isinstance(value, str) or not _DATE_RE.match(value.strip()):
        raise _invalid(key, "must be a date such as 2024-07-29")
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise _invalid(key, f"'{value}' is not a valid date") from exc


def parse_datetime_bound(key: str, value: Any, zone: ZoneInfo, *, upper: bool) -> dt.datetime:
    """An aware UTC datetime; see the module docstring for offsets and bare dates."""
    value = _single(key, value)
    if not isinstance(value, str):
        raise _invalid(key, "must be a date-time such as 2024-07-29T15:51:28Z")
    text = value.strip()
    try:
        if _DATE_RE.match(text):
            day = dt.date.fromisoformat(text)
            return day_end(day, zone) if upper else day_start(day, zone)
        if match := _DATETIME_RE.match(text):
            moment = _moment(match, zone, upper=upper)
        else:
            raise ValueError(text)
        return moment.astimezone(dt.UTC)
    except (ValueError, OverflowError) as exc:
        raise _invalid(key, "must be a date-time such as 2024-07-29T15:51:28Z") from exc


def _moment(match: re.Match[str], zone: ZoneInfo, *, upper: bool) -> dt.datetime:
    """The instant of a matched date-time. Digits past microseconds cannot be stored, so a
    lower bound is rounded up and an upper bound down: the bound keeps exactly the instants
    the client asked for."""
    fraction = match["fraction"] or ""
    offset = (match["offset"] or "").upper()
    seconds = match["seconds"] or "00"
    moment = dt.datetime.fromisoformat(
        f"{match['stamp'].upper()}:{seconds}.{fraction[:6].ljust(6, '0')}{offset}"
    )
    if fraction[6:].strip("0") and not upper:
        moment += dt.timedelta(microseconds=1)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def apply_timeframes(
    values: dict[str, Any],
    timeframes: dict[str, Any],
    *,
    instant_prefixes: Sequence[str],
    zone: ZoneInfo,
    now: dt.datetime,
) -> None:
    """Resolve each `<prefix>_timeframe` of `timeframes` into `values`' `<prefix>_gte` and
    `_lte` (dates, or UTC instants for a prefix in `instant_prefixes`), refusing one given
    with either bound of its prefix. Any report family's filter parser can call this."""
    for key, value in timeframes.items():
        prefix = key.removesuffix(TIMEFRAME_SUFFIX)
        name, low, high = resolve_timeframe(
            key, value, zone=zone, now=now, instants=prefix in instant_prefixes
        )
        for bound in (f"{prefix}_gte", f"{prefix}_lte"):
            if values.get(bound) is not None:
                raise ConflictingParameters.field([key], f"give either {key} or {bound}, not both")
        values[key] = name
        values[f"{prefix}_gte"], values[f"{prefix}_lte"] = low, high


def parse_filters(raw: dict[str, Any], timezone: str, *, now: dt.datetime | None = None) -> Filters:
    """Filters from `raw` (only filter keys; empty strings mean "not given", except for a
    timeframe, where an empty value is refused). Timeframes resolve at `now` (default: the
    current instant), in `timezone`."""
    zone = ZoneInfo(timezone)
    values: dict[str, Any] = {}
    timeframes: dict[str, Any] = {}
    for key, value in raw.items():
        if key.endswith(TIMEFRAME_SUFFIX):
            if value is not None:
                timeframes[key] = value
            continue
        if _not_given(value):
            continue
        if key == "id_gt":
            values[key] = parse_id_gt(key, value)
        elif key == "invoice_status":
            values[key] = parse_statuses(key, value)
        elif key.startswith("invoice_due_date_"):
            values[key] = parse_date(key, value)
        else:
            values[key] = parse_datetime_bound(key, value, zone, upper=key.endswith("_lte"))
    apply_timeframes(
        values,
        timeframes,
        instant_prefixes=tuple(DATETIME_FILTERS),
        zone=zone,
        now=now if now is not None else utcnow(),
    )
    return Filters(**values)


# The filters as query parameters in the OpenAPI document: one JSON schema per filter key.
# An empty value means "not given" (URL templates send `?invoice_paid_at_gte=&…`).
_EMPTY = {"type": "string", "maxLength": 0}
_DATE = {"type": "string", "format": "date"}


def filter_schema(key: str) -> dict[str, Any]:
    """What `parse_filters` accepts for `key`, as a JSON schema."""
    if key == "id_gt":
        return {"anyOf": [{"type": "integer", "minimum": -MAX_ID, "maximum": MAX_ID}, _EMPTY]}
    if key == "invoice_status":
        return name_list_schema(list(INVOICE_STATUSES))
    if key.endswith(TIMEFRAME_SUFFIX):
        return {"type": "string", "enum": list(TIMEFRAMES)}
    if key.startswith("invoice_due_date_"):
        return {"anyOf": [_DATE, _EMPTY]}
    return {"anyOf": [_DATE, {"type": "string", "format": "date-time"}, _EMPTY]}


FILTER_DESCRIPTIONS: dict[str, str] = {
    "id_gt": "Only line items whose id is greater than this.",
    "invoice_status": "Invoice statuses: repeated, or comma-separated in one value.",
    **{
        f"invoice_due_date_{bound}": f"Invoice due date {word} this date (inclusive)."
        for bound, word in (("gte", "on or after"), ("lte", "on or before"))
    },
    **{
        f"{prefix}_{bound}": (
            f"Invoice {column.replace('_', ' ')} {word} this instant (inclusive): a date-time "
            "with an offset, one without (read in the account's time zone), or a date (the "
            f"{'start' if bound == 'gte' else 'end'} of that day there)."
        )
        for prefix, column in DATETIME_FILTERS.items()
        for bound, word in (("gte", "at or after"), ("lte", "at or before"))
    },
    **{
        f"{prefix}{TIMEFRAME_SUFFIX}": (
            f"Invoice {prefix.removeprefix('invoice_').replace('_', ' ')} within this named "
            "range of whole days in the account's time zone, resolved when the request is "
            "made (today, yesterday, this_/last_ week, month, quarter, year; last_7_days, "
            "last_30_days, last_90_days ending today; last_12_months: the 12 whole months "
            f"before this one). Not together with {prefix}_gte or {prefix}_lte."
        )
        for prefix in ("invoice_due_date", *DATETIME_FILTERS)
    },
}


LINE_ITEM_FILTERS = FilterFamily(
    keys=FILTER_KEYS,
    parse=lambda raw, timezone, now: parse_filters(raw, timezone, now=now),
    from_json=Filters.from_json,
    schema=filter_schema,
    descriptions=FILTER_DESCRIPTIONS,
)


# --- The invoices report's filters (TeamUp's names: no `invoice_` prefix) ---------------------

# TeamUp's purchase types of an invoice, in TeamUp's published order, and the line item types
# each one stands for (fees and gift cards stand for none). `reports.columns` derives an
# invoice's purchase type from its lines with this table.
PURCHASE_TYPES: dict[str, tuple[str, ...]] = {
    "class": ("event_registration",),
    "course": ("course",),
    "course_session": ("course_session",),
    "membership": (
        "pack_membership",
        "prepaid_plan_membership",
        "recurring_plan_membership",
        "membership_purchase",
    ),
    "store": ("store_order",),
}

# TeamUp filters naming things Ledgerline does not keep: refused by name (a parameter is
# honoured or refused, never ignored).
REFUSED_INVOICE_FILTERS: dict[str, str] = {
    "customer_memberships": "Ledgerline keeps no customer memberships, so this filter "
    "cannot be honoured",
    "payment_processors": "Ledgerline keeps no payment processors, so this filter cannot be "
    "honoured",
}

INVOICE_DATETIME_FILTERS: dict[str, str] = {
    "paid_at": "paid_at",
    "updated_at": "updated_at",
    "confirmed_at": "confirmed_at",
}

# The invoices report's per-invoice sums (`reports.columns.INVOICE_SUMS`) are a derived
# table named by this join; the filters on line values read it.
SUMS = "sums"


@dataclass(frozen=True)
class InvoiceFilters:
    id_gt: int | None = None
    status: tuple[str, ...] = ()
    due_date_gte: dt.date | None = None
    due_date_lte: dt.date | None = None
    paid_at_gte: dt.datetime | None = None
    paid_at_lte: dt.datetime | None = None
    updated_at_gte: dt.datetime | None = None
    updated_at_lte: dt.datetime | None = None
    confirmed_at_gte: dt.datetime | None = None
    confirmed_at_lte: dt.datetime | None = None
    due_date_timeframe: str | None = None
    paid_at_timeframe: str | None = None
    updated_at_timeframe: str | None = None
    confirmed_at_timeframe: str | None = None
    customers: tuple[int, ...] = ()
    purchase_types: tuple[str, ...] = ()
    discount_applied: bool | None = None
    credit_applied: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return filters_json(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InvoiceFilters:
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name == "id_gt":
                values[name] = int(value)
            elif name in ("status", "purchase_types"):
                values[name] = tuple(str(item) for item in value)
            elif name == "customers":
                values[name] = tuple(int(item) for item in value)
            elif name in ("discount_applied", "credit_applied"):
                values[name] = bool(value)
            elif name.endswith(TIMEFRAME_SUFFIX):
                values[name] = str(value)
            elif name.startswith("due_date_"):
                values[name] = dt.date.fromisoformat(value)
            else:
                values[name] = dt.datetime.fromisoformat(value).astimezone(dt.UTC)
        return cls(**values)

    def needs(self) -> frozenset[str]:
        needs: set[str] = set()
        if self.customers:
            needs.add("customer")
        if self.purchase_types or self.discount_applied is not None:
            needs.add(SUMS)
        if self.credit_applied is not None:
            needs.add(SUMS)
        return frozenset(needs)

    def clauses(self) -> list[ColumnElement[bool]]:
        # Imported here: the catalog imports this module for the filter families.
        from ledgerline.reports.columns import invoice_sums, purchase_type_expr

        customers = Customer.__table__
        where: list[ColumnElement[bool]] = []
        if self.id_gt is not None:
            where.append(invoices.c.public_id > self.id_gt)
        where += invoice_field_clauses(
            self, "status", {"due_date": "due_date", **INVOICE_DATETIME_FILTERS}
        )
        if self.customers:
            # The customer joined is the invoice's own, so of its account: another account's
            # customer id matches nothing.
            where.append(customers.c.public_id.in_(self.customers))
        if self.purchase_types:
            where.append(purchase_type_expr().in_(self.purchase_types))
        for flag, lines in (
            (self.discount_applied, invoice_sums.c.discount_lines),
            (self.credit_applied, invoice_sums.c.credit_lines),
        ):
            if flag is True:
                where.append(lines > 0)
            elif flag is False:
                where.append(func.coalesce(lines, 0) == 0)
        return where


INVOICE_FILTER_KEYS = tuple(item.name for item in fields(InvoiceFilters))


# Each id is one bound parameter of the report's statement (databases cap them per statement:
# SQLite 32,766, PostgreSQL 65,535). A query string (16 KiB at most) cannot reach the cap; a
# JSON body can.
MAX_CUSTOMERS = 10_000


def parse_customer_ids(key: str, value: Any) -> tuple[int, ...]:
    """Customer ids: repeated, comma-separated, or a JSON list of integers."""
    items: Sequence[Any] = value if isinstance(value, list) else [value]
    ids: list[int] = []
    for item in items:
        parts = item.split(",") if isinstance(item, str) else [item]
        for part in parts:
            if isinstance(part, str) and not part.strip():
                continue
            number = parse_id_gt(key, part.strip() if isinstance(part, str) else part)
            if number not in ids:
                ids.append(number)
    if not ids:
        raise _invalid(key, "must name at least one customer id")
    if len(ids) > MAX_CUSTOMERS:
        raise _invalid(key, f"names more than {MAX_CUSTOMERS} customers")
    return tuple(ids)


def parse_purchase_types(key: str, value: Any) -> tuple[str, ...]:
    items: Sequence[Any] = value if isinstance(value, list) else [value]
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise _invalid(key, f"must be purchase types: {', '.join(PURCHASE_TYPES)}")
        for part in item.split(","):
            name = part.strip()
            if not name:
                continue
            if name not in PURCHASE_TYPES:
                raise _invalid(
                    key, f"'{name}' is not a purchase type; use one of {', '.join(PURCHASE_TYPES)}"
                )
            if name not in names:
                names.append(name)
    if not names:
        raise _invalid(key, "must name at least one purchase type")
    return tuple(names)


def parse_boolean(key: str, value: Any) -> bool:
    """true or false: a JSON boolean, or the words `true` / `false` in a query or form."""
    value = _single(key, value)
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise _invalid(key, "must be true or false")


def parse_invoice_filters(
    raw: dict[str, Any], timezone: str, now: dt.datetime | None = None
) -> InvoiceFilters:
    """The invoices report's filters from `raw` (only filter keys), as `parse_filters` reads
    the line items report's: the same date and date-time rules, timeframes at `now`."""
    zone = ZoneInfo(timezone)
    values: dict[str, Any] = {}
    timeframes: dict[str, Any] = {}
    for key, value in raw.items():
        if key in REFUSED_INVOICE_FILTERS:
            if _not_given(value):
                continue
            raise _invalid(key, REFUSED_INVOICE_FILTERS[key])
        if key.endswith(TIMEFRAME_SUFFIX):
            if value is not None:
                timeframes[key] = value
            continue
        if _not_given(value):
            continue
        if key == "id_gt":
            values[key] = parse_id_gt(key, value)
        elif key == "status":
            values[key] = parse_statuses(key, value)
        elif key == "customers":
            values[key] = parse_customer_ids(key, value)
        elif key == "purchase_types":
            values[key] = parse_purchase_types(key, value)
        elif key in ("discount_applied", "credit_applied"):
            values[key] = parse_boolean(key, value)
        elif key.startswith("due_date_"):
            values[key] = parse_date(key, value)
        else:
            values[key] = parse_datetime_bound(key, value, zone, upper=key.endswith("_lte"))
    apply_timeframes(
        values,
        timeframes,
        instant_prefixes=tuple(INVOICE_DATETIME_FILTERS),
        zone=zone,
        now=now if now is not None else utcnow(),
    )
    return InvoiceFilters(**values)


def invoice_filter_schema(key: str) -> dict[str, Any]:
    if key == "id_gt":
        return filter_schema("id_gt")
    if key == "status":
        return name_list_schema(list(INVOICE_STATUSES))
    if key == "purchase_types":
        return name_list_schema(list(PURCHASE_TYPES))
    if key == "customers":
        customer_id = {"type": "integer", "minimum": -MAX_ID, "maximum": MAX_ID}
        # No maxItems: the cap (MAX_CUSTOMERS) is beyond what a query string can hold.
        return {"type": "array", "items": {"anyOf": [customer_id, _EMPTY]}}
    if key in ("discount_applied", "credit_applied"):
        return {"anyOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false", ""]}]}
    if key.endswith(TIMEFRAME_SUFFIX):
        return {"type": "string", "enum": list(TIMEFRAMES)}
    if key.startswith("due_date_"):
        return {"anyOf": [_DATE, _EMPTY]}
    return {"anyOf": [_DATE, {"type": "string", "format": "date-time"}, _EMPTY]}


INVOICE_FILTER_DESCRIPTIONS: dict[str, str] = {
    "id_gt": "Only invoices whose id is greater than this.",
    "status": "Invoice statuses: repeated, or comma-separated in one value.",
    "customers": "Only invoices of these customers (customer ids, repeated or comma-separated).",
    "purchase_types": "Only invoices of these purchase types (class, course, course_session, "
    "membership, store): repeated or comma-separated.",
    "discount_applied": "true: only invoices with a line item whose discount_amount is not "
    "zero; false: only invoices without one.",
    "credit_applied": "true: only invoices with a line item whose credit_amount is not zero; "
    "false: only invoices without one.",
    **{
        f"due_date_{bound}": f"Due date {word} this date (inclusive)."
        for bound, word in (("gte", "on or after"), ("lte", "on or before"))
    },
    **{
        f"{prefix}_{bound}": (
            f"{column.replace('_', ' ').capitalize()} {word} this instant (inclusive): a "
            "date-time with an offset, one without (read in the account's time zone), or a "
            f"date (the {'start' if bound == 'gte' else 'end'} of that day there)."
        )
        for prefix, column in INVOICE_DATETIME_FILTERS.items()
        for bound, word in (("gte", "at or after"), ("lte", "at or before"))
    },
    **{
        f"{prefix}{TIMEFRAME_SUFFIX}": (
            f"{prefix.replace('_', ' ').capitalize()} within this named range of whole days in "
            "the account's time zone, resolved when the request is made (see the line items "
            f"report's timeframes). Not together with {prefix}_gte or {prefix}_lte."
        )
        for prefix in ("due_date", *INVOICE_DATETIME_FILTERS)
    },
}

INVOICE_FILTERS = FilterFamily(
    keys=(*INVOICE_FILTER_KEYS, *REFUSED_INVOICE_FILTERS),
    parse=parse_invoice_filters,
    from_json=InvoiceFilters.from_json,
    schema=invoice_filter_schema,
    descriptions=INVOICE_FILTER_DESCRIPTIONS,
)
