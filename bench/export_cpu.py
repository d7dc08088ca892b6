"""CPU seconds of one export's writing, in process: CSV and JSON rendered by the database, and
JSON by the generic Python writer (the path before issue 11, deliverable 4).

    python -m bench.export_cpu [--rows 1000000] [--id-gt 0] [--runs 3]

On a shared machine wall times follow the other tenants; CPU time does not. It counts this
process (SQLite runs inside it) plus, on PostgreSQL, the export's server backend (its
/proc/<pid>/stat, so run it on the database's machine). Uses the data sets `make bench` seeded
(BENCH_POSTGRES_SUFFIX as there).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.__main__ import Bench

CLOCK = os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _backend_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK


def measure(database: str, rows: int, id_gt: int, runs: int) -> dict[str, Any]:
    from ledgerline.exports.writers import open_snapshot, write_export
    from ledgerline.reports.query import parse_report_params

    bench = Bench(database, rows, runs, 0)
    bench.seeded = json.loads((bench.dir / "seeded.json").read_text())
    url = bench.database_url.replace("postgresql://", "postgresql+psycopg://")
    engine = create_engine(url)
    account = bench.seeded["account"]
    raw = {"id_gt": str(id_gt)} if id_gt else {}
    cases = {
        "csv (database)": ("csv", True),
        "json (database)": ("json", True),
        "json (generic, before)": ("json", False),
    }
    figures: dict[str, dict[str, list[float]]] = {name: {"cpu": [], "wall": []} for name in cases}
    written = 0
    with Path(os.devnull).open("wb") as sink:
        for _ in range(runs):
            for name, (output, fast) in cases.items():
                params = parse_report_params(
                    "invoice_line_items",
                    {**raw, "format": output},
                    timezone="UTC",
                    for_export=True,
                )
                with open_snapshot(engine) as conn:
                    backend = None
                    if database == "postgres":
                        backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
                    cpu, backend_cpu, wall = _own_cpu(), _backend_cpu(backend), time.perf_counter()
                    written = write_export(conn, account, params, sink, lambda _: None, fast=fast)
                    spent = _own_cpu() - cpu + _backend_cpu(backend) - backend_cpu
                    figures[name]["cpu"].append(spent)
                    figures[name]["wall"].append(time.perf_counter() - wall)
    engine.dispose()
    medians = {
        name: {kind: statistics.median(values) for kind, values in parts.items()}
        for name, parts in figures.items()
    }
    return {"database": database, "rows": written, "runs": figures, "medians": medians}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="the seeded data set")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--id-gt", type=int, default=0, help="export only line ids above")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for database in args.databases.split(","):
        result = measure(database, args.rows, args.id_gt, args.runs)
        csv_cpu = result["medians"]["csv (database)"]["cpu"]
        print(f"{database}: {result['rows']:,} rows, medians of {args.runs} alternating runs")
        for name, median in result["medians"].items():
            print(
                f"  {name}: {median['cpu']:.2f} s CPU ({median['cpu'] / csv_cpu:.2f}x CSV), "
                f"{median['wall']:.2f} s wall"
            )
        print(json.dumps(result["runs"]))


if __name__ == "__main__":
    main()
