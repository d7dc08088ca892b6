"""The `ledgerline` command. Commands that create something print one JSON object on stdout;
progress and logs go to stderr."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from ledgerline.accounts import AccountInputError, account_json, create_account
from ledgerline.auth import SCOPES, issue_token
from ledgerline.config import Settings, get_settings
from ledgerline.db import session_scope, upgrade_database
from ledgerline.models import Account

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


def ready_settings() -> Settings:
    """Settings with the database migrated: every command works on a fresh data dir."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
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
    settings = ready_settings()
    try:
        with session_scope(settings.resolved_database_url) as session:
            emit(account_json(create_account(session, name, currency, timezone)))
    except AccountInputError as exc:
        fail(str(exc))


@tokens_app.command("create")
def tokens_create(
    account: Annotated[int, typer.Option("--account", help="account id")],
    scope: Annotated[list[str] | None, typer.Option("--scope", help="read and/or write")] = None,
) -> None:
    """Create an API token; the secret is shown only this once."""
    scopes = scope or list(SCOPES)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        fail(f"unknown scope {', '.join(unknown)}; use read and/or write")
    settings = ready_settings()
    with session_scope(settings.resolved_database_url) as session:
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


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
) -> None:
    """Apply migrations, then serve the API (and, embedded, run the job workers)."""
    import uvicorn

    from ledgerline.app import create_app
    from ledgerline.http import configure_logging

    settings = ready_settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
    )


def main() -> None:
    app()
