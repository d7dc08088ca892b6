"""Where export files live: a directory on local disk, or an S3-compatible bucket.

Both publish atomically: a writer fills a temporary object (a `.part` file, or an open
multipart upload) and the key becomes visible only when the `with` block exits without an
error (an `os.replace`, or the completion of the upload). On any error the temporary object
is removed, so a reader can never see a partial file under a key. See docs/storage.md.
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast
from urllib.parse import urlsplit

from ledgerline.config import Settings, open_private, private_dir

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHUNK_SIZE = 1024 * 1024
# S3 needs parts of at least 5 MiB (except the last); 8 MiB keeps memory bounded and the
# number of parts (at most 10,000) high enough for files up to ~78 GiB.
PART_SIZE = 8 * 1024 * 1024
MAX_KEY_LENGTH = 500  # jobs.storage_key is a String(500)
TEMP_SUFFIX = ".part"


class StorageError(Exception):
    """Base of the errors this module raises."""


class StorageConfigError(StorageError, ValueError):
    """`LEDGERLINE_STORAGE_URL` names no storage we can use."""


class InvalidStorageKey(StorageError, ValueError):
    """A key that could escape the storage root or collide with temporary names."""


class ObjectNotFound(StorageError, LookupError):
    """No published object under the key."""


class StorageUnavailable(StorageError):
    """The storage cannot be reached or written (raised by `check`)."""


@dataclass(frozen=True)
class PartialWrite:
    """A write begun and neither published nor discarded (its writer died): a `.part` file
    or an open multipart upload. Never visible under its key."""

    key: str  # the key it would have been published under
    ref: str  # the backend's own name for it: the temporary file's path, or the upload id


class Storage(Protocol):
    def writer(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A file to write the object into; published under `key` only if the block succeeds."""
        ...

    def open(self, key: str) -> Iterator[bytes]:
        """The published object in chunks; raises `ObjectNotFound` at once when absent."""
        ...

    def size(self, key: str) -> int | None:
        """The object's size in bytes; None when absent."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; nothing happens when it is already gone."""
        ...

    def check(self) -> None:
        """Raise `StorageUnavailable` when the storage cannot be used."""
        ...

    def remove_abandoned(self, started_before: datetime) -> int:
        """Discard temporary objects (of crashed writers) begun before the given time."""
        ...

    def partial_writes(self) -> Iterator[PartialWrite]:
        """Every write in progress or abandoned, with the key it is for (the caller decides,
        from the job behind the key, which are abandoned)."""
        ...

    def discard(self, partial: PartialWrite) -> None:
        """Remove a partial write; nothing happens when it is already gone. A writer still
        filling it then fails to publish instead of publishing."""
        ...


def validate_key(key: str) -> str:
    """Return `key` when it is a safe relative name of `/`-separated segments.

    Refused: empty keys and segments, absolute paths, backslashes, control characters,
    `.`/`..` and any segment starting with `.` (temporary files are named `.<name>.<x>.part`).
    """
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidStorageKey(f"invalid storage key {key!r}: empty or too long")
    if key.startswith("/") or "\\" in key or any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise InvalidStorageKey(f"invalid storage key {key!r}")
    for segment in key.split("/"):
        if not segment or segment.startswith("."):
            raise InvalidStorageKey(f"invalid storage key {key!r}: bad segment {segment!r}")
    return key


# ---------------------------------------------------------------------------------------
# Local disk


class LocalStorage:
    """Objects are files under `root`; a key's segments are its directories."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, key: str) -> Path:
        path = self.root / validate_key(key)
        # Belt and braces: whatever the key, the result stays inside the root.
        root = self.root.resolve()
        if not path.resolve().is_relative_to(root) or path.resolve() == root:
            raise InvalidStorageKey(f"invalid storage key {key!r}: outside the storage root")
        return path

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        path = self.path_for(key)
        temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}{TEMP_SUFFIX}")
        file = self._create(temp)
        try:
            yield file
            if not file.closed:
                file.flush()
                os.fsync(file.fileno())
                file.close()
            else:  # the caller closed it (e.g. through a TextIOWrapper): sync by name
                _fsync_path(temp)
            os.replace(temp, path)
            _fsync_path(path.parent)
        except BaseException:
            file.close()
            temp.unlink(missing_ok=True)
            raise

    @staticmethod
    def _create(temp: Path) -> BinaryIO:
        # Export files hold customer data: created 0600 (kept by the rename that publishes
        # them), their directories 0700. `delete` prunes directories it empties; one may
        # vanish between mkdir and open, hence the retries.
        for _ in range(9):
            try:
                private_dir(temp.parent)
                return os.fdopen(open_private(temp), "wb")
            except (FileNotFoundError, FileExistsError):
                if temp.exists():  # the temp name itself clashed: not the race above
                    raise
                continue
        private_dir(temp.parent)
        return os.fdopen(open_private(temp), "wb")

    def open(self, key: str) -> Iterator[bytes]:
        try:
            file = self.path_for(key).open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        return _file_chunks(file)

    def size(self, key: str) -> int | None:
        try:
            stat = self.path_for(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return stat.st_size

    def delete(self, key: str) -> None:
        path = self.path_for(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        with suppress(FileNotFoundError):  # another delete pruned the directory already
            _fsync_path(path.parent)
        self._prune(path.parent)

    def _prune(self, directory: Path) -> None:
        """Remove the directories a deletion left empty (the job's, then the account's), so
        retention does not leave one empty directory per job behind."""
        root = self.root.resolve()
        directory = directory.resolve()
        while directory != root and directory.is_relative_to(root):
            try:
                directory.rmdir()
            except OSError:  # not empty (or already gone): stop pruning
                break
            directory = directory.parent

    def check(self) -> None:
        try:
            private_dir(self.root)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create {self.root}: {exc}") from exc
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"{self.root} is not writable")

    def remove_abandoned(self, started_before: datetime) -> int:
        """Delete `.part` files not written to since `started_before`.

        A live writer touches its file with every write, so only the leftovers of a crashed
        process grow old; they were never visible under a key.
        """
        cutoff = started_before.timestamp()
        removed = 0
        for directory, _dirs, names in os.walk(self.root):
            for name in names:
                if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
                    continue
                path = Path(directory) / name
                try:
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed

    def partial_writes(self) -> Iterator[PartialWrite]:
        for directory, _dirs, names in os.walk(self.root):
            for name in names:
                if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                    # `.<name>.<16 hex>.part`, beside where <name> is published.
                    target = name[1 : -len(TEMP_SUFFIX)].rsplit(".", 1)[0]
                    folder = Path(directory).relative_to(self.root)
                    key = target if folder == Path(".") else f"{folder.as_posix()}/{target}"
                    yield PartialWrite(key=key, ref=str(Path(directory) / name))

    def discard(self, partial: PartialWrite) -> None:
        temp = Path(partial.ref)
        if not temp.resolve().is_relative_to(self.root.resolve()):
            raise InvalidStorageKey(f"{partial.ref!r} is not under the storage root")
        temp.unlink(missing_ok=True)
        self._prune(temp.parent)


def _file_chunks(file: BinaryIO) -> Iterator[bytes]:
    with file:
        while chunk := file.read(CHUNK_SIZE):
            yield chunk


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------
# S3-compatible object storage


def _blob(data: bytes | bytearray) -> bytes:
    # botocore validates blobs as bytes, bytearray or str; the stubs only say bytes. Passing
    # the bytearray itself avoids copying a whole part.
    return cast(bytes, data)


class _MultipartSink(io.RawIOBase):
    """Bytes buffered into parts of `part_size`, each uploaded as soon as it is full.

    The multipart upload is created with the first full part; an object smaller than one
    part is sent with a single `put_object` at `complete()`. Nothing is visible under the
    key until `complete()`; `abort()` discards every uploaded part.
    """

    def __init__(self, client: S3Client, bucket: str, key: str, part_size: int) -> None:
        super().__init__()
        self.client = client
        self.bucket = bucket
        self.key = key
        self.part_size = part_size
        self.buffer = bytearray()
        self.position = 0
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.discarding = False

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if self.discarding:  # aborted: late flushes must not start a new upload
            return len(view)
        written = 0
        while written < len(view):
            piece = view[written : written + self.part_size - len(self.buffer)]
            self.buffer += piece
            written += len(piece)
            if len(self.buffer) == self.part_size:
                # The buffer itself is the part's body (no copy); a fresh one takes its place.
                self._upload_part(self.buffer)
                self.buffer = bytearray()
        self.position += written
        return written

    def close(self) -> None:
        # Closing only stops writes; what happens to the data is decided by complete/abort.
        super().close()

    def _upload_part(self, body: bytes | bytearray) -> None:
        if self.upload_id is None:
            created = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)
            self.upload_id = created["UploadId"]
        number = len(self.parts) + 1
        answer = self.client.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=_blob(body),
        )
        self.parts.append({"ETag": answer["ETag"], "PartNumber": number})

    def complete(self) -> None:
        if self.upload_id is None:
            self.client.put_object(Bucket=self.bucket, Key=self.key, Body=_blob(self.buffer))
        else:
            if self.buffer:
                self._upload_part(self.buffer)
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts},  # type: ignore[typeddict-item]
            )
        self.buffer = bytearray()

    def abort(self) -> None:
        self.discarding = True
        self.buffer = bytearray()
        if self.upload_id is not None:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )
            self.upload_id = None


class S3Storage:
    """Objects are `<prefix>/<key>` in one bucket."""

    def __init__(
        self, client: S3Client, bucket: str, prefix: str = "", *, part_size: int = PART_SIZE
    ) -> None:
        if part_size < 5 * 1024 * 1024:
            raise StorageConfigError("S3 multipart parts must be at least 5 MiB")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_size = part_size

    def object_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        sink = _MultipartSink(self.client, self.bucket, self.object_key(key), self.part_size)
        file = io.BufferedWriter(sink, buffer_size=CHUNK_SIZE)
        try:
            yield file
            if not file.closed:
                file.flush()
            sink.complete()
        except BaseException:
            try:
                sink.abort()
            finally:
                file.close()
            raise
        file.close()

    def open(self, key: str) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                raise ObjectNotFound(key) from exc
            raise
        return _body_chunks(answer["Body"])

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise
        return int(answer["ContentLength"])

    def delete(self, key: str) -> None:
        # DeleteObject succeeds for a missing key too.
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def check(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(f"bucket {self.bucket!r} unreachable: {exc}") from exc

    def remove_abandoned(self, started_before: datetime) -> int:
        """Abort multipart uploads under the prefix begun before `started_before`.

        Their parts are billed but never visible; a bucket lifecycle rule
        (AbortIncompleteMultipartUpload) does the same on AWS.
        """
        removed = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        prefix = f"{self.prefix}/" if self.prefix else ""
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < started_before:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed += 1
        return removed

    def partial_writes(self) -> Iterator[PartialWrite]:
        paginator = self.client.get_paginator("list_multipart_uploads")
        prefix = f"{self.prefix}/" if self.prefix else ""
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                yield PartialWrite(key=upload["Key"][len(prefix) :], ref=upload["UploadId"])

    def discard(self, partial: PartialWrite) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.object_key(partial.key), UploadId=partial.ref
            )
        except ClientError as exc:
            if _error_code(exc) not in {"NoSuchUpload", "404"}:  # already gone: fine
                raise


def _body_chunks(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_SIZE)
    finally:
        body.close()


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def make_s3_client(endpoint_url: str | None) -> S3Client:
    """A boto3 S3 client from the standard AWS_* variables and an optional endpoint."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        # S3-compatible servers (MinIO, moto, Ceph) are reached by path, not by bucket host.
        s3={"addressing_style": "path"} if endpoint_url else {},
    )
    return boto3.client("s3", endpoint_url=endpoint_url or None, config=config)


def storage_from_url(url: str, *, s3_endpoint_url: str | None = None) -> Storage:
    """`file:///dir` (or `file://relative/dir`) or `s3://bucket/prefix`."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        raw = url[len("file://") :]
        if raw.startswith("localhost/"):
            raw = raw[len("localhost") :]
        if not raw:
            raise StorageConfigError(f"storage URL {url!r} names no directory")
        return LocalStorage(Path(raw))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise StorageConfigError(f"storage URL {url!r} names no bucket (s3://bucket/prefix)")
        if parts.query or parts.fragment:
            raise StorageConfigError(f"storage URL {url!r} may not have a query or fragment")
        return S3Storage(make_s3_client(s3_endpoint_url), parts.netloc, parts.path)
    raise StorageConfigError(
        f"LEDGERLINE_STORAGE_URL {url!r} is not supported: use file:///<dir> or s3://bucket/prefix"
    )


def storage_from_settings(settings: Settings) -> Storage:
    return storage_from_url(settings.resolved_storage_url, s3_endpoint_url=settings.s3_endpoint_url)
