"""Schemathesis against a real `ledgerline serve`, every operation, every check, on each database.

The server runs as its own process over the backend's database, with its embedded job worker,
so exports the fuzzer starts really run. The account it fuzzes holds invoices with line
items and groups, so reports have rows, and half of the generated path ids are ones that exist
(schemathesis dictionaries), so the operations on one record reach their logic instead of a
404; the stateful phase creates and follows resources of its own. Zero failures is the bar: a
response outside its declared schema, status or media type, a 5xx, a schema-valid request
refused (beyond `schemathesis_checks.py`'s rules), a schema-invalid one accepted, or an
operation that ignores its credentials.

Issue 10 asks for at least 5,000 requests per database with zero 5xx. The server counts what
it answered (`/metrics`, by status), so the bar is checked on the server's side, not taken from
the fuzzer's own report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Api, TenantFactory

ROOT = Path(__file__).resolve().parents[2]
# Enough to cover every operation in every phase and to pass MIN_REQUESTS; about a minute a
# database on this 2-core machine.
MAX_EXAMPLES = int(os.environ.get("LEDGERLINE_TEST_SCHEMATHESIS_EXAMPLES", "40"))
# Requests the server must have answered during one run (issue 10: at least 5,000 per database).
MIN_REQUESTS = int(os.environ.get("LEDGERLINE_TEST_SCHEMATHESIS_MIN_REQUESTS", "5000"))
# How often a generated path id is swapped for one that exists in the fuzzed account.
REAL_ID_PROBABILITY = 0.5
# Ids named in bodies rather than paths (a group's tax category, an invoice's customer).
BODY_FIELDS = {"taxCategoryId": "body", "customer": "body"}
# A fixed seed, so a CI failure replays; set the variable to explore other inputs.
SEED = os.environ.get("LEDGERLINE_TEST_SCHEMATHESIS_SEED", "20261201")


@dataclass
class FixtureIds:
    """Ids of records the fuzzed account holds, by the path parameter or body field that
    names them."""

    by_parameter: dict[str, list[int | str]] = field(default_factory=dict)

    def add(self, parameter: str, value: int | str) -> None:
        self.by_parameter.setdefault(parameter, []).append(value)


def _fixture_data(api: Api) -> FixtureIds:
    """Invoices with line items and groups, a tax category and a finished export, so that
    reports have rows and every operation on one record has records to find."""
    ids = FixtureIds()
    customer = api.post("/customers", json={"name": "Fuzz Customer"}).json()
    ids.add("customer_id", customer["id"])
    ids.add("customer", customer["id"])
    category = api.post("/tax-categories", json={"name": "Standard"})
    assert category.status_code == 201, category.text
    ids.add("tax_category_id", category.json()["id"])
    ids.add("taxCategoryId", category.json()["id"])
    # One invoice holds every line item and group the dictionaries name, so that an
    # (invoice, line item) or (invoice, group) pair drawn from them belongs together; several
    # of each, as the fuzzer deletes some of what it finds.
    invoice = api.post("/invoices", json={"customer": customer["id"], "currency": "GBP"})
    assert invoice.status_code == 201, invoice.text
    invoice_id = invoice.json()["id"]
    ids.add("invoice_id", invoice_id)
    ids.add("invoice", str(invoice_id))  # Sequence's path names the invoice as a string
    for title in ("Usage", "Fees", "Support", "Travel"):
        group = api.post(f"/invoices/{invoice_id}/line-item-groups", json={"title": title})
        assert group.status_code == 201, group.text
        ids.add("group_id", group.json()["id"])
    lines = api.post(
        f"/invoices/{invoice_id}/line_items",
        json={"items": [{"type": "flat_fee", "amount": f"{pence}.00"} for pence in range(1, 9)]},
    )
    assert lines.status_code == 201, lines.text
    for line in lines.json()["items"]:
        ids.add("line_item_id", line["id"])
    job = api.post("/reports/invoice_line_items/export", json={"format": "csv"})
    assert job.status_code == 200, job.text
    ids.add("job_id", job.json()["job"])
    # Webhook endpoints (a public URL: the served process refuses private ones), each with
    # deliveries: every canceled job is one delivery per endpoint, numbered in endpoint order.
    endpoints = []
    for n in range(4):
        endpoint = api.post(
            "/webhook_endpoints",
            json={"url": f"https://hooks.example.com/{n}", "events": ["job.canceled"]},
        )
        assert endpoint.status_code == 201, endpoint.text
        endpoints.append(endpoint.json()["id"])
        ids.add("endpoint_id", endpoint.json()["id"])
    for _ in range(3):
        canceled = api.post("/reports/invoice_line_items/export", json={"format": "json"})
        api.post(f"/jobs/{canceled.json()['job']}/cancel")
    for delivery in range(1, 3 * len(endpoints) + 1):
        ids.add("delivery_id", delivery)
    # Many: the fuzzer deletes some, and PATCH must still find one (its 2xx, often `{}`).
    for day in range(1, 17):
        body = {"report": "invoices", "cadence": "monthly", "day_of_month": day, "time": "06:00"}
        schedule = api.post("/export_schedules", json=body)
        assert schedule.status_code == 201, schedule.text
        ids.add("schedule_id", schedule.json()["id"])
    return ids


def _toml(value: int | str) -> str:
    return str(value) if isinstance(value, int) else f'"{value}"'


def _config(path: Path, base_url: str, token: str, ids: FixtureIds) -> None:
    """A schemathesis.toml: our credentials, the rule check (see its module), and one
    dictionary of existing ids per path parameter."""
    lines = [
        f'base-url = "{base_url}"',
        'hooks = "tests.contract.schemathesis_checks"',
        "[headers]",
        f'Authorization = "Token {token}"',
        "[checks.positive_data_acceptance]",
        'expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "422", "429"]',
    ]
    for parameter, values in ids.by_parameter.items():
        lines += [
            f"[dictionaries.{parameter}]",
            f"values = [{', '.join(_toml(value) for value in values)}]",
        ]
    lines.append("[parameters]")
    lines += [
        f'"{BODY_FIELDS.get(parameter, "path")}.{parameter}" = {{ dictionary = "{parameter}", '
        f"probability = {REAL_ID_PROBABILITY} }}"
        for parameter in ids.by_parameter
    ]
    path.write_text("\n".join(lines) + "\n")


def _answered(base_url: str) -> Counter[tuple[str, str, int]]:
    """Requests the server has answered since it started, by method, route and status
    (from /metrics)."""
    answered: Counter[tuple[str, str, int]] = Counter()
    for family in text_string_to_metric_families(httpx.get(f"{base_url}/metrics").text):
        if family.name != "ledgerline_http_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                labels = sample.labels
                key = (labels["method"], labels["route"], int(labels["status"]))
                answered[key] += int(sample.value)
    return answered


@pytest.mark.slow
def test_schemathesis_finds_no_failure(
    make_tenant: TenantFactory, served: str, tmp_path: Path
) -> None:
    api = make_tenant()
    ids = _fixture_data(api)
    config = tmp_path / "schemathesis.toml"
    _config(config, served, api.token, ids)
    before = _answered(served)
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
    # The server's own count of the run: enough requests, and not one answered with a 5xx.
    during = _answered(served) - before
    (tmp_path / "answered.txt").write_text(
        "".join(
            f"{count:6} {method} {route} {status}\n"
            for (method, route, status), count in sorted(during.items())
        )
    )
    server_errors = {key: count for key, count in during.items() if key[2] >= 500}
    assert server_errors == {}, server_errors
    assert sum(during.values()) >= MIN_REQUESTS, sum(during.values())
    # Real ids reached every documented operation on one record: each found its record at
    # least once (a 2xx, or the 409/410 a finished job's cancel or download answers).
    document = httpx.get(f"{served}/openapi.json").json()
    on_one_record = {
        (method.upper(), path.removeprefix("/api/v2"))
        for path, operations in document["paths"].items()
        if "{" in path
        for method in operations
    }
    found = {
        (method, route) for method, route, status in during if status < 300 or status in (409, 410)
    }
    assert on_one_record - found == set(), sorted(on_one_record - found)


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
