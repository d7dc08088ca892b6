"""A real `ledgerline serve` over the backend's database, for the tests that talk to the API
as an outside client does (a fuzzer, a generated client, a shell pasting the README)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import Backend
from tests.jobs.conftest import free_port, ledgerline_env, start_ledgerline, wait_ready


@contextmanager
def serving(backend: Backend, log: Path, embedded_workers: str) -> Iterator[str]:
    """A `serve` process over the backend's database, and its base URL while it runs."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = ledgerline_env(backend, LEDGERLINE_EMBEDDED_WORKERS=embedded_workers)
    server = start_ledgerline(env, "serve", "--port", str(port), log=log)
    try:
        wait_ready(server, base_url, log)
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def served(backend: Backend, tmp_path: Path) -> Iterator[str]:
    """The base URL of a `serve` process with its own embedded job worker, so that exports
    requested through it really run."""
    with serving(backend, tmp_path / "serve.log", embedded_workers="1") as base_url:
        yield base_url
