"""Console fixtures: a browser-like client per test (its own cookie jar), signing in as a
real browser does (GET the form, POST it with its CSRF token), and data made through the API."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ledgerline.accounts import create_account
from ledgerline.auth import issue_token
from ledgerline.db import transaction
from tests.conftest import Backend

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, html[:2000]
    return found.group(1)


@dataclass
class Tenant:
    """An account with a token, and a client of the API at some base URL."""

    account_id: int
    token: str
    api: httpx.Client

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.api.post("/api/v2" + path, headers=self.auth, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.api.get("/api/v2" + path, headers=self.auth, **kwargs)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}


def new_account(
    backend: Backend, timezone: str = "Europe/London", scopes: tuple[str, ...] = ("read", "write")
) -> tuple[int, str]:
    with transaction(backend.database_url, writes=True) as session:
        account = create_account(session, f"Studio {uuid.uuid4().hex[:6]}", "GBP", timezone)
        return account.id, issue_token(session, account.id, list(scopes)).token


def sign_in(client: httpx.Client, token: str) -> httpx.Response:
    form = client.get("/sign-in")
    answer = client.post(
        "/sign-in", data={"token": token, "csrf_token": csrf_of(form.text), "next": "/report"}
    )
    return answer


def add_invoice(
    tenant: Tenant,
    currency: str,
    status: str,
    paid_at: dt.datetime,
    lines: list[tuple[str, str]],
    *,
    customer_name: str = "Ada Lovelace",
    unpaid: bool = False,
) -> dict[str, Any]:
    """An invoice with (type, unit price) lines of quantity 1 and 20% tax, for a new
    customer; `unpaid`: no paid_at (`paid_at` then only dates its due and confirmed dates)."""
    customer = tenant.post("/customers", json={"name": customer_name}).json()
    invoice = tenant.post(
        "/invoices",
        json={
            "currency": currency,
            "customer": customer["id"],
            "status": status,
            "due_date": paid_at.date().isoformat(),
            **({} if unpaid else {"paid_at": paid_at.isoformat()}),
            "confirmed_at": (paid_at - dt.timedelta(days=1)).isoformat(),
        },
    )
    assert invoice.status_code == 201, invoice.text
    items = [
        {
            "type": kind,
            "description": f"{kind} line",
            "quantity": "1",
            "unit_price": price,
            "tax_rate": "0.20",
        }
        for kind, price in lines
    ]
    added = tenant.post(f"/invoices/{invoice.json()['id']}/line_items", json={"items": items})
    assert added.status_code == 201, added.text
    body: dict[str, Any] = invoice.json()
    return body


@pytest.fixture
def browser_client(app: FastAPI) -> Iterator[TestClient]:
    """A client with a cookie jar of its own, not following redirects (tests look at them)."""
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client
