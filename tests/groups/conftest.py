"""Fixtures of the line-item group tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import Api
from tests.factories import create_invoice

InvoiceFactory = Callable[..., int]


@pytest.fixture
def new_invoice() -> InvoiceFactory:
    """`new_invoice(api, currency="GBP")`: an invoice created through the API; its id."""

    def make(api: Api, currency: str = "GBP") -> int:
        invoice_id: int = create_invoice(api, currency=currency)["id"]
        return invoice_id

    return make
