"""Rate limits (SPEC §6): requests per API key, and failed authentications per client address.

Counting is the `limits` library's moving window: a request counts for exactly one window
length after it was made, so `RateLimit-Remaining` is exact and a burst at a window's edge
cannot pass twice the limit (a fixed window lets it). The counters live in the storage
`LEDGERLINE_RATE_LIMIT_STORAGE_URL` names: this process's memory, or Redis, which every API
process shares (docs/decisions.md, "Issue 10: rate limits").

Free of the web framework, like `auth.py`: `dependencies.py` calls it for each request and
`http.RequestContextMiddleware` writes the headers a `Quota` describes.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ledgerline.errors import AppError

if TYPE_CHECKING:
    from ledgerline.config import Settings

log = logging.getLogger("ledgerline.ratelimit")

# A value of a limit setting that switches that limit off.
OFF_VALUES = ("0", "off")
# Storage schemes accepted: this process's memory, or Redis (shared by every process).
MEMORY_SCHEMES = ("memory",)
REDIS_SCHEMES = ("redis", "rediss", "redis+unix")
# A Redis that does not answer must not hold requests up: past this a request goes through
# uncounted (fail open, logged).
REDIS_TIMEOUT_SECONDS = 0.5
# After a storage failure requests go uncounted for this long before the storage is tried
# again, so a Redis that is down costs one timeout per this interval, not one per request.
STORAGE_RETRY_SECONDS = 5.0
# One warning per this many seconds while the storage is failing, not one per request.
STORAGE_WARNING_INTERVAL_SECONDS = 30.0


class RateLimited(AppError):
    """Too many requests for a limit; `Retry-After` says when the next one will pass."""

    status, code = 429, "rate-limited"


class TooManyFailedAuthentications(RateLimited):
    code = "too-many-failed-authentications"


def parse_limit(value: str) -> RateLimitItem | None:
    """A limit setting's value: a `limits` string ("1200/minute", "30 per 5 minutes"), or
    "0"/"off" for no limit (None). ValueError, naming what is wrong, for anything else."""
    text = value.strip()
    if text.lower() in OFF_VALUES:
        return None
    if ";" in text or "," in text:
        raise ValueError(f"{value!r}: give one limit, such as '1200/minute'")
    try:
        item = parse(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a rate limit: write it as '<count>/<second|minute|hour|day>' "
            "(or '<count> per <n> minutes'), or '0'/'off' for no limit"
        ) from None
    if item.amount < 1:
        raise ValueError(f"{value!r}: the count must be at least 1 (use 'off' for no limit)")
    return item


def check_storage_url(url: str) -> str:
    """The URL when `limits` can keep our counters there; ValueError naming the scheme if not."""
    scheme = url.partition("://")[0].lower()
    if "://" not in url or scheme not in (*MEMORY_SCHEMES, *REDIS_SCHEMES):
        accepted = ", ".join(f"{name}://" for name in (*MEMORY_SCHEMES, *REDIS_SCHEMES))
        raise ValueError(f"{url!r}: the rate limit storage must be one of {accepted}")
    return url


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[Network, ...]:
    """`LEDGERLINE_TRUSTED_PROXIES`: comma-separated addresses or networks ("10.0.0.5,
    192.168.0.0/16"); empty trusts none. ValueError naming an entry that is neither."""
    networks = []
    for entry in value.split(","):
        if entry.strip():
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"{entry.strip()!r} is not an IP address or network") from None
    return tuple(networks)


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def forwarded_client(peer: str, forwarded_for: list[str], proxies: tuple[Network, ...]) -> str:
    """The address a limit counts: the TCP peer's, unless the peer is a trusted proxy; then
    the nearest address in `X-Forwarded-For` (read from the right, where each proxy appends
    the peer it saw) that is not a trusted proxy. Entries left of that were written by the
    client and are never believed."""
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    address = peer
    for hop in reversed(hops):
        address = hop
        if not _trusted(hop, proxies):
            break
    return address


def _per(item: RateLimitItem) -> str:
    """'minute', '5 minutes': the window of a limit, as the detail of a 429 reads it."""
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"


def _requests(count: int) -> str:
    return f"{count} request" if count == 1 else f"{count} requests"


@dataclass(frozen=True)
class Quota:
    """Where one client stands against one limit after this request."""

    limit: int
    remaining: int
    # Whole seconds until the oldest request counted leaves the window (a slot frees up).
    reset_seconds: int
    window_seconds: int

    def headers(self) -> dict[str, str]:
        """The fields of draft-ietf-httpapi-ratelimit-headers-06 (the separate-field form
        that clients and gateways implement; draft 07 merged them into `RateLimit`)."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
            "RateLimit-Policy": f"{self.limit};w={self.window_seconds}",
        }


class RateLimits:
    """The limits of one app (one per process), over one storage."""

    def __init__(
        self,
        storage: Storage | None,
        *,
        per_key: RateLimitItem | None,
        failed_auth: RateLimitItem | None,
    ) -> None:
        self.per_key = per_key if storage is not None else None
        self.failed_auth = failed_auth if storage is not None else None
        self._limiter = MovingWindowRateLimiter(storage) if storage is not None else None
        self._failure_lock = threading.Lock()
        self._next_warning = 0.0
        self._skip_until = 0.0  # monotonic: until then the storage is not asked (it failed)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        per_key = parse_limit(settings.rate_limit_per_key)
        failed_auth = parse_limit(settings.rate_limit_failed_auth)
        if per_key is None and failed_auth is None:
            return cls(None, per_key=None, failed_auth=None)
        url = settings.resolved_rate_limit_storage_url
        if settings.rate_limits_per_process_only:
            log.warning(
                "rate limits are counted per process: the queue is PostgreSQL and no "
                "LEDGERLINE_RATE_LIMIT_STORAGE_URL is set; set it to a redis:// URL to share "
                "them between API processes"
            )
        storage = storage_from_string(url, **_storage_options(url, settings))
        if not isinstance(storage, Storage):  # an async storage: not what we asked for
            raise ValueError(f"{url!r} is not a synchronous rate limit storage")
        return cls(storage, per_key=per_key, failed_auth=failed_auth)

    # ---- failed authentication, per client address -----------------------------------------

    def refuse_blocked_address(self, address: str) -> None:
        """Before any credential is read: an address past its failed-authentication limit is
        refused (429) whatever it sends, a valid token included, so guessing stops being
        useful (answering a right guess differently would tell the guesser). Not counted."""
        item = self.failed_auth
        limiter = self._counting()
        if item is None or limiter is None:
            return
        try:
            if limiter.test(item, "failed-auth", address):
                return
            quota = self._quota(limiter, item, "failed-auth", address)
        except StorageError:
            self._storage_failed()
            return
        raise TooManyFailedAuthentications(
            f"Too many failed authentications from this address: at most {item.amount} per "
            f"{_per(item)}. Retry after {quota.reset_seconds} s.",
            headers={"Retry-After": str(quota.reset_seconds), **quota.headers()},
        )

    def count_failed_authentication(self, address: str) -> None:
        limiter = self._counting()
        if self.failed_auth is None or limiter is None:
            return
        try:
            limiter.hit(self.failed_auth, "failed-auth", address)
        except StorageError:
            self._storage_failed()

    # ---- requests, per API key -----------------------------------------------------------------

    def count_request(self, key_id: str) -> Quota | None:
        """Count one authenticated request against its key: where the key stands, or a 429
        when the key is past its limit (the request is not counted then). None when there is
        no limit, or the storage failed (the request goes through)."""
        item = self.per_key
        limiter = self._counting()
        if item is None or limiter is None:
            return None
        try:
            allowed = limiter.hit(item, "key", key_id)
            quota = self._quota(limiter, item, "key", key_id)
        except StorageError:
            self._storage_failed()
            return None
        if allowed:
            return quota
        raise RateLimited(
            f"Rate limit reached: at most {_requests(item.amount)} per {_per(item)} per API "
            f"key. Retry after {quota.reset_seconds} s.",
            headers={"Retry-After": str(quota.reset_seconds), **quota.headers()},
        )

    def _counting(self) -> MovingWindowRateLimiter | None:
        """The limiter, unless the storage failed within the last STORAGE_RETRY_SECONDS."""
        if self._limiter is None or time.monotonic() < self._skip_until:
            return None
        return self._limiter

    @staticmethod
    def _quota(limiter: MovingWindowRateLimiter, item: RateLimitItem, *identifiers: str) -> Quota:
        stats = limiter.get_window_stats(item, *identifiers)
        remaining = max(stats.remaining, 0)
        # Retry-After is whole seconds and at least 1 (RFC 9110 allows 0, which would only
        # make a client retry at once into another 429). With slots free, it is the time
        # until the oldest counted request leaves the window.
        seconds = max(1, math.ceil(stats.reset_time - time.time()))
        return Quota(item.amount, remaining, seconds, int(item.get_expiry()))

    def _storage_failed(self) -> None:
        """Fail open: a rate limit is protection, not a dependency of every answer; a Redis
        that is down lets requests through uncounted rather than failing them all."""
        with self._failure_lock:
            now = time.monotonic()
            self._skip_until = now + STORAGE_RETRY_SECONDS
            if now < self._next_warning:
                return
            self._next_warning = now + STORAGE_WARNING_INTERVAL_SECONDS
        log.warning("rate limit storage unavailable; requests are not being counted", exc_info=True)


def _storage_options(url: str, settings: Settings) -> dict[str, float | str | bool]:
    """`limits` passes these to its storage (for Redis: on to `redis.Redis`)."""
    options: dict[str, float | str | bool] = {"wrap_exceptions": True}
    if url.partition("://")[0].lower() in REDIS_SCHEMES:
        options.update(
            key_prefix=settings.rate_limit_key_prefix,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
    return options
