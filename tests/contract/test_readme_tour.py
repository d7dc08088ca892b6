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

from tests.conftest import TenantFactory

README = Path(__file__).resolve().parents[2] / "README.md"
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
    make_tenant: TenantFactory, served: str, tmp_path: Path
) -> None:
    api = make_tenant()
    script = (
        tour_script().replace(TOKEN_PLACEHOLDER, api.token).replace("http://127.0.0.1:8000", served)
    )
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-x", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:] + result.stdout[-2000:]
    # The export the tour downloaded: the draft invoice's three lines, with a header row.
    rows = list(csv.DictReader(io.StringIO((tmp_path / "line_items.csv").read_text())))
    assert len(rows) == 3, rows
    assert {row["Type"] for row in rows} == {"service_fee", "store_order", "joining_fee"}
    assert "Metered usage" in result.stdout  # the PUT's answer, printed by the tour
