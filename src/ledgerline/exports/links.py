"""Signed, short-lived download links for export files.

A token is `<account id>.<expiry>.<signature>`: the expiry in whole Unix seconds and the
signature the unpadded URL-safe base64 of

    HMAC-SHA256(secret_key, "ledgerline.download.v2:<job id>:<account id>:<expiry>")

The job id is the job's per-account public id, the one in the URL (unique only with the
account, which the token names); v1 signed the global key, so a v1 token (minted before
migration 0005) no longer verifies instead of naming another job of its account. The job id
is not in the token: it is the job of the URL the token is presented on, so a token moved
to another job's URL no longer matches its signature. The signature is checked
(in constant time) before the expiry, so a tampered or misplaced token is always a 403 and
only a genuine token that has run out is a 410. See docs/storage.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime

from ledgerline.errors import Forbidden, Gone

PURPOSE = "ledgerline.download.v2"
# The query parameter the jobs endpoints carry the token in.
TOKEN_PARAM = "token"  # noqa: S105 (a parameter name, not a secret)

_TOKEN = re.compile(r"([1-9][0-9]{0,18})\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{43})")


class DownloadLinkInvalid(Forbidden):
    code = "download-link-invalid"


class DownloadLinkExpired(Gone):
    code = "download-link-expired"


def _signature(secret_key: str, account_id: int, job_id: int, expires: int) -> str:
    message = f"{PURPOSE}:{job_id}:{account_id}:{expires}".encode()
    digest = hmac.new(secret_key.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _unix_seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("download links need an aware datetime")
    return int(moment.timestamp())


def sign_download(secret_key: str, account_id: int, job_id: int, expires_at: datetime) -> str:
    """The token for `job_id` of `account_id`, valid until `expires_at` (whole seconds)."""
    expires = _unix_seconds(expires_at)
    return f"{account_id}.{expires}.{_signature(secret_key, account_id, job_id, expires)}"


def verify_download(secret_key: str, token: str, job_id: int, now: datetime) -> int:
    """The account the token was signed for.

    Raises `DownloadLinkInvalid` (403) for a malformed or tampered token or one signed for
    another job, and `DownloadLinkExpired` (410) for a genuine token past its expiry.
    """
    match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise DownloadLinkInvalid("The download link is not valid.")
    account_id, expires, signature = int(match[1]), int(match[2]), match[3]
    expected = _signature(secret_key, account_id, job_id, expires)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise DownloadLinkInvalid("The download link is not valid.")
    if _unix_seconds(now) >= expires:
        raise DownloadLinkExpired("The download link has expired; read the job for a new one.")
    return account_id


def link_expiry(now: datetime, ttl_seconds: int) -> datetime:
    """When a link minted at `now` expires, truncated to the second the token carries."""
    return datetime.fromtimestamp(_unix_seconds(now) + ttl_seconds, tz=UTC)


def download_url(
    secret_key: str,
    account_id: int,
    job_id: int,
    now: datetime,
    ttl_seconds: int,
    *,
    prefix: str = "/api/v2",
) -> tuple[str, datetime]:
    """A fresh signed URL of the job's download and when it expires."""
    expires_at = link_expiry(now, ttl_seconds)
    token = sign_download(secret_key, account_id, job_id, expires_at)
    return f"{prefix}/jobs/{job_id}/download?{TOKEN_PARAM}={token}", expires_at
