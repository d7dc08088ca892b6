"""What every export storage promises (the `Storage` protocol), run on each backend.

Local disk on a scratch directory and S3 on moto's server (tests/exports/s3server.py, which
fails rather than skips when moto cannot start). What only one backend does (file names of
temporaries, directory pruning, multipart parts, memory, configuration) is tested in
test_local_storage.py and test_s3_storage.py.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
from botocore.exceptions import ClientError

from ledgerline.exports.storage import (
    CHUNK_SIZE,
    PART_SIZE,
    InvalidStorageKey,
    LocalStorage,
    ObjectNotFound,
    S3Storage,
    Storage,
)
from tests.exports.s3server import S3Server
from tests.exports.writing import Crash, read_all, write_then_crash

S3_PREFIX = "exports"


@dataclass
class Subject:
    """A storage, and a look behind its back at everything it has stored.

    `stored()` names published objects by key and also shows what the interface hides:
    a local temporary file by its path, an open S3 multipart upload as `upload:<key>`.
    """

    storage: Storage
    stored: Callable[[], list[str]]


def local_subject(tmp_path: Path) -> Subject:
    root = tmp_path / "exports"

    def stored() -> list[str]:
        # Every file in the whole scratch dir, relative to the root: one that escaped the
        # root would show as `../...`.
        return sorted(os.path.relpath(p, root) for p in tmp_path.rglob("*") if p.is_file())

    return Subject(LocalStorage(root), stored)


def s3_subject(s3_server: S3Server) -> Subject:
    client = s3_server.client()
    bucket = s3_server.new_bucket()

    def stored() -> list[str]:
        # The whole bucket, names relative to the prefix: one outside it keeps its full name.
        def relative(key: str) -> str:
            return key.removeprefix(f"{S3_PREFIX}/")

        objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return sorted(
            [relative(item["Key"]) for item in objects]
            + [f"upload:{relative(upload['Key'])}" for upload in uploads]
        )

    return Subject(S3Storage(client, bucket, S3_PREFIX), stored)


@pytest.fixture(params=["local", "s3"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Subject:
    if request.param == "local":
        return local_subject(tmp_path)
    # Only the S3 cases start (and need) the moto server.
    return s3_subject(cast(S3Server, request.getfixturevalue("s3_server")))


def assert_absent(storage: Storage, key: str) -> None:
    assert storage.size(key) is None
    with pytest.raises(ObjectNotFound):
        storage.open(key)


def far_future() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=1)


# Empty, a CSV line, several read chunks, and (in one write) two S3 parts.
SIZES = [0, 20, 3 * CHUNK_SIZE + 17, 2 * PART_SIZE]


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size}B")
def test_what_is_written_reads_back_byte_for_byte(subject: Subject, size: int) -> None:
    storage = subject.storage
    content = os.urandom(size)
    with storage.writer("3/10.csv") as out:
        if content:  # an empty object is a writer that wrote nothing
            out.write(content)
    assert storage.size("3/10.csv") == size
    chunks = list(storage.open("3/10.csv"))
    assert all(len(chunk) <= CHUNK_SIZE for chunk in chunks)
    assert b"".join(chunks) == content
    assert subject.stored() == ["3/10.csv"]


def test_nothing_is_visible_under_the_key_until_the_block_exits(subject: Subject) -> None:
    storage = subject.storage
    # More than one S3 part, so a part is already uploaded when the key is looked at.
    content = os.urandom(PART_SIZE + CHUNK_SIZE + 5)
    with storage.writer("7/42.csv") as out:
        out.write(content[: PART_SIZE + 1])
        out.flush()
        assert_absent(storage, "7/42.csv")
        assert "7/42.csv" not in subject.stored()
        out.write(content[PART_SIZE + 1 :])
    assert subject.stored() == ["7/42.csv"]
    assert read_all(storage, "7/42.csv") == content


@pytest.mark.parametrize("size", [7, PART_SIZE + 1000], ids=lambda size: f"{size}B")
def test_an_error_inside_the_writer_leaves_nothing(subject: Subject, size: int) -> None:
    storage = subject.storage
    with pytest.raises(Crash):
        write_then_crash(storage, "4/1.csv", os.urandom(size))
    assert_absent(storage, "4/1.csv")
    assert subject.stored() == []  # no temporary file, no open upload
    assert storage.remove_abandoned(far_future()) == 0


@pytest.mark.parametrize("size", [6, PART_SIZE + 1], ids=lambda size: f"{size}B")
def test_a_failed_rewrite_keeps_the_published_object(subject: Subject, size: int) -> None:
    storage = subject.storage
    with storage.writer("1/3.csv") as out:
        out.write(b"first,version\r\n")
    seen_during: list[bytes] = []
    with pytest.raises(Crash):
        write_then_crash(
            storage,
            "1/3.csv",
            os.urandom(size),
            lambda: seen_during.append(read_all(storage, "1/3.csv")),
        )
    assert seen_during == [b"first,version\r\n"]
    assert read_all(storage, "1/3.csv") == b"first,version\r\n"
    assert subject.stored() == ["1/3.csv"]


def test_a_rewrite_replaces_the_object(subject: Subject) -> None:
    storage = subject.storage
    for version in (b"one", b"version two"):
        with storage.writer("1/4.csv") as out:
            out.write(version)
    assert read_all(storage, "1/4.csv") == b"version two"
    assert storage.size("1/4.csv") == len(b"version two")
    assert subject.stored() == ["1/4.csv"]


def test_a_caller_may_close_the_file_through_a_text_wrapper(subject: Subject) -> None:
    storage = subject.storage
    with (
        storage.writer("5/6.csv") as out,
        io.TextIOWrapper(out, encoding="utf-8", newline="") as text,
    ):
        text.write("Amount,Currency\r\n45.50,GBP\r\n")
    assert read_all(storage, "5/6.csv") == b"Amount,Currency\r\n45.50,GBP\r\n"
    assert subject.stored() == ["5/6.csv"]


def test_missing_objects_and_delete(subject: Subject) -> None:
    storage = subject.storage
    assert_absent(storage, "1/1.csv")
    storage.delete("1/1.csv")  # idempotent: nothing to delete is fine
    with storage.writer("1/1.csv") as out:
        out.write(b"")
    assert storage.size("1/1.csv") == 0
    assert read_all(storage, "1/1.csv") == b""
    with storage.writer("1/2.csv") as out:
        out.write(b"abc")
    assert storage.size("1/2.csv") == 3
    storage.delete("1/1.csv")
    storage.delete("1/1.csv")
    assert_absent(storage, "1/1.csv")
    assert read_all(storage, "1/2.csv") == b"abc"
    storage.delete("1/2.csv")
    assert_absent(storage, "1/2.csv")
    assert subject.stored() == []


def test_one_accounts_keys_never_reach_anothers_objects(subject: Subject) -> None:
    # Export keys start with the account id (`<account>/<job>/...`, see jobs/tasks.py).
    storage = subject.storage
    for account in (3, 4):
        with storage.writer(f"{account}/10/export.csv") as out:
            out.write(f"account {account}".encode())
    assert read_all(storage, "3/10/export.csv") == b"account 3"
    assert read_all(storage, "4/10/export.csv") == b"account 4"
    storage.delete("4/10/export.csv")
    assert_absent(storage, "4/10/export.csv")
    assert read_all(storage, "3/10/export.csv") == b"account 3"
    assert subject.stored() == ["3/10/export.csv"]


BAD_KEYS = [
    "",
    "/etc/passwd",
    "../outside",
    "../5/1.csv",
    "a/../../outside",
    "a/..",
    "..",
    ".",
    "a//b",
    "a/",
    ".hidden",
    "1/.42.csv.abcdef.part",
    "a\\..\\b",
    "a\x00b",
    "a\nb",
    "x" * 501,
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_keys_that_could_escape_the_root_are_refused(subject: Subject, key: str) -> None:
    storage = subject.storage
    with pytest.raises(InvalidStorageKey), storage.writer(key) as out:
        out.write(b"x")
    calls: list[Callable[[str], object]] = [storage.open, storage.size, storage.delete]
    for call in calls:
        with pytest.raises(InvalidStorageKey):
            call(key)
    assert subject.stored() == []


def test_check_passes_on_a_usable_storage(subject: Subject) -> None:
    subject.storage.check()


def test_sweeping_abandoned_writes_never_touches_published_objects(subject: Subject) -> None:
    storage = subject.storage
    with storage.writer("2/1.csv") as out:
        out.write(b"published")
    assert storage.remove_abandoned(far_future()) == 0
    assert read_all(storage, "2/1.csv") == b"published"
    assert subject.stored() == ["2/1.csv"]


def test_a_partial_write_is_listed_under_its_key_and_once_discarded_never_published(
    subject: Subject,
) -> None:
    """What the sweep of dead attempts' files relies on (jobs/retention.sweep_partials)."""
    storage = subject.storage
    with storage.writer("5/9/1.csv") as out:
        out.write(b"published")
    assert list(storage.partial_writes()) == []  # a published object is not a partial one

    def write_discarded() -> None:
        with storage.writer("5/9/2.csv") as out:
            out.write(os.urandom(PART_SIZE + 1))  # one S3 part uploaded: an open upload
            out.flush()
            (partial,) = storage.partial_writes()
            assert partial.key == "5/9/2.csv"
            storage.discard(partial)
            storage.discard(partial)  # already gone: nothing happens
            assert list(storage.partial_writes()) == []
            out.write(b"the rest")

    with pytest.raises((OSError, ClientError)):  # the writer cannot publish it any more
        write_discarded()
    assert_absent(storage, "5/9/2.csv")
    assert subject.stored() == ["5/9/1.csv"]


def test_a_reader_may_stop_early(subject: Subject) -> None:
    # An aborted download closes the stream half way; the object stays readable.
    storage = subject.storage
    content = os.urandom(3 * CHUNK_SIZE)
    with storage.writer("8/1.csv") as out:
        out.write(content)
    reading = storage.open("8/1.csv")
    assert isinstance(reading, Generator)  # both backends stream from a generator
    first = next(reading)
    assert content.startswith(first)
    reading.close()
    assert read_all(storage, "8/1.csv") == content
