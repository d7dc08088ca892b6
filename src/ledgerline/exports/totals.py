"""Control totals of an export file: per currency, its rows and the sum of each money column.

They are computed by the database in the export's own snapshot (the transaction the file
was read in, `writers.open_snapshot`), over the very statement the file's rows came from,
so they describe exactly the file's rows, whichever format and whichever path (database
rendered or not) wrote it; sums are of integer minor units, rendered as plain decimals.
A file without a money column has no currency column either: its totals are one entry
with `currency` null and its row count.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from ledgerline.reports.kinds import MONEY_FORMATS
from ledgerline.reports.query import ReportParams, rows_statement
from ledgerline.reports.rendering import column_positions

Totals = list[dict[str, Any]]


def control_totals(conn: Connection, account_id: int, params: ReportParams) -> Totals:
    """`[{"currency", "rows", "sums": {money column key: "123.45"}}]`, by currency code."""
    columns = params.selected
    positions, currency_at = column_positions(columns)
    rows = rows_statement(account_id, params).order_by(None).subquery("export_rows")
    outputs = list(rows.c)
    money = [
        (column.key, outputs[at])
        for column, at in zip(columns, positions, strict=True)
        if column.kind == "money"
    ]
    if not money:
        count = conn.execute(select(func.count()).select_from(rows)).scalar_one()
        return [{"currency": None, "rows": int(count), "sums": {}}]
    currency = outputs[currency_at]
    statement = (
        select(currency, func.count(), *(func.sum(value) for _key, value in money))
        .group_by(currency)
        .order_by(currency)
    )
    totals: Totals = []
    for code, count, *sums in conn.execute(statement):
        plain = MONEY_FORMATS[code].plain
        totals.append(
            {
                "currency": code,
                "rows": int(count),
                "sums": {
                    key: plain(int(total or 0))
                    for (key, _value), total in zip(money, sums, strict=True)
                },
            }
        )
    return totals
