"""Settings: one object, read from `LEDGERLINE_*` environment variables and an optional `.env`.

Also how the files of the data dir are made private: the database, the queue file, the secret
key, the demo token and local export files hold customer data or credentials, so each is
created 0600 and each directory 0700 (owner only), whatever the process's umask allows.
"""

from __future__ import annotations

import os
import secrets
from contextlib import suppress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The memory bound of the API process (docs/decisions.md "Issue 10: bounded memory"): the
# defaults of the settings below; `db` sizes its pool from the first two until `serve` or
# `worker` applies the settings.
DEFAULT_API_THREADS = 16
# Connections beyond one per request slot: the job consumer, its heartbeat and its
# sweep when the embedded worker runs as threads of the API process.
POOL_SPARE_CONNECTIONS = 4
DEFAULT_SQLITE_CACHE_KIB = 2048


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGERLINE_", env_file=".env", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None
    queue_url: str | None = None
    storage_url: str | None = None
    s3_endpoint_url: str | None = None
    secret_key: str | None = None
    export_retention_hours: int = Field(default=168, ge=1)
    host: str = "127.0.0.1"
    port: int = 8000
    # Workers the embedded `serve` starts for the queue; 0 disables them (scaled mode).
    embedded_workers: int = Field(default=1, ge=0)
    # How long a running job's lease lasts before the sweep may hand it to another worker.
    job_lease_seconds: int = Field(default=30, ge=2)
    job_max_attempts: int = Field(default=3, ge=1)
    download_url_ttl_seconds: int = Field(default=900, ge=10)
    # The huey queue's name: processes sharing a queue URL and name share the work.
    queue_name: str = "ledgerline"
    # How `serve` runs its embedded workers: a child process (default: keeps the API
    # responsive during a large export, see docs/jobs.md) or threads in the API process.
    embedded_worker_mode: Literal["process", "thread"] = "process"
    log_level: str = "INFO"

    # --- HTTP limits of `serve` (src/ledgerline/server.py), enforced before the app runs ---
    # The request line and every header together; hypercorn answers 431 past it. A bearer
    # token is under 100 bytes, so 16 KiB leaves room for proxies' headers and cookies.
    http_max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    # Header fields in one request (431 past it).
    http_max_headers: int = Field(default=100, ge=10)
    # `METHOD path?query HTTP/1.1` (414 past it); the longest report URL is under 2 KiB.
    http_max_request_line_bytes: int = Field(default=8 * 1024, ge=256)
    # From a connection's opening, or the end of a response, until the next request's head
    # is complete: bounds both a slow (slowloris) head and an idle keep-alive connection.
    http_idle_timeout_seconds: float = Field(default=5.0, gt=0)
    # How long requests in flight may finish after SIGTERM before their connections close.
    http_shutdown_grace_seconds: float = Field(default=10.0, ge=0)

    # --- rate limits (src/ledgerline/ratelimit.py; docs/decisions.md, issue 10) ---
    # Requests per API key, as a `limits` string; "0" or "off" for none. 1,200 a minute is
    # 20 a second on average: paging a report, loading 1,000-line batches or polling jobs
    # stays far below it, while a runaway loop is stopped within its first minute.
    rate_limit_per_key: str = "1200/minute"
    # Failed authentications (401) per client address; past it the address gets 429 for
    # every request with or without credentials until the window frees a slot.
    rate_limit_failed_auth: str = "30/minute"
    # Where the counters live: memory:// (this process) or redis://… (every API process).
    # Unset: memory:// with a SQLite queue, the queue's Redis with a Redis queue, and
    # memory:// with a warning at start with a PostgreSQL queue (per process).
    rate_limit_storage_url: str | None = None
    # Prefix of every counter's key in Redis, so deployments (or test runs) sharing one
    # Redis keep separate counters.
    rate_limit_key_prefix: str = Field(default="ledgerline-ratelimit", min_length=1)
    # Proxies whose `X-Forwarded-For` is believed for the client address the failed-auth
    # limit counts (comma-separated addresses or networks). Empty (the default): the TCP
    # peer's address, as hypercorn gives it; a client cannot choose its own address.
    trusted_proxies: str = ""
    # Export jobs queued or running at once per account (429 past it); 0 for no cap.
    max_active_exports_per_account: int = Field(default=10, ge=0)
    # How long one API process may answer from what a token's lookup found (its account,
    # scopes and key id) before reading the key again: a revoked token is refused within
    # this many seconds (docs/decisions.md, issue 11). 0: every request reads its key.
    token_cache_seconds: float = Field(default=5.0, ge=0, le=60)

    # --- webhooks (src/ledgerline/webhooks/; docs/webhooks.md) ---
    # Send to private, loopback, link-local (and unspecified, multicast, reserved) addresses
    # too: off by default, so no account can point the service at the inside of its network.
    webhook_allow_private: bool = False
    # The back-off's first delay: retry n waits base × 2^(n-1), at most base × 256 (with
    # 60 s: 1 min … 4 h 16 min; 14 attempts over 25 h 35 min). Tests shrink it.
    webhook_retry_base_seconds: float = Field(default=60.0, gt=0, le=3600)
    # One attempt's limit: connecting, sending and reading the answer.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # The URL clients reach the API at, for the download links inside webhook payloads
    # (a consumer has no request to take it from). Unset: http://HOST:PORT.
    public_url: str | None = None

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @field_validator("rate_limit_per_key", "rate_limit_failed_auth")
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        from ledgerline.ratelimit import parse_limit

        parse_limit(value)  # ValueError at start, naming the value, not at the first request
        return value.strip()

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxies(cls, value: str) -> str:
        from ledgerline.ratelimit import parse_networks

        parse_networks(value)
        return value

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _valid_storage(cls, value: str | None) -> str | None:
        from ledgerline.ratelimit import check_storage_url

        return None if value is None or not value.strip() else check_storage_url(value.strip())

    @property
    def resolved_rate_limit_storage_url(self) -> str:
        if self.rate_limit_storage_url:
            return self.rate_limit_storage_url
        if self.resolved_queue_url.startswith(("redis://", "rediss://")):
            return self.resolved_queue_url
        return "memory://"

    @property
    def rate_limits_per_process_only(self) -> bool:
        """Scaled (a PostgreSQL queue) but counting in memory: each API process has its own
        counters, so N processes let N times the limit through."""
        return self.resolved_queue_url.startswith("postgres") and (
            self.resolved_rate_limit_storage_url.startswith("memory")
        )

    # --- API processes of `serve` (src/ledgerline/api_processes.py; docs/decisions.md,
    # "Issue 11: many API processes") ---
    # How many processes answer the API, sharing one listening socket (`serve --workers`
    # overrides it). Unset: one per core with a PostgreSQL database whose rate limits are
    # shared (Redis) or off, else one. More than one needs shared rate limit counters.
    api_workers: int | None = Field(default=None, ge=1, le=256)

    @property
    def rate_limits_shared_or_off(self) -> bool:
        """Every process counts the same limits: in Redis, or none are counted."""
        from ledgerline.ratelimit import parse_limit

        if parse_limit(self.rate_limit_per_key) is None and (
            parse_limit(self.rate_limit_failed_auth) is None
        ):
            return True
        return not self.resolved_rate_limit_storage_url.startswith("memory")

    # --- memory of `serve` (the bound and its measurements: docs/performance.md) ---
    # Requests inside the app at once, and the threads that run them: each holds one
    # database connection while it runs; the rest wait in the event loop, holding neither.
    api_threads: int = Field(default=DEFAULT_API_THREADS, ge=1, le=1000)
    # Database connections of one process (the pool, never exceeded); by default one per
    # API thread and POOL_SPARE_CONNECTIONS more, so a request never waits for a connection.
    db_pool_size: int | None = Field(default=None, ge=1, le=1000)
    # SQLite's page cache of each connection, in KiB: resident once filled, per connection.
    sqlite_cache_kib: int = Field(default=DEFAULT_SQLITE_CACHE_KIB, ge=0)

    @property
    def resolved_db_pool_size(self) -> int:
        return self.db_pool_size or self.api_threads + POOL_SPARE_CONNECTIONS

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'ledgerline.db'}"

    @property
    def resolved_queue_url(self) -> str:
        return self.queue_url or f"sqlite:///{self.data_dir.resolve() / 'queue.db'}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{self.data_dir.resolve() / 'exports'}"

    @property
    def resolved_secret_key(self) -> str:
        """The key that signs download links and cursors.

        In embedded mode it is generated once and kept in the data dir, so links survive a
        restart; scaled deployments set `LEDGERLINE_SECRET_KEY` on every process.
        """
        if self.secret_key:
            return self.secret_key
        key_file = self.data_dir / "secret_key"
        if not key_file.exists():
            # Processes starting at once each write a key; the first to publish wins.
            write_private_file(key_file, secrets.token_urlsafe(48), overwrite=False)
        return key_file.read_text().strip()


PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create `path` and each missing parent 0700. (`Path.mkdir(mode, parents=True)` gives
    the parents the umask's mode, typically 0755.) An existing directory is left as it is:
    an operator who chose its mode knows why."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        with suppress(FileExistsError):  # made by another process meanwhile
            directory.mkdir(mode=PRIVATE_DIR_MODE)


def open_private(path: Path) -> int:
    """A new file, 0600 from its first moment (no window in which it is world-readable, as
    with creating and then chmod-ing), as a raw descriptor; FileExistsError if it exists."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)


def touch_private(path: Path) -> None:
    """Create `path` empty and 0600 unless it exists: done before SQLite opens a database
    file, because SQLite creates a new file with the umask's mode and gives its -wal and
    -shm files the database file's mode."""
    private_dir(path.parent)
    with suppress(FileExistsError):
        os.close(open_private(path))


def write_private_file(path: Path, text: str, *, overwrite: bool) -> None:
    """Publish `text` at `path` as a 0600 file in one step: a reader sees the whole file or
    none. With `overwrite=False` a file already there wins (and is kept)."""
    private_dir(path.parent)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        with os.fdopen(open_private(temp), "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if overwrite:
            os.replace(temp, path)
        else:
            with suppress(FileExistsError):
                os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def invalid_settings_message(error: ValidationError) -> str:
    """Each invalid setting by its environment variable, with what is wrong with it."""
    lines = []
    for item in error.errors():
        name = "LEDGERLINE_" + "_".join(str(part) for part in item["loc"]).upper()
        lines.append(f"{name}: {str(item['msg']).removeprefix('Value error, ')}")
    return "invalid settings:\n  " + "\n  ".join(lines)


@lru_cache
def get_settings() -> Settings:
    return Settings()
