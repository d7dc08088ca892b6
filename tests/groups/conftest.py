"""Fixtures of the line-item group tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from ledgerline.db import session_scope, utcnow
from ledgerline.models import Invoice
from tests.conftest import Api, Backend

InvoiceFactory = Callable[..., int]


@pytest.fixture
def new_invoice(backend: Backend) -> InvoiceFactory:
    """An invoice of `api`'s account in `currency`; its id."""

    def make(api: Api, currency: str = "GBP") -> int:
        with session_scope(backend.database_url) as session:
            now = utcnow()
            invoice = Invoice(
                account_id=api.account_id,
                number=uuid.uuid4().hex[:12],
                currency=currency,
                created_at=now,
                updated_at=now,
            )
            session.add(invoice)
            session.flush()
            return invoice.id

    return make
