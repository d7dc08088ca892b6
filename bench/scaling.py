"""API processes (issue 11): requests per second, p50 and p99 of one cheap report page at 32
connections with `serve --workers N` for N in 1, 2 and 4, each N on a fresh `serve`, the
counts alternating in order run by run (1, 2, 4, then 4, 2, 1, ...) so a machine that gets
busier or quieter during the run weighs on every count alike.

The page: the flat report's first page filtered by `id_gt` to the account's last 1,000 line
items (cheap on both databases: the work per request is the API's, not the query's). Rate
limits off for every count (`NO_RATE_LIMITS`): counted in Redis they add a round trip to each
request, and in memory they would stop `serve` from running more than one process.

Export workers: rows per second of 1, 2 and 4 `ledgerline worker` processes (concurrency 1
each) exporting at once, each running one whole flat CSV export of the report, submitted
together; the time is from the first POST to the last job seen succeeded (polled with a
back-off, as a client would), the rows those of every file.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import text

from bench import harness
from bench.load import LoadResult, http_load
from bench.soak import NO_RATE_LIMITS

if TYPE_CHECKING:
    from bench.__main__ import Bench

COUNTS = (1, 2, 4)
CONNECTIONS = 32
MATCHING_ROWS = 1_000
# After the first /healthz answer: the other processes finish their start-up.
SETTLE_SECONDS = 5.0
WARM_UP_SECONDS = 3


def measure_scaling(bench: Bench) -> dict[str, Any]:
    account = bench.seeded["account"]
    engine = bench.engine()
    with engine.connect() as conn:
        cutoff = conn.execute(
            text(
                "SELECT public_id FROM line_items WHERE account_id = :a "
                "ORDER BY public_id DESC LIMIT 1 OFFSET :n"
            ),
            {"a": account, "n": MATCHING_ROWS},
        ).scalar_one()
    engine.dispose()
    path = f"/api/v2/reports/invoice_line_items/data?id_gt={cutoff}"
    runs: dict[int, list[LoadResult]] = {count: [] for count in COUNTS}
    for run in range(bench.runs):
        for count in COUNTS if run % 2 == 0 else tuple(reversed(COUNTS)):
            runs[count].append(_one(bench, count, path))
    out: dict[str, Any] = {"path": path, "connections": CONNECTIONS, "counts": {}}
    single = statistics.median(r.requests_per_second for r in runs[1])
    for count, results in runs.items():
        rps = statistics.median(r.requests_per_second for r in results)
        out["counts"][count] = {
            "requests_per_second": rps,
            "p50_ms": statistics.median(r.p50_ms for r in results),
            "p99_ms": statistics.median(r.p99_ms for r in results),
            "errors": sum(r.errors for r in results),
            "speedup": rps / single if single else float("nan"),
            "runs": [r.as_dict() for r in results],
        }
    out["export_workers"] = _export_workers(bench)
    return out


def _export_workers(bench: Bench) -> dict[int, Any]:
    runs: dict[int, list[tuple[int, float]]] = {count: [] for count in COUNTS}
    for run in range(bench.runs):
        for count in COUNTS if run % 2 == 0 else tuple(reversed(COUNTS)):
            runs[count].append(_exports_at_once(bench, count))
    out: dict[int, Any] = {}
    single: float | None = None
    for count, results in runs.items():
        rows_per_second = statistics.median(rows / seconds for rows, seconds in results)
        single = rows_per_second if single is None else single
        out[count] = {
            "rows_per_second": rows_per_second,
            "speedup": rows_per_second / single,
            "seconds": statistics.median(seconds for _, seconds in results),
            "rows": results[0][0],
        }
    return out


def _exports_at_once(bench: Bench, count: int) -> tuple[int, float]:
    """`count` worker processes, `count` flat CSV exports submitted together: (rows written
    in all, seconds from the first POST to the last success)."""
    port = harness.free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**bench.env, **NO_RATE_LIMITS, "LEDGERLINE_EMBEDDED_WORKERS": "0"}
    log = bench.dir / "scaling.log"
    processes: list[subprocess.Popen[bytes]] = [
        harness.start_process(
            [str(harness.BIN / "ledgerline"), "serve", "--port", str(port), "--workers", "1"],
            env,
            log,
        )
    ]
    try:
        processes += [
            harness.start_process(
                [str(harness.BIN / "ledgerline"), "worker", "--concurrency", "1"], env, log
            )
            for _ in range(count)
        ]
        harness.wait_http(base + "/healthz", timeout=180)
        time.sleep(SETTLE_SECONDS)
        headers = {"Authorization": f"Token {bench.seeded['token']}"}
        with httpx.Client(base_url=base + "/api/v2", headers=headers, timeout=600) as client:
            started = time.perf_counter()
            jobs = [
                client.post("/reports/invoice_line_items/export", json={"format": "csv"})
                .raise_for_status()
                .json()["job"]
                for _ in range(count)
            ]
            rows = 0
            delay = 0.05
            pending = set(jobs)
            while pending:
                time.sleep(delay)
                delay = min(delay * 1.5, 1.0)
                for job_id in list(pending):
                    job = client.get(f"/jobs/{job_id}").json()
                    if job["status"] == "succeeded":
                        rows += int(job["result"]["row_count"])
                        pending.discard(job_id)
                    elif job["status"] in ("failed", "canceled"):
                        raise RuntimeError(f"export {job_id} ended {job['status']}: {job}")
            return rows, time.perf_counter() - started
    finally:
        for process in processes:
            harness.stop(process)


def _one(bench: Bench, count: int, path: str) -> LoadResult:
    port = harness.free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**bench.env, **NO_RATE_LIMITS, "LEDGERLINE_EMBEDDED_WORKERS": "0"}
    server = harness.start_process(
        [str(harness.BIN / "ledgerline"), "serve", "--port", str(port), "--workers", str(count)],
        env,
        bench.dir / "scaling.log",
    )
    try:
        harness.wait_http(base + "/healthz", timeout=180)
        time.sleep(SETTLE_SECONDS)
        token = bench.seeded["token"]
        http_load(base + path, token, CONNECTIONS, WARM_UP_SECONDS)
        return http_load(base + path, token, CONNECTIONS, bench.load_seconds)
    finally:
        harness.stop(server)


def render_scaling(results: list[dict[str, Any]], date: str) -> str:
    lines = [
        f"\n### API processes of {date}: `serve --workers N`, {CONNECTIONS} connections\n",
        "| database | processes | req/s | speedup | p50 | p99 | non-2xx |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        scaling = result.get("scaling")
        if not scaling:
            continue
        for count, figures in scaling["counts"].items():
            lines.append(
                f"| {result['database']} | {count} | {figures['requests_per_second']:.0f} "
                f"| {figures['speedup']:.2f}x | {figures['p50_ms']:.1f} ms "
                f"| {figures['p99_ms']:.1f} ms | {figures['errors']} |"
            )
    lines += [
        f"\n### Export workers of {date}: N `ledgerline worker` processes, N flat CSV exports "
        "at once\n",
        "| database | workers | rows/s (all files) | speedup | seconds | rows |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        workers = (result.get("scaling") or {}).get("export_workers") or {}
        for count, figures in workers.items():
            lines.append(
                f"| {result['database']} | {count} | {figures['rows_per_second']:,.0f} "
                f"| {figures['speedup']:.2f}x | {figures['seconds']:.1f} s | {figures['rows']:,} |"
            )
    return "\n".join(lines) + "\n"
