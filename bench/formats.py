"""Each export format at full size: rows/s and peak RSS, side by side with the CSV export.

    python -m bench --only formats [--rows 1000000] [--databases sqlite,postgres]

Every case runs in a fresh child process (`python -m bench.formats child …`) that exports
the flat line items report of the seeded data set to a file, as a worker's job does (one
snapshot: `write_export`, then the control totals), and reports its rows, seconds and peak
RSS (`ru_maxrss`, the whole process: interpreter, libraries, driver and export). The CSV
export, the fastest path, is the floor, alternating with each format in the same run.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.harness import Comparison

if TYPE_CHECKING:
    from bench.__main__ import Bench

# (name, format, compression)
CASES: list[tuple[str, str, str | None]] = [
    ("json", "json", None),
    ("ndjson", "ndjson", None),
    ("xlsx", "xlsx", None),
    ("parquet", "parquet", None),
    ("csv gzip", "csv", "gzip"),
    ("ndjson gzip", "ndjson", "gzip"),
]


def run_child(
    database_url: str, account: int, file_format: str, compression: str | None, out: Path
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.formats",
        "child",
        database_url,
        str(account),
        file_format,
        compression or "",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"export of {file_format} failed: {done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def measure_formats(bench: Bench) -> list[Comparison]:
    url = bench.database_url.replace("postgresql://", "postgresql+psycopg://")
    account = bench.seeded["account"]
    comparisons = []
    for name, file_format, compression in CASES:
        ours: list[dict[str, Any]] = []
        floor: list[dict[str, Any]] = []
        for _ in range(bench.runs):
            floor.append(run_child(url, account, "csv", None, bench.dir / "formats.csv"))
            ours.append(
                run_child(url, account, file_format, compression, bench.dir / f"formats.{name}")
            )
        comparison = Comparison(
            f"flat {name} export vs flat CSV export (in process, with totals)",
            ours=[run["seconds"] for run in ours],
            floor=[run["seconds"] for run in floor],
        )
        rows = ours[0]["rows"]
        comparison.extra.update(
            rows=rows,
            rows_per_second=rows / comparison.ours_median,
            floor_rows_per_second=rows / comparison.floor_median,
            peak_rss_mb=max(run["peak_rss_mb"] for run in ours),
            floor_peak_rss_mb=max(run["peak_rss_mb"] for run in floor),
            start_rss_mb=min(run["start_rss_mb"] for run in ours),
            bytes=ours[0]["bytes"],
            floor_bytes=floor[0]["bytes"],
            totals_seconds=sorted(run["totals_seconds"] for run in ours)[len(ours) // 2],
        )
        comparisons.append(comparison)
    return comparisons


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(database_url: str, account: int, file_format: str, compression: str, out: str) -> None:
    from sqlalchemy import create_engine

    from ledgerline.exports.totals import control_totals
    from ledgerline.exports.writers import open_snapshot, write_export
    from ledgerline.reports.query import parse_report_params

    raw = {"format": file_format, **({"compression": compression} if compression else {})}
    params = parse_report_params("invoice_line_items", raw, timezone="UTC", for_export=True)
    engine = create_engine(database_url)
    with engine.connect() as warm:  # the driver and pool loaded before the baseline
        warm.exec_driver_sql("SELECT 1")
    start_rss = _peak_rss_mb()
    with Path(out).open("wb") as sink, open_snapshot(engine) as conn:
        started = time.perf_counter()
        rows = write_export(conn, account, params, sink, lambda _done: None)
        written = time.perf_counter()
        control_totals(conn, account, params, rows)
        finished = time.perf_counter()
    figures = {
        "rows": rows,
        "seconds": finished - started,
        "totals_seconds": finished - written,
        "bytes": Path(out).stat().st_size,
        "start_rss_mb": start_rss,
        "peak_rss_mb": _peak_rss_mb(),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6])
    else:
        raise SystemExit("usage: python -m bench --only formats (the child is started by it)")
