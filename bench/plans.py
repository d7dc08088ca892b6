"""The plan and timing of every report filter's first page and count, the deep page, the grouped
data and the group list, on one seeded database (docs/performance.md, issue 11 deliverable 3).

    .venv/bin/python -m bench.plans --url URL --account ID [--runs 5] [--json out.json]
    .venv/bin/python -m bench.plans --compare before.json after.json   (a markdown table)

The statements are the ones the endpoints run (`page_statement`, `count_rows`, the group
list's service), built by whichever checkout's code runs this, so the same script measures a
branch before and after a change. Times are medians of `--runs` runs, milliseconds; the plan
is PostgreSQL's `EXPLAIN (ANALYZE)` tree or SQLite's `EXPLAIN QUERY PLAN`, in short form.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.orm import Session

from ledgerline.auth import Principal
from ledgerline.db import make_engine
from ledgerline.groups.service import list_groups, page_request
from ledgerline.reports.query import count_rows, page_statement, parse_report_params

MONTH = {"gte": "2026-06-01", "lte": "2026-06-30"}


def cases(conn: Connection, account: int) -> dict[str, tuple[str, dict[str, Any], int]]:
    lines = conn.execute(
        text("SELECT COUNT(*) FROM line_items WHERE account_id = :a"), {"a": account}
    ).scalar_one()
    invoices = conn.execute(
        text("SELECT COUNT(*) FROM invoices WHERE account_id = :a"), {"a": account}
    ).scalar_one()
    customer = conn.execute(
        text("SELECT public_id FROM customers WHERE account_id = :a ORDER BY id LIMIT 1"),
        {"a": account},
    ).scalar_one()
    flat, inv = "invoice_line_items", "invoices"
    found: dict[str, tuple[str, dict[str, Any], int]] = {
        "lines: none": (flat, {}, 0),
        "lines: invoice_status=voided": (flat, {"invoice_status": "voided"}, 0),
        "lines: invoice_status=paid": (flat, {"invoice_status": "paid"}, 0),
        "lines: id_gt (last 1,000)": (flat, {"id_gt": lines - 1000}, 0),
        "lines: id_gt + invoice_status=voided": (
            flat,
            {"id_gt": lines // 2, "invoice_status": "voided"},
            0,
        ),
        "lines: deep offset (half)": (flat, {}, lines // 2),
        "lines: invoice_status=voided, deep offset": (flat, {"invoice_status": "voided"}, 20000),
        "lines grouped: type": ("invoice_line_items.grouped", {}, 0),
        "invoices: none": (inv, {}, 0),
        "invoices: status=voided": (inv, {"status": "voided"}, 0),
        "invoices: id_gt (last 1,000)": (inv, {"id_gt": invoices - 1000}, 0),
        "invoices: customers=[one]": (inv, {"customers": str(customer)}, 0),
        "invoices: purchase_types=class": (inv, {"purchase_types": "class"}, 0),
        "invoices: discount_applied=true": (inv, {"discount_applied": "true"}, 0),
        "invoices: credit_applied=true": (inv, {"credit_applied": "true"}, 0),
        "invoices: deep offset (half)": (inv, {}, invoices // 2),
        "invoices grouped: status": ("invoices.grouped", {}, 0),
    }
    for prefix in ("due_date", "paid_at", "updated_at", "confirmed_at"):
        bounds = {f"{prefix}_{bound}": day for bound, day in MONTH.items()}
        found[f"lines: invoice_{prefix} (a month)"] = (
            flat,
            {f"invoice_{key}": value for key, value in bounds.items()},
            0,
        )
        found[f"invoices: {prefix} (a month)"] = (inv, bounds, 0)
    return found


class Recorder:
    """The statements (and parameters) an engine runs while `recording`."""

    def __init__(self, engine: Engine) -> None:
        self.recording = False
        self.statements: list[tuple[str, Any]] = []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if self.recording:
            self.statements.append((statement, parameters))

    def capture(self, action: Callable[[], Any]) -> list[tuple[str, Any]]:
        self.statements, self.recording = [], True
        try:
            action()
        finally:
            self.recording = False
        return self.statements


def _pg_node(node: dict[str, Any]) -> str:
    label = str(node["Node Type"])
    if "Index Name" in node:
        label += f" {node['Index Name']}"
    elif "Relation Name" in node:
        label += f" {node['Relation Name']}"
    label += f" ({node.get('Actual Rows', '?')}"
    if node.get("Actual Loops", 1) > 1:
        label += f"×{node['Actual Loops']}"
    label += ")"
    children = node.get("Plans", [])
    if not children:
        return label
    return label + " ← [" + "; ".join(_pg_node(child) for child in children) + "]"


def plan(conn: Connection, statement: str, parameters: Any) -> str:
    raw = conn.connection.driver_connection
    assert raw is not None
    cursor = raw.cursor()
    if conn.dialect.name == "postgresql":
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
        tree = cursor.fetchone()[0]
        if isinstance(tree, str):
            tree = json.loads(tree)
        return _pg_node(dict(tree[0]["Plan"]))
    rows = cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
    return "; ".join(str(row[3]) for row in rows)


def timed(action: Callable[[], Any], runs: int) -> float:
    action()  # warm
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def measure(url: str, account: int, runs: int, group_invoice: int | None) -> dict[str, Any]:
    engine = make_engine(url)
    recorder = Recorder(engine)
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for name, (report, raw, offset) in cases(conn, account).items():
            params = parse_report_params(report, raw, timezone="UTC", for_export=False)
            page = page_statement(account, params, limit=50, offset=offset)

            def run_page(page: Any = page) -> None:
                conn.execute(page).fetchall()

            def run_count(params: Any = params) -> int:
                return count_rows(conn, account, params)

            entry: dict[str, Any] = {"page_ms": timed(run_page, runs)}
            entry["page_plan"] = " / ".join(plan(conn, s, p) for s, p in recorder.capture(run_page))
            entry["count_ms"] = timed(run_count, runs)
            entry["count"] = run_count()
            entry["count_plan"] = " / ".join(
                plan(conn, s, p) for s, p in recorder.capture(run_count)
            )
            conn.rollback()
            out[name] = entry
            print(json.dumps({name: entry}), flush=True)
    if group_invoice is not None:
        principal = Principal(account, "bench", frozenset({"read"}), "UTC", "GBP")
        with Session(engine) as session:

            def run_groups() -> None:
                list_groups(
                    session,
                    principal,
                    str(group_invoice),
                    page_request("100", None, None, None),
                    "x" * 32,
                )

            entry = {"page_ms": timed(run_groups, runs)}
            entry["page_plan"] = " / ".join(
                plan(session.connection(), s, p) for s, p in recorder.capture(run_groups)
            )
            out["group list (1,000 groups, limit 100)"] = entry
            print(json.dumps({"group list": entry}), flush=True)
    engine.dispose()
    return out


_SCAN = re.compile(
    r"(Parallel )?(Seq Scan|Index Only Scan|Index Scan|Bitmap Heap Scan) (\S+) \(([0-9?]+)(×[0-9]+)?\)"
)


def short(found: str) -> str:
    """A plan's scans only: what each read and how many rows (PostgreSQL: actual rows × loops),
    or SQLite's steps without their conditions."""
    if not found:
        return "-"
    if "SEARCH" in found or "SCAN" in found:
        steps = [re.sub(r" \(.*$", "", step).replace("USING ", "") for step in found.split("; ")]
        return "; ".join(steps)
    parts = []
    for match in _SCAN.finditer(found):
        rows = int(match[4]) if match[4] != "?" else 0
        loops = int(match[5][1:]) if match[5] else 1
        kind = {"Seq Scan": "seq", "Index Only Scan": "index-only", "Index Scan": "index"}.get(
            match[2], "bitmap"
        )
        parts.append(f"{kind} {match[3].removeprefix('ix_')} {_rows(rows * loops)}")
    return ", ".join(parts) or found


def _rows(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e4 else str(n)


def compare(before_path: str, after_path: str) -> str:
    """A markdown table of two runs: times before → after, and each plan's scans after."""
    with open(before_path) as handle:
        before = json.load(handle)
    with open(after_path) as handle:
        after = json.load(handle)
    lines = [
        "| query | rows | page ms before → after | count ms before → after "
        "| count plan before | count plan after | page plan after |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, new in after.items():
        old = before.get(name, {})
        lines.append(
            f"| {name} | {new.get('count', '-')} "
            f"| {old.get('page_ms', '-')} → {new['page_ms']} "
            f"| {old.get('count_ms', '-')} → {new.get('count_ms', '-')} "
            f"| {short(old.get('count_plan', ''))} | {short(new.get('count_plan', ''))} "
            f"| {short(new['page_plan'])} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="print a table")
    parser.add_argument("--url")
    parser.add_argument("--account", type=int)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--group-invoice", help="public id of an invoice with 1,000 groups")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    if args.compare:
        print(compare(*args.compare))
        return
    if args.url is None or args.account is None:
        parser.error("--url and --account are needed to measure")
    group_invoice = int(args.group_invoice) if args.group_invoice else None
    results = measure(args.url, args.account, args.runs, group_invoice)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
