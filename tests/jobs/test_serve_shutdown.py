"""`ledgerline serve` stops its embedded child worker promptly on SIGTERM and SIGINT.

Before, uvicorn re-raised SIGTERM after its own shutdown and the default handler ended serve
before it stopped the child, which then ran on until it noticed its parent was gone (~10 s).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.jobs.conftest import start_ledgerline

pytestmark = pytest.mark.slow

# serve terminates the child, waits up to CHILD_STOP_SECONDS (3 s) and then kills it; a
# child still alive after this long was not stopped by serve.
CHILD_GONE_WITHIN = 3.5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_its_child_worker_within_seconds(tmp_path: Path, signum: int) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LEDGERLINE_") or key.startswith("LEDGERLINE_TEST_")
    }
    env.update(LEDGERLINE_DATA_DIR=str(data), LEDGERLINE_LOG_LEVEL="WARNING")
    port = _free_port()
    log = tmp_path / "serve.log"
    server = start_ledgerline(env, "serve", "--port", str(port), log=log)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log.read_text()[-3000:]
            if time.monotonic() > deadline:
                pytest.fail(f"serve never became ready: {log.read_text()[-3000:]}")
            time.sleep(0.2)
        children = psutil.Process(server.pid).children()
        assert len(children) == 1, children
        child = children[0]
        # The child is a running `ledgerline worker`, not a short-lived helper.
        assert "worker" in child.cmdline(), child.cmdline()
        assert child.is_running()

        sent = time.monotonic()
        server.send_signal(signum)
        _gone, alive = psutil.wait_procs([child], timeout=CHILD_GONE_WITHIN)
        elapsed = time.monotonic() - sent
        assert not alive, f"child worker still running {elapsed:.1f} s after {signum!r}"
        assert elapsed < CHILD_GONE_WITHIN
        assert server.wait(timeout=15) == 0, log.read_text()[-3000:]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=5)
        for child in children:
            if child.is_running():
                child.kill()
