"""Issue 10 item 7: what Ledgerline writes to its data dir is readable by its owner only.

A real `quickstart` (in-process, as tests/test_cli.py runs commands) makes the data dir, the
database, the secret key and the demo token; a real `serve` process with its child worker
makes the queue file and an export file. Then every directory under the data dir is 0700
and every file 0600, under the usual umask 022 (which would give 0755 and 0644).
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledgerline.config import Settings, private_dir, touch_private, write_private_file
from tests.jobs.conftest import free_port, start_ledgerline, wait_ready
from tests.jobs.test_workers import stop
from tests.test_cli import Cli, _make_cli


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems give users: files 0644 and directories 0755 unless we say."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def modes_under(root: Path) -> dict[str, str]:
    """Every entry under `root` (and `root` itself as "."), with its permission bits."""
    found = {".": oct(stat.S_IMODE(root.stat().st_mode))}
    for path in root.rglob("*"):
        try:
            found[str(path.relative_to(root))] = oct(stat.S_IMODE(path.lstat().st_mode))
        except FileNotFoundError:  # removed while we looked (a running server's files)
            continue
    return found


def expected_modes(root: Path) -> dict[str, str]:
    return {name: ("0o700" if (root / name).is_dir() else "0o600") for name in modes_under(root)}


@pytest.mark.slow
def test_quickstart_serve_and_an_export_leave_only_private_files(
    usual_umask: None, tmp_path: Path
) -> None:
    cli: Cli
    cli, drop = _make_cli("sqlite", tmp_path)
    data = tmp_path / "data"
    try:
        quick = cli.run("quickstart")
        assert quick.returncode == 0, quick.stderr
        demo = json.loads(quick.stdout)
        token = demo["token"]
        port = free_port()
        log = tmp_path / "serve.log"  # beside the data dir, not in it
        env = {**cli.process_env(), "LEDGERLINE_LOG_LEVEL": "WARNING"}
        server = start_ledgerline(env, "serve", "--port", str(port), log=log)
        try:
            wait_ready(server, f"http://127.0.0.1:{port}", log)
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}/api/v2",
                headers={"Authorization": f"Token {token}"},
                timeout=30,
            ) as http:
                posted = http.post(
                    "/reports/invoice_line_items/export",
                    json={"columns": ["id", "description", "amount"], "format": "csv"},
                )
                assert posted.status_code == 200, posted.text
                job_id = posted.json()["job"]
                deadline = time.monotonic() + 90
                while (job := http.get(f"/jobs/{job_id}").json())["status"] in (
                    "queued",
                    "running",
                ):
                    assert time.monotonic() < deadline, job
                    time.sleep(0.1)
                assert job["status"] == "succeeded", job
                assert http.get(f"/jobs/{job_id}/download").status_code == 200
            # While the server runs: SQLite's -wal and -shm files exist (a clean stop
            # checkpoints and removes them), and take the database file's mode.
            live = modes_under(data)
            assert {"ledgerline.db-wal", "ledgerline.db-shm", "queue.db-wal"} <= set(live), live
            assert live == expected_modes(data)
        finally:
            stop(server)
    finally:
        drop()
    found = modes_under(data)
    # What must be there: the database in WAL mode, the queue, the key, the token, the file.
    job_dir = f"exports/{demo['account']}/{job_id}"
    for name in ("ledgerline.db", "queue.db", "secret_key", "demo_token", job_dir):
        assert name in found, sorted(found)
    assert any(name.startswith(job_dir + "/") for name in found), sorted(found)
    assert found == expected_modes(data)


def test_each_helper_creates_private_entries_whatever_the_umask_allows(
    usual_umask: None, tmp_path: Path
) -> None:
    private_dir(tmp_path / "a" / "b" / "c")
    touch_private(tmp_path / "a" / "db" / "file.db")
    write_private_file(tmp_path / "a" / "key", "first", overwrite=False)
    write_private_file(tmp_path / "a" / "key", "second", overwrite=False)  # the first wins
    write_private_file(tmp_path / "a" / "token", "old", overwrite=True)
    write_private_file(tmp_path / "a" / "token", "new", overwrite=True)
    assert (tmp_path / "a" / "key").read_text() == "first"
    assert (tmp_path / "a" / "token").read_text() == "new"
    root = tmp_path / "a"
    assert modes_under(root) == expected_modes(root)
    assert sorted(modes_under(root)) == [".", "b", "b/c", "db", "db/file.db", "key", "token"]


def test_the_generated_secret_key_is_private(usual_umask: None, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", secret_key=None)
    key = settings.resolved_secret_key
    assert len(key) > 40
    assert settings.resolved_secret_key == key  # kept, not generated again
    assert modes_under(tmp_path / "data") == {".": "0o700", "secret_key": "0o600"}
