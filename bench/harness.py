"""Timing primitives: alternating runs, medians, ratios, and process helpers."""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent


@dataclass
class Comparison:
    """Two sides timed in the same run, alternating, so machine noise hits both alike."""

    name: str
    ours: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    unit: str = "s"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ours_median(self) -> float:
        return statistics.median(self.ours)

    @property
    def floor_median(self) -> float:
        return statistics.median(self.floor)

    @property
    def ratio(self) -> float:
        return self.ours_median / self.floor_median if self.floor_median else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "ours": self.ours,
            "floor": self.floor,
            "ours_median": self.ours_median,
            "floor_median": self.floor_median,
            "ratio": self.ratio,
            **self.extra,
        }


def alternate(
    name: str, ours: Callable[[], float | None], floor: Callable[[], float | None], runs: int
) -> Comparison:
    """Run floor, ours, floor, ours, … `runs` times each; each callable returns its own
    elapsed seconds (or None to be timed here)."""
    result = Comparison(name)
    for index in range(runs * 2):
        side = floor if index % 2 == 0 else ours
        started = time.perf_counter()
        measured = side()
        elapsed = measured if measured is not None else time.perf_counter() - started
        (result.floor if index % 2 == 0 else result.ours).append(elapsed)
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ledgerline(*args: str, env: dict[str, str], capture: bool = True) -> str:
    completed = subprocess.run(
        [str(BIN / "ledgerline"), *args],
        env=env,
        check=True,
        stdout=subprocess.PIPE if capture else None,
        text=True,
    )
    return completed.stdout or ""


def start_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT)


def wait_http(url: str, timeout: float = 60.0) -> float:
    """Seconds until `url` first answers 200."""
    started = time.perf_counter()
    deadline = started + timeout
    while time.perf_counter() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.005)
    raise TimeoutError(url)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set since it started, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def machine() -> dict[str, Any]:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "python": sys.version.split()[0],
    }


def ensure_wrk() -> str | None:
    """wrk from Debian's packages, installed if missing (None when it cannot be)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True)
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True)
            subprocess.run(
                ["apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True
            )
    return shutil.which("wrk")
