"""Sealed, short-lived download links for export files.

A token is the unpadded URL-safe base64 of `nonce || AES-GCM(key, nonce, "<account id>.<expiry>",
associated data "ledgerline.download.v3:<job id>")`: the account and the expiry (whole Unix
seconds) are encrypted as well as authenticated, so a link shows nothing of the account it
was minted for, not even its internal id (which would hint at how many accounts exist). The
key is derived from the server secret for this purpose alone (HKDF), apart from the cursors'.

The job id is not in the token: it is the job of the URL the token is presented on, bound as
associated data, so a token moved to another job's URL fails to open. The job id is the job's
per-account public id; v1 and v2 tokens (HMAC-signed, readable) no longer open. Authenticity
is checked before the expiry, so a tampered or misplaced token is always a 403 and only a
genuine token that has run out is a 410. See docs/storage.md.
"""

from __future__ import annotations

import base64
import binascii
import os
from datetime import UTC, datetime
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledgerline.crypto import derive_key
from ledgerline.errors import Forbidden, Gone

PURPOSE = b"ledgerline.download.v3"
# The query parameter the jobs endpoints carry the token in.
TOKEN_PARAM = "token"  # noqa: S105 (a parameter name, not a secret)

_NONCE_BYTES = 12
# A real token is about 60 characters; anything much longer is refused before decoding.
_MAX_TOKEN_CHARS = 200


class DownloadLinkInvalid(Forbidden):
    code = "download-link-invalid"


class DownloadLinkExpired(Gone):
    code = "download-link-expired"


@lru_cache(maxsize=8)
def _cipher(secret_key: str) -> AESGCM:
    return AESGCM(derive_key(secret_key, PURPOSE, 32))


def _bound_to(job_id: int) -> bytes:
    return PURPOSE + b":" + str(job_id).encode("ascii")


def _unix_seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("download links need an aware datetime")
    return int(moment.timestamp())


def sign_download(secret_key: str, account_id: int, job_id: int, expires_at: datetime) -> str:
    """The token for `job_id` of `account_id`, valid until `expires_at` (whole seconds)."""
    plaintext = f"{account_id}.{_unix_seconds(expires_at)}".encode("ascii")
    # A random nonce: links are minted afresh on every read of the job, and two tokens for
    # the same job and expiry need not be equal.
    nonce = os.urandom(_NONCE_BYTES)
    sealed = nonce + _cipher(secret_key).encrypt(nonce, plaintext, _bound_to(job_id))
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")


def _open(secret_key: str, token: object, job_id: int) -> tuple[int, int]:
    """The (account id, expiry) a token seals for `job_id`, or DownloadLinkInvalid."""
    invalid = DownloadLinkInvalid("The download link is not valid.")
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS or not token.isascii():
        raise invalid
    try:
        sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        # One spelling per token: the decoder skips stray characters and ignores a last
        # character's unused bits, so anything but the canonical encoding is refused.
        if base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii") != token:
            raise ValueError("not the canonical encoding")
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        plaintext = _cipher(secret_key).decrypt(nonce, ciphertext, _bound_to(job_id))
        account, expires = plaintext.decode("ascii").split(".")
        return int(account), int(expires)
    except (binascii.Error, InvalidTag, UnicodeError, ValueError) as exc:
        raise invalid from exc


def verify_download(secret_key: str, token: str, job_id: int, now: datetime) -> int:
    """The account the token was minted for.

    Raises `DownloadLinkInvalid` (403) for a malformed or tampered token or one minted for
    another job, and `DownloadLinkExpired` (410) for a genuine token past its expiry.
    """
    account_id, expires = _open(secret_key, token, job_id)
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
