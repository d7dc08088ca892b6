"""Load under concurrency: wrk when available, else a threaded Python generator; and the
bare-SQL loop the API is compared with, at the same concurrency."""

from __future__ import annotations

import re
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from bench.harness import ensure_wrk


@dataclass
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def http_load(url: str, token: str, connections: int, seconds: int) -> LoadResult:
    wrk = ensure_wrk()
    if wrk:
        out = subprocess.run(
            [
                wrk,
                f"-t{min(connections, 2)}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                # wrk drops requests slower than its 2 s default from the latency figures.
                "--timeout",
                "30s",
                "-H",
                f"Authorization: Token {token}",
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        # Anchored to the "Latency Distribution" lines: "50%" also ends the +/- Stdev column
        # of the thread stats (e.g. "87.50%"), which an unanchored search would read.
        p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
        total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if total == 0:
            # wrk prints zero latencies when no request completed: not a figure.
            p50 = p99 = float("nan")
        return LoadResult(rps, p50, p99, total, int(non2xx.group(1)) if non2xx else 0)
    return _python_load(url, token, connections, seconds)


def _python_load(url: str, token: str, connections: int, seconds: int) -> LoadResult:
    # httpx.Client is thread-safe; its pool holds one connection per load thread.
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    with httpx.Client(
        headers={"Authorization": f"Token {token}"}, timeout=30, limits=limits
    ) as client:
        return _closed_loop(lambda: client.get(url).status_code == 200, connections, seconds)


def sql_load(run_once: Callable[[], None], connections: int, seconds: int) -> LoadResult:
    """The same work as an API call (page + count), straight through the driver, in
    `connections` threads for `seconds`."""

    def call() -> bool:
        run_once()
        return True

    return _closed_loop(call, connections, seconds)


def _closed_loop(call: Callable[[], bool], connections: int, seconds: int) -> LoadResult:
    """`connections` threads each calling `call` back to back for `seconds`; `call` says
    whether the request succeeded."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            ok = call()
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                errors += not ok

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return LoadResult(
        len(latencies) / seconds,
        statistics.median(latencies),
        latencies[max(int(len(latencies) * 0.99) - 1, 0)],
        len(latencies),
        errors,
    )
