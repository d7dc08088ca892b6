"""Endpoint secrets: made, sealed at rest, opened by the sender; messages signed with them.

A secret is Standard Webhooks' `whsec_` + base64 of 32 random bytes. The database holds it
sealed with AES-GCM under a key derived from the server secret (`crypto.derive_key`), with the
account as associated data, so a sealed secret copied to another account's row does not open.
Signing is the `standardwebhooks` package's own (`Webhook.sign`), the same code receivers use
to verify.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from standardwebhooks.webhooks import Webhook

from ledgerline.crypto import derive_key

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix Standard Webhooks gives every secret
SECRET_BYTES = 32
_PURPOSE = b"ledgerline-webhook-secret-v1"
_NONCE_BYTES = 12


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


@lru_cache(maxsize=8)
def _cipher(server_secret: str) -> AESGCM:
    return AESGCM(derive_key(server_secret, _PURPOSE, 32))


def _associated(account_id: int) -> bytes:
    return f"webhook-endpoint:{account_id}".encode()


def seal(server_secret: str, account_id: int, secret: str) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher(server_secret).encrypt(nonce, secret.encode(), _associated(account_id))
    return base64.b64encode(nonce + sealed).decode("ascii")


def unseal(server_secret: str, account_id: int, sealed: str) -> str:
    raw = base64.b64decode(sealed)
    opened = _cipher(server_secret).decrypt(
        raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _associated(account_id)
    )
    return opened.decode()


def signed_headers(secret: str, message_id: str, at: dt.datetime, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
    }
