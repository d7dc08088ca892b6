"""What the console's pages show, built from the services the API uses: report pages come from
`reports.query.report_page` (the rows `/data` answers), exports are `jobs.service` jobs, and
every statement carries the account filter through those services or `auth`'s helpers.

Framework-free: the endpoints parse and render; this module decides what a page holds.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import Connection, func, nulls_last, or_, select
from sqlalchemy.orm import Session

from ledgerline.auth import Principal, scoped
from ledgerline.errors import AppError
from ledgerline.groups.service import group_totals
from ledgerline.invoices.service import get_invoice_view, invoice_totals
from ledgerline.invoices.totals import Totals
from ledgerline.models import (
    INVOICE_STATUSES,
    WEEKDAYS,
    Customer,
    ExportSchedule,
    Invoice,
    Job,
    LineItem,
    LineItemGroup,
    WebhookDelivery,
    WebhookEndpoint,
)
from ledgerline.money import currency_digits, decimal_to_scaled, display_string, micros_string
from ledgerline.reports.columns import CATALOGS, FLAT, GROUPED, INVOICES, INVOICES_GROUPED, Column
from ledgerline.reports.query import (
    ReportParams,
    currency_totals,
    parse_report_params,
    report_page,
    rows_statement,
)
from ledgerline.reports.rendering import json_row_maker
from ledgerline.reports.timeframes import TIMEFRAMES, timeframe_days, today_in
from ledgerline.schedules import service as schedules
from ledgerline.schedules.schemas import ScheduleCreate
from ledgerline.webhooks import service as webhooks
from ledgerline.webhooks.schemas import WebhookEndpointCreate

PAGE_SIZE = 50
# The four date ranges of the report filters: (key in the filter names, label).
RANGES: tuple[tuple[str, str], ...] = (
    ("due_date", "Due date"),
    ("paid_at", "Paid"),
    ("updated_at", "Updated"),
    ("confirmed_at", "Confirmed"),
)
PRESETS = {
    "last_month": "Last month",
    "this_quarter": "This quarter",
    "last_30_days": "Last 30 days",
}
# Query keys of a console report URL that are not report parameters.
PAGE_KEY = "page"
GROUP_BY_KEY = "group_by"
PRESET_KEYS = tuple(f"{key}_preset" for key, _ in RANGES)
NUMERIC_KINDS = frozenset({"int", "ref", "money"})
# The export formats as a finance person knows them. A format the writers gain before it has
# a label here still shows, as its name in capitals (the select's value stays the name).
FORMAT_LABELS = {
    "csv": "CSV",
    "json": "JSON",
    "ndjson": "JSON Lines (ndjson)",
    "xlsx": "Excel (xlsx)",
    "parquet": "Parquet",
}


def format_label(name: str) -> str:
    return FORMAT_LABELS.get(name, name.upper())


# ---- the report's query string ----------------------------------------------------------------


@dataclass
class ReportQuery:
    """A console report URL, read: the report parameters (presets resolved to dates in the
    account's time zone), the page, and problems by the control they concern."""

    items: list[tuple[str, str]]
    raw: dict[str, Any]
    presets: dict[str, str]
    page: int = 1
    errors: dict[str, str] = field(default_factory=dict)
    # The grouped view's "Group by" (a key of GROUPINGS; what was asked for, even unknown).
    group_by: str = "type"

    @property
    def grouping(self) -> Grouping:
        return GROUPINGS.get(self.group_by, GROUPINGS["type"])

    def url(self, path: str, **changes: str | None) -> str:
        """This query with some keys replaced (None removes them), as a link."""
        kept = [(key, value) for key, value in self.items if key not in changes]
        added = [(key, value) for key, value in changes.items() if value is not None]
        query = urlencode(kept + added)
        return f"{path}?{query}" if query else path

    @property
    def report_query(self) -> str:
        """The report parameters alone, for the export form (no page)."""
        return urlencode([(key, value) for key, value in self.items if key != PAGE_KEY])


def read_report_query(
    items: Sequence[tuple[str, str]], principal: Principal, now: dt.datetime
) -> ReportQuery:
    raw: dict[str, Any] = {}
    presets: dict[str, str] = {}
    errors: dict[str, str] = {}
    page = 1
    group_by = "type"
    for key, value in items:
        if key == PAGE_KEY:
            page = _page_number(value, errors)
        elif key == GROUP_BY_KEY:
            group_by = value or "type"
            if group_by not in GROUPINGS:
                errors[GROUP_BY_KEY] = "is not a grouping: choose one of the list"
        elif key in PRESET_KEYS:
            presets[key.removesuffix("_preset")] = value
        else:
            before = raw.get(key)
            raw[key] = value if before is None else [*_listed(before), value]
    today = today_in(principal.timezone, now)
    for range_key, preset in presets.items():
        if not preset:
            continue
        if preset not in PRESETS:
            errors[f"{range_key}_preset"] = "is not a preset"
            continue
        first, last = timeframe_days(preset, today)
        raw[f"invoice_{range_key}_gte"] = first.isoformat()
        raw[f"invoice_{range_key}_lte"] = last.isoformat()
    return ReportQuery(list(items), raw, presets, page, errors, group_by)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _page_number(value: str, errors: dict[str, str]) -> int:
    if value.isascii() and value.isdigit() and 1 <= int(value) <= 1_000_000:
        return int(value)
    errors[PAGE_KEY] = "must be a page number from 1"
    return 1


def parse_params(
    report: str, query: ReportQuery, principal: Principal, *, for_export: bool, **extra: Any
) -> ReportParams | None:
    """The validated parameters, or None with the problem filed under its control's name."""
    if query.errors:
        return None
    raw = query.raw
    if report == GROUPED:
        # The grouped view shares the report's URL but shows fixed columns: the flat
        # report's `columns` and `sort` are not its own, so they are left out, not refused.
        # Its columns and sort are those of the chosen grouping (none for "type": the
        # API's default request, exactly as before).
        raw = {key: value for key, value in raw.items() if key not in ("columns", "sort")}
        raw.update(query.grouping.request)
    try:
        return parse_report_params(
            report, {**raw, **extra}, timezone=principal.timezone, for_export=for_export
        )
    except AppError as exc:
        for error in exc.errors or [{"loc": ["query"], "msg": exc.detail}]:
            query.errors[str(error["loc"][-1])] = str(error["msg"])
        return None


# ---- the flat report page ---------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    key: str
    label: str
    numeric: bool
    sortable: bool
    sorted: str | None  # "ascending", "descending" or None (aria-sort's words)
    sort_url: str


@dataclass(frozen=True)
class Cell:
    text: str
    numeric: bool


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    rows: int
    amounts: list[tuple[str, str]]  # (money column key, formatted total)


@dataclass
class ReportPage:
    headers: list[Header]
    rows: list[list[Cell]]
    total: int
    first_row: int
    last_row: int
    previous_url: str | None
    next_url: str | None
    totals: list[CurrencyTotal]
    money_columns: list[tuple[str, str]]  # (key, label)


def _decoded_rows(page: dict[str, Any]) -> list[dict[str, Any]]:
    """The page's rows as the API writes them (exact decimals), read back into Python."""
    decoded: list[dict[str, Any]] = []
    for row in page["rows"]:
        value: dict[str, Any] = json.loads(row.encoded_json, parse_float=Decimal)
        decoded.append(value)
    return decoded


def _value_at(row: Mapping[str, Any], column: Column) -> Any:
    value: Any = row
    for part in column.path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def cell_text(column: Column, value: Any) -> str:
    """A report cell as a person reads it; money as the API's own display string."""
    if value is None:
        return ""
    if column.kind == "money":
        return str(value["string"])
    if column.kind == "bool":
        return "Yes" if value else "No"
    if column.kind == "billed_item":
        return f"{value.get('object', '')} {value.get('id', '')}".strip()
    return str(value)


def _headers(params: ReportParams, query: ReportQuery, path: str) -> list[Header]:
    sorted_by = dict(params.sort)
    first_key = params.sort[0][0] if params.sort else None
    headers: list[Header] = []
    for column in params.selected:
        state = None
        if column.key == first_key:
            state = "descending" if sorted_by[column.key] else "ascending"
        # Clicking the column sorting by it ascending flips it; any other sorts ascending.
        flipped = f"-{column.key}" if state == "ascending" else column.key
        headers.append(
            Header(
                key=column.key,
                label=column.label,
                numeric=column.kind in NUMERIC_KINDS,
                sortable=column.sortable,
                sorted=state,
                sort_url=query.url(path, sort=flipped, page=None),
            )
        )
    return headers


def _currency_totals(
    conn: Connection, principal: Principal, params: ReportParams
) -> list[CurrencyTotal]:
    money = [c for c in params.catalog.columns if c.kind == "money"]
    return [
        CurrencyTotal(
            currency=currency,
            rows=sums["rows"],
            amounts=[(c.key, display_string(sums[c.key], currency)) for c in money],
        )
        for currency, sums in currency_totals(conn, principal.account_id, params).items()
    ]


def report_view(
    conn: Connection, principal: Principal, params: ReportParams, query: ReportQuery, path: str
) -> ReportPage:
    """One page of the flat report, with its count and per-currency totals of the whole
    filtered set."""
    offset = (query.page - 1) * PAGE_SIZE
    page = report_page(conn, principal.account_id, params, limit=PAGE_SIZE, offset=offset)
    columns = params.selected
    rows = [
        [
            Cell(cell_text(column, _value_at(row, column)), column.kind in NUMERIC_KINDS)
            for column in columns
        ]
        for row in _decoded_rows(page)
    ]
    total = int(page["total"])
    last_row = offset + len(rows)
    return ReportPage(
        headers=_headers(params, query, path),
        rows=rows,
        total=total,
        first_row=offset + 1 if rows else 0,
        last_row=last_row,
        previous_url=query.url(path, page=str(query.page - 1)) if query.page > 1 else None,
        next_url=query.url(path, page=str(query.page + 1)) if last_row < total else None,
        totals=_currency_totals(conn, principal, params),
        money_columns=[(c.key, c.label) for c in params.catalog.columns if c.kind == "money"],
    )


# ---- the filter form --------------------------------------------------------------------------


@dataclass(frozen=True)
class DateRangeControl:
    key: str
    label: str
    preset: str
    gte: str
    lte: str


@dataclass(frozen=True)
class ColumnChoice:
    key: str
    label: str
    checked: bool


@dataclass(frozen=True)
class FilterForm:
    statuses: list[tuple[str, bool]]
    ranges: list[DateRangeControl]
    columns: list[ColumnChoice]
    sort: str
    presets: dict[str, str]


def _first(value: Any) -> str:
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def _chosen_names(value: Any) -> list[str]:
    return [part.strip() for item in _listed(value or []) for part in str(item).split(",")]


def filter_form(report: str, query: ReportQuery, params: ReportParams | None) -> FilterForm:
    """The controls, showing what the URL asked for (even when it did not validate)."""
    catalog = CATALOGS[report]
    statuses = set(_chosen_names(query.raw.get("invoice_status")))
    if params is not None:
        chosen = list(params.columns)
    else:
        chosen = [
            c.key for n in _chosen_names(query.raw.get("columns")) if (c := catalog.lookup(n))
        ]
    chosen = chosen or list(catalog.default_columns)
    # Chosen columns first, in their order (the order is the picker's); then the rest.
    rest = [c.key for c in catalog.columns if c.key not in chosen]
    columns = [
        ColumnChoice(key, catalog.by_name[key].label, key in chosen) for key in [*chosen, *rest]
    ]
    ranges = [
        DateRangeControl(
            key,
            label,
            query.presets.get(key, ""),
            _first(query.raw.get(f"invoice_{key}_gte")),
            _first(query.raw.get(f"invoice_{key}_lte")),
        )
        for key, label in RANGES
    ]
    return FilterForm(
        statuses=[(status, status in statuses) for status in INVOICE_STATUSES],
        ranges=ranges,
        columns=columns,
        sort=_first(query.raw.get("sort")),
        presets=PRESETS,
    )


# ---- the grouped report -----------------------------------------------------------------------

# Each bar sits under its label (long type names need no label column, so a phone's narrow
# chart keeps readable text); the value is written past the bar's end.
BAR_AREA = 300  # the width, in SVG units, bars are drawn in
VALUE_WIDTH = 140
ROW_HEIGHT = 44
LABEL_CHARS = 48


@dataclass(frozen=True)
class Bar:
    key: str  # the group's value as the API answers it ("" when NULL)
    label: str
    minor: int
    text: str
    x: int
    y: int
    width: int
    negative: bool

    @property
    def short_label(self) -> str:
        """The label drawn above the bar (the whole one is its `<title>` and in the table)."""
        return self.label if len(self.label) <= LABEL_CHARS else self.label[: LABEL_CHARS - 1] + "…"


@dataclass(frozen=True)
class CurrencyChart:
    currency: str
    bars: list[Bar]
    zero_x: int
    height: int
    width: int = BAR_AREA + VALUE_WIDTH


def _minor_of(money: Mapping[str, Any]) -> int:
    """A money object's decimal back to minor units (the edge where Decimal is allowed)."""
    currency = str(money["iso_currency_code"]).upper()
    return decimal_to_scaled(Decimal(money["decimal"]), currency_digits(currency))


def _chart(currency: str, groups: list[tuple[str, str, int]]) -> CurrencyChart:
    """Horizontal bars from one zero line: a negative total (refunds) extends to its left.
    Integer geometry: each length is its share of the widest extent, rounded down."""
    most = max((minor for _, _, minor in groups), default=0)
    least = min((minor for _, _, minor in groups), default=0)
    extent = max(most, 0) - min(least, 0) or 1
    zero_x = BAR_AREA * -min(least, 0) // extent
    bars = []
    for index, (key, label, minor) in enumerate(groups):
        width = max(1, BAR_AREA * abs(minor) // extent) if minor else 0
        bars.append(
            Bar(
                key=key,
                label=label,
                minor=minor,
                text=display_string(minor, currency),
                x=zero_x - width if minor < 0 else zero_x,
                y=index * ROW_HEIGHT,
                width=width,
                negative=minor < 0,
            )
        )
    return CurrencyChart(currency, bars, zero_x, max(1, len(bars)) * ROW_HEIGHT)


@dataclass(frozen=True)
class Grouping:
    """One choice of the grouped view's "Group by": the grouped report's columns it asks
    for (its keys, then the aggregates), its sort, and how many groups the page shows.

    The keys' first column is the group; a second key (a customer's or a venue's name
    beside its id) only labels it, so two customers of the same name stay two groups."""

    key: str
    label: str  # "Invoice status": the control's option and the table's first header
    title: str  # "invoice status": the heading's "Line items by …"
    keys: tuple[str, ...]
    none_label: str = "None"  # a NULL group (an unpaid invoice's month paid)
    # The page shows the largest groups first, at most this many; the export has all.
    bounded: bool = False
    words: bool = False  # snake_case values read as words ("partially paid")
    period: bool = False  # "2026-03" reads "Mar 2026", "2026-Q1" "Q1 2026"

    @property
    def columns(self) -> tuple[str, ...]:
        if self.key == "type":
            return ("type", "total_amount")
        # A bounded grouping names the currency, so its file is sorted as the page is: by
        # currency, then the largest total first.
        currency = ("currency",) if self.bounded else ()
        return (*self.keys, *currency, *AGGREGATES)

    @property
    def request(self) -> dict[str, str]:
        """The grouped report's parameters for this grouping (none for the default)."""
        if self.key == "type":
            return {}
        request = {"columns": ",".join(self.columns)}
        if self.bounded:
            request["sort"] = "currency,-total_amount"
        return request


AGGREGATES = ("count", "total_amount", "total_tax_amount", "total_gross_amount")
BOUNDED_GROUPS = 50
# Every group of the other groupings fits a page (types, statuses, currencies, periods).
ALL_GROUPS = 10_000
GROUPINGS: dict[str, Grouping] = {
    grouping.key: grouping
    for grouping in (
        # The default: exactly the page before there was a choice (TeamUp's grouped report).
        Grouping("type", "Type", "type", ("type",), words=True),
        Grouping("status", "Invoice status", "invoice status", ("invoice.status",), words=True),
        Grouping(
            "customer",
            "Customer",
            "customer",
            ("customer.id", "customer.name"),
            none_label="No customer",
            bounded=True,
        ),
        Grouping(
            "venue",
            "Venue",
            "venue",
            ("customer.venue.id", "customer.venue.name"),
            none_label="No venue",
            bounded=True,
        ),
        Grouping("currency", "Currency", "currency", ("currency",)),
        Grouping(
            "paid_month",
            "Month paid",
            "month paid",
            ("invoice.paid_at_month",),
            "Not paid",
            period=True,
        ),
        Grouping(
            "paid_quarter",
            "Quarter paid",
            "quarter paid",
            ("invoice.paid_at_quarter",),
            "Not paid",
            period=True,
        ),
        Grouping("paid_year", "Year paid", "year paid", ("invoice.paid_at_year",), "Not paid"),
        Grouping(
            "due_month",
            "Month due",
            "month due",
            ("invoice.due_date_month",),
            "No due date",
            period=True,
        ),
    )
}


@dataclass(frozen=True)
class GroupedRow:
    key: str  # the group's value as the API answers it ("" when NULL)
    label: str  # as a person reads it
    currency: str
    count: int | None  # None when the grouping does not ask for it (type)
    amounts: list[tuple[str, int, str]]  # (aggregate key, minor units, display string)


@dataclass
class GroupedPage:
    grouping: Grouping
    headers: list[tuple[str, str]]  # (aggregate key, label) after the group and currency
    rows: list[GroupedRow]
    charts: list[CurrencyChart]
    total: int  # groups in all (a group is a value and a currency)
    # Per currency whose groups are not all shown: (currency, shown, groups).
    cut: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return self.total > len(self.rows)


def _group_label(grouping: Grouping, row: Mapping[str, Any], columns: list[Column]) -> str:
    values = [_value_at(row, column) for column in columns]
    if values[0] is None:
        return grouping.none_label
    if len(values) > 1:
        # id and name: the name, with the id when there is no name.
        name = values[1]
        return f"{name} (#{values[0]})" if name else f"#{values[0]}"
    text = str(values[0])
    if grouping.period:
        return _period_label(text)
    return text.replace("_", " ") if grouping.words else text


def _period_label(text: str) -> str:
    """The API's period text as a person writes it: "2026-03" -> "Mar 2026",
    "2026-Q1" -> "Q1 2026" (a year, or anything else, as it is)."""
    year, _, part = text.partition("-")
    if part.startswith("Q"):
        return f"{part} {year}"
    if part.isdigit() and 1 <= int(part) <= 12:
        return f"{calendar.month_abbr[int(part)]} {year}"
    return text


def grouped_view(
    conn: Connection, principal: Principal, params: ReportParams, grouping: Grouping
) -> GroupedPage:
    """The groups of the grouped report's `/data` for the grouping's columns, in its order
    (the largest first for a bounded grouping, at most `BOUNDED_GROUPS`; every group else),
    and one chart of the total amount per currency: never two currencies on one axis."""
    keys = [params.column(key) for key in grouping.keys]
    cut: list[tuple[str, int, int]] = []
    if grouping.bounded:
        found, groups = _largest_per_currency(conn, principal, params, keys)
        total = sum(groups.values())
        shown = {currency: min(count, BOUNDED_GROUPS) for currency, count in groups.items()}
        cut = [(c, shown[c], n) for c, n in sorted(groups.items()) if n > shown[c]]
    else:
        page = report_page(conn, principal.account_id, params, limit=ALL_GROUPS, offset=0)
        found, total = _decoded_rows(page), int(page["total"])
    money = [column for column in params.selected if column.kind == "money"]
    by_currency: dict[str, list[tuple[str, str, int]]] = {}
    rows: list[GroupedRow] = []
    for row in found:
        currency = str(row["total_amount"]["iso_currency_code"]).upper()
        label = _group_label(grouping, row, keys)
        amounts = [(c.key, _minor_of(row[c.key]), str(row[c.key]["string"])) for c in money]
        first = _value_at(row, keys[0])
        key = "" if first is None else str(first)
        by_currency.setdefault(currency, []).append((key, label, _minor_of(row["total_amount"])))
        rows.append(
            GroupedRow(
                key=key,
                label=label,
                currency=currency,
                count=int(row["count"]) if "count" in row else None,
                amounts=amounts,
            )
        )
    charts = [_chart(currency, groups) for currency, groups in sorted(by_currency.items())]
    return GroupedPage(
        grouping=grouping,
        headers=[(c.key, c.label) for c in money],
        rows=rows,
        charts=charts,
        total=total,
        cut=cut,
    )


def _largest_per_currency(
    conn: Connection, principal: Principal, params: ReportParams, keys: list[Column]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The `BOUNDED_GROUPS` largest groups of each currency (by total amount, ties in the
    grouped report's own order: the keys ascending, NULLs last), in the report's order
    (currency, then largest first), and how many groups each currency has.

    The grouped report's statement itself (`rows_statement`: its account filter, filters,
    GROUP BY and columns), ranked within each currency by a window over its groups; a rank
    per currency, because "the largest" across currencies would rank ¥ against £."""
    statement = rows_statement(principal.account_id, params)
    currency = params.catalog.source.currency
    total = params.column("total_amount").exprs[0]
    ties = [nulls_last(expr.asc()) for column in keys for expr in column.exprs]
    ranked = (
        statement.add_columns(
            func.row_number()
            .over(partition_by=currency, order_by=[total.desc(), *ties])
            .label("rank_in_currency"),
            func.count().over(partition_by=currency).label("groups_in_currency"),
        )
        .order_by(None)
        .subquery()
    )
    found = conn.execute(
        select(ranked)
        .where(ranked.c.rank_in_currency <= BOUNDED_GROUPS)
        .order_by(ranked.c.currency, ranked.c.rank_in_currency)
    ).all()
    make_row = json_row_maker(params.selected)
    rows: list[dict[str, Any]] = []
    groups: dict[str, int] = {}
    for row in found:
        rows.append(json.loads(make_row(row), parse_float=Decimal))
        groups[str(row.currency).upper()] = int(row.groups_in_currency)
    return rows, groups


# ---- jobs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRow:
    job: Job
    rows: int | None
    created: str
    finished: str
    downloadable: bool
    report_label: str


REPORT_LABELS = {
    FLAT: "Line items",
    GROUPED: "Grouped",
    # Exports of TeamUp's invoices report, made through the API, are listed with the rest.
    INVOICES: "Invoices",
    INVOICES_GROUPED: "Invoices grouped",
}
ACTIVE = ("queued", "running")


def local_time(value: dt.datetime | None, timezone: str) -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def downloadable(job: Job, now: dt.datetime) -> bool:
    """The file exists: succeeded and not past its retention."""
    return job.status == "succeeded" and (job.expires_at is None or job.expires_at > now)


@dataclass(frozen=True)
class TotalsView:
    """A succeeded export's control totals as a table: one row per currency, a column per
    money column of the file (its label), the rows and the sums as the job gives them."""

    labels: list[str]
    rows: list[tuple[str, int, list[str]]]


def totals_view(job: Job) -> TotalsView | None:
    if not job.totals:
        return None
    catalog = CATALOGS.get(job.report)
    keys = list(job.totals[0]["sums"])

    def label(key: str) -> str:
        column = catalog.lookup(key) if catalog is not None else None
        return column.label if column is not None else key

    rows = [
        (entry["currency"] or "", int(entry["rows"]), [entry["sums"][key] for key in keys])
        for entry in job.totals
    ]
    return TotalsView([label(key) for key in keys], rows)


def job_row(job: Job, principal: Principal, now: dt.datetime) -> JobRow:
    return JobRow(
        job=job,
        rows=job.row_count if job.row_count is not None else job.rows_total,
        created=local_time(job.created_at, principal.timezone),
        finished=local_time(job.finished_at, principal.timezone),
        downloadable=downloadable(job, now),
        report_label=REPORT_LABELS.get(job.report, job.report),
    )


# ---- invoices ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceRow:
    invoice: Invoice
    customer: str
    net: str
    tax: str
    gross: str


@dataclass(frozen=True)
class InvoiceSearch:
    text: str = ""
    status: str = ""
    page: int = 1
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None, status: str | None, page: int) -> InvoiceSearch:
        errors: dict[str, str] = {}
        status = (status or "").strip()
        if status and status not in INVOICE_STATUSES:
            errors["status"] = "is not an invoice status"
        text = (text or "").strip()
        if "\x00" in text:
            errors["q"] = "may not contain a NUL character"
        return cls(text, status, page, errors)


def _money_texts(totals: Totals, currency: str) -> tuple[str, str, str]:
    return (
        display_string(totals.net, currency),
        display_string(totals.tax, currency),
        display_string(totals.gross, currency),
    )


def invoice_list(
    session: Session, principal: Principal, search: InvoiceSearch
) -> tuple[int, list[InvoiceRow]]:
    """A page of the account's invoices, newest first: search by number or customer name."""
    statement = scoped(Invoice, principal).outerjoin(Customer, Customer.id == Invoice.customer_id)
    if search.status:
        statement = statement.where(Invoice.status == search.status)
    if search.text:
        folded = search.text.lower()
        statement = statement.where(
            or_(
                func.lower(Invoice.number).contains(folded, autoescape=True),
                func.lower(Customer.name).contains(folded, autoescape=True),
            )
        )
    count = session.execute(
        select(func.count()).select_from(statement.order_by(None).subquery())
    ).scalar_one()
    found = session.execute(
        statement.add_columns(Customer.name)
        .order_by(Invoice.id.desc())
        .limit(PAGE_SIZE)
        .offset((search.page - 1) * PAGE_SIZE)
    ).all()
    totals = invoice_totals(session, principal, [row[0].id for row in found])
    rows = [
        InvoiceRow(
            invoice, name or "", *_money_texts(totals.get(invoice.id, Totals()), invoice.currency)
        )
        for invoice, name in found
    ]
    return int(count), rows


@dataclass(frozen=True)
class LineRow:
    line: LineItem
    group: str
    amount: str
    tax: str
    unit_price: str


@dataclass(frozen=True)
class GroupRow:
    group: LineItemGroup
    net: str
    tax: str
    gross: str


@dataclass(frozen=True)
class InvoiceDetail:
    invoice: Invoice
    customer: str
    net: str
    tax: str
    gross: str
    due: str
    lines: list[LineRow]
    groups: list[GroupRow]


def invoice_detail(session: Session, principal: Principal, invoice_id: int) -> InvoiceDetail:
    """One invoice with its lines and groups; totals from the same sums the API uses.
    Raises `NotFound` for another account's invoice exactly as for a missing one."""
    view = get_invoice_view(session, principal, invoice_id, line_items=True)
    invoice, currency = view.invoice, view.invoice.currency
    groups = list(
        session.execute(
            scoped(LineItemGroup, principal)
            .where(LineItemGroup.invoice_id == invoice.id)
            .order_by(LineItemGroup.index, LineItemGroup.id)
        ).scalars()
    )
    group_sums = group_totals(session, principal, [group.id for group in groups])
    titles = {str(group.public_id): group.title for group in groups}
    customer = (
        session.execute(
            scoped(Customer, principal).where(Customer.id == invoice.customer_id)
        ).scalar_one_or_none()
        if invoice.customer_id
        else None
    )
    lines = [
        LineRow(
            line,
            titles.get(group_id or "", ""),
            display_string(line.amount, currency),
            display_string(line.tax_amount, currency),
            micros_string(line.unit_price_micros) if line.unit_price_micros is not None else "",
        )
        for line, group_id in view.line_items or []
    ]
    return InvoiceDetail(
        invoice,
        customer.name if customer else "",
        *_money_texts(view.totals, currency),
        display_string(view.totals.amount_due, currency),
        lines,
        [GroupRow(g, *_money_texts(group_sums.get(g.id, Totals()), currency)) for g in groups],
    )


# ---- export schedules -------------------------------------------------------------------------

# The schedule form's controls, by the name a problem is filed under, as the form labels them.
SCHEDULE_FIELDS = {
    "report": "Report",
    "format": "Format",
    "cadence": "Runs",
    "time": "Time",
    "weekday": "Weekday",
    "day_of_month": "Day of the month",
    "cron": "Cron expression",
    "timezone": "Time zone",
    "timeframe": "Period",
    "statuses": "Invoice statuses",
    "more": "Other parameters",
}
CADENCE_LABELS = {
    "daily": "Daily",
    "weekly": "Weekly",
    "monthly": "Monthly",
    "cron": "Cron expression",
}
TIMEFRAME_LABELS = {name: name.replace("_", " ").capitalize() for name in TIMEFRAMES}
# What a control's value must look like, said plainly where the body's schema refuses it
# (its own message names a regular expression).
SCHEDULE_HINTS = {
    "report": "choose a report from the list",
    "format": "choose a format from the list",
    "cadence": "choose how often it runs",
    "time": 'must be a time of day as HH:MM (24-hour), such as "06:00"',
    "weekday": "choose a day of the week",
    "day_of_month": "must be a day of the month from 1 to 31",
    "cron": (
        "must be a five-field cron expression (minute hour day-of-month month weekday), "
        'such as "0 6 * * MON-FRI"'
    ),
    "timezone": "must be an IANA time zone name, such as Europe/London",
}


@dataclass
class ScheduleForm:
    """The schedule form as sent (shown again, with its problems, when it does not validate)."""

    report: str = FLAT
    format: str = "csv"
    cadence: str = "monthly"
    time: str = "06:00"
    weekday: str = "monday"
    day_of_month: str = "1"
    cron: str = ""
    timezone: str = ""
    date_range: str = "paid_at"
    timeframe: str = "last_month"
    statuses: list[str] = field(default_factory=list)
    more: str = ""
    paused: bool = False
    errors: dict[str, str] = field(default_factory=dict)

    def filter_key(self, prefix: str) -> str:
        """The report's own name of a filter: `invoice_paid_at_…` for the line items
        reports, `paid_at_…` for the invoices reports."""
        own = "" if self.report in (INVOICES, INVOICES_GROUPED) else "invoice_"
        return f"{own}{prefix}"

    @property
    def timeframe_key(self) -> str:
        return self.filter_key(f"{self.date_range}_timeframe")

    @property
    def status_key(self) -> str:
        return "status" if self.report in (INVOICES, INVOICES_GROUPED) else "invoice_status"

    def parameters(self) -> dict[str, Any]:
        """The report parameters the controls stand for; "Other parameters" is read as a
        query string (`columns=id,amount&sort=-amount`), as the report page's URL holds them."""
        parameters: dict[str, Any] = {}
        for key, value in parse_qsl(self.more.strip().lstrip("?"), keep_blank_values=True):
            before = parameters.get(key)
            parameters[key] = value if before is None else [*_listed(before), value]
        chosen = {
            self.timeframe_key: self.timeframe or None,
            self.status_key: ",".join(self.statuses) or None,
        }
        for key, choice in chosen.items():
            if choice is None:
                continue
            if key in parameters:
                self.errors["more"] = f"{key} is chosen above already; give it once"
            parameters[key] = choice
        return parameters


class FormProblems(Exception):
    """A form that did not validate: its problems are in the form's `errors`."""


def _schedule_field(loc: Sequence[Any], form: ScheduleForm) -> str:
    """The control a problem's location (`body.time`, `body.parameters.<key>`) belongs to."""
    parts = [str(part) for part in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    if not parts:
        return "more"
    if parts[0] != "parameters":
        return parts[0] if parts[0] in SCHEDULE_FIELDS else "more"
    key = parts[1] if len(parts) > 1 else ""
    if key == form.timeframe_key:
        return "timeframe"
    if key == form.status_key:
        return "statuses"
    if key == "format":
        return "format"
    return "more"


def _file(form: ScheduleForm, name: str, message: str, key: str | None = None) -> None:
    if name == "more" and key:
        message = f"{key}: {message}"
    form.errors.setdefault(name, message)


def schedule_body(form: ScheduleForm, default_zone: str) -> ScheduleCreate:
    """The API's create body for the form: only the fields its cadence uses are sent (a
    weekday typed before switching to monthly is not an error). Raises FormProblems."""
    uses = {
        "daily": ("time",),
        "weekly": ("time", "weekday"),
        "monthly": ("time", "day_of_month"),
        "cron": ("cron",),
    }.get(form.cadence, ())
    body: dict[str, Any] = {
        "report": form.report,
        "format": form.format,
        "cadence": form.cadence,
        "timezone": form.timezone.strip() or default_zone,
        "enabled": not form.paused,
        "parameters": form.parameters(),
    }
    for name in uses:
        value: Any = getattr(form, name).strip()
        if not value:
            continue  # the service says it is required for this cadence
        if name == "day_of_month":
            if not (value.isascii() and value.isdigit() and len(value) <= 2):
                form.errors["day_of_month"] = SCHEDULE_HINTS["day_of_month"]
                continue
            value = int(value)
        body[name] = value
    try:
        made = ScheduleCreate.model_validate(body)
    except ValidationError as exc:
        for error in exc.errors():
            name = _schedule_field(error["loc"], form)
            hint = SCHEDULE_HINTS.get(name)
            _file(form, name, hint or str(error["msg"]), ".".join(map(str, error["loc"][1:])))
        raise FormProblems from None
    if form.errors:
        raise FormProblems
    return made


def create_schedule_from_form(
    session: Session, principal: Principal, form: ScheduleForm, now: dt.datetime
) -> ExportSchedule:
    """The schedule `POST /export_schedules` would make of the form's values, through the
    same service; a problem is filed under its control (FormProblems) and nothing is made."""
    body = schedule_body(form, principal.timezone)
    try:
        return schedules.create_schedule(session, principal, body, now)
    except AppError as exc:
        for error in exc.errors or [{"loc": ["body"], "msg": exc.detail}]:
            loc = list(error.get("loc", []))
            name = _schedule_field(loc, form)
            key = str(loc[2]) if len(loc) > 2 and loc[1] == "parameters" else None
            _file(form, name, str(error["msg"]), key)
        raise FormProblems from None


def _slot_text(value: dt.datetime | None, timezone: str) -> str:
    """A slot as a person reads it, in the schedule's zone: "Fri 1 Jan 2027, 06:00 GMT"."""
    if value is None:
        return ""
    local = value.astimezone(ZoneInfo(timezone))
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M %Z}"


def cadence_words(schedule: ExportSchedule) -> str:
    """ "Monthly on day 1 at 06:00 Europe/London"."""
    zone = schedule.timezone
    at = f"at {schedule.time_of_day} {zone}"
    if schedule.cadence == "daily":
        return f"Daily {at}"
    if schedule.cadence == "weekly" and schedule.weekday is not None:
        return f"Weekly on {WEEKDAYS[schedule.weekday].capitalize()} {at}"
    if schedule.cadence == "monthly":
        day = schedule.day_of_month or 1
        shorter = " (the last day in shorter months)" if day > 28 else ""
        return f"Monthly on day {day}{shorter} {at}"
    return f"Cron “{schedule.cron}” in {zone}"


def _column_labels(report: str, names: str) -> str:
    catalog = CATALOGS.get(report)
    labels = []
    for name in names.split(","):
        bare = name.strip()
        descending = bare.startswith("-")
        column = catalog.lookup(bare.removeprefix("-")) if catalog else None
        label = column.label if column else bare
        labels.append(f"{label} (descending)" if descending else label)
    return ", ".join(labels)


def parameter_words(report: str, parameters: Mapping[str, Any]) -> list[str]:
    """A schedule's report parameters, one phrase each: "Paid: last month", "Columns:
    Month paid, Count, Total amount"."""
    ranges = dict(RANGES)
    words: list[str] = []
    for key, value in parameters.items():
        if key in ("columns", "sort"):
            names = ",".join(str(v) for v in _listed(value))
            words.append(
                f"{'Columns' if key == 'columns' else 'Sorted by'}: "
                + _column_labels(report, names)
            )
            continue
        shown = ", ".join(part.strip() for v in _listed(value) for part in str(v).split(","))
        bare = key.removeprefix("invoice_")
        if bare.endswith("_timeframe") and bare.removesuffix("_timeframe") in ranges:
            label = ranges[bare.removesuffix("_timeframe")]
            words.append(f"{label}: {TIMEFRAME_LABELS.get(shown, shown).lower()}")
        elif bare == "status":
            words.append(f"Statuses: {shown.replace('_', ' ')}")
        else:
            words.append(f"{key}: {shown}")
    return words


@dataclass(frozen=True)
class ScheduleRow:
    schedule: ExportSchedule
    report_label: str
    cadence: str
    parameters: list[str]
    next_run: str
    last_run: str
    last_job: int | None  # the public id of the last run's job


def schedule_rows(
    session: Session, principal: Principal, found: list[ExportSchedule]
) -> list[ScheduleRow]:
    jobs = schedules.last_jobs(session, principal, found)
    return [
        ScheduleRow(
            schedule=schedule,
            report_label=REPORT_LABELS.get(schedule.report, schedule.report),
            cadence=cadence_words(schedule),
            parameters=parameter_words(schedule.report, schedule.parameters),
            next_run=_slot_text(schedule.next_run_at, schedule.timezone),
            last_run=_slot_text(schedule.last_run_at, schedule.timezone),
            last_job=jobs.get(schedule.last_job_id) if schedule.last_job_id else None,
        )
        for schedule in found
    ]


# ---- webhook endpoints ------------------------------------------------------------------------

WEBHOOK_FIELDS = {"url": "URL", "events": "Events", "description": "Description"}
WEBHOOK_HINTS = {
    "url": (
        "must be an http or https URL with a host name or IPv4 address, "
        "such as https://hooks.example.com/ledgerline"
    ),
    "events": "choose one or more of the events listed",
    "description": "must be at most 500 characters",
}
EVENT_LABELS = {
    "job.succeeded": "Export succeeded",
    "job.failed": "Export failed",
    "job.canceled": "Export canceled",
    "job.expired": "Export file expired",
}


@dataclass
class WebhookForm:
    url: str = ""
    events: list[str] = field(default_factory=lambda: ["job.succeeded", "job.failed"])
    description: str = ""
    errors: dict[str, str] = field(default_factory=dict)


def _webhook_field(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc if part != "body"]
    return parts[0] if parts and parts[0] in WEBHOOK_FIELDS else "url"


def create_endpoint_from_form(
    session: Session,
    principal: Principal,
    form: WebhookForm,
    *,
    server_secret: str,
    allow_private: bool,
    now: dt.datetime,
) -> tuple[WebhookEndpoint, str]:
    """The endpoint `POST /webhook_endpoints` would make, and its secret, through the same
    service; a problem (a private address: the API's own message) is filed under its control
    (FormProblems) and nothing is made."""
    body = {
        "url": form.url.strip(),
        "events": list(form.events),
        "description": form.description.strip() or None,
    }
    try:
        made = WebhookEndpointCreate.model_validate(body)
    except ValidationError as exc:
        for error in exc.errors():
            name = _webhook_field(error["loc"])
            form.errors.setdefault(name, WEBHOOK_HINTS.get(name, str(error["msg"])))
        raise FormProblems from None
    try:
        return webhooks.create_endpoint(
            session,
            principal,
            made,
            server_secret=server_secret,
            allow_private=allow_private,
            now=now,
        )
    except AppError as exc:
        for problem in exc.errors or [{"loc": ["body", "url"], "msg": exc.detail}]:
            form.errors.setdefault(_webhook_field(problem.get("loc", [])), str(problem["msg"]))
        raise FormProblems from None


@dataclass(frozen=True)
class AttemptRow:
    attempt: int
    at: str
    status_code: int | None
    duration_ms: int
    error: str
    succeeded: bool


@dataclass(frozen=True)
class DeliveryRow:
    delivery: WebhookDelivery
    event_type: str
    event_label: str
    job: int  # the job's public id
    attempts: list[AttemptRow]  # oldest first
    next_attempt: str

    @property
    def last(self) -> AttemptRow | None:
        return self.attempts[-1] if self.attempts else None


def delivery_rows(views: list[webhooks.DeliveryView], timezone: str) -> list[DeliveryRow]:
    return [
        DeliveryRow(
            delivery=delivery,
            event_type=event.type,
            event_label=EVENT_LABELS.get(event.type, event.type),
            job=int(event.payload["public_id"]),
            attempts=[
                AttemptRow(
                    attempt=attempt.attempt,
                    at=local_time(attempt.started_at, timezone),
                    status_code=attempt.status_code,
                    duration_ms=attempt.duration_ms,
                    error=attempt.error or "",
                    succeeded=attempt.succeeded,
                )
                for attempt in attempts
            ],
            next_attempt=local_time(delivery.next_attempt_at, timezone)
            if delivery.state == "pending"
            else "",
        )
        for delivery, event, attempts in views
    ]
