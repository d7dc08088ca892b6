"""Sealed download links: valid, unreadable, tampered, moved to another job, expired."""

from __future__ import annotations

import base64
import datetime as dt
import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgerline.errors import Forbidden, Gone
from ledgerline.exports.links import (
    TOKEN_PARAM,
    DownloadLinkExpired,
    DownloadLinkInvalid,
    download_url,
    sign_download,
    verify_download,
)

SECRET = "a-test-secret-key"
NOW = dt.datetime(2026, 11, 21, 12, 0, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(seconds=900)


def test_a_valid_token_names_its_account() -> None:
    token = sign_download(SECRET, 17, 4242, LATER)
    assert verify_download(SECRET, token, 4242, NOW) == 17
    assert verify_download(SECRET, token, 4242, LATER - dt.timedelta(seconds=1)) == 17
    # URL-safe: nothing to escape in a query string.
    assert quote(token, safe="") == token
    assert re.fullmatch(r"[A-Za-z0-9._-]+", token)


def test_a_token_for_another_job_is_forbidden() -> None:
    token = sign_download(SECRET, 17, 4242, LATER)
    with pytest.raises(DownloadLinkInvalid) as caught:
        verify_download(SECRET, token, 4243, NOW)
    assert isinstance(caught.value, Forbidden)
    assert caught.value.status == 403


def test_another_secret_is_forbidden() -> None:
    token = sign_download(SECRET, 17, 4242, LATER)
    with pytest.raises(DownloadLinkInvalid):
        verify_download(SECRET + "x", token, 4242, NOW)


def test_a_token_shows_neither_its_account_nor_its_expiry() -> None:
    """The account's internal id would hint at how many accounts exist (issue 10)."""
    account_id, expires = 987654321, int(LATER.timestamp())
    token = sign_download(SECRET, account_id, 4242, LATER)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for secret_part in (str(account_id), str(expires)):
        assert secret_part not in token
        assert secret_part.encode() not in raw
    # Minted twice, two different tokens: nothing repeats that could be compared.
    assert sign_download(SECRET, account_id, 4242, LATER) != token


def test_a_token_of_another_account_or_expiry_cannot_be_made_from_one() -> None:
    token = sign_download(SECRET, 17, 4242, LATER)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for forged in (
        token[:-1],
        token + "A",
        f"{token}\n",
        f" {token}",
        f"{token}=",
        token.replace("-", "+").replace("_", "/"),
        "17." + token,
    ):
        if forged == token:
            continue
        with pytest.raises(DownloadLinkInvalid):
            verify_download(SECRET, forged, 4242, NOW)
    for position in range(len(raw)):
        flipped = raw.copy()
        flipped[position] ^= 0x01
        forged = base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode("ascii")
        with pytest.raises(DownloadLinkInvalid):
            verify_download(SECRET, forged, 4242, NOW)


@given(position=st.integers(min_value=0), replacement=st.sampled_from("019aAzZ-_."))
def test_any_one_character_change_is_forbidden(position: int, replacement: str) -> None:
    token = sign_download(SECRET, 17, 4242, LATER)
    position %= len(token)
    if token[position] == replacement:
        return
    forged = token[:position] + replacement + token[position + 1 :]
    with pytest.raises(DownloadLinkInvalid):
        verify_download(SECRET, forged, 4242, NOW)


@given(garbage=st.text(max_size=200))
def test_garbage_is_forbidden_never_an_other_error(garbage: str) -> None:
    with pytest.raises(DownloadLinkInvalid):
        verify_download(SECRET, garbage, 4242, NOW)


def test_an_expired_token_is_gone() -> None:
    token = sign_download(SECRET, 17, 4242, LATER)
    for moment in (LATER, LATER + dt.timedelta(days=30)):
        with pytest.raises(DownloadLinkExpired) as caught:
            verify_download(SECRET, token, 4242, moment)
        assert isinstance(caught.value, Gone)
        assert caught.value.status == 410


def test_an_expired_token_for_another_job_is_still_forbidden() -> None:
    token = sign_download(SECRET, 17, 4242, LATER)
    with pytest.raises(DownloadLinkInvalid):
        verify_download(SECRET, token, 1, LATER + dt.timedelta(days=1))


def test_download_url_carries_a_token_valid_until_its_expiry() -> None:
    now = NOW + dt.timedelta(microseconds=654321)
    url, expires_at = download_url(SECRET, 17, 4242, now, 900)
    assert expires_at == LATER  # whole seconds, as the token carries them
    parts = urlsplit(url)
    assert parts.path == "/api/v2/jobs/4242/download"
    (token,) = parse_qs(parts.query)[TOKEN_PARAM]
    assert verify_download(SECRET, token, 4242, expires_at - dt.timedelta(seconds=1)) == 17
    with pytest.raises(DownloadLinkExpired):
        verify_download(SECRET, token, 4242, expires_at)
