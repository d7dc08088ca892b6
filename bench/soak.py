"""The soak: what users do at once, for minutes, with every process's memory sampled.

`python -m bench --only soak [--soak-seconds 600] [--soak-connections 32] [--soak-mix mixed]`

wrk keeps `connections` requests in flight through a generated Lua script that cycles
through a weighted mix: report `/data` pages with filters, sorts and deep offsets, grouped
`/data`, the Sequence group list followed by its `after` cursors, invoice and customer lists
and gets, and (in the `mixed` mix) small line-item batches POSTed to invoices made for the
soak. Beside it one client requests an export every few seconds and downloads it when it is
done. Every second the resident memory of `serve`, its children (the embedded worker) and a
separate `ledgerline worker` is sampled. The `read` mix (no writes, no exports) is the
before/after memory comparison of issue 10.
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import psutil

from bench.harness import ensure_wrk

if TYPE_CHECKING:
    from bench.__main__ import Bench

MIXES = ("mixed", "read")
# Seconds between the starts of two exports in the mixed load.
EXPORT_INTERVAL = 5.0
# Line items in one POSTed batch.
WRITE_BATCH = 5
# Draft invoices the writes go to (spread, so no single invoice grows very large).
WRITE_INVOICES = 8
SAMPLE_SECONDS = 1.0

# Rate limits (issue 10, item 3) off: the soak measures the server, not the limiter.
# Unknown LEDGERLINE_ variables are ignored, so this is harmless where they do not exist.
NO_RATE_LIMITS = {
    "LEDGERLINE_RATE_LIMIT_PER_KEY": "0",
    "LEDGERLINE_RATE_LIMIT_FAILED_AUTH": "0",
    "LEDGERLINE_MAX_ACTIVE_EXPORTS_PER_ACCOUNT": "0",
}

REPORT = "/api/v2/reports/invoice_line_items/data"
GROUPED = "/api/v2/reports/invoice_line_items.grouped/data"

# The read requests, by kind; `{offset}`-style fields are filled at random per request by
# the Lua script (see `_lua`). Weights are how many of every 20 requests are of that kind.
READS: dict[str, tuple[int, list[str]]] = {
    "report": (
        4,
        [
            REPORT + "?invoice_status=paid&sort=-amount&limit=50",
            REPORT + "?sort=customer.name,-id&limit=50&offset={offset}",
            REPORT + "?invoice_due_date_gte=2025-01-01&invoice_due_date_lte=2025-06-30"
            "&sort=-invoice.due_date&page={page}&page_size=100",
            REPORT + "?id_gt={line_item}&limit=50",
            REPORT + "?columns=id,invoice.number,customer.name,amount,tax_amount"
            "&sort=type,-amount&limit=100",
            REPORT + "?invoice_paid_at_gte=2025-03-01T00:00:00Z&sort=-invoice.paid_at"
            "&offset={offset}",
        ],
    ),
    "grouped": (
        1,
        [GROUPED, GROUPED + "?invoice_status=paid,open&columns=type,total_amount"],
    ),
    "groups": (4, ["/api/v2/invoices/{group_invoice}/line-item-groups?limit=20"]),
    "invoices": (
        5,
        ["/api/v2/invoices?limit=50&offset={offset}", "/api/v2/invoices/{invoice}"],
    ),
    "customers": (4, ["/api/v2/customers?limit=50", "/api/v2/customers/{customer}"]),
}
WRITES_PER_20 = 2

# Exports in turn: a filtered flat CSV, the grouped report, a flat JSON of recent rows.
EXPORTS: list[tuple[str, dict[str, Any]]] = [
    ("invoice_line_items", {"format": "csv", "invoice_status": "paid,open"}),
    ("invoice_line_items.grouped", {"format": "csv"}),
    ("invoice_line_items", {"format": "json", "invoice_due_date_gte": "2026-10-01"}),
]


@dataclass
class ProcessMemory:
    role: str
    pid: int
    peak_mb: float = 0.0
    final_mb: float = 0.0
    samples: int = 0

    def sample(self, rss: int) -> None:
        mb = rss / 1e6
        self.peak_mb = max(self.peak_mb, mb)
        self.final_mb = mb
        self.samples += 1


class MemorySampler:
    """Every second, the RSS of each process of the server: `serve`, its children
    (recursively: the embedded worker) and any separate process given (`ledgerline worker`)."""

    def __init__(self, server_pid: int, others: dict[str, int]) -> None:
        self.server = psutil.Process(server_pid)
        self.others = {role: psutil.Process(pid) for role, pid in others.items()}
        self.processes: dict[int, ProcessMemory] = {}
        self.peak_total_mb = 0.0
        # Each second: seconds since the start, then each process's RSS in MB by pid, so a
        # slow climb (a leak) shows apart from one process's peak.
        self.timeline: list[tuple[float, dict[int, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _members(self) -> list[tuple[str, psutil.Process]]:
        members = [("serve", self.server)]
        with contextlib.suppress(psutil.NoSuchProcess):
            members += [(_role(child), child) for child in self.server.children(recursive=True)]
        return members + list(self.others.items())

    def _run(self) -> None:
        while not self._stop.is_set():
            sampled: dict[int, float] = {}
            for role, process in self._members():
                try:
                    rss = process.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                sampled[process.pid] = round(rss / 1e6, 1)
                memory = self.processes.setdefault(process.pid, ProcessMemory(role, process.pid))
                memory.sample(rss)
            self.peak_total_mb = max(self.peak_total_mb, sum(sampled.values()))
            self.timeline.append((round(time.monotonic() - self._started, 1), sampled))
            self._stop.wait(SAMPLE_SECONDS)


def _role(process: psutil.Process) -> str:
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return "child of serve"
    # `serve` starts its embedded worker as `python -c "...main()" worker`.
    return "embedded worker (child of serve)" if "worker" in command else "child of serve"


@dataclass
class ExportLoop:
    """One client requesting an export every `EXPORT_INTERVAL` seconds, polling the job and
    downloading the file; counts outcomes and statuses."""

    base: str
    token: str
    statuses: dict[str, int] = field(default_factory=dict)
    succeeded: int = 0
    failed: int = 0
    seconds: list[float] = field(default_factory=list)
    bytes_downloaded: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> ExportLoop:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=120)

    def _count(self, response: httpx.Response) -> httpx.Response:
        key = str(response.status_code)
        self.statuses[key] = self.statuses.get(key, 0) + 1
        return response

    def _run(self) -> None:
        headers = {"Authorization": f"Token {self.token}"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=120) as client:
            turn = 0
            while not self._stop.is_set():
                started = time.monotonic()
                report, body = EXPORTS[turn % len(EXPORTS)]
                turn += 1
                try:
                    self._one(client, report, body)
                except httpx.HTTPError:
                    self.failed += 1
                self._stop.wait(max(EXPORT_INTERVAL - (time.monotonic() - started), 0.0))

    def _one(self, client: httpx.Client, report: str, body: dict[str, Any]) -> None:
        started = time.monotonic()
        posted = self._count(client.post(f"/api/v2/reports/{report}/export", json=body))
        if posted.status_code != 200:
            self.failed += 1
            return
        job_id = posted.json()["job"]
        while True:
            job = self._count(client.get(f"/api/v2/jobs/{job_id}"))
            if job.status_code != 200:
                self.failed += 1
                return
            status = job.json()["status"]
            if status in ("succeeded", "failed", "canceled", "expired"):
                break
            time.sleep(0.25)
        if status != "succeeded":
            self.failed += 1
            return
        with client.stream("GET", f"/api/v2/jobs/{job_id}/download") as download:
            self._count(download)
            for chunk in download.iter_bytes(1 << 20):
                self.bytes_downloaded += len(chunk)
        self.succeeded += 1
        self.seconds.append(time.monotonic() - started)


@dataclass
class SoakTargets:
    """Ids the requests use, read through the API (so they are the ids a client sees)."""

    invoices: list[int]
    customers: list[int]
    line_item_ids: tuple[int, int]
    group_invoice: int
    write_invoices: list[int]


def targets(bench: Bench, mix: str) -> SoakTargets:
    with httpx.Client(base_url=bench.base, headers=bench.headers, timeout=60) as client:
        invoices = [
            row["id"]
            for offset in (0, 5000, 20000)
            for row in _get(client, f"/api/v2/invoices?limit=100&offset={offset}")["results"]
        ]
        customers = [row["id"] for row in _get(client, "/api/v2/customers?limit=100")["results"]]
        first = _get(client, REPORT + "?sort=id&limit=1&columns=id")["rows"][0]["id"]
        last = _get(client, REPORT + "?sort=-id&limit=1&columns=id")["rows"][0]["id"]
        group_invoice = bench.invoice_with_groups(1000)
        write_invoices = []
        if mix == "mixed":
            for _ in range(WRITE_INVOICES):
                created = client.post("/api/v2/invoices", json={"currency": "GBP"})
                created.raise_for_status()
                write_invoices.append(created.json()["id"])
    return SoakTargets(invoices, customers, (first, last), group_invoice, write_invoices)


def _get(client: httpx.Client, path: str) -> Any:
    response = client.get(path)
    response.raise_for_status()
    return response.json()


def check_requests(bench: Bench, found: SoakTargets) -> None:
    """Every request of the mix answers 200 once before the soak: a typo in a filter would
    otherwise make the soak measure 422s."""
    values = {
        "offset": "100",
        "page": "2",
        "line_item": str(found.line_item_ids[0]),
        "group_invoice": str(found.group_invoice),
        "invoice": str(found.invoices[0]),
        "customer": str(found.customers[0]),
    }
    with httpx.Client(base_url=bench.base, headers=bench.headers, timeout=120) as client:
        for _weight, paths in READS.values():
            for path in paths:
                response = client.get(path.format(**values))
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")


def _lua(token: str, found: SoakTargets, mix: str) -> str:
    """A wrk script: weighted request kinds in a shuffled cycle, random fields, the group
    list following its `after` cursor, and status counts gathered from every thread."""
    kinds: list[str] = []
    for kind, (weight, _paths) in READS.items():
        kinds += [kind] * weight
    if mix == "mixed":
        kinds += ["write"] * WRITES_PER_20
    random.Random(10).shuffle(kinds)
    templates = {kind: paths for kind, (_weight, paths) in READS.items()}
    batch = json.dumps(
        {
            "items": [
                {
                    "type": "flat_fee",
                    "description": f"soak line {index}",
                    "quantity": "2",
                    "unit_price": "12.50",
                    "tax_rate": "0.20",
                }
                for index in range(WRITE_BATCH)
            ]
        }
    )

    def lua_list(values: list[Any]) -> str:
        return "{" + ", ".join(json.dumps(value) for value in values) + "}"

    template_lines = "\n".join(
        f"  [{json.dumps(kind)}] = {lua_list(paths)}," for kind, paths in templates.items()
    )
    first, last = found.line_item_ids
    return f"""-- generated by bench/soak.py
local token = {json.dumps(token)}
local kinds = {lua_list(kinds)}
local templates = {{
{template_lines}
}}
local invoices = {lua_list(found.invoices)}
local customers = {lua_list(found.customers)}
local write_invoices = {lua_list(found.write_invoices or [0])}
local group_invoice = {found.group_invoice}
local batch = {json.dumps(batch)}
local first_line, last_line = {first}, {last}

local threads = {{}}
local counter = 0
local cursor = nil
statuses = {{}}

function setup(thread)
  thread:set("thread_number", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 100 + thread_number)
  counter = math.random(#kinds)
end

local function pick(list) return list[math.random(#list)] end

local function escape(text)
  return (text:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local function fill(path)
  return (path:gsub("{{([%w_]+)}}", function(name)
    if name == "offset" then return tostring(math.random(0, 2000)) end
    if name == "page" then return tostring(math.random(1, 20)) end
    if name == "line_item" then return tostring(math.random(first_line, last_line)) end
    if name == "group_invoice" then return tostring(group_invoice) end
    if name == "invoice" then return tostring(pick(invoices)) end
    if name == "customer" then return tostring(pick(customers)) end
  end))
end

function request()
  counter = counter % #kinds + 1
  local kind = kinds[counter]
  local headers = {{["Authorization"] = "Token " .. token}}
  if kind == "write" then
    headers["Content-Type"] = "application/json"
    local path = "/api/v2/invoices/" .. pick(write_invoices) .. "/line_items"
    return wrk.format("POST", path, headers, batch)
  end
  local path = fill(pick(templates[kind]))
  if kind == "groups" and cursor then
    path = path .. "&after=" .. escape(cursor)
    cursor = nil
  end
  return wrk.format("GET", path, headers)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 and body:find('"pagination"', 1, true) then
    -- The next group-list request pages on from here (or starts over at the end).
    cursor = body:match('"after"%s*:%s*"([^"]+)"')
  end
end

function done(summary, latency, requests)
  local counts = {{}}
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do
      counts[tostring(code)] = (counts[tostring(code)] or 0) + n
    end
  end
  local parts = {{}}
  for code, n in pairs(counts) do table.insert(parts, string.format('"%s": %d', code, n)) end
  local e = summary.errors
  io.write(string.format(
    'SOAK {{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"socket_errors": {{"connect": %d, "read": %d, "write": %d, "timeout": %d}}, ' ..
    '"statuses": {{%s}}}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.timeout, table.concat(parts, ", ")))
end
"""


def run_soak(
    bench: Bench,
    *,
    seconds: int,
    connections: int,
    mix: str,
    server_pid: int,
    others: dict[str, int],
) -> dict[str, Any]:
    """Load the running server for `seconds`; its figures and every process's memory."""
    wrk = ensure_wrk()
    if wrk is None:
        raise RuntimeError("the soak needs wrk (apt-get install wrk)")
    found = targets(bench, mix)
    check_requests(bench, found)
    script = bench.dir / f"soak-{mix}.lua"
    script.write_text(_lua(bench.seeded["token"], found, mix))
    load_before = psutil.getloadavg()
    started = time.monotonic()
    with MemorySampler(server_pid, others) as memory:
        exports = ExportLoop(bench.base, bench.seeded["token"]) if mix == "mixed" else None
        if exports is not None:
            exports.__enter__()
        try:
            out = subprocess.run(
                [
                    wrk,
                    f"-t{min(connections, 2)}",
                    f"-c{connections}",
                    f"-d{seconds}s",
                    "--timeout",
                    "30s",
                    "-s",
                    str(script),
                    bench.base,
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        finally:
            if exports is not None:
                exports.__exit__()
        # A few seconds after the load: does memory come back down, or stay?
        time.sleep(5)
    load_after = psutil.getloadavg()
    line = next(text for text in out.splitlines() if text.startswith("SOAK "))
    figures = json.loads(line[len("SOAK ") :])
    statuses = {code: count for code, count in sorted(figures["statuses"].items())}
    non_2xx = {code: count for code, count in statuses.items() if not code.startswith("2")}
    result: dict[str, Any] = {
        "mix": mix,
        "server_env": bench.soak["server_env"],
        "seconds": seconds,
        "connections": connections,
        "wall_seconds": round(time.monotonic() - started, 1),
        "requests": figures["requests"],
        "requests_per_second": figures["requests"] / (figures["duration_us"] / 1e6),
        "p50_ms": figures["p50_us"] / 1000,
        "p99_ms": figures["p99_us"] / 1000,
        "max_ms": figures["max_us"] / 1000,
        "statuses": statuses,
        "non_2xx": non_2xx,
        "rate_limited_429": statuses.get("429", 0),
        "socket_errors": figures["socket_errors"],
        "processes": [memory.__dict__ for memory in memory.processes.values()],
        "peak_total_mb": memory.peak_total_mb,
        "rss_timeline_mb": memory.timeline,
        "load_average_before": load_before,
        "load_average_after": load_after,
    }
    if exports is not None:
        result["exports"] = {
            "succeeded": exports.succeeded,
            "failed": exports.failed,
            "statuses": exports.statuses,
            "median_seconds": sorted(exports.seconds)[len(exports.seconds) // 2]
            if exports.seconds
            else None,
            "bytes_downloaded": exports.bytes_downloaded,
        }
    return result


def render_soak(results: list[dict[str, Any]], date: str) -> str:
    """The soak's markdown: one row per database, one per process."""
    lines = [
        f"\n### Soak of {date}\n",
        "| database | mix | seconds | connections | requests | req/s | p50 | p99 | non-2xx "
        "| 429 | socket errors | exports ok / failed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        soak = result.get("soak")
        if not soak:
            continue
        exports = soak.get("exports")
        exported = f"{exports['succeeded']} / {exports['failed']}" if exports else "-"
        lines.append(
            f"| {result['database']} | {soak['mix']} | {soak['seconds']} | {soak['connections']} "
            f"| {soak['requests']:,} | {soak['requests_per_second']:.1f} | {soak['p50_ms']:.0f} ms "
            f"| {soak['p99_ms']:.0f} ms | {_counts(soak['non_2xx'])} | {soak['rate_limited_429']} "
            f"| {sum(soak['socket_errors'].values())} "
            f"| {exported} |"
        )
    lines += ["", "| database | process | peak RSS | final RSS |", "|---|---|---|---|"]
    for result in results:
        soak = result.get("soak")
        if not soak:
            continue
        for memory in soak["processes"]:
            lines.append(
                f"| {result['database']} | {memory['role']} | {memory['peak_mb']:.0f} MB "
                f"| {memory['final_mb']:.0f} MB |"
            )
        lines.append(
            f"| {result['database']} | all together (peak of the sum) "
            f"| {soak['peak_total_mb']:.0f} MB | |"
        )
    return "\n".join(lines) + "\n"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{code}: {count:,}" for code, count in counts.items()) or "0"
