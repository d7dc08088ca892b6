"""Keys derived from the server secret, one per purpose, so that no two uses (cursors,
download links) ever share a key."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret: str, purpose: bytes, length: int) -> bytes:
    """`length` bytes of key material for `purpose` from `secret` (HKDF-SHA256, no salt:
    the secret is already random; the purpose keeps the keys of different uses apart)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose).derive(
        secret.encode("utf-8")
    )
