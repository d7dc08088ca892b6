"""What only the S3 export storage does, against moto's standalone server: multipart parts,
no open upload left behind, bounded memory, configuration, aborting abandoned uploads. What
every storage promises is in test_storage_contract.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tracemalloc

import pytest

from ledgerline.config import Settings
from ledgerline.exports.storage import (
    CHUNK_SIZE,
    PART_SIZE,
    ObjectNotFound,
    S3Storage,
    StorageUnavailable,
    storage_from_settings,
)
from ledgerline.jobs.retention import sweep_abandoned
from tests.exports.s3server import S3Server
from tests.exports.writing import Crash, write_then_crash


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket()


@pytest.fixture
def storage(s3_server: S3Server, bucket: str) -> S3Storage:
    return S3Storage(s3_server.client(), bucket, "exports/")


def open_uploads(s3_server: S3Server, bucket: str) -> list[str]:
    answer = s3_server.client().list_multipart_uploads(Bucket=bucket)
    return [upload["Key"] for upload in answer.get("Uploads", [])]


def object_keys(s3_server: S3Server, bucket: str) -> list[str]:
    answer = s3_server.client().list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in answer.get("Contents", []))


def test_a_file_over_one_part_is_a_completed_multipart_upload(
    s3_server: S3Server, bucket: str, storage: S3Storage
) -> None:
    content = os.urandom(2 * PART_SIZE + 12345)
    with storage.writer("3/10.csv") as out:
        for start in range(0, PART_SIZE + CHUNK_SIZE, 64 * 1024):
            out.write(content[start : start + 64 * 1024])
        # One part is uploaded, yet nothing is visible under the key.
        assert open_uploads(s3_server, bucket) == ["exports/3/10.csv"]
        assert storage.size("3/10.csv") is None
        with pytest.raises(ObjectNotFound):
            storage.open("3/10.csv")
        assert object_keys(s3_server, bucket) == []
        out.write(content[PART_SIZE + CHUNK_SIZE :])
    assert open_uploads(s3_server, bucket) == []
    assert object_keys(s3_server, bucket) == ["exports/3/10.csv"]
    head = s3_server.client().head_object(Bucket=bucket, Key="exports/3/10.csv")
    assert head["ETag"].strip('"').endswith("-3")  # two full parts and the rest
    assert storage.size("3/10.csv") == len(content)
    chunks = list(storage.open("3/10.csv"))
    assert all(len(chunk) <= CHUNK_SIZE for chunk in chunks)
    assert hashlib.sha256(b"".join(chunks)).digest() == hashlib.sha256(content).digest()


def test_an_error_mid_write_leaves_no_object_and_no_upload(
    s3_server: S3Server, bucket: str, storage: S3Storage
) -> None:
    uploads_during: list[list[str]] = []
    with pytest.raises(Crash):
        write_then_crash(
            storage,
            "4/1.csv",
            os.urandom(PART_SIZE + 1000),
            lambda: uploads_during.append(open_uploads(s3_server, bucket)),
        )
    assert uploads_during == [["exports/4/1.csv"]]
    assert open_uploads(s3_server, bucket) == []
    assert object_keys(s3_server, bucket) == []
    assert storage.size("4/1.csv") is None
    # Before the first part is full there is no upload at all; an error leaves nothing either.
    with pytest.raises(Crash):
        write_then_crash(storage, "4/2.csv", b"partial")
    assert object_keys(s3_server, bucket) == []


def test_writing_keeps_memory_bounded(storage: S3Storage) -> None:
    block = os.urandom(256 * 1024)
    total = 5 * PART_SIZE
    tracemalloc.start()
    try:
        with storage.writer("4/4.csv") as out:
            for _ in range(total // len(block)):
                out.write(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # About one part buffered (measured: ~9.6 MB), never the whole 40 MiB file.
    assert peak < 2 * PART_SIZE, peak
    assert storage.size("4/4.csv") == total


def test_check(s3_server: S3Server, storage: S3Storage) -> None:
    storage.check()
    with pytest.raises(StorageUnavailable):
        S3Storage(s3_server.client(), "no-such-bucket-here").check()


def test_storage_from_settings_reaches_the_configured_endpoint(
    s3_server: S3Server, bucket: str
) -> None:
    settings = Settings(
        storage_url=f"s3://{bucket}/ledgerline",
        s3_endpoint_url=s3_server.endpoint_url,
        _env_file=None,
    )
    storage = storage_from_settings(settings)
    storage.check()
    with storage.writer("6/1.csv") as out:
        out.write(b"hello")
    assert object_keys(s3_server, bucket) == ["ledgerline/6/1.csv"]
    assert b"".join(storage.open("6/1.csv")) == b"hello"


def test_abandoned_multipart_uploads_are_aborted_once_old(
    s3_server: S3Server, bucket: str, storage: S3Storage
) -> None:
    client = s3_server.client()
    # A worker that crashed mid-upload, and an upload outside our prefix (not ours to touch).
    client.create_multipart_upload(Bucket=bucket, Key="exports/7/1.csv")
    client.create_multipart_upload(Bucket=bucket, Key="elsewhere/7/1.csv")
    # Ages come from the server's `Initiated` (moto reports a fixed date, so read it).
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix="exports/")["Uploads"]
    initiated = uploads[0]["Initiated"]
    assert storage.remove_abandoned(initiated) == 0  # not begun before the cutoff
    assert sorted(open_uploads(s3_server, bucket)) == ["elsewhere/7/1.csv", "exports/7/1.csv"]
    a_day_later = initiated + dt.timedelta(hours=24, seconds=1)
    assert sweep_abandoned(storage, a_day_later - dt.timedelta(seconds=2)) == 0
    assert sweep_abandoned(storage, a_day_later) == 1
    assert open_uploads(s3_server, bucket) == ["elsewhere/7/1.csv"]
