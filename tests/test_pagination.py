"""Offset paging shared by every TeamUp-shaped list."""

from __future__ import annotations

import pytest

from tests.conftest import Api, assert_problem

LISTS = ("/customers", "/invoices", "/jobs", "/reports/invoice_line_items/data")


@pytest.mark.parametrize("path", LISTS)
def test_an_offset_past_any_list_is_422_not_a_database_error(api: Api, path: str) -> None:
    assert_problem(api.get(path, params={"offset": 10**19}), 422, "offset")
    assert_problem(api.get(path, params={"page": 10**18, "page_size": 100}), 422, "page")


@pytest.mark.parametrize("path", LISTS)
def test_the_largest_allowed_offset_is_an_empty_page(api: Api, path: str) -> None:
    response = api.get(path, params={"offset": 2**53})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("results", body.get("rows")) == []
