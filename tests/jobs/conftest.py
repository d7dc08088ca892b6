"""Export job fixtures: a real huey consumer on each backend's queue, data, polling helpers.

The consumer runs as threads of the pytest process against the backend's own queue file
(`<data dir>/queue.db`), the same queue the app under test enqueues to: the real queue and
the real task, not a mock. Crash and scaled tests start `ledgerline` processes instead.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from ledgerline.db import engine_for
from ledgerline.jobs.queue import EmbeddedWorkers, JobQueue
from ledgerline.models import Invoice, Job, LineItem
from ledgerline.public_ids import allocate
from ledgerline.row_counts import lines_added, rows_added
from tests.conftest import Api, Backend

FINISHED = ("succeeded", "failed", "canceled", "expired")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def consumer(backend: Backend) -> Iterator[JobQueue]:
    """Two worker threads and the sweep consuming this backend's queue for the whole run."""
    workers = EmbeddedWorkers(backend.settings, 2)
    workers.start()
    yield workers.queue
    workers.stop()


def wait_for_job(
    api: Api, job_id: int, statuses: tuple[str, ...] = FINISHED, timeout: float = 60
) -> dict[str, Any]:
    """Poll `GET /jobs/{id}` until its status is one of `statuses` (bounded, never hangs)."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in statuses:
            return job
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} still {job['status']} after {timeout}s: {job}")
        time.sleep(0.05)


def download(api: Api, job: dict[str, Any]) -> bytes:
    """The file behind the job's signed download_url, fetched without credentials."""
    response = api.client.get(job["result"]["download_url"])
    assert response.status_code == 200, response.text
    return bytes(response.content)


def csv_rows(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


def json_rows(content: bytes) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(content, parse_float=Decimal)
    return rows


def minor(value: Decimal, digits: int) -> int:
    """Major-unit decimal → minor units, rounding half away from zero once (SPEC §4)."""
    return int((value * (10**digits)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class CreatedLine:
    id: int
    type: str
    currency: str
    amount: int  # minor units, computed by the test from its own inputs


@dataclass
class Created:
    lines: list[CreatedLine] = field(default_factory=list)

    def totals_by_currency(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for line in self.lines:
            totals[line.currency] = totals.get(line.currency, 0) + line.amount
        return totals

    def totals_by_type_and_currency(self) -> dict[tuple[str, str], int]:
        totals: dict[tuple[str, str], int] = {}
        for line in self.lines:
            key = (line.type, line.currency)
            totals[key] = totals.get(key, 0) + line.amount
        return totals


DIGITS = {"GBP": 2, "EUR": 2, "JPY": 0}

# (type, quantity, unit_price, discount) per line: amounts the test works out itself.
LINE_SPECS = [
    ("flat_fee", "1", "45.50", "0"),
    ("service_fee", "3", "0.3333", "0.10"),
    ("flat_fee", "2.5", "10.01", "0"),
    ("store_order", "7", "1.999", "1.00"),
    ("service_fee", "1", "-3.25", "0"),
    ("course", "12", "0.0035", "0"),
]


def create_lines(
    api: Api,
    currencies: tuple[str, ...] = ("GBP", "EUR"),
    *,
    status: str = "paid",
    due_date: str = "2024-07-29",
) -> Created:
    """Invoices (one per currency) with line items, created through the API."""
    created = Created()
    customer = api.post("/customers", json={"name": "Ada"}).json()
    for currency in currencies:
        invoice = api.post(
            "/invoices",
            json={
                "currency": currency,
                "customer": customer["id"],
                "status": status,
                "due_date": due_date,
                "paid_at": "2024-07-29T12:00:00Z",
                "confirmed_at": "2024-07-28T12:00:00Z",
            },
        )
        assert invoice.status_code == 201, invoice.text
        items = [
            {
                "type": kind,
                "description": f"{kind} {n}",
                "quantity": quantity,
                "unit_price": price,
                "discount_amount": discount,
                "tax_rate": "0.20",
            }
            for n, (kind, quantity, price, discount) in enumerate(LINE_SPECS)
        ]
        response = api.post(f"/invoices/{invoice.json()['id']}/line_items", json={"items": items})
        assert response.status_code == 201, response.text
        digits = DIGITS[currency]
        for item, (kind, quantity, price, discount) in zip(
            response.json()["items"], LINE_SPECS, strict=True
        ):
            amount = minor(Decimal(quantity) * Decimal(price), digits) - minor(
                Decimal(discount), digits
            )
            created.lines.append(CreatedLine(item["id"], kind, currency, amount))
    return created


def the_job(account_id: int, job_id: int) -> Any:
    """The row of the job the API calls `job_id` (a public id: unique within the account)."""
    return (Job.account_id == account_id) & (Job.public_id == job_id)


def job_key(backend: Backend, account_id: int, job_id: int) -> int:
    """The internal id of the job the API calls `job_id`: what a queue message carries and
    the export's storage key holds."""
    with engine_for(backend.database_url).begin() as conn:
        key: int = conn.execute(select(Job.id).where(the_job(account_id, job_id))).scalar_one()
    return key


def bulk_lines(backend: Backend, account_id: int, count: int, currency: str = "GBP") -> int:
    """`count` line items on one invoice, inserted in bulk; returns the sum of their amounts."""
    now = dt.datetime.now(dt.UTC)
    engine = engine_for(backend.database_url)
    with engine.begin() as conn:
        invoice_id = conn.execute(
            insert(Invoice)
            .values(
                account_id=account_id,
                public_id=allocate(conn, account_id, Invoice),
                number=f"BULK-{time.monotonic_ns()}",
                status="paid",
                currency=currency,
                is_credit_note=False,
                created_at=now,
                updated_at=now,
                paid_at=now,
                confirmed_at=now,
            )
            .returning(Invoice.__table__.c.id)
        ).scalar_one()
        rows_added(conn, account_id, Invoice, 1)
    total = 0
    batch = 20_000
    for start in range(0, count, batch):
        rows = []
        with engine.begin() as conn:
            first = allocate(conn, account_id, LineItem, min(batch, count - start))
        for n in range(start, min(start + batch, count)):
            amount = 100 + n % 997
            total += amount
            rows.append(
                {
                    "account_id": account_id,
                    "public_id": first + n - start,
                    "invoice_id": invoice_id,
                    "type": "flat_fee",
                    "description": f"bulk line {n}",
                    "currency": currency,
                    "amount": amount,
                    "tax_rate_micros": 0,
                    "tax_amount": 0,
                    "discount_amount": 0,
                    "credit_amount": 0,
                    "refund_amount": 0,
                    "created_at": now,
                }
            )
        with engine.begin() as conn:
            conn.execute(insert(LineItem), rows)
            lines_added(conn, account_id, invoice_id, len(rows))
    return total


def ledgerline_env(backend: Backend, **extra: str) -> dict[str, str]:
    """The environment of a `ledgerline` process sharing this backend's data and queue."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LEDGERLINE_") or key.startswith("LEDGERLINE_TEST_")
    }
    env.update(
        {
            "LEDGERLINE_DATA_DIR": str(backend.data_dir),
            "LEDGERLINE_DATABASE_URL": backend.database_url,
            "LEDGERLINE_SECRET_KEY": backend.settings.secret_key or "",
            "LEDGERLINE_LOG_LEVEL": "WARNING",
            # The suite's processes run exports and fuzzers (thousands of requests with one
            # token, bad tokens on purpose), not the limits: those are tested on their own.
            "LEDGERLINE_RATE_LIMIT_PER_KEY": "off",
            "LEDGERLINE_RATE_LIMIT_FAILED_AUTH": "off",
            "LEDGERLINE_MAX_ACTIVE_EXPORTS_PER_ACCOUNT": "0",
        }
    )
    env.update(extra)
    return env


def start_ledgerline(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-c", "from ledgerline.cli import main; main()", *args],
        env=env,
        cwd=str(log.parent),
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[str]:
    """A `ledgerline serve` process with `env` on a free port, ready: its base URL. Stopped
    (SIGTERM, then waited for) on leaving."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = start_ledgerline(env, "serve", "--port", str(port), log=log)
    try:
        wait_ready(server, base_url, log)
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(
    server: subprocess.Popen[bytes], base_url: str, log: Path, *, timeout: float = 90.0
) -> httpx.Response:
    """Poll `serve`'s /readyz until it answers 200 and return that answer; fail with the
    log's tail if the process exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ready = httpx.get(base_url + "/readyz")
            if ready.status_code == 200:
                return ready
        except httpx.TransportError:
            pass
        assert server.poll() is None, log.read_text()[-3000:]
        if time.monotonic() > deadline:
            pytest.fail(f"serve never became ready: {log.read_text()[-3000:]}")
        time.sleep(0.2)
