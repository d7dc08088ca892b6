"""`make bench`: Ledgerline measured against the database's own floor.

    python -m bench [--rows 1000000] [--databases sqlite,postgres] [--runs 3]
    python -m bench --only soak [--soak-seconds 600] [--soak-connections 32] [--soak-mix mixed]

Seeds with `ledgerline seed` (kept between runs under bench/results/), starts real `serve` and
`worker` processes, times every comparison in the same run alternating the two sides, prints a
table, writes the raw figures as JSON and appends a dated section to docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

from bench import harness
from bench.cuts import measure_cuts
from bench.formats import measure_formats
from bench.harness import Comparison, alternate
from bench.load import http_load, sql_load
from bench.scaling import measure_scaling, render_scaling
from bench.soak import MIXES as SOAK_MIXES
from bench.soak import NO_RATE_LIMITS, render_soak, run_soak

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
console = Console(stderr=True)

POSTGRES_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


CONNECTIONS = 32
# Job polling: the first check after 50 ms, then 1.5x longer each time, at most 1 s apart.
POLL_FIRST_SECONDS = 0.05
POLL_BACKOFF = 1.5
POLL_MAX_SECONDS = 1.0
MEASUREMENTS = ("startup", "grouped", "cuts", "flat", "formats", "api", "scaling")
# Not part of a full run (it takes 10 minutes a database): asked for with `--only soak`.
OPTIONAL_MEASUREMENTS = ("soak",)


class Bench:
    def __init__(
        self,
        database: str,
        rows: int,
        runs: int,
        load_seconds: int,
        soak: dict[str, Any] | None = None,
        api_workers: int | None = None,
    ) -> None:
        self.database = database
        # `serve --workers N` for the API's processes (None: serve's own default).
        self.api_workers = api_workers
        self.rows = rows
        self.runs = runs
        self.load_seconds = load_seconds
        self.soak = soak or {}
        self.dir = RESULTS / f"{database}-{rows}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.env = self._env()
        self.results: dict[str, Any] = {"database": database, "rows": rows}
        self.port = harness.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []
        self._client: httpx.Client | None = None

    # ---- set-up -------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERLINE_")}
        env["LEDGERLINE_DATA_DIR"] = str(self.dir / "data")
        env["LEDGERLINE_SECRET_KEY"] = "bench-secret"
        env["LEDGERLINE_LOG_LEVEL"] = "WARNING"
        if self.database == "postgres":
            # BENCH_POSTGRES_SUFFIX: a database of one's own when others bench on the server.
            name = f"ledgerline_bench_{self.rows}{os.environ.get('BENCH_POSTGRES_SUFFIX', '')}"
            env["LEDGERLINE_DATABASE_URL"] = POSTGRES_ADMIN.rsplit("/", 1)[0] + "/" + name
            env["LEDGERLINE_QUEUE_URL"] = REDIS_URL
        return env

    @property
    def database_url(self) -> str:
        return self.env.get(
            "LEDGERLINE_DATABASE_URL", f"sqlite:///{self.dir / 'data' / 'ledgerline.db'}"
        )

    def engine(self) -> Any:
        url = self.database_url.replace("postgresql://", "postgresql+psycopg://")
        # As many connections as the load's concurrency, as the API's pool would give.
        return create_engine(url, pool_size=CONNECTIONS, max_overflow=0)

    def prepare(self) -> None:
        marker = self.dir / "seeded.json"
        if marker.exists():
            self.seeded = json.loads(marker.read_text())
            console.print(f"[{self.database}] reusing seeded data: {self.seeded}")
            # New migrations (indexes) are applied here, not inside the start-up measurement.
            harness.ledgerline("db", "upgrade", env=self.env)
            return
        if self.database == "postgres":
            admin = create_engine(
                POSTGRES_ADMIN.replace("postgresql://", "postgresql+psycopg://"),
                isolation_level="AUTOCOMMIT",
            )
            name = self.database_url.rsplit("/", 1)[1]
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
        account = json.loads(harness.ledgerline("accounts", "create", "Bench", env=self.env))
        token = json.loads(
            harness.ledgerline("tokens", "create", "--account", str(account["id"]), env=self.env)
        )["token"]
        started = time.perf_counter()
        seed = json.loads(
            harness.ledgerline(
                "seed",
                "--account",
                str(account["id"]),
                "--line-items",
                str(self.rows),
                env=self.env,
            )
        )
        seconds = time.perf_counter() - started
        if self.database == "postgres":
            with self.engine().connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
        self.seeded = {
            "account": account["id"],
            "token": token,
            "seed_seconds": seconds,
            "seed": seed,
        }
        marker.write_text(json.dumps(self.seeded))

    def start(
        self, *, embedded_worker: bool = False, extra_env: dict[str, str] | None = None
    ) -> None:
        """`serve`, and a separate `ledgerline worker`; or, with `embedded_worker`, `serve`
        with the worker it starts itself (the embedded mode's child process)."""
        log = self.dir / "processes.log"
        # No rate limits: 32 connections for 10 s ask far more than a key's 1,200 a minute, and
        # the 429s would be timed instead of the endpoints.
        env = {**self.env, **NO_RATE_LIMITS, **(extra_env or {})}
        serve_env = env if embedded_worker else {**env, "LEDGERLINE_EMBEDDED_WORKERS": "0"}
        workers = [] if self.api_workers is None else ["--workers", str(self.api_workers)]
        self.server = harness.start_process(
            [str(harness.BIN / "ledgerline"), "serve", "--port", str(self.port), *workers],
            serve_env,
            log,
        )
        self.processes.append(self.server)
        # Generous: on a shared, loaded machine `serve` has taken over a minute to answer.
        harness.wait_http(self.base + "/healthz", timeout=300)
        self.worker: subprocess.Popen[bytes] | None = None
        if not embedded_worker:
            self.worker = harness.start_process(
                [str(harness.BIN / "ledgerline"), "worker", "--concurrency", "1"], env, log
            )
            self.processes.append(self.worker)
        time.sleep(1.0)

    def close(self) -> None:
        for process in self.processes:
            harness.stop(process)

    @property
    def client(self) -> httpx.Client:
        """One client for every export, as an integration would keep one: making an httpx
        client (its TLS context) takes ~0.1 s, which is not the export's time."""
        if self._client is None:
            self._client = httpx.Client(base_url=self.base, headers=self.headers, timeout=600)
        return self._client

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.seeded['token']}"}

    # ---- one export, end to end ------------------------------------------------------------
    def export(self, report: str, body: dict[str, Any], keep: Path | None = None) -> dict[str, Any]:
        """POST, wait for succeeded, download (into `keep`, if given); returns timings and
        the job."""
        client = self.client
        started = time.perf_counter()
        response = client.post(f"/api/v2/reports/{report}/export", json=body)
        response.raise_for_status()
        posted = time.perf_counter()
        job_id = response.json()["job"]
        # Polled as a client would: soon at first, then backing off (a 5 ms loop cost the
        # server 10x the CPU of a 250 ms one and slowed the very export it waited for).
        delay = POLL_FIRST_SECONDS
        while True:
            job = client.get(f"/api/v2/jobs/{job_id}").json()
            if job["status"] in ("succeeded", "failed", "canceled"):
                break
            time.sleep(delay)
            delay = min(delay * POLL_BACKOFF, POLL_MAX_SECONDS)
        if job["status"] != "succeeded":
            raise RuntimeError(f"export failed: {job}")
        observed = time.perf_counter()
        size = 0
        with (
            client.stream("GET", f"/api/v2/jobs/{job_id}/download") as download,
            (keep or Path(os.devnull)).open("wb") as sink,
        ):
            for chunk in download.iter_bytes(1 << 20):
                size += len(chunk)
                sink.write(chunk)
        elapsed = time.perf_counter() - started
        created = dt.datetime.fromisoformat(job["created_at"])
        running = dt.datetime.fromisoformat(job["started_at"])
        finished = dt.datetime.fromisoformat(job["finished_at"])
        pickup_ms = (running - created).total_seconds() * 1000
        run_ms = (finished - running).total_seconds() * 1000
        wait_ms = (observed - posted) * 1000
        return {
            "seconds": elapsed,
            "rows": job["result"]["row_count"],
            "bytes": size,
            # Where the end-to-end time goes: the POST, queued, the job itself, noticing the
            # job finished (polling), and the download.
            "breakdown_ms": {
                "post": (posted - started) * 1000,
                "pickup": pickup_ms,
                "run": run_ms,
                "notice": max(wait_ms - pickup_ms - run_ms, 0.0),
                "download": (elapsed - (observed - started)) * 1000,
            },
        }

    # ---- measurements ----------------------------------------------------------------------
    def measure_startup(self) -> None:
        times = []
        for _ in range(self.runs):
            port = harness.free_port()
            process = harness.start_process(
                [str(harness.BIN / "ledgerline"), "serve", "--port", str(port)],
                {**self.env, "LEDGERLINE_EMBEDDED_WORKERS": "0"},
                self.dir / "processes.log",
            )
            try:
                times.append(harness.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=120))
            finally:
                harness.stop(process)
        self.results["startup_seconds"] = sorted(times)[len(times) // 2]

    def measure_grouped(self) -> Comparison:
        account = self.seeded["account"]
        engine = self.engine()
        sql = text(
            "SELECT type, currency, SUM(amount) FROM line_items WHERE account_id = :a "
            "GROUP BY type, currency ORDER BY type, currency"
        )
        breakdowns: list[dict[str, float]] = []

        def ours() -> float:
            outcome = self.export("invoice_line_items.grouped", {"format": "csv"})
            breakdowns.append(outcome["breakdown_ms"])
            return float(outcome["seconds"])

        def floor() -> None:
            with engine.connect() as conn:
                conn.execute(sql, {"a": account}).fetchall()

        result = alternate("grouped export vs GROUP BY", ours, floor, self.runs)
        result.extra["pickup_ms"] = [b["pickup"] for b in breakdowns]
        result.extra["breakdown_ms"] = {
            part: statistics.median([b[part] for b in breakdowns]) for part in breakdowns[0]
        }
        console.print(f"grouped export breakdown (median ms): {result.extra['breakdown_ms']}")
        engine.dispose()
        return result

    def measure_cuts(self) -> list[Comparison]:
        engine = self.engine()
        try:
            return measure_cuts(
                self.base,
                self.seeded["token"],
                engine,
                self.seeded["account"],
                self.runs,
                dialect=engine.dialect.name,
            )
        finally:
            engine.dispose()

    def flat_params(self, output: str = "csv") -> Any:
        from ledgerline.reports.query import parse_report_params

        return parse_report_params(
            "invoice_line_items", {"format": output}, timezone="UTC", for_export=True
        )

    def flat_sql(self) -> str:
        """The flat report's SELECT as the export runs it, without the cell formats."""
        from ledgerline.reports.query import rows_statement

        statement = rows_statement(self.seeded["account"], self.flat_params())
        dialect = self.engine().dialect
        return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

    def rendered_sql(self, output: str) -> str:
        """The SELECT the export's fast path runs: the database renders each record (SQLite)
        or each cell (PostgreSQL CSV) or each JSON object."""
        from ledgerline.exports.writers import csv_records_sql, json_records_sql

        records_sql = csv_records_sql if output == "csv" else json_records_sql
        return records_sql(self.engine().dialect, self.seeded["account"], self.flat_params())

    def dump(self, sql: str, out: Path, *, header: bool, session: bool = False) -> None:
        """The database's own CLI writing `sql`'s rows as CSV to `out`: `sqlite3 -csv`, or
        psql's COPY (after the export's session settings when `session`)."""
        with out.open("wb") as handle:
            if self.database == "sqlite":
                db = self.database_url.split("///", 1)[1]
                mode = ["-csv", "-header"] if header else ["-list", "-noheader"]
                subprocess.run(["sqlite3", *mode, db, sql], stdout=handle, check=True)
                return
            from ledgerline.exports.writers import COPY_SESSION

            prelude = ["-c", "BEGIN", "-c", COPY_SESSION] if session else []
            options = "FORMAT csv, HEADER" if header else "FORMAT csv"
            copy = f"COPY ({sql}) TO STDOUT WITH ({options})"
            subprocess.run(
                ["psql", "-q", "-X", self.database_url, *prelude, "-c", copy],
                stdout=handle,
                check=True,
            )

    def measure_flat_csv(self) -> list[Comparison]:
        """The flat CSV export (end to end) against three floors, alternating all four: the
        database's own CSV dump of the report's SELECT (raw values), the same CLI running the
        export's rendering SQL (the ablation: the formats' cost inside the database), and
        DuckDB reading the same data with the same cell formats (checked cell by cell)."""
        from bench.duckdb_floor import check_cells, write_flat_csv

        raw_sql, rendered = self.flat_sql(), self.rendered_sql("csv")
        ours_file, duck_file = self.dir / "ours.csv", self.dir / "duckdb.csv"
        rows: list[int] = []
        times: dict[str, list[float]] = {"raw": [], "rendered": [], "duckdb": [], "ours": []}

        def ours() -> None:
            rows.append(self.export("invoice_line_items", {"format": "csv"}, ours_file)["rows"])

        sides = {
            "raw": lambda: self.dump(raw_sql, self.dir / "floor.csv", header=True),
            "rendered": lambda: self.dump(
                rendered, self.dir / "rendered.csv", header=False, session=True
            ),
            "duckdb": lambda: write_flat_csv(
                self.database, self.database_url, self.seeded["account"], duck_file
            ),
            "ours": ours,
        }
        for _ in range(self.runs):
            for name, side in sides.items():
                started = time.perf_counter()
                side()
                times[name].append(time.perf_counter() - started)
        cells = check_cells(ours_file.read_bytes(), duck_file)
        console.print(f"[{self.database}] DuckDB's CSV: {cells:,} cells equal to the export's")

        def comparison(name: str, mine: str, floor: str) -> Comparison:
            result = Comparison(name, ours=times[mine], floor=times[floor])
            if mine == "ours" and rows:
                result.extra["rows"] = rows[0]
                result.extra["rows_per_second"] = rows[0] / result.ours_median
            return result

        duck = comparison("flat CSV export vs DuckDB (same cell formats)", "ours", "duckdb")
        duck.extra["cells_checked"] = cells
        return [
            comparison("flat CSV export vs database CSV dump", "ours", "raw"),
            duck,
            comparison("flat CSV export vs the database dumping its rendering", "ours", "rendered"),
            comparison("ablation: rendering SQL dump vs raw CSV dump", "rendered", "raw"),
        ]

    def measure_flat_json(self, csv: Comparison) -> list[Comparison]:
        """JSON against CSV end to end, and the ablation: the database's own CLI running the
        JSON rendering SQL against the CSV rendering SQL."""

        def ours() -> float:
            return float(self.export("invoice_line_items", {"format": "json"})["seconds"])

        def floor() -> float:
            return float(self.export("invoice_line_items", {"format": "csv"})["seconds"])

        result = alternate("flat JSON export vs flat CSV export", ours, floor, self.runs)
        if csv.extra.get("rows"):
            result.extra["rows_per_second"] = csv.extra["rows"] / result.ours_median
        json_sql, csv_sql = self.rendered_sql("json"), self.rendered_sql("csv")
        ablation = alternate(
            "ablation: JSON rendering SQL dump vs CSV rendering SQL dump",
            lambda: self.dump(json_sql, self.dir / "rendered.json", header=False, session=True),
            lambda: self.dump(csv_sql, self.dir / "rendered.csv", header=False, session=True),
            self.runs,
        )
        return [result, ablation]

    def measure_api(self) -> dict[str, Any]:
        """Each endpoint under 32 connections against its SQL (page + count) in a bare loop."""
        from ledgerline.reports.query import count_rows, page_statement, parse_report_params

        account = self.seeded["account"]
        engine = self.engine()
        with engine.connect() as conn:
            cutoff = conn.execute(
                text(
                    # `id_gt` is on the account's public line item ids (issue 10).
                    "SELECT public_id FROM line_items WHERE account_id = :a "
                    "ORDER BY public_id DESC LIMIT 1 OFFSET 50000"
                ),
                {"a": account},
            ).scalar_one()
        cases: dict[str, tuple[str, str, dict[str, Any], int, int]] = {
            "first page": ("/reports/invoice_line_items/data", "invoice_line_items", {}, 50, 0),
            "filtered first page (~50k rows)": (
                f"/reports/invoice_line_items/data?id_gt={cutoff}",
                "invoice_line_items",
                {"id_gt": cutoff},
                50,
                0,
            ),
            "page at offset 500,000": (
                "/reports/invoice_line_items/data?limit=50&offset=500000",
                "invoice_line_items",
                {},
                50,
                500000,
            ),
            "grouped data": (
                "/reports/invoice_line_items.grouped/data",
                "invoice_line_items.grouped",
                {},
                50,
                0,
            ),
        }
        out: dict[str, Any] = {}
        for name, (path, report, raw, limit, offset) in cases.items():
            params = parse_report_params(report, raw, timezone="UTC", for_export=False)
            # The very SQL the endpoint runs for the page, then its count.
            statement = page_statement(account, params, limit=limit, offset=offset)

            def once(statement: Any = statement, params: Any = params) -> None:
                with engine.connect() as conn:
                    conn.execute(statement).fetchall()
                    count_rows(conn, account, params)

            sql = sql_load(once, CONNECTIONS, self.load_seconds)
            api = http_load(
                self.base + "/api/v2" + path, self.seeded["token"], CONNECTIONS, self.load_seconds
            )
            out[name] = {
                "api": api.as_dict(),
                "sql": sql.as_dict(),
                "ratio_p50": api.p50_ms / sql.p50_ms,
            }
        invoice = self.invoice_with_groups(1000)
        if invoice is not None:
            path = f"/api/v2/invoices/{invoice}/line-item-groups?limit=100"
            api = http_load(self.base + path, self.seeded["token"], CONNECTIONS, self.load_seconds)
            out["group list (largest invoice)"] = {"api": api.as_dict()}
        engine.dispose()
        return out

    def invoice_with_groups(self, count: int) -> int:
        """An invoice with `count` groups (the seed makes only a few per invoice), made once
        through the API and remembered in the seeded marker."""
        if "group_invoice" in self.seeded:
            return int(self.seeded["group_invoice"])
        with httpx.Client(
            base_url=self.base + "/api/v2", headers=self.headers, timeout=60
        ) as client:
            invoice = client.post("/invoices", json={"currency": "GBP"}).json()["id"]
            for index in range(count):
                client.post(
                    f"/invoices/{invoice}/line-item-groups", json={"title": f"Group {index}"}
                ).raise_for_status()
        self.seeded["group_invoice"] = invoice
        (self.dir / "seeded.json").write_text(json.dumps(self.seeded))
        return int(invoice)

    def run(self, only: set[str]) -> dict[str, Any]:
        self.prepare()
        self.results["seed"] = self.seeded.get("seed")
        if "soak" in only:
            self.results["soak"] = self.attempt("soak", self.measure_soak)
        if not only & set(MEASUREMENTS):
            return self.results
        if "startup" in only:
            self.measure_startup()
        if only & set(MEASUREMENTS) == {"scaling"}:
            self.results["scaling"] = self.attempt("scaling", lambda: measure_scaling(self))
            return self.results
        self.start()
        try:
            comparisons = self.results["comparisons"] = []
            if "grouped" in only:
                grouped = self.attempt("grouped", self.measure_grouped)
                if grouped is not None:
                    comparisons.append(grouped.as_dict())
                    pickups = sorted(grouped.extra["pickup_ms"])
                    self.results["pickup_ms_median"] = pickups[len(pickups) // 2]
            if "cuts" in only:
                cuts = self.attempt("cuts", self.measure_cuts)
                comparisons.extend(cut.as_dict() for cut in cuts or [])
            if "flat" in only:
                flat_csv = self.attempt("flat csv", self.measure_flat_csv)
                if flat_csv is not None:
                    comparisons.extend(comparison.as_dict() for comparison in flat_csv)
                    flat_json = self.attempt(
                        "flat json", lambda: self.measure_flat_json(flat_csv[0])
                    )
                    comparisons.extend(comparison.as_dict() for comparison in flat_json or [])
            if "formats" in only:
                formats = self.attempt("formats", lambda: measure_formats(self))
                comparisons.extend(comparison.as_dict() for comparison in formats or [])
            assert self.worker is not None
            self.results["worker_peak_rss_mb"] = harness.peak_rss_mb(self.worker.pid)
            if "api" in only:
                self.results["api"] = self.attempt("api", self.measure_api)
        finally:
            self.close()
        if "scaling" in only:  # servers of its own, with the one above stopped
            self.results["scaling"] = self.attempt("scaling", lambda: measure_scaling(self))
        return self.results

    def measure_soak(self) -> dict[str, Any]:
        """The soak on its own server: on SQLite the embedded mode (`serve` and the worker it
        starts as a child), on PostgreSQL the scaled one (`serve` and a `ledgerline worker`
        on Redis). Rate limits off (see bench/soak.py)."""
        embedded = self.database == "sqlite"
        self.start(
            embedded_worker=embedded, extra_env={**NO_RATE_LIMITS, **self.soak["server_env"]}
        )
        try:
            others = {} if self.worker is None else {"ledgerline worker": self.worker.pid}
            result = run_soak(
                self,
                seconds=self.soak["seconds"],
                connections=self.soak["connections"],
                mix=self.soak["mix"],
                server_pid=self.server.pid,
                others=others,
            )
        finally:
            self.close()
            self.processes.clear()
        raw = self.dir / f"soak-{self.soak['mix']}-{dt.datetime.now():%Y%m%dT%H%M%S}.json"
        raw.write_text(json.dumps(result, indent=2))
        console.print(f"[{self.database}] soak figures: {raw}")
        return result

    def attempt(self, name: str, measure: Any) -> Any:
        """One measurement; a failure is recorded and the run goes on with the next."""
        try:
            return measure()
        except Exception as exc:
            console.print_exception()
            self.results.setdefault("errors", {})[name] = repr(exc)
            return None


def render(all_results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"\n## Run of {meta['date']} ({meta['rows']:,} line items)\n",
        f"Machine: {meta['machine']['cores']} cores, {meta['machine']['memory_gib']} GiB, "
        f"{meta['machine']['cpu']}; Python {meta['machine']['python']}; "
        f"{meta['versions']}. Medians of {meta['runs']} alternating runs. API processes: "
        f"{meta.get('api_workers') or 'serve default'}.\n",
        "| database | measurement | ours | floor | ratio |",
        "|---|---|---|---|---|",
    ]
    for result in all_results:
        db = result["database"]
        for comparison in result.get("comparisons", []):
            lines.append(
                f"| {db} | {comparison['name']} | {comparison['ours_median']:.3f} s | "
                f"{comparison['floor_median']:.3f} s | {comparison['ratio']:.2f}x |"
            )
    lines += ["", "| database | other figure | value |", "|---|---|---|"]
    for result in all_results:
        db = result["database"]
        seed = result.get("seed") or {}
        if seed.get("line_items_per_second"):
            lines.append(
                f"| {db} | seed throughput | {seed['line_items_per_second']:,.0f} line items/s |"
            )
        for comparison in result.get("comparisons", []):
            if comparison.get("rows_per_second"):
                lines.append(
                    f"| {db} | {comparison['name']}: ours | {comparison['rows_per_second']:,.0f} rows/s |"
                )
        for comparison in result.get("comparisons", []):
            if comparison.get("peak_rss_mb"):
                lines.append(
                    f"| {db} | {comparison['name']}: peak RSS (process) | "
                    f"{comparison['peak_rss_mb']:.0f} MB (CSV {comparison['floor_peak_rss_mb']:.0f}"
                    f" MB; {comparison['start_rss_mb']:.0f} MB before the export); "
                    f"{comparison['bytes']:,} bytes; totals {comparison['totals_seconds']:.2f} s |"
                )
        lines.append(
            f"| {db} | export worker peak RSS | {result.get('worker_peak_rss_mb', 0):.0f} MB |"
        )
        lines.append(
            f"| {db} | serve to first /healthz 200 | {result.get('startup_seconds', 0) * 1000:.0f} ms |"
        )
        lines.append(
            f"| {db} | job pick-up (created → running) | {result.get('pickup_ms_median', 0):.0f} ms |"
        )
        for comparison in result.get("comparisons", []):
            if breakdown := comparison.get("breakdown_ms"):
                parts = ", ".join(f"{part} {ms:.0f} ms" for part, ms in breakdown.items())
                lines.append(f"| {db} | {comparison['name']}: breakdown (median) | {parts} |")
    lines += [
        "",
        "| database | endpoint (32 connections) | req/s | p50 | p99 | non-2xx | bare SQL p50 "
        "| bare SQL p99 | p50 ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in all_results:
        for name, figures in (result.get("api") or {}).items():
            api = figures["api"]
            sql = figures.get("sql")
            head = (
                f"| {result['database']} | {name} | {api['requests_per_second']:.0f} | "
                f"{api['p50_ms']:.1f} ms | {api['p99_ms']:.1f} ms | {api['errors']} |"
            )
            lines.append(
                f"{head} {sql['p50_ms']:.1f} ms | {sql['p99_ms']:.1f} ms | "
                f"{figures['ratio_p50']:.2f}x |"
                if sql
                else f"{head} | | |"
            )
    return "\n".join(lines) + "\n"


def versions() -> str:
    import sqlite3

    parts = [f"SQLite {sqlite3.sqlite_version}"]
    try:
        out = subprocess.run(
            ["psql", "--version"], capture_output=True, text=True, check=True
        ).stdout
        parts.append(out.strip().replace("psql (PostgreSQL) ", "PostgreSQL "))
    except (OSError, subprocess.CalledProcessError):
        pass
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--load-seconds", type=int, default=10)
    parser.add_argument(
        "--no-docs", action="store_true", help="do not append to docs/performance.md"
    )
    parser.add_argument(
        "--api-workers",
        type=int,
        default=None,
        help="`serve --workers N` for the API load (default: serve's own default)",
    )
    parser.add_argument("--prepare-only", action="store_true", help="seed the data sets and stop")
    parser.add_argument(
        "--only",
        default=",".join(MEASUREMENTS),
        help=f"comma-separated subset of {','.join(MEASUREMENTS + OPTIONAL_MEASUREMENTS)} "
        f"({','.join(MEASUREMENTS)} by default)",
    )
    parser.add_argument("--soak-seconds", type=int, default=600)
    parser.add_argument("--soak-connections", type=int, default=CONNECTIONS)
    parser.add_argument(
        "--soak-mix",
        choices=SOAK_MIXES,
        default="mixed",
        help="mixed: reads, writes and exports; read: reads only (the memory comparison)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="LEDGERLINE_NAME=VALUE",
        help="a setting for the soak's server processes, e.g. LEDGERLINE_API_THREADS=8 "
        "(repeatable; the bench's own environment's LEDGERLINE_ variables are not passed on)",
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    if unknown := only - set(MEASUREMENTS + OPTIONAL_MEASUREMENTS):
        parser.error(f"--only: unknown measurement(s) {', '.join(sorted(unknown))}")
    meta = {
        "date": dt.date.today().isoformat(),
        "rows": args.rows,
        "runs": args.runs,
        "api_workers": args.api_workers,
        "machine": harness.machine(),
        "versions": versions(),
    }
    all_results = []
    for database in args.databases.split(","):
        console.rule(f"{database}, {args.rows:,} line items")
        if args.prepare_only:
            Bench(database, args.rows, args.runs, args.load_seconds).prepare()
            continue
        soak = {
            "seconds": args.soak_seconds,
            "connections": args.soak_connections,
            "mix": args.soak_mix,
            "server_env": dict(item.split("=", 1) for item in args.server_env),
        }
        bench = Bench(
            database, args.rows, args.runs, args.load_seconds, soak, api_workers=args.api_workers
        )
        all_results.append(bench.run(only))
    if args.prepare_only:
        return
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    raw = RESULTS / f"bench-{args.rows}-{stamp}.json"
    raw.write_text(json.dumps({"meta": meta, "results": all_results}, indent=2, default=str))
    section = render(all_results, meta) if only & set(MEASUREMENTS) - {"scaling"} else ""
    if "scaling" in only:
        section += render_scaling(all_results, meta["date"])
    if "soak" in only:
        section += render_soak(all_results, meta["date"])
    table = Table(title="Ledgerline vs floor")
    for column in ("database", "measurement", "ours", "floor", "ratio"):
        table.add_column(column)
    for result in all_results:
        for c in result.get("comparisons", []):
            table.add_row(
                result["database"],
                c["name"],
                f"{c['ours_median']:.3f}",
                f"{c['floor_median']:.3f}",
                f"{c['ratio']:.2f}x",
            )
    Console().print(table)
    print(section)
    print(f"raw figures: {raw}")
    # Only a full run makes a section of docs/performance.md; a subset is for working on one part.
    if not args.no_docs and only >= set(MEASUREMENTS):
        docs = ROOT / "docs" / "performance.md"
        with docs.open("a") as handle:
            handle.write(section)


if __name__ == "__main__":
    main()
