"""`ledgerline serve` stops its embedded child worker promptly on SIGTERM and SIGINT.

Before, uvicorn re-raised SIGTERM after its own shutdown and the default handler ended serve
before it stopped the child, which then ran on until it noticed its parent was gone (~10 s).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.jobs.conftest import free_port, start_ledgerline, wait_ready

pytestmark = pytest.mark.slow

# serve terminates the child, waits up to CHILD_STOP_SECONDS (3 s) and then kills it; a
# child still alive after this long was not stopped by serve.
CHILD_GONE_WITHIN = 3.5


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
    port = free_port()
    log = tmp_path / "serve.log"
    server = start_ledgerline(env, "serve", "--port", str(port), log=log)
    children: list[psutil.Process] = []
    try:
        wait_ready(server, f"http://127.0.0.1:{port}", log)
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
