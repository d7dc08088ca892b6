"""What only the local-disk export storage does: temporaries beside the target, readers and
racing writers on one file system, pruning, configuration. What every storage promises (read
back, atomic publish, delete, safe keys) is in test_storage_contract.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from ledgerline.config import Settings
from ledgerline.exports.storage import (
    CHUNK_SIZE,
    LocalStorage,
    ObjectNotFound,
    S3Storage,
    StorageConfigError,
    StorageUnavailable,
    storage_from_settings,
    storage_from_url,
)
from ledgerline.jobs.retention import sweep_abandoned
from tests.exports.writing import read_all


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_nothing_is_visible_under_the_key_until_the_block_succeeds(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    key = "7/42.csv"
    content = os.urandom(3 * CHUNK_SIZE + 17)
    with storage.writer(key) as out:
        out.write(content[: CHUNK_SIZE + 5])
        out.flush()
        assert storage.size(key) is None
        with pytest.raises(ObjectNotFound):
            storage.open(key)
        # Only a hidden temporary file exists, next to where the object will be.
        (temp,) = files_under(tmp_path)
        assert temp.startswith("7/.42.csv.")
        assert temp.endswith(".part")
        out.write(content[CHUNK_SIZE + 5 :])
    assert files_under(tmp_path) == ["7/42.csv"]
    assert storage.size(key) == len(content)
    chunks = list(storage.open(key))
    assert all(len(chunk) <= CHUNK_SIZE for chunk in chunks)
    assert len(chunks) == 4
    assert b"".join(chunks) == content


def test_a_reader_already_streaming_keeps_the_version_it_opened(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    old = b"o" * (2 * CHUNK_SIZE + 1)
    new = b"n" * (3 * CHUNK_SIZE)
    with storage.writer("1/4.csv") as out:
        out.write(old)
    reading = storage.open("1/4.csv")
    first = next(reading)
    with storage.writer("1/4.csv") as out:
        out.write(new)
    assert first + b"".join(reading) == old
    assert read_all(storage, "1/4.csv") == new


def test_concurrent_readers_see_nothing_or_the_whole_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    content = os.urandom(6 * CHUNK_SIZE)
    expected_digest = hashlib.sha256(content).hexdigest()
    observed: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                data = read_all(storage, "9/9.csv")
            except ObjectNotFound:
                observed.append("absent")
                continue
            observed.append(
                "complete" if hashlib.sha256(data).hexdigest() == expected_digest else "partial"
            )

    def wait_for_observations(count: int) -> None:
        while len(observed) < count and thread.is_alive():
            time.sleep(0.001)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        with storage.writer("9/9.csv") as out:
            for start in range(0, len(content), 64 * 1024):
                out.write(content[start : start + 64 * 1024])
                out.flush()
                # Make sure the reader looks while the file is being written.
                wait_for_observations(len(observed) + 1)
        seen_before_publish = len(observed)
        wait_for_observations(seen_before_publish + 3)
    finally:
        done.set()
        thread.join()
    assert "partial" not in observed
    assert observed.count("absent") >= len(content) // (64 * 1024)
    assert observed[-1] == "complete"


def test_delete_prunes_the_directories_it_empties(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "exports")
    for key in ("3/30/a-x.csv", "3/31/b-y.csv", "4/40/c-z.json"):
        with storage.writer(key) as out:
            out.write(key.encode())
    storage.delete("3/30/a-x.csv")
    assert sorted(p.name for p in (tmp_path / "exports" / "3").iterdir()) == ["31"]
    storage.delete("3/31/b-y.csv")
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == ["4"]
    storage.delete("4/40/c-z.json")
    assert (tmp_path / "exports").is_dir()
    assert list((tmp_path / "exports").iterdir()) == []
    # Writing again recreates what was pruned.
    with storage.writer("3/30/a-x.csv") as out:
        out.write(b"again")
    assert read_all(storage, "3/30/a-x.csv") == b"again"


def test_writers_and_deletes_in_one_directory_race_safely(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    errors: list[BaseException] = []

    def churn(worker: int) -> None:
        try:
            for n in range(200):
                key = f"1/2/{worker}-{n}.csv"
                with storage.writer(key) as out:
                    out.write(b"x" * 10)
                storage.delete(key)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert files_under(tmp_path) == []


def test_check_reports_an_unusable_root(tmp_path: Path) -> None:
    LocalStorage(tmp_path / "new" / "exports").check()
    assert (tmp_path / "new" / "exports").is_dir()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageUnavailable):
        LocalStorage(blocker / "exports").check()


def test_storage_from_settings_defaults_to_the_data_dir(tmp_path: Path) -> None:
    storage = storage_from_settings(Settings(data_dir=tmp_path, _env_file=None))
    assert isinstance(storage, LocalStorage)
    assert storage.root == (tmp_path / "exports").resolve()
    with storage.writer("1/2.csv") as out:
        out.write(b"ok")
    assert (tmp_path / "exports" / "1" / "2.csv").read_bytes() == b"ok"


def test_storage_urls() -> None:
    local = storage_from_url("file:///srv/ledgerline/exports")
    assert isinstance(local, LocalStorage)
    assert local.root == Path("/srv/ledgerline/exports")
    s3 = storage_from_url(
        "s3://my-bucket/ledgerline/exports/", s3_endpoint_url="http://127.0.0.1:9"
    )
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix) == ("my-bucket", "ledgerline/exports")
    assert s3.object_key("1/2.csv") == "ledgerline/exports/1/2.csv"
    bare = storage_from_url("s3://my-bucket", s3_endpoint_url="http://127.0.0.1:9")
    assert isinstance(bare, S3Storage)
    assert bare.object_key("1/2.csv") == "1/2.csv"
    for url in ("s3:///prefix", "ftp://host/x", "/just/a/path", "gs://bucket/x", "file://"):
        with pytest.raises(StorageConfigError):
            storage_from_url(url)


def test_abandoned_temporary_files_are_removed_once_old(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with storage.writer("1/1.csv") as out:
        out.write(b"published")
    # What a crashed worker leaves: a temporary file nobody writes to any more.
    crashed = tmp_path / "1" / ".2.csv.0123456789abcdef.part"
    crashed.write_bytes(b"half a file")
    day_ago = time.time() - 25 * 3600
    os.utime(crashed, (day_ago, day_ago))
    now = dt.datetime.now(dt.UTC)
    with storage.writer("1/3.csv") as out:
        out.write(b"still being written")
        out.flush()
        assert sweep_abandoned(storage, now) == 1
        assert sweep_abandoned(storage, now) == 0
    assert files_under(tmp_path) == ["1/1.csv", "1/3.csv"]
    assert read_all(storage, "1/3.csv") == b"still being written"
    # With no age limit even a fresh leftover goes; published files never do.
    crashed.write_bytes(b"again")
    assert sweep_abandoned(storage, now + dt.timedelta(seconds=1), older_than=dt.timedelta()) == 1
    assert files_under(tmp_path) == ["1/1.csv", "1/3.csv"]
