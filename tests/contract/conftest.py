"""A real `ledgerline serve` over the backend's database, for the tests that talk to the API
as an outside client does (a fuzzer, a generated client, a shell pasting the README)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Backend
from tests.jobs.conftest import ledgerline_env, serving


@pytest.fixture
def served(backend: Backend, tmp_path: Path) -> Iterator[str]:
    """The base URL of a `serve` process with its own embedded job worker, so that exports
    requested through it really run."""
    env = ledgerline_env(backend, LEDGERLINE_EMBEDDED_WORKERS="1")
    with serving(env, tmp_path / "serve.log") as base_url:
        yield base_url
