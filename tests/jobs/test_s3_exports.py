"""Exports end to end with `LEDGERLINE_STORAGE_URL=s3://bucket/prefix` against moto's S3 server.

The app and a real huey consumer run with S3 settings on a queue of their own, so the
session's local-disk consumer (tests/jobs/conftest.py) never picks these jobs up.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ledgerline.app import create_app
from ledgerline.config import Settings
from ledgerline.exports.storage import PART_SIZE
from ledgerline.jobs.queue import EmbeddedWorkers
from tests.conftest import Api, Backend, TenantFactory
from tests.exports.s3server import S3Server, s3_server
from tests.jobs.conftest import bulk_lines, create_lines, csv_rows, json_rows, wait_for_job

__all__ = ["s3_server"]

PREFIX = "ledgerline/exports"


@dataclasses.dataclass
class S3Deployment:
    settings: Settings
    bucket: str
    client: TestClient


@pytest.fixture(scope="module")
def s3_deployment(
    backend: Backend, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3Deployment]:
    """The API and one worker sharing this backend's database, exporting to a fresh bucket."""
    bucket = s3_server.new_bucket()
    queue_dir: Path = tmp_path_factory.mktemp(f"s3-queue-{backend.name}")
    settings = backend.settings.model_copy(
        update={
            "storage_url": f"s3://{bucket}/{PREFIX}",
            "s3_endpoint_url": s3_server.endpoint_url,
            "queue_url": f"sqlite:///{queue_dir / 'queue.db'}",
            "queue_name": "ledgerline-s3-tests",
        }
    )
    workers = EmbeddedWorkers(settings, 1)
    workers.start()
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            yield S3Deployment(settings, bucket, client)
    finally:
        workers.stop()


@pytest.fixture
def s3_api(make_tenant: TenantFactory, s3_deployment: S3Deployment) -> Api:
    """A fresh account, talking to the S3-configured app."""
    return dataclasses.replace(make_tenant(), client=s3_deployment.client)


def bucket_objects(s3_server: S3Server, bucket: str) -> dict[str, int]:
    answer = s3_server.client().list_objects_v2(Bucket=bucket, Prefix=PREFIX + "/")
    return {item["Key"]: item["Size"] for item in answer.get("Contents", [])}


def fetch_without_credentials(api: Api, url: str) -> bytes:
    response = api.client.get(url)
    assert response.status_code == 200, response.text
    return bytes(response.content)


def test_grouped_export_is_stored_in_s3_and_downloaded_through_a_signed_link(
    s3_api: Api, s3_deployment: S3Deployment, s3_server: S3Server
) -> None:
    created = create_lines(s3_api)
    response = s3_api.post(
        "/reports/invoice_line_items.grouped/export",
        json={"columns": ["total_amount"], "format": "csv", "invoice_status": "paid"},
    )
    assert response.status_code == 200, response.text
    job = wait_for_job(s3_api, response.json()["job"])
    assert job["status"] == "succeeded", job

    content = fetch_without_credentials(s3_api, job["result"]["download_url"])
    rows = csv_rows(content)
    money = [name for name in rows[0] if name != "Currency"]
    assert len(money) == 1, rows[0]
    got = {row["Currency"].upper(): Decimal(row[money[0]]) for row in rows}
    expected = {
        currency: Decimal(total) / 100 for currency, total in created.totals_by_currency().items()
    }
    assert got == expected
    assert job["result"]["row_count"] == len(expected)
    assert job["result"]["size_bytes"] == len(content)
    assert job["result"]["sha256"] == hashlib.sha256(content).hexdigest()

    # The file is an object under the configured prefix, not a file on local disk.
    objects = bucket_objects(s3_server, s3_deployment.bucket)
    keys = [key for key in objects if key.startswith(f"{PREFIX}/{s3_api.account_id}/")]
    assert len(keys) == 1, objects
    assert objects[keys[0]] == len(content)
    local_exports = s3_deployment.settings.data_dir / "exports" / str(s3_api.account_id)
    assert not local_exports.exists()


def test_a_large_export_is_a_multipart_upload_with_every_row(
    backend: Backend, s3_api: Api, s3_deployment: S3Deployment, s3_server: S3Server
) -> None:
    row_count = 60_000
    total = bulk_lines(backend, s3_api.account_id, row_count)
    response = s3_api.post(
        "/reports/invoice_line_items/export",
        json={"columns": ["id", "description", "amount"], "format": "json"},
    )
    assert response.status_code == 200, response.text
    job = wait_for_job(s3_api, response.json()["job"], timeout=180)
    assert job["status"] == "succeeded", job
    assert job["result"]["row_count"] == row_count
    # Large enough to need more than one part of the multipart upload.
    assert job["result"]["size_bytes"] > PART_SIZE, job["result"]

    # Downloaded with the Authorization header this time, streamed from the bucket.
    response = s3_api.get(f"/jobs/{job['id']}/download")
    assert response.status_code == 200, response.text
    content = response.content
    assert len(content) == job["result"]["size_bytes"]
    assert hashlib.sha256(content).hexdigest() == job["result"]["sha256"]
    rows = json_rows(content)
    assert len(rows) == row_count
    assert sum(row["amount"]["decimal"] for row in rows) == Decimal(total) / 100
    ids = [row["id"] for row in rows]
    assert ids == sorted(ids)
    assert len(set(ids)) == row_count

    uploads = s3_server.client().list_multipart_uploads(Bucket=s3_deployment.bucket)
    assert uploads.get("Uploads", []) == []
    keys = [
        key
        for key in bucket_objects(s3_server, s3_deployment.bucket)
        if key.startswith(f"{PREFIX}/{s3_api.account_id}/")
    ]
    assert len(keys) == 1, keys
    head = s3_server.client().head_object(Bucket=s3_deployment.bucket, Key=keys[0])
    parts = -(-len(content) // PART_SIZE)
    assert head["ETag"].strip('"').endswith(f"-{parts}")
