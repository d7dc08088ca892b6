"""The README's API tour, pasted into bash as a newcomer would, against a real `ledgerline serve`.

Every shell block of the "A tour of the API" section runs in order in one `bash -euo pipefail`,
with only the token filled in. A command that fails (the tour's `post` uses `curl -f`), a
cursor that is not valid as written, or an id that does not come from an earlier answer stops
the script, and the test shows where.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Backend, TenantFactory
from tests.jobs.conftest import free_port, ledgerline_env, start_ledgerline, wait_ready

README = Path(__file__).resolve().parents[1] / "README.md"
TOKEN_PLACEHOLDER = "<the token make run printed>"


def tour_script() -> str:
    text = README.read_text()
    section = text[text.index("## A tour of the API") : text.index("## The command line")]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) >= 7, "the tour lost its shell blocks"
    assert TOKEN_PLACEHOLDER in blocks[0]
    return "\n".join(blocks)


@pytest.mark.slow
def test_readme_tour_runs_as_written(
    backend: Backend, make_tenant: TenantFactory, tmp_path: Path
) -> None:
    api = make_tenant()
    port = free_port()
    log = tmp_path / "serve.log"
    env = ledgerline_env(backend, LEDGERLINE_EMBEDDED_WORKERS="1")
    server = start_ledgerline(env, "serve", "--port", str(port), log=log)
    try:
        wait_ready(server, f"http://127.0.0.1:{port}", log)
        script = (
            tour_script()
            .replace(TOKEN_PLACEHOLDER, api.token)
            .replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
        )
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-x", "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert result.returncode == 0, result.stderr[-4000:] + result.stdout[-2000:]
    # The export the tour downloaded: the draft invoice's three lines, with a header row.
    rows = list(csv.DictReader(io.StringIO((tmp_path / "line_items.csv").read_text())))
    assert len(rows) == 3, rows
    assert {row["Type"] for row in rows} == {"service_fee", "store_order", "joining_fee"}
    assert "Metered usage" in result.stdout  # the PUT's answer, printed by the tour
