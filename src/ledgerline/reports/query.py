"""Report parameters and their SQL: parse and validate, select, count, page.

The account filter (`line_items.account_id`) is part of every statement built here, and the
tables a report needs are joined only when a requested column, sort key or filter uses them.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simplejson import RawJSON
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Select,
    UnaryExpression,
    cast,
    func,
    nulls_first,
    nulls_last,
    select,
)

from ledgerline.auth import owned
from ledgerline.errors import ConflictingParameters, UnknownReference, ValidationFailed
from ledgerline.models import Invoice, LineItem
from ledgerline.reports.columns import (
    CATALOGS,
    Catalog,
    Column,
    sort_keys,
)
from ledgerline.reports.filters import FILTER_KEYS, Filters, ReportFilters
from ledgerline.reports.kinds import output_zones
from ledgerline.reports.rendering import has_money, json_row_maker
from ledgerline.row_counts import account_rows, invoice_lines

FORMATS = ("csv", "json", "ndjson", "xlsx", "parquet")
# The formats a `compression=gzip` applies to (xlsx and parquet are compressed inside).
TEXT_FORMATS = ("csv", "json", "ndjson")
COMPRESSIONS = ("gzip",)
PAGING_KEYS = frozenset({"limit", "offset", "page", "page_size"})
EXPORT_KEYS = frozenset({"compression"})
# Every report's parameters besides its filters; `timezone` is the output time zone.
OUTPUT_KEYS = ("columns", "sort", "format", "timezone")
# The line items report's parameters (each catalog names its own filters: `param_keys`).
PARAM_KEYS = frozenset({*OUTPUT_KEYS, *FILTER_KEYS})


def param_keys(catalog: Catalog) -> frozenset[str]:
    return frozenset({*OUTPUT_KEYS, *catalog.filters.keys})


@dataclass(frozen=True)
class ReportParams:
    report: str
    columns: tuple[str, ...]
    sort: tuple[tuple[str, bool], ...]
    filters: ReportFilters = field(default_factory=Filters)
    format: str = "csv"
    compression: str | None = None
    # The account's time zone, kept only when a requested or sorted column depends on it
    # (a local period; `Column.zoned`), so that a job re-run keeps the zone of its request.
    timezone: str | None = None
    # The zone date-times are written in (the `timezone` parameter; None: UTC). Only how an
    # instant is written: periods, timeframes and filters keep the account's zone above.
    output_timezone: str | None = None

    @property
    def catalog(self) -> Catalog:
        return CATALOGS[self.report]

    def column(self, key: str) -> Column:
        """The column of `key`, its expressions in this report's time zone."""
        return self.catalog.by_name[key].in_zone(self.timezone or "UTC")

    @property
    def selected(self) -> tuple[Column, ...]:
        return tuple(self.column(key) for key in self.columns)

    def to_json(self) -> dict[str, Any]:
        """The parameters as a job records them (the time zones only when they are kept:
        the parameters of a job without them, and the export SQL cached by them, are as
        before the output time zone existed)."""
        data: dict[str, Any] = {
            "report": self.report,
            "columns": list(self.columns),
            "sort": [("-" if descending else "") + key for key, descending in self.sort],
            "filters": self.filters.to_json(),
            "format": self.format,
        }
        if self.compression is not None:
            data["compression"] = self.compression
        if self.timezone is not None:
            data["timezone"] = self.timezone
        if self.output_timezone is not None:
            data["output_timezone"] = self.output_timezone
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReportParams:
        return cls(
            report=data["report"],
            columns=tuple(data["columns"]),
            sort=tuple((key.lstrip("-"), key.startswith("-")) for key in data["sort"]),
            filters=CATALOGS[data["report"]].filters.from_json(dict(data.get("filters") or {})),
            format=data.get("format", "csv"),
            compression=data.get("compression"),
            timezone=data.get("timezone"),
            output_timezone=data.get("output_timezone"),
        )


def _names(key: str, value: Any) -> list[str]:
    """A list of names: repeated keys, a JSON list, or comma-separated text."""
    items = value if isinstance(value, list) else [value]
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValidationFailed.field([key], "must be a list of column keys")
        names.extend(part.strip() for part in item.split(",") if part.strip())
    return names


def _unknown(catalog: Catalog, name: str) -> str:
    """The message for an unknown column name; for `<date>_<unit>` with an unknown unit,
    the units there are."""
    message = f"'{name}' is not a column of this report"
    prefix, _, _unit = name.rpartition("_")
    if catalog.lookup(prefix + "_month") is not None:
        message += f"; a period of '{prefix}' is {prefix}_month, _quarter or _year"
    return message


def _parse_columns(catalog: Catalog, value: Any) -> tuple[str, ...]:
    if value is None or value == "" or value == []:
        return catalog.default_columns
    keys: list[str] = []
    for name in _names("columns", value):
        column = catalog.lookup(name)
        if name in catalog.refused:
            raise ValidationFailed.field(["columns"], f"'{name}': {catalog.refused[name]}")
        if column is None:
            raise ValidationFailed.field(["columns"], _unknown(catalog, name))
        if column.key in keys:
            raise ConflictingParameters.field(["columns"], f"'{name}' is listed twice")
        keys.append(column.key)
    if not keys:
        return catalog.default_columns
    return tuple(keys)


def _parse_sort(
    catalog: Catalog, value: Any, columns: tuple[str, ...]
) -> tuple[tuple[str, bool], ...]:
    if value is None or value == "" or value == []:
        return tuple(
            (key, False) for key in catalog.default_sort if not catalog.grouped or key in columns
        )
    sort: list[tuple[str, bool]] = []
    for name in _names("sort", value):
        descending = name.startswith("-")
        bare = name[1:] if descending else name.lstrip("+")
        column = catalog.lookup(bare)
        if bare in catalog.refused:
            raise ValidationFailed.field(["sort"], f"'{bare}': {catalog.refused[bare]}")
        if column is None:
            raise ValidationFailed.field(["sort"], _unknown(catalog, bare))
        if not column.sortable:
            raise ValidationFailed.field(["sort"], f"'{bare}' is not sortable")
        if catalog.grouped and column.key not in columns:
            raise ConflictingParameters.field(
                ["sort"], f"'{bare}' is not one of the requested columns of this grouped report"
            )
        if any(key == column.key for key, _ in sort):
            raise ConflictingParameters.field(["sort"], f"'{bare}' is listed twice")
        sort.append((column.key, descending))
    return tuple(sort)


def _one_name(key: str, value: Any, names: Sequence[str]) -> str | None:
    """One of `names` (case and surrounding spaces ignored), None when absent or empty."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.strip().lower() not in names:
        raise ValidationFailed.field([key], f"must be one of {', '.join(names)}")
    return value.strip().lower()


def _parse_format(value: Any) -> str:
    return _one_name("format", value, FORMATS) or "csv"


def _parse_compression(value: Any, file_format: str) -> str | None:
    compression = _one_name("compression", value, COMPRESSIONS)
    if compression is not None and file_format not in TEXT_FORMATS:
        raise ConflictingParameters.field(
            ["compression"],
            f"applies to {', '.join(TEXT_FORMATS)}; a {file_format} file is compressed already",
        )
    return compression


def parse_output_timezone(value: Any) -> str | None:
    """The `timezone` parameter: an IANA zone name from zoneinfo's list (None for UTC, the
    default, so that a request naming UTC is the request without it), else a 422 naming it.
    Only a name from that list is ever kept (it is inlined into export SQL)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None:
        return None
    if not isinstance(value, str) or value not in output_zones():
        raise UnknownReference.field(
            ["timezone"], "is not an IANA time zone name (such as Europe/London or UTC)"
        )
    return None if value == "UTC" else value


def _without_brackets(raw: Mapping[str, Any]) -> dict[str, Any]:
    """`columns[]=id&columns[]=amount` (the form-encoding of arrays many clients use) is
    read as `columns`; both spellings together are merged in order."""
    merged: dict[str, Any] = {}
    for key, value in raw.items():
        name = key[:-2] if key.endswith("[]") else key
        if name in merged:
            before = merged[name] if isinstance(merged[name], list) else [merged[name]]
            value = before + (value if isinstance(value, list) else [value])
        merged[name] = value
    return merged


def parse_report_params(
    report: str,
    raw: Mapping[str, Any],
    *,
    timezone: str,
    for_export: bool,
    now: dt.datetime | None = None,
) -> ReportParams:
    """Validated report parameters from a query string, form or JSON body; timeframes are
    resolved at `now` (the request's clock; default the current instant).

    Unknown keys are refused (422 naming them) so that a misspelt filter never silently
    widens a report; `/data` (for_export=False) also accepts and ignores the paging keys.
    """
    if report not in CATALOGS:
        raise ValidationFailed.field(["report"], f"'{report}' is not a report")
    catalog = CATALOGS[report]
    raw = _without_brackets(raw)
    keys = param_keys(catalog)
    allowed = keys | EXPORT_KEYS if for_export else keys | PAGING_KEYS
    for key in raw:
        if key not in allowed:
            raise ValidationFailed.field([key], "is not a parameter of this report")
    columns = _parse_columns(catalog, raw.get("columns"))
    sort = _parse_sort(catalog, raw.get("sort"), columns)
    family = catalog.filters
    filters = family.parse({k: v for k, v in raw.items() if k in family.keys}, timezone, now)
    file_format = _parse_format(raw.get("format"))
    return ReportParams(
        report=report,
        columns=columns,
        sort=sort,
        filters=filters,
        format=file_format,
        compression=_parse_compression(raw.get("compression"), file_format),
        timezone=timezone if _zoned(catalog, columns, sort) else None,
        output_timezone=parse_output_timezone(raw.get("timezone")),
    )


def _zoned(catalog: Catalog, columns: tuple[str, ...], sort: tuple[tuple[str, bool], ...]) -> bool:
    """Whether a requested or sorted column depends on the account's time zone."""
    keys = (*columns, *(key for key, _ in sort))
    return any(catalog.by_name[key].zoned is not None for key in keys)


def _needs(columns: tuple[Column, ...]) -> frozenset[str]:
    needs: set[str] = set()
    for column in columns:
        needs |= column.needs
    return frozenset(needs)


def _order(
    column: Column, descending: bool, currency: ColumnElement[Any]
) -> list[UnaryExpression[Any]]:
    """ORDER BY terms of one sort key (money: two, see `columns.sort_keys`)."""
    terms: list[UnaryExpression[Any]] = []
    for expr in sort_keys(column, currency):
        ordered: UnaryExpression[Any] = expr.desc() if descending else expr.asc()
        if column.nullable:
            ordered = nulls_first(ordered) if descending else nulls_last(ordered)
        terms.append(ordered)
    return terms


def _order_by(params: ReportParams) -> list[UnaryExpression[Any]]:
    """The requested sort, then the report's tie-breaker unless the sort names it."""
    currency = params.catalog.source.currency
    order = [
        term for key, desc in params.sort for term in _order(params.column(key), desc, currency)
    ]
    tie_breaker = params.catalog.tie_breaker
    if tie_breaker is not None and not any(key == tie_breaker for key, _ in params.sort):
        order += _order(params.column(tie_breaker), False, currency)
    return order


def _base(
    account_id: int,
    params: ReportParams,
    columns: tuple[Column, ...],
    currency: ColumnElement[Any] | None = None,
    within: Select[Any] | None = None,
) -> Select[Any]:
    """SELECT <every expression of `columns`>, currency FROM … WHERE account and filters;
    with the catalog's derived table (`WITH …`) when a column, sort key or filter reads it,
    made for the rows `within` selects when given."""
    source = params.catalog.source
    sort_columns = tuple(params.column(key) for key, _ in params.sort)
    needs = _needs(columns) | _needs(sort_columns) | params.filters.needs()
    exprs = [
        expr.label(f"c{index}_{position}")
        for index, column in enumerate(columns)
        for position, expr in enumerate(column.exprs)
    ]
    currency = source.currency if currency is None else currency
    statement = (
        select(*exprs, currency.label("currency"))
        .select_from(source.joined(needs))
        .where(owned(source.model, account_id), *params.filters.clauses())
    )
    also = [expr for column in sort_columns for expr in column.exprs]
    return source.with_derived(statement, account_id, needs, within, also=also)


def rows_statement(
    account_id: int, params: ReportParams, *, within: Select[Any] | None = None
) -> Select[Any]:
    """Every matching row, in the requested order: the columns' expressions, then currency.

    Flat: the catalog's tie-breaker (the row's id) comes last, so the order is total.
    Grouped: GROUP BY the requested attribute columns, and the currency whenever a money
    total is requested (never adding currencies together); sorted as requested, then by the
    attribute columns (NULLs last, as the flat report sorts them) and the currency.
    `within`: the derived table (the invoices report's sums) only for the rows it selects.
    """
    if params.catalog.grouped:
        statement, order = _grouped(account_id, params)
        return statement.order_by(*order)
    return _base(account_id, params, params.selected, within=within).order_by(*_order_by(params))


def _grouped(
    account_id: int, params: ReportParams
) -> tuple[Select[Any], list[UnaryExpression[Any]]]:
    """A grouped report's GROUP BY statement (unordered) and its order (see rows_statement)."""
    columns = params.selected
    order = _order_by(params)
    currency = params.catalog.source.currency
    # Every expression of a key: a composite (billed_item) groups by each of its parts.
    group_keys = [expr for c in columns if not c.aggregate for expr in c.exprs]
    sorted_keys = {key for key, _ in params.sort}
    order += [
        term
        for c in columns
        if not c.aggregate and c.key not in sorted_keys
        for term in _order(c, False, currency)
    ]
    if not has_money(columns):
        # No money is summed (attribute columns alone, or a count), so there is nothing to
        # split by currency: one row per value (rows differing only by an unshown currency
        # would look like duplicates; a count adds rows, not money).
        statement = _base(account_id, params, columns, func.min(currency))
        return statement.group_by(*group_keys), order
    statement = _base(account_id, params, columns)
    return statement.group_by(*group_keys, currency), [*order, currency.asc()]


def grouped_page_statement(
    account_id: int, params: ReportParams, *, limit: int, offset: int
) -> Select[Any]:
    """One page of a grouped report and, after each row's columns, how many groups there
    are: one query instead of grouping every row twice.

    Every group is made first (a materialised CTE, numbered in the requested order), then
    paged. `ORDER BY … LIMIT` on the GROUP BY itself let PostgreSQL pick a plan that feeds
    the aggregate already sorted (an index walk joined row by row, 10M index probes), as if
    it could stop after the page, while the window count needs every group anyway: 3.4x
    the bare GROUP BY at 10M line items (docs/performance.md, issue 13)."""
    statement, order = _grouped(account_id, params)
    groups = (
        statement.add_columns(func.row_number().over(order_by=order).label("position"))
        .cte("groups")
        .prefix_with("MATERIALIZED")
    )
    shown = [column for column in groups.c if column.name != "position"]
    return (
        select(*shown, func.count().over().label("groups"))
        .order_by(groups.c.position)
        .limit(limit)
        .offset(offset)
    )


def page_statement(
    account_id: int, params: ReportParams, *, limit: int, offset: int
) -> Select[Any]:
    """One page of a flat report.

    Past the first page it is a deferred join: the page's line item ids are found first
    (`ORDER BY … LIMIT … OFFSET …` over line_items and only the tables the sort and filters
    need, an index-only walk for the default order), and only those rows are joined to
    invoices, customers and venues. `rows_statement(…).offset(n)` would build, join and
    discard every one of the n skipped rows (3.4 s at offset 500,000 of 1M on PostgreSQL,
    0.2 s this way; docs/performance.md "Indexes and counts"). The outer query sorts by the
    same keys, which end with the line item id, so the order is the same total order.
    """
    source = params.catalog.source
    statement = rows_statement(account_id, params)
    sort_columns = tuple(params.column(key) for key, _ in params.sort)
    order_needs = _needs(sort_columns) | params.filters.needs()
    if params.catalog.grouped or (source.derived is None and offset <= 0):
        return statement.limit(limit).offset(offset)
    if source.derived is not None and source.derived_join in order_needs:
        # The sort or a filter reads the derived sums: every row's are needed to choose.
        return statement.limit(limit).offset(offset)
    ids = (
        select(source.key)
        .select_from(source.joined(order_needs))
        .where(owned(source.model, account_id), *params.filters.clauses())
        .order_by(*_order_by(params))
        .limit(limit)
        .offset(offset)
    )
    if source.derived is not None:
        # The invoices report: the page's invoices are chosen first, and only their lines
        # are summed (through line_items' invoice_id index), never the whole account's.
        statement = rows_statement(account_id, params, within=ids)
    return statement.where(source.key.in_(ids.scalar_subquery()))


def kept_count(conn: Connection, account_id: int, params: ReportParams) -> int | None:
    """The flat report's row count from the counts the writers keep (`ledgerline.row_counts`),
    when its filters allow: none, one row read; the line items report filtered on invoice
    fields alone, the sum of the matching invoices' line counts. None: count the rows."""
    filters = params.filters
    model = params.catalog.source.model
    if not filters.to_json():
        if model is LineItem or model is Invoice:
            return account_rows(conn, account_id, model)
        return None
    if model is LineItem and isinstance(filters, Filters) and filters.id_gt is None:
        # Every filter but id_gt is on the invoice (`Filters.needs`).
        return invoice_lines(conn, account_id, filters.clauses())
    return None


def count_rows(conn: Connection, account_id: int, params: ReportParams) -> int:
    """How many rows the report has (line items, invoices or groups), exact in the caller's
    snapshot: from the kept counts where the filters allow (`kept_count`), else counted."""
    source = params.catalog.source
    if not params.catalog.grouped:
        kept = kept_count(conn, account_id, params)
        if kept is not None:
            return kept
    if params.catalog.grouped:
        groups = rows_statement(account_id, params).order_by(None).subquery()
        statement = select(func.count()).select_from(groups)
    else:
        needs = params.filters.needs()
        statement = source.with_derived(
            select(func.count())
            .select_from(source.joined(needs))
            .where(owned(source.model, account_id), *params.filters.clauses()),
            account_id,
            needs,
        )
    return int(conn.execute(statement).scalar_one())


def column_headers(params: ReportParams) -> list[dict[str, Any]]:
    """TeamUp's column headers for the requested columns, with each sort key's position."""
    sorted_at = {
        key: (index, descending) for index, (key, descending) in enumerate(params.sort, start=1)
    }
    headers: list[dict[str, Any]] = []
    for column in params.selected:
        header: dict[str, Any] = {
            "label": column.label,
            "key": column.key,
            "sortable": column.sortable,
            "holds_customer_id": column.holds_customer_id,
        }
        if column.key in sorted_at:
            priority, descending = sorted_at[column.key]
            header["sorted"] = {"order": "desc" if descending else "asc", "priority": priority}
        header["required"] = column.required
        headers.append(header)
    return headers


def report_page(
    conn: Connection, account_id: int, params: ReportParams, *, limit: int, offset: int
) -> dict[str, Any]:
    """One page of a report: `{"total", "column_headers", "rows"}`, rows as in a JSON export."""
    make_row = page_row_maker(params.report, params.columns, params.output_timezone)
    if params.catalog.grouped:
        # Only a page past the end counts again.
        statement = grouped_page_statement(account_id, params, limit=limit, offset=offset)
        rows = list(conn.execute(statement))
        if rows:
            total = int(rows[0][-1])
        else:
            total = count_rows(conn, account_id, params) if offset > 0 else 0
    else:
        total = count_rows(conn, account_id, params)
        statement = page_statement(account_id, params, limit=limit, offset=offset)
        rows = list(conn.execute(statement))
    return {
        "total": total,
        "column_headers": column_headers(params),
        "rows": [RawJSON(make_row(row)) for row in rows],
    }


@functools.lru_cache(maxsize=1024)
def page_row_maker(
    report: str, columns: tuple[str, ...], output_timezone: str | None = None
) -> Callable[[Sequence[Any]], str]:
    """The JSON row maker of a report's column list and output time zone, generated once per
    process for each (0.4 ms a request before). Keyed by names, not `Column`s: a column in
    the account's zone differs only in its SQL, not in its place in a row or its kind, so
    every account zone shares one maker; the output zone changes the date-time cells."""
    by_name = CATALOGS[report].by_name
    return json_row_maker(tuple(by_name[key] for key in columns), output_timezone)


def currency_totals(
    conn: Connection, account_id: int, params: ReportParams
) -> dict[str, dict[str, int]]:
    """Per currency, the row count and the sum (minor units) of every money column of a flat
    report over all its filtered rows, not one page: `{"GBP": {"rows": 3, "amount": …}}`.
    Currencies are never added together."""
    source = params.catalog.source
    currency = source.currency
    money = [column for column in params.catalog.columns if column.kind == "money"]
    sums = [
        # PostgreSQL sums BIGINT as NUMERIC; every total is a whole number of minor units.
        cast(func.sum(column.exprs[0]), BigInteger).label(column.key)
        for column in money
    ]
    needs = _needs(tuple(money)) | params.filters.needs()
    statement = source.with_derived(
        select(currency.label("currency"), func.count().label("rows"), *sums)
        .select_from(source.joined(needs))
        .where(owned(source.model, account_id), *params.filters.clauses())
        .group_by(currency)
        .order_by(currency),
        account_id,
        needs,
    )
    totals: dict[str, dict[str, int]] = {}
    for row in conn.execute(statement).mappings():
        totals[row["currency"]] = {
            "rows": int(row["rows"]),
            **{column.key: int(row[column.key] or 0) for column in money},
        }
    return totals
