"""The `ledgerline` command. Commands that create something print one JSON object on stdout;
progress and logs go to stderr.

Each command imports what it needs when it runs, so `ledgerline --help` loads neither the
database layer nor the web framework, and `accounts create` not the web framework."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from ledgerline.config import Settings
    from ledgerline.seed import SeedResult

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
db_app = typer.Typer(no_args_is_help=True, help="Database maintenance.")
accounts_app = typer.Typer(no_args_is_help=True, help="Accounts.")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens.")
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
app.add_typer(tokens_app, name="tokens")

stderr = Console(stderr=True)


def emit(payload: dict[str, Any]) -> None:
    """The one JSON object a creating command prints on stdout."""
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def fail(message: str) -> None:
    stderr.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=2)


def checked_settings() -> Settings:
    """The settings; a bad LEDGERLINE_* value stops the command at start, named, without a
    traceback."""
    from pydantic import ValidationError

    from ledgerline.config import get_settings, invalid_settings_message

    try:
        return get_settings()
    except ValidationError as exc:
        fail(invalid_settings_message(exc))
        raise  # not reached: fail() exits


def ready_settings() -> Settings:
    """Settings with the database migrated: every command works on a fresh data dir."""
    from ledgerline.config import private_dir
    from ledgerline.db import upgrade_database

    settings = checked_settings()
    private_dir(settings.data_dir)
    upgrade_database(settings.resolved_database_url)
    return settings


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations."""
    settings = ready_settings()
    stderr.print(f"database at head: {settings.resolved_database_url}")


@accounts_app.command("create")
def accounts_create(
    name: str,
    currency: Annotated[str, typer.Option(help="ISO 4217 code")] = "GBP",
    timezone: Annotated[str, typer.Option(help="IANA time zone")] = "Europe/London",
) -> None:
    """Create an account."""
    from ledgerline.accounts import AccountInputError, account_json, create_account
    from ledgerline.db import transaction

    settings = ready_settings()
    try:
        with transaction(settings.resolved_database_url, writes=True) as session:
            emit(account_json(create_account(session, name, currency, timezone)))
    except AccountInputError as exc:
        fail(str(exc))


@tokens_app.command("create")
def tokens_create(
    account: Annotated[int, typer.Option("--account", help="account id")],
    scope: Annotated[list[str] | None, typer.Option("--scope", help="read and/or write")] = None,
) -> None:
    """Create an API token; the secret is shown only this once."""
    from ledgerline.auth import SCOPES, issue_token
    from ledgerline.db import transaction
    from ledgerline.models import Account

    scopes = scope or list(SCOPES)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        fail(f"unknown scope {', '.join(unknown)}; use read and/or write")
    settings = ready_settings()
    with transaction(settings.resolved_database_url, writes=True) as session:
        if session.get(Account, account) is None:
            fail(f"no account with id {account}")
        issued = issue_token(session, account, scopes)
        emit(
            {
                "token": issued.token,
                "key_id": issued.key_id,
                "secret": issued.secret,
                "scopes": issued.scopes,
            }
        )


@tokens_app.command("list")
def tokens_list(
    account: Annotated[int, typer.Option("--account", help="account id")],
) -> None:
    """The account's tokens (revoked ones too), without their secrets."""
    from ledgerline.auth import list_tokens, token_json
    from ledgerline.db import transaction
    from ledgerline.models import Account

    settings = ready_settings()
    with transaction(settings.resolved_database_url, writes=False) as session:
        if session.get(Account, account) is None:
            fail(f"no account with id {account}")
        emit({"account": account, "tokens": [token_json(k) for k in list_tokens(session, account)]})


@tokens_app.command("revoke")
def tokens_revoke(key_id: Annotated[str, typer.Argument(help="the token's key_id")]) -> None:
    """Revoke a token: from the next request on it answers 401. Revoking twice is harmless."""
    from ledgerline.auth import TokenNotFound, revoke_token, token_json
    from ledgerline.db import transaction

    settings = ready_settings()
    try:
        with transaction(settings.resolved_database_url, writes=True) as session:
            emit(token_json(revoke_token(session, key_id)))
    except TokenNotFound:
        fail(f"no token with key id {key_id}")


def _console_url(settings: Settings) -> str:
    return _base_url(settings).removesuffix("/api/v2")


def _issue_console_link(settings: Settings, account_id: int, minutes: int) -> dict[str, Any]:
    """A one-time sign-in link for the console; its token is shown only here."""
    from urllib.parse import urlencode

    from ledgerline.console.sessions import issue_link
    from ledgerline.db import transaction, utcnow

    with transaction(settings.resolved_database_url, writes=True) as session:
        token, expires_at = issue_link(session, account_id, utcnow(), minutes)
    return {
        "account": account_id,
        "url": f"{_console_url(settings)}/sign-in/link?{urlencode({'token': token})}",
        "expires_at": expires_at.isoformat(),
    }


@app.command("console-link")
def console_link(
    account: Annotated[int, typer.Option("--account", help="account id")],
    minutes: Annotated[
        int, typer.Option("--minutes", min=1, max=1440, help="how long the link works")
    ] = 15,
) -> None:
    """Print a one-time sign-in link to the web console (usable once, for `--minutes`)."""
    from ledgerline.db import transaction
    from ledgerline.models import Account

    settings = ready_settings()
    with transaction(settings.resolved_database_url, writes=False) as session:
        if session.get(Account, account) is None:
            fail(f"no account with id {account}")
    emit(_issue_console_link(settings, account, minutes))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=256,
            help="API processes sharing the port (default: LEDGERLINE_API_WORKERS, else one "
            "per core with PostgreSQL and shared rate limits, else 1)",
        ),
    ] = None,
) -> None:
    """Apply migrations, then serve the API (and, embedded, run the job workers)."""
    from ledgerline import db
    from ledgerline.api_processes import ApiProcesses, ApiProcessesError, api_process_count
    from ledgerline.http import configure_logging
    from ledgerline.jobs.queue import QueueConfigError, embedded_workers

    # Before the first engine: its pool and SQLite cache are sized once, for the process.
    db.configure_engines(checked_settings())
    settings = ready_settings()
    configure_logging(settings.log_level)
    try:
        count = api_process_count(settings, workers)
        job_workers = embedded_workers(settings)
    except (QueueConfigError, ApiProcessesError) as exc:
        fail(str(exc))
    host, port = host or settings.host, port or settings.port
    # The server handles SIGTERM/SIGINT while it runs and returns after a graceful shutdown;
    # outside it (starting the worker, stopping it) the default SIGTERM handler would end the
    # process before the `finally`, leaving the child worker running until it noticed its
    # parent was gone.
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        # One job consumer however many API processes answer: this process's.
        job_workers.start()
        if count == 1:
            from ledgerline.app import create_app
            from ledgerline.server import run_server

            run_server(create_app(settings), settings, host, port)
        else:
            # Made once here, not raced for by the children (embedded: a file in the data dir).
            _ = settings.resolved_secret_key
            ApiProcesses(settings, host, port, count).run()
    except (_Terminated, KeyboardInterrupt):
        pass  # a requested stop: the worker is stopped below and serve exits 0
    except ApiProcessesError as exc:
        fail(str(exc))  # the worker is stopped below
    finally:
        job_workers.stop()


@app.command("api-process", hidden=True)
def api_process(
    fd: Annotated[int, typer.Option("--fd", help="the inherited listening socket")],
    ready_fd: Annotated[int, typer.Option("--ready-fd", help="written to once started")],
) -> None:
    """One API process of `serve --workers N` (started by it, never by hand)."""
    from ledgerline import db
    from ledgerline.api_processes import run_api_process
    from ledgerline.http import configure_logging

    settings = checked_settings()
    db.configure_engines(settings)
    configure_logging(settings.log_level)
    run_api_process(settings, fd, ready_fd)


class _Terminated(Exception):
    """SIGTERM reached `serve` while its server was not running."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="jobs run at once")] = 2,
) -> None:
    """Run a job consumer only (scaled mode): as many as you like, on any machines."""
    from ledgerline.http import configure_logging
    from ledgerline.jobs.queue import QueueConfigError, run_worker

    settings = ready_settings()
    configure_logging(settings.log_level)
    try:
        run_worker(settings, concurrency)
    except QueueConfigError as exc:
        fail(str(exc))


# --- generated data: seed, demo, quickstart -------------------------------------------------

DEMO_LINE_ITEMS = 10_000


def _base_url(settings: Settings) -> str:
    """Where a client on this machine reaches `serve` (a wildcard bind answers on loopback)."""
    host = settings.host
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - compared, not bound
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/api/v2"


def _seed_with_progress(
    settings: Settings,
    account_id: int,
    line_items: int,
    seed: int,
    batch_size: int,
    until: dt.date | None = None,
) -> SeedResult:
    """Run the generator with a progress bar on stderr."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ledgerline.db import engine_for
    from ledgerline.seed import seed_account

    with Progress(
        TextColumn("[bold]line items"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
    ) as progress:
        task = progress.add_task("seed", total=line_items)
        return seed_account(
            engine_for(settings.resolved_database_url),
            account_id,
            line_items,
            seed=seed,
            batch_size=batch_size,
            until=until,
            progress=lambda done: progress.advance(task, done),
        )


def _create_demo(settings: Settings, line_items: int, seed: int) -> dict[str, Any]:
    """The "Demo" account (GBP, Europe/London), a read+write token and generated data."""
    from ledgerline.accounts import create_account
    from ledgerline.auth import SCOPES, issue_token
    from ledgerline.db import transaction
    from ledgerline.seed import DEFAULT_BATCH_SIZE

    with transaction(settings.resolved_database_url, writes=True) as session:
        account = create_account(session, "Demo", "GBP", "Europe/London")
        issued = issue_token(session, account.id, list(SCOPES))
        account_id = account.id
    _seed_with_progress(settings, account_id, line_items, seed, DEFAULT_BATCH_SIZE)
    return {"account": account_id, "token": issued.token, "base_url": _base_url(settings)}


@app.command()
def seed(
    account: Annotated[int, typer.Option("--account", help="account id")],
    line_items: Annotated[int, typer.Option("--line-items", min=1, help="line items to add")],
    seed: Annotated[int, typer.Option("--seed", help="same seed, same data")] = 0,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="line items per transaction")
    ] = 100_000,
    until: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="last day of the two years (default today)"),
    ] = None,
) -> None:
    """Bulk-generate realistic invoices, line items and groups for an existing account."""
    from ledgerline.db import transaction
    from ledgerline.models import Account
    from ledgerline.seed import SeedError

    settings = ready_settings()
    with transaction(settings.resolved_database_url, writes=False) as session:
        if session.get(Account, account) is None:
            fail(f"no account with id {account}")
    try:
        result = _seed_with_progress(
            settings, account, line_items, seed, batch_size, until.date() if until else None
        )
    except SeedError as exc:
        fail(str(exc))
        return
    emit(result.as_json())


@app.command()
def demo(
    line_items: Annotated[
        int, typer.Option("--line-items", min=1, help="line items to generate")
    ] = DEMO_LINE_ITEMS,
    seed: Annotated[int, typer.Option("--seed", help="same seed, same data")] = 0,
) -> None:
    """Create a "Demo" account with a token and generated data."""
    emit(_create_demo(ready_settings(), line_items, seed))


# `make run`'s demo token: the secret is stored only as a hash, so quickstart keeps the token
# itself here (0600, like the database it opens) to show it again on the next run.
DEMO_TOKEN_FILE = "demo_token"  # noqa: S105 - a file name, not a secret


def _saved_demo_token(settings: Settings) -> str | None:
    try:
        return (settings.data_dir / DEMO_TOKEN_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


@app.command()
def quickstart() -> None:
    """For `make run`: migrate, create the demo data once, and show a token: the one shown
    last time while it is still valid, else a new one."""
    from sqlalchemy import select

    from ledgerline.auth import SCOPES, issue_token, live_key
    from ledgerline.config import write_private_file
    from ledgerline.db import transaction
    from ledgerline.models import Account

    settings = ready_settings()
    saved = _saved_demo_token(settings)
    token: str | None = None
    with transaction(settings.resolved_database_url, writes=True) as session:
        first = session.execute(
            select(Account.id).order_by(Account.id).limit(1)
        ).scalar_one_or_none()
        key_id, dot, secret = (saved or "").partition(".")
        found = live_key(session, key_id, secret) if dot else None
        if found is not None:  # still there and not revoked: show it again
            first, token = found[1].id, saved
        elif first is not None:
            token = issue_token(session, first, list(SCOPES)).token
    if first is None:
        stderr.print(f"First run: generating demo data ({DEMO_LINE_ITEMS:,} line items)…")
        payload = _create_demo(settings, DEMO_LINE_ITEMS, 0)
    else:
        payload = {"account": first, "token": token, "base_url": _base_url(settings)}
    if payload["token"] != saved:
        write_private_file(
            settings.data_dir / DEMO_TOKEN_FILE, f"{payload['token']}\n", overwrite=True
        )
    docs = payload["base_url"].removesuffix("/api/v2") + "/docs"
    link = _issue_console_link(settings, payload["account"], 15)
    payload["console_link"] = link["url"]
    stderr.print(
        "\n[bold green]Ledgerline is ready.[/bold green]\n"
        f"  account   {payload['account']}\n"
        f"  token     {payload['token']}\n"
        f"  API       {payload['base_url']}\n"
        f"  docs      {docs}\n"
        f"  console   {link['url']}\n"
        "            (a one-time sign-in link, valid for 15 minutes; or sign in with the token)\n"
        "\nTry it once the server is up:\n"
        f'  curl -H "Authorization: Token {payload["token"]}" {payload["base_url"]}/customers\n',
        highlight=False,
        soft_wrap=True,
    )
    emit(payload)


def main() -> None:
    app()
