"""Schemathesis against a real `ledgerline serve`, every operation, every check, on each database.

The server runs as its own process over the backend's database, with its embedded job worker,
so exports the fuzzer starts really run. The account it fuzzes holds an invoice with line
items and a group, so reports have rows; the stateful phase creates and follows resources of
its own. Zero failures is the bar: a response outside its declared schema, status or media
type, a 5xx, a schema-valid request refused (beyond `schemathesis_checks.py`'s rules), a
schema-invalid one accepted, or an operation that ignores its credentials.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Api, TenantFactory

ROOT = Path(__file__).resolve().parents[2]
# Enough to cover every operation in every phase; the whole run stays well under a minute.
MAX_EXAMPLES = int(os.environ.get("LEDGERLINE_TEST_SCHEMATHESIS_EXAMPLES", "40"))
# A fixed seed, so a CI failure replays; set the variable to explore other inputs.
SEED = os.environ.get("LEDGERLINE_TEST_SCHEMATHESIS_SEED", "20261201")


def _fixture_data(api: Api) -> None:
    """An invoice with line items and a group, and a finished export, so that reports have
    rows and the stateful phase has real resources beside the ones it creates."""
    customer = api.post("/customers", json={"name": "Fuzz Customer"}).json()
    invoice = api.post("/invoices", json={"customer": customer["id"], "currency": "GBP"}).json()
    group = api.post(f"/invoices/{invoice['id']}/line-item-groups", json={"title": "Usage"})
    assert group.status_code == 201, group.text
    lines = api.post(
        f"/invoices/{invoice['id']}/line_items",
        json={
            "items": [{"type": "flat_fee", "amount": "10.00"}, {"type": "course", "amount": "2"}]
        },
    )
    assert lines.status_code == 201, lines.text
    job = api.post("/reports/invoice_line_items/export", json={"format": "csv"})
    assert job.status_code == 200, job.text


def _config(path: Path, base_url: str, token: str) -> None:
    """A schemathesis.toml: our credentials and the rule check (see its module)."""
    lines = [
        f'base-url = "{base_url}"',
        'hooks = "tests.contract.schemathesis_checks"',
        "[headers]",
        f'Authorization = "Token {token}"',
        "[checks.positive_data_acceptance]",
        'expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "422", "429"]',
    ]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_schemathesis_finds_no_failure(
    make_tenant: TenantFactory, served: str, tmp_path: Path
) -> None:
    api = make_tenant()
    _fixture_data(api)
    config = tmp_path / "schemathesis.toml"
    _config(config, served, api.token)
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "--config-file",
            str(config),
            "run",
            f"{served}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            SEED,
            "--workers",
            "2",
            "--request-timeout",
            "30",
        ],
        # Its crash cache goes to the test's own folder, never into the checkout.
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    report = result.stdout + result.stderr
    (tmp_path / "schemathesis.txt").write_text(report)
    assert result.returncode == 0, f"{tmp_path / 'schemathesis.txt'}:\n{report[-6000:]}"
    selected, tested = _operations(report)
    assert tested == selected > 25, report[-3000:]


def _operations(report: str) -> tuple[int, int]:
    """(selected, tested) from the summary's "Selected: 28/28" and "Tested: 28" lines."""
    selected = tested = -1
    for line in report.splitlines():
        words = line.split()
        if words[:1] == ["Selected:"]:
            selected = int(words[1].split("/")[0])
        elif words[:1] == ["Tested:"]:
            tested = int(words[1])
    return selected, tested
