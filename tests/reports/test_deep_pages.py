"""Pages past the first (a deferred join: ids first, then the joins) give the same rows, in
the same order, as Python computes from the created lines, under every sort and filters."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.reports.conftest import Data, Line
from tests.reports.test_data import FILTER_CASES, SORT_CASES, _expected_order, fetch, ids


def _walk(data: Data, limit: int, **params: str) -> tuple[list[int], set[int]]:
    """Every page from offset 0 in steps of `limit`: the ids in order, and the totals seen."""
    walked: list[int] = []
    totals: set[int] = set()
    offset = 0
    while True:
        body = fetch(data.api, limit=limit, offset=offset, **params)
        totals.add(body["total"])
        walked += ids(body)
        if len(body["rows"]) < limit:
            return walked, totals
        offset += limit


@pytest.mark.parametrize("sort", SORT_CASES)
def test_pages_walked_in_steps_of_three_give_every_row_once_in_order(
    sample: Data, sort: list[tuple[str, bool]]
) -> None:
    text = ",".join(("-" if descending else "") + key for key, descending in sort)
    walked, totals = _walk(sample, 3, sort=text)
    assert walked == _expected_order(sample.lines, sort)
    assert totals == {len(sample.lines)}


@pytest.mark.parametrize(("params", "keep"), FILTER_CASES)
def test_filtered_pages_past_the_first(
    sample: Data, params: dict[str, str], keep: Callable[[Line], bool]
) -> None:
    sort = [("customer.name", True), ("amount", False)]
    walked, totals = _walk(sample, 2, sort="-customer.name,amount", **params)
    expected = _expected_order([line for line in sample.lines if keep(line)], sort)
    assert walked == expected
    assert totals == {len(expected)}


def test_a_deep_page_has_the_same_full_rows_as_the_first_page_at_that_position(
    sample: Data,
) -> None:
    everything = fetch(sample.api, limit=100, sort="-invoice.due_date")["rows"]
    assert len(everything) == len(sample.lines) > 6
    for offset in (1, 4, len(everything) - 2):
        page = fetch(sample.api, limit=2, offset=offset, sort="-invoice.due_date")["rows"]
        assert page == everything[offset : offset + 2]
    assert fetch(sample.api, limit=5, offset=len(everything))["rows"] == []
