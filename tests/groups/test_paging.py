"""Keyset paging of the group list: complete walks, forward then back, stability, bad cursors."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.conftest import Api, assert_problem
from tests.groups.conftest import InvoiceFactory

Page = dict[str, Any]


def groups_url(invoice_id: int) -> str:
    return f"/invoices/{invoice_id}/line-item-groups"


def create_groups(api: Api, invoice_id: int, count: int) -> list[str]:
    """`count` groups created one by one through the API; their ids, oldest first."""
    ids = []
    for number in range(count):
        response = api.post(groups_url(invoice_id), json={"title": f"Group {number}"})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def get_page(api: Api, invoice_id: int, **params: Any) -> Page:
    response = api.get(groups_url(invoice_id), params=params)
    assert response.status_code == 200, response.text
    page: Page = response.json()
    return page


def ids_of(page: Page) -> list[str]:
    return [group["id"] for group in page["items"]]


def walk_forward(api: Api, invoice_id: int, order: str, limit: int) -> list[Page]:
    pages = [get_page(api, invoice_id, sortOrder=order, limit=limit)]
    while pages[-1]["pagination"]["after"] is not None:
        assert len(pages) < 1000, "the walk does not end"
        cursor = pages[-1]["pagination"]["after"]
        pages.append(get_page(api, invoice_id, sortOrder=order, limit=limit, after=cursor))
    return pages


@pytest.fixture
def walked_invoice(api: Api, new_invoice: InvoiceFactory) -> tuple[int, list[str]]:
    invoice_id = new_invoice(api)
    return invoice_id, create_groups(api, invoice_id, 250)


def test_walk_of_250_returns_each_once_in_order_and_back_again(
    api: Api, walked_invoice: tuple[int, list[str]]
) -> None:
    invoice_id, created = walked_invoice
    for order in ("DESC", "ASC"):
        check_walk(api, invoice_id, created, order)


def check_walk(api: Api, invoice_id: int, created: list[str], order: str) -> None:
    expected = created if order == "ASC" else created[::-1]

    forward = walk_forward(api, invoice_id, order, 100)
    assert [len(page["items"]) for page in forward] == [100, 100, 50]
    walked = [group_id for page in forward for group_id in ids_of(page)]
    assert walked == expected
    assert all(page["pagination"]["totalResultSize"] == 250 for page in forward)
    assert forward[0]["pagination"]["before"] is None
    assert all(page["pagination"]["before"] is not None for page in forward[1:])
    assert forward[-1]["pagination"]["after"] is None

    # Back from the last page: each `before` returns exactly the page walked before it,
    # with the same cursors.
    backward = [forward[-1]]
    while backward[-1]["pagination"]["before"] is not None:
        assert len(backward) <= len(forward)
        cursor = backward[-1]["pagination"]["before"]
        backward.append(get_page(api, invoice_id, sortOrder=order, limit=100, before=cursor))
    assert backward[::-1] == forward


def test_pages_of_odd_size_and_limit_one(api: Api, new_invoice: InvoiceFactory) -> None:
    invoice_id = new_invoice(api)
    created = create_groups(api, invoice_id, 7)
    for order, expected in (("ASC", created), ("DESC", created[::-1])):
        for limit in (1, 3, 7, 8):
            pages = walk_forward(api, invoice_id, order, limit)
            assert [g for page in pages for g in ids_of(page)] == expected
            assert all(len(page["items"]) <= limit for page in pages)
            assert len(pages) == -(-7 // limit)


def test_empty_invoice_has_no_cursors(api: Api, new_invoice: InvoiceFactory) -> None:
    page = get_page(api, new_invoice(api))
    assert page == {
        "items": [],
        "pagination": {"after": None, "before": None, "totalResultSize": 0},
    }


@pytest.mark.parametrize("order", ["DESC", "ASC"])
def test_insert_and_delete_mid_walk_neither_repeat_nor_skip(
    api: Api, walked_invoice: tuple[int, list[str]], order: str
) -> None:
    invoice_id, created = walked_invoice
    url = groups_url(invoice_id)
    in_order = created if order == "ASC" else created[::-1]
    first = get_page(api, invoice_id, sortOrder=order, limit=100)
    assert ids_of(first) == in_order[:100]

    # Between requests: a new group arrives; the first page's last group (the cursor's own
    # row), the next page's first group and one far ahead are deleted.
    inserted = api.post(url, json={"title": "Late"}).json()["id"]
    deleted_unseen = {in_order[100], in_order[220]}
    for group_id in (in_order[99], *deleted_unseen):
        assert api.delete(f"{url}/{group_id}").status_code == 204

    seen = ids_of(first)
    page = first
    while page["pagination"]["after"] is not None:
        cursor = page["pagination"]["after"]
        page = get_page(api, invoice_id, sortOrder=order, limit=100, after=cursor)
        seen.extend(ids_of(page))

    assert len(seen) == len(set(seen)), "a group was returned twice"
    expected = in_order[:100] + [g for g in in_order[100:] if g not in deleted_unseen]
    if order == "ASC":
        # Creation order: the late group sorts after everything, so the walk reaches it.
        expected.append(inserted)
    # Newest first, the late group sorts before the first page, which the walk has left.
    assert seen == expected
    assert page["pagination"]["totalResultSize"] == 250 + 1 - 3


@pytest.mark.parametrize("order", ["ASC", "DESC"])
def test_pages_emptied_by_deletes_still_lead_back(
    api: Api, new_invoice: InvoiceFactory, order: str
) -> None:
    invoice_id = new_invoice(api)
    created = create_groups(api, invoice_id, 9)
    in_order = created if order == "ASC" else created[::-1]
    url = groups_url(invoice_id)

    def page(**params: Any) -> Page:
        return get_page(api, invoice_id, sortOrder=order, limit=3, **params)

    first = page()
    middle = page(after=first["pagination"]["after"])
    last = page(after=middle["pagination"]["after"])
    assert [ids_of(p) for p in (first, middle, last)] == [
        in_order[:3],
        in_order[3:6],
        in_order[6:],
    ]
    for group_id in in_order[:3] + in_order[6:]:
        assert api.delete(f"{url}/{group_id}").status_code == 204

    # Both neighbours of the middle page are gone: each is an empty page with no cursor
    # onward, and a cursor back that returns the middle page whole.
    before = page(before=middle["pagination"]["before"])
    assert before["items"] == []
    assert before["pagination"]["before"] is None
    assert ids_of(page(after=before["pagination"]["after"])) == in_order[3:6]
    after = page(after=middle["pagination"]["after"])
    assert after["items"] == []
    assert after["pagination"]["after"] is None
    assert ids_of(page(before=after["pagination"]["before"])) == in_order[3:6]


def tamper(cursor: str) -> list[str]:
    """Cursors that are not ours: edited bytes, edited position, truncated, extended."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    payload, _, tag = raw.rpartition(".")
    scope, _, position = payload.rpartition(":")

    def encode(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    return [
        flipped,
        cursor[:-3],
        cursor + "AAAA",
        encode(f"{scope}:{int(position) + 1}.{tag}"),
        encode(f"{scope}:{position}"),
        encode(f"{scope}:{position}.{tag}x"),
        encode(f"{scope}:-1.{tag}"),
    ]


@pytest.mark.parametrize("param", ["after", "before"])
def test_malformed_and_tampered_cursors_are_400(
    api: Api, new_invoice: InvoiceFactory, param: str
) -> None:
    invoice_id = new_invoice(api)
    create_groups(api, invoice_id, 3)
    good = get_page(api, invoice_id, limit=1)["pagination"]["after"]
    assert get_page(api, invoice_id, limit=1, after=good)["items"]
    bad = [
        "!!!",
        "not-a-cursor",
        "a",
        "é",
        "%00",
        "MDE4NDUyNjYtNmQ2NC03N2M4LTlhZGYtNDQ4N2Q5NGQxNDU3",  # Sequence's own example
        base64.b64encode(b"\xff\xfe").decode(),
        "x" * 5000,
        *tamper(good),
    ]
    for cursor in bad:
        response = api.get(groups_url(invoice_id), params={param: cursor, "limit": 1})
        assert_problem(response, 400, param)


def test_cursor_of_another_invoice_or_account_is_400(
    api: Api, other_api: Api, new_invoice: InvoiceFactory
) -> None:
    mine, also_mine = new_invoice(api), new_invoice(api)
    theirs = new_invoice(other_api)
    for invoice_id, owner in ((mine, api), (also_mine, api), (theirs, other_api)):
        create_groups(owner, invoice_id, 3)
    from_also_mine = get_page(api, also_mine, limit=1)["pagination"]["after"]
    from_theirs = get_page(other_api, theirs, limit=1)["pagination"]["after"]
    for cursor in (from_also_mine, from_theirs):
        for param in ("after", "before"):
            response = api.get(groups_url(mine), params={param: cursor})
            assert_problem(response, 400, param)
    # And theirs stays unreadable whatever cursor is offered.
    assert_problem(api.get(groups_url(theirs), params={"after": from_theirs}), 404)
