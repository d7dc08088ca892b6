"""The common grouped cuts (issue 13): each `/data` answer against the bare GROUP BY.

A finance person's usual questions (revenue by month of payment, by invoice status, by
customer) asked of the grouped reports, one request at a time, alternating with the SQL a
database engineer would write by hand for the same numbers, run through the same driver and
fetched whole. The grouped `/data` computes every group and pages them, so both sides do the
whole GROUP BY.

The bench account's time zone is Europe/London (the `accounts create` default). PostgreSQL's
floor converts with `AT TIME ZONE`, as ours does; SQLite has no zone database, so its floor
takes the UTC month, which is cheaper than any correct local month can be.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine, text

from bench.harness import Comparison, alternate

ZONE = "Europe/London"


@dataclass(frozen=True)
class Cut:
    name: str
    path: str
    query: dict[str, str]
    floor: dict[str, str]  # dialect -> SQL with :a for the account


def _lines_by(key_pg: str, key_sqlite: str, joins: str, group: str = "1") -> dict[str, str]:
    def sql(key: str) -> str:
        return (
            f"SELECT {key} AS k, li.currency, count(*), sum(li.amount) "
            f"FROM line_items li {joins} WHERE li.account_id = :a "
            f"GROUP BY {group}, li.currency ORDER BY 1, 2"
        )

    return {"postgresql": sql(key_pg), "sqlite": sql(key_sqlite)}


_INVOICE = "JOIN invoices i ON i.id = li.invoice_id"

LINE_ITEM_CUTS = (
    Cut(
        "line items by month of paid_at",
        "/reports/invoice_line_items.grouped/data",
        {"columns": "invoice.paid_at_month,count,total_amount"},
        _lines_by(
            f"to_char(i.paid_at AT TIME ZONE '{ZONE}', 'YYYY-MM')",
            "strftime('%Y-%m', i.paid_at)",
            _INVOICE,
        ),
    ),
    Cut(
        "line items by invoice status",
        "/reports/invoice_line_items.grouped/data",
        {"columns": "invoice.status,count,total_amount"},
        _lines_by("i.status", "i.status", _INVOICE),
    ),
    Cut(
        "line items by customer",
        "/reports/invoice_line_items.grouped/data",
        {"columns": "customer.id,count,total_amount"},
        # Grouped on the invoice's customer key; the customer's public id is looked up per
        # group afterwards (what a hand-written query would do).
        {
            dialect: (
                "SELECT c.public_id, g.currency, g.n, g.total FROM ("
                "SELECT i.customer_id, li.currency, count(*) AS n, sum(li.amount) AS total "
                f"FROM line_items li {_INVOICE} WHERE li.account_id = :a "
                "GROUP BY i.customer_id, li.currency) g "
                "LEFT JOIN customers c ON c.id = g.customer_id ORDER BY 1, 2"
            )
            for dialect in ("postgresql", "sqlite")
        },
    ),
)


def _invoices_by(keys_pg: str, keys_sqlite: str, count: int) -> dict[str, str]:
    """Per invoice its total (amount + tax of its lines), then grouped by `keys` (`count`
    of them) and the invoice's currency."""
    groups = ", ".join(str(n) for n in range(1, count + 2))

    def sql(keys: str) -> str:
        return (
            f"SELECT {keys}, i.currency, count(*), sum(coalesce(s.total, 0)) FROM invoices i "
            "LEFT JOIN (SELECT invoice_id, sum(amount + tax_amount) AS total FROM line_items "
            "WHERE account_id = :a GROUP BY invoice_id) s ON s.invoice_id = i.id "
            f"WHERE i.account_id = :a GROUP BY {groups} ORDER BY {groups}"
        )

    return {"postgresql": sql(keys_pg), "sqlite": sql(keys_sqlite)}


_LOCAL_PAID = f"i.paid_at AT TIME ZONE '{ZONE}'"

INVOICE_CUTS = (
    Cut(
        "invoices by payment month",
        "/reports/invoices.grouped/data",
        {"columns": "payment_year,payment_month,count,total_amount"},
        _invoices_by(
            f"extract(year FROM {_LOCAL_PAID})::int, extract(month FROM {_LOCAL_PAID})::int",
            "CAST(strftime('%Y', i.paid_at) AS INTEGER), CAST(strftime('%m', i.paid_at) AS INTEGER)",
            2,
        ),
    ),
    Cut(
        "invoices by status",
        "/reports/invoices.grouped/data",
        {"columns": "status,count,total_amount"},
        _invoices_by("i.status", "i.status", 1),
    ),
    Cut(
        "invoices by customer",
        "/reports/invoices.grouped/data",
        {"columns": "customer.id,count,total_amount"},
        _invoices_by("i.customer_id", "i.customer_id", 1),
    ),
)

CUTS: tuple[Cut, ...] = (*LINE_ITEM_CUTS, *INVOICE_CUTS)


def measure_cuts(
    base_url: str, token: str, engine: Engine, account: int, runs: int, *, dialect: str
) -> list[Comparison]:
    """Each cut's `/data` (one request, timed by the client) against its floor."""
    results: list[Comparison] = []
    with httpx.Client(
        base_url=base_url + "/api/v2", headers={"Authorization": f"Token {token}"}, timeout=600
    ) as client:
        for cut in CUTS:
            sql = text(cut.floor[dialect])
            groups: list[int] = []

            def ours(cut: Cut = cut, groups: list[int] = groups) -> float:
                started = time.perf_counter()
                response = client.get(cut.path, params=cut.query)
                response.raise_for_status()
                groups.append(int(response.json()["total"]))
                return time.perf_counter() - started

            def floor(sql: Any = sql) -> None:
                with engine.connect() as conn:
                    conn.execute(sql, {"a": account}).fetchall()

            result = alternate(cut.name + " vs GROUP BY", ours, _timed(floor), runs)
            result.extra["groups"] = groups[0] if groups else None
            results.append(result)
    return results


def _timed(call: Callable[[], None]) -> Callable[[], float]:
    def timed() -> float:
        started = time.perf_counter()
        call()
        return time.perf_counter() - started

    return timed
