"""CPU per request of a real `ledgerline serve`, two builds alternated (issue 11).

    python -m bench.cpu --data /tmp/cpu_bench --build before=/tmp/main/src \\
        --build after=src --databases sqlite,postgres --rounds 5 --seconds 5

`--data` holds, per database, an `env_<database>.sh` (`export LEDGERLINE_…=…` lines: the data
dir, the database and queue URLs, the rate limits) and `<database>/token.json` (`ledgerline
tokens create`'s output) over a seeded database (`ledgerline seed --line-items 200000`). Each
build is a `src` directory put first on `PYTHONPATH`, so one virtualenv serves both. For each
round, database and build (the builds' order flips every round), one `serve` is started and
wrk drives each target at 1 and 32 connections; the process's CPU time (user + system, with
its children) over wrk's run, divided by the requests wrk counted, is the CPU per request.
One JSON line per measurement goes to stdout; medians are the reader's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import harness

CONNECTIONS = (1, 32)


def env_of(data: Path, database: str, source: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERLINE_")}
    for line in (data / f"env_{database}.sh").read_text().splitlines():
        for part in line.replace("export ", "").split():
            name, _, value = part.partition("=")
            env[name] = value
    env["PYTHONPATH"] = str(Path(source).resolve())
    return env


def targets(data: Path, database: str) -> list[tuple[str, str, str | None]]:
    """The default targets (200,000 line items), or `<database>/targets.json`'s: a list of
    `[name, path, needs_token]` for other data sets (the group list needs an invoice with
    1,000 groups, made through the API)."""
    token: str = json.loads((data / database / "token.json").read_text())["token"]
    chosen = data / database / "targets.json"
    if chosen.exists():
        return [
            (name, path, token if needs_token else None)
            for name, path, needs_token in json.loads(chosen.read_text())
        ]
    return [
        ("report page", "/api/v2/reports/invoice_line_items/data?id_gt=199000&limit=50", token),
        ("invoice", "/api/v2/invoices/26000", token),
        ("healthz", "/healthz", None),
    ]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and its children, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    total = 0.0
    for each in [pid, *(int(child) for child in children.split())]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def wrk(url: str, token: str | None, connections: int, seconds: int) -> tuple[int, float, int]:
    """Requests, p50 in ms, and non-2xx answers of one wrk run."""
    command = ["wrk", "-t", "1" if connections == 1 else "2", "-c", str(connections)]
    command += ["-d", f"{seconds}s", "--latency", url]
    if token:
        command += ["-H", f"Authorization: Token {token}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    requests = re.search(r"(\d+) requests in", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if requests is None or p50 is None:
        raise RuntimeError(f"unexpected wrk output: {out}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    return (
        int(requests.group(1)),
        float(p50.group(1)) * scale,
        int(non_2xx.group(1)) if non_2xx else 0,
    )


def measure(
    data: Path, database: str, build: str, source: str, seconds: int
) -> list[dict[str, Any]]:
    port = harness.free_port()
    base = f"http://127.0.0.1:{port}"
    log = data / f"{database}_{build}_serve.log"
    server = harness.start_process(
        [str(harness.BIN / "ledgerline"), "serve", "--port", str(port)],
        env_of(data, database, source),
        log,
    )
    results: list[dict[str, Any]] = []
    try:
        harness.wait_http(base + "/healthz")
        for name, path, token in targets(data, database):
            wrk(base + path, token, 4, 1)  # warm: connections, caches, the token's entry
            for connections in CONNECTIONS:
                before = cpu_seconds(server.pid)
                requests, p50, non_2xx = wrk(base + path, token, connections, seconds)
                cpu = cpu_seconds(server.pid) - before
                results.append(
                    {
                        "database": database,
                        "build": build,
                        "target": name,
                        "connections": connections,
                        "requests": requests,
                        "cpu_ms_per_request": 1000 * cpu / max(requests, 1),
                        "p50_ms": p50,
                        "non_2xx": non_2xx,
                    }
                )
    finally:
        harness.stop(server)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--build", action="append", required=True, help="name=src_dir")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    builds = [tuple(spec.split("=", 1)) for spec in args.build]
    for round_number in range(args.rounds):
        order = builds if round_number % 2 == 0 else builds[::-1]
        for database in args.databases.split(","):
            for name, source in order:
                for result in measure(args.data, database, name, source, args.seconds):
                    print(json.dumps({"round": round_number, **result}), flush=True)
        time.sleep(1)


if __name__ == "__main__":
    main()
