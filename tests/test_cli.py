"""The `ledgerline` command, case by case, in-process; and once as a user runs it.

Every case runs the typer app in this process (typer's `CliRunner`) with its own data dir
and database given through the environment, the way the real command is configured: SQLite
always, PostgreSQL too when `LEDGERLINE_TEST_POSTGRES_URL` is set (a scratch database per
test, like tests/conftest.py makes). Starting a process per case cost about half of a local
run. One smoke test still runs the installed console script end to end: `demo`, then `serve`
(which cannot run in-process) answering with the printed token.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import chdir
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, update
from typer.testing import CliRunner

from ledgerline.app import create_app
from ledgerline.auth import LAST_USED_GRANULARITY, KeyCache, hash_secret
from ledgerline.cli import app
from ledgerline.config import Settings, get_settings
from ledgerline.db import engine_for, make_engine, transaction
from ledgerline.models import Account, ApiKey, Invoice, LineItem
from tests.conftest import POSTGRES_URL, _create_postgres_database, require_service

SCRIPT = Path(sys.executable).with_name("ledgerline")


def ledgerline_command() -> list[str]:
    """The installed console script next to this interpreter, else the same entry point."""
    if SCRIPT.exists():
        return [str(SCRIPT)]
    return [sys.executable, "-c", "from ledgerline.cli import main; main()"]


@dataclass
class Ran:
    """What one run of the command left: the fields of `subprocess.CompletedProcess`."""

    returncode: int
    stdout: str
    stderr: str


def invoke(env: dict[str, str | None], cwd: Path, *args: str) -> Ran:
    """Run the typer app in this process as `ledgerline <args>` would run in `cwd`.

    Settings are cached per process (`get_settings`), so the cache is emptied around each
    run: every invocation reads the environment afresh, as a new process would. An
    unexpected exception becomes its traceback on stderr and exit code 1, as in a process.
    """
    get_settings.cache_clear()
    try:
        with chdir(cwd):  # the cwd is a scratch dir, so no stray `.env` is read
            result = CliRunner().invoke(app, list(args), env=env)
    finally:
        get_settings.cache_clear()
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return Ran(result.exit_code, result.stdout, stderr)


@dataclass
class Cli:
    """Runs `ledgerline` with its own data dir (and database) and nothing else configured."""

    name: str
    env: dict[str, str | None]
    cwd: Path
    database_url: str

    def run(self, *args: str) -> Ran:
        return invoke(self.env, self.cwd, *args)

    def process_env(self) -> dict[str, str]:
        """The same configuration for a real process (unset variables left out)."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERLINE_")}
        return {**inherited, **{k: v for k, v in self.env.items() if v is not None}}

    def created(self, *args: str) -> dict[str, Any]:
        """Run a creating command: exit 0 and exactly one JSON object on stdout."""
        return one_json_object(self.run(*args))

    def count(self, model: Any, account_id: int) -> int:
        engine = make_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return int(
                    connection.execute(
                        select(func.count())
                        .select_from(model)
                        .where(model.account_id == account_id)
                    ).scalar_one()
                )
        finally:
            engine.dispose()


def one_json_object(done: Ran | subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    payload: dict[str, Any] = json.loads(lines[0])
    assert isinstance(payload, dict)
    return payload


def _make_cli(name: str, tmp_path: Path) -> tuple[Cli, Callable[[], None]]:
    data_dir = tmp_path / "data"
    # None unsets: whatever LEDGERLINE_* this process has, the command sees none of it.
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("LEDGERLINE_")}
    env["LEDGERLINE_DATA_DIR"] = str(data_dir)
    env["COLUMNS"] = "200"  # rich wraps messages at the terminal width
    if name == "postgres":
        admin_url = require_service("PostgreSQL", POSTGRES_URL, "LEDGERLINE_TEST_POSTGRES_URL")
        url, drop = _create_postgres_database(admin_url)  # also disposes engine_for(url)
        env["LEDGERLINE_DATABASE_URL"] = url
    else:
        # The URL the command resolves for this data dir, so its cached engine is ours.
        url = f"sqlite:///{data_dir.resolve() / 'ledgerline.db'}"

        def drop() -> None:
            engine_for(url).dispose()

    return Cli(name, env, tmp_path, url), drop


@pytest.fixture(params=["sqlite", "postgres"])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    made, drop = _make_cli(request.param, tmp_path)
    yield made
    drop()


@pytest.fixture
def sqlite_cli(tmp_path: Path) -> Iterator[Cli]:
    made, drop = _make_cli("sqlite", tmp_path)
    yield made
    drop()


@pytest.fixture(scope="module")
def cli_with_an_account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """One SQLite data dir where account 1 exists, shared by the bad-input cases."""
    made, drop = _make_cli("sqlite", tmp_path_factory.mktemp("cli"))
    assert made.created("accounts", "create", "Existing")["id"] == 1
    yield made
    drop()


def test_accounts_and_tokens_create_print_one_json_object(sqlite_cli: Cli) -> None:
    account = sqlite_cli.created(
        "accounts", "create", "Tokyo Studio", "--currency", "jpy", "--timezone", "Asia/Tokyo"
    )
    assert account["name"] == "Tokyo Studio"
    assert account["currency"] == "JPY"
    assert account["timezone"] == "Asia/Tokyo"
    assert isinstance(account["id"], int)

    both = sqlite_cli.created("tokens", "create", "--account", str(account["id"]))
    assert both["token"] == f"{both['key_id']}.{both['secret']}"
    assert both["scopes"] == ["read", "write"]
    reader = sqlite_cli.created(
        "tokens", "create", "--account", str(account["id"]), "--scope", "read"
    )
    assert reader["scopes"] == ["read"]
    assert reader["secret"] != both["secret"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("accounts", "create", "Acme", "--currency", "XYZ"), "XYZ"),
        (("accounts", "create", "Acme", "--timezone", "Mars/Olympus"), "Mars/Olympus"),
        (("accounts", "create", "   "), "name"),
        (("tokens", "create", "--account", "1", "--scope", "admin"), "admin"),
        (("tokens", "create", "--account", "987654"), "987654"),
        (("seed", "--account", "987654", "--line-items", "10"), "987654"),
        (("seed", "--account", "1", "--line-items", "0"), "line-items"),
        (("tokens", "list", "--account", "987654"), "987654"),
        (("tokens", "revoke", "key_00000000deadbeef"), "key_00000000deadbeef"),
    ],
)
def test_bad_input_exits_non_zero_with_a_message_and_nothing_on_stdout(
    cli_with_an_account: Cli, args: tuple[str, ...], named: str
) -> None:
    done = cli_with_an_account.run(*args)
    assert done.returncode != 0
    assert done.stdout == ""
    assert named in done.stderr


def test_seed_command_adds_exactly_the_rows_it_reports(cli: Cli) -> None:
    account = cli.created("accounts", "create", "Seeded")
    report = cli.created(
        "seed",
        "--account",
        str(account["id"]),
        "--line-items",
        "2500",
        "--seed",
        "4",
        "--batch-size",
        "1000",
    )
    assert report["account"] == account["id"]
    assert report["line_items"] == 2500 == cli.count(LineItem, account["id"])
    assert report["invoices"] == cli.count(Invoice, account["id"]) > 0
    assert report["seconds"] > 0
    assert report["line_items_per_second"] == pytest.approx(2500 / report["seconds"], rel=0.01)


@pytest.mark.slow
def test_quickstart_on_a_fresh_data_dir_creates_the_demo_once(sqlite_cli: Cli) -> None:
    first = sqlite_cli.run("quickstart")
    assert first.returncode == 0, first.stderr
    payload = json.loads(first.stdout)
    assert payload["base_url"] == "http://127.0.0.1:8000/api/v2"
    assert sqlite_cli.count(LineItem, payload["account"]) == 10_000
    assert f"Token {payload['token']}" in first.stderr
    # The console's one-time sign-in link, printed next to the token.
    assert payload["console_link"].startswith("http://127.0.0.1:8000/sign-in/link?token=")
    assert payload["console_link"] in first.stderr

    second = sqlite_cli.run("quickstart")
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["account"] == payload["account"]
    # The same token again (issue 10: `make run` used to mint one per run), not a new key.
    assert again["token"] == payload["token"]
    assert f"Token {payload['token']}" in second.stderr
    listed = sqlite_cli.created("tokens", "list", "--account", str(payload["account"]))
    assert len(listed["tokens"]) == 1
    assert sqlite_cli.count(LineItem, payload["account"]) == 10_000

    # Once it is revoked, the next run shows a new token, and keeps showing that one.
    sqlite_cli.created("tokens", "revoke", payload["token"].split(".")[0])
    third = json.loads(sqlite_cli.run("quickstart").stdout)
    assert third["account"] == payload["account"]
    assert third["token"] != payload["token"]
    assert json.loads(sqlite_cli.run("quickstart").stdout)["token"] == third["token"]


# --- the token lifecycle: list, use, revoke ------------------------------------------------


def api_of(cli: Cli, token_cache_seconds: float = 5.0) -> TestClient:
    """The API on the command's database and data dir, in this process."""
    settings = Settings(
        data_dir=cli.cwd / "data",
        database_url=cli.database_url,
        embedded_workers=0,
        token_cache_seconds=token_cache_seconds,
    )
    return TestClient(create_app(settings), base_url="http://testserver/api/v2")


def api_key_updates(cli: Cli) -> list[str]:
    """Every UPDATE of api_keys the API's engine sends from now on (its statements observed,
    not changed)."""
    sent: list[str] = []

    def observe(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_KEYS"):
            sent.append(statement)

    event.listen(engine_for(cli.database_url), "before_cursor_execute", observe)
    return sent


def test_tokens_list_shows_use_and_a_revoked_token_answers_401_once_its_entry_lapses(
    cli: Cli,
) -> None:
    account = cli.created("accounts", "create", "Lifecycle")["id"]
    token = cli.created("tokens", "create", "--account", str(account))
    reader = cli.created("tokens", "create", "--account", str(account), "--scope", "read")
    listed = cli.created("tokens", "list", "--account", str(account))
    assert listed["account"] == account
    assert [t["key_id"] for t in listed["tokens"]] == [token["key_id"], reader["key_id"]]
    first = listed["tokens"][0]
    assert set(first) == {
        "key_id", "account", "scopes", "created_at", "last_used_at", "revoked_at"
    }  # fmt: skip
    assert first["scopes"] == ["read", "write"]
    assert first["last_used_at"] is None
    assert first["revoked_at"] is None
    # Never the secret, nor its hash, anywhere in what is printed.
    printed = cli.run("tokens", "list", "--account", str(account)).stdout
    assert token["secret"] not in printed
    assert hash_secret(token["secret"]) not in printed

    api = api_of(cli)
    updates = api_key_updates(cli)
    headers = {"Authorization": f"Token {token['token']}"}
    for _ in range(5):
        assert api.get("/customers", headers=headers).status_code == 200
    assert len(updates) == 1  # last use recorded once, not once per request
    used = cli.created("tokens", "list", "--account", str(account))["tokens"][0]
    assert used["last_used_at"] is not None
    assert used["last_used_at"] >= first["created_at"]
    other = cli.created("tokens", "list", "--account", str(account))["tokens"][1]
    assert other == listed["tokens"][1]  # the other key untouched

    revoked = cli.created("tokens", "revoke", token["key_id"])
    assert revoked["key_id"] == token["key_id"]
    assert revoked["revoked_at"] is not None
    # The app answers from its token cache for up to 5 s after the lookup (issue 11), then
    # reads the key again: its clock moved past the entry's time instead of slept for.
    assert api.get("/customers", headers=headers).status_code == 200
    cache: KeyCache = api.app.state.key_cache  # type: ignore[attr-defined]
    cache.clock = lambda: time.monotonic() + cache.seconds
    refused = api.get("/customers", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert (
        api.get("/customers", headers={"Authorization": f"Token {reader['token']}"}).status_code
        == 200
    )
    # Revoking again is harmless and keeps the first time.
    assert cli.created("tokens", "revoke", token["key_id"])["revoked_at"] == revoked["revoked_at"]
    assert (
        cli.created("tokens", "list", "--account", str(account))["tokens"][0]["revoked_at"]
        == revoked["revoked_at"]
    )


def test_last_use_is_written_again_once_it_is_stale(sqlite_cli: Cli) -> None:
    account = sqlite_cli.created("accounts", "create", "Stale")["id"]
    token = sqlite_cli.created("tokens", "create", "--account", str(account))
    # No token cache: the value this process last read would otherwise stand for the
    # stored one until its entry lapsed (5 s), and the test moves the stored one only.
    api = api_of(sqlite_cli, token_cache_seconds=0)
    headers = {"Authorization": f"Token {token['token']}"}
    assert api.get("/customers", headers=headers).status_code == 200
    long_ago = dt.datetime.now(dt.UTC) - LAST_USED_GRANULARITY - dt.timedelta(seconds=1)
    with transaction(sqlite_cli.database_url, writes=True) as session:
        session.execute(
            update(ApiKey).where(ApiKey.key_id == token["key_id"]).values(last_used_at=long_ago)
        )
    updates = api_key_updates(sqlite_cli)
    assert api.get("/customers", headers=headers).status_code == 200
    assert api.get("/customers", headers=headers).status_code == 200
    assert len(updates) == 1
    listed = sqlite_cli.created("tokens", "list", "--account", str(account))["tokens"][0]
    assert dt.datetime.fromisoformat(listed["last_used_at"]) > long_ago + LAST_USED_GRANULARITY


# --- the one smoke test through the installed console script --------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"serve did not answer {url} in time:\n{log.read_text()}")


@pytest.mark.slow
def test_demo_then_serve_answers_with_the_printed_token(cli: Cli) -> None:
    # `demo` and `serve` as a user runs them: the console script, in processes of their own.
    demo = one_json_object(
        subprocess.run(
            [*ledgerline_command(), "demo", "--line-items", "500"],
            env=cli.process_env(),
            cwd=cli.cwd,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    )
    assert cli.count(LineItem, demo["account"]) == 500
    port = _free_port()
    assert demo["base_url"] == "http://127.0.0.1:8000/api/v2"  # the defaults, as printed
    base_url = f"http://127.0.0.1:{port}/api/v2"

    log = cli.cwd / "serve.log"
    env = {**cli.process_env(), "LEDGERLINE_EMBEDDED_WORKERS": "0"}
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [*ledgerline_command(), "serve", "--port", str(port)],
            env=env,
            cwd=cli.cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(server, f"http://127.0.0.1:{port}/healthz", log)
        headers = {"Authorization": f"Token {demo['token']}"}

        customers = httpx.get(f"{base_url}/customers", headers=headers, timeout=10)
        assert customers.status_code == 200, customers.text
        assert customers.json()["count"] > 0
        assert customers.json()["results"]

        invoices = httpx.get(f"{base_url}/invoices", headers=headers, timeout=10)
        assert invoices.status_code == 200, invoices.text
        assert invoices.json()["count"] == cli.count(Invoice, demo["account"]) > 0
        first = invoices.json()["results"][0]
        lines = httpx.get(f"{base_url}/invoices/{first['id']}/line_items", headers=headers)
        assert lines.status_code == 200, lines.text
        assert lines.json()["count"] > 0

        assert httpx.get(f"{base_url}/customers", timeout=10).status_code == 401

        # quickstart (in-process) on the same data dir keeps the data and mints a token
        # the running server accepts.
        quick = cli.run("quickstart")
        assert quick.returncode == 0, quick.stderr
        payload = json.loads(quick.stdout)
        assert payload["account"] == demo["account"]
        assert payload["token"] != demo["token"]
        curl = re.search(r'curl -H "Authorization: Token (\S+)" (\S+)', quick.stderr)
        assert curl is not None, quick.stderr
        assert curl.group(1) == payload["token"]
        assert curl.group(2) == f"{payload['base_url']}/customers"
        again = httpx.get(
            f"{base_url}/customers", headers={"Authorization": f"Token {payload['token']}"}
        )
        assert again.status_code == 200
        assert again.json()["count"] == customers.json()["count"]
        engine = make_engine(cli.database_url)
        with engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(Account)).scalar_one() == 1
        engine.dispose()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
