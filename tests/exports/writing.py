"""What the storage tests do to a backend: write and fail half-way, read a key back whole."""

from __future__ import annotations

from collections.abc import Callable

from ledgerline.exports.storage import Storage


class Crash(Exception):
    """The failure of a worker in the middle of writing a file."""


def write_then_crash(
    storage: Storage, key: str, data: bytes, during: Callable[[], None] = lambda: None
) -> None:
    with storage.writer(key) as out:
        out.write(data)
        out.flush()
        during()
        raise Crash


def read_all(storage: Storage, key: str) -> bytes:
    return b"".join(storage.open(key))
