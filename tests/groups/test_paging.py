"""Keyset paging of the group list: complete walks, forward then back, stability, bad cursors."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerline.pagination import CursorInvalid, decode_cursor, encode_cursor
from tests.conftest import Api, Backend, assert_problem
from tests.factories import beyond
from tests.groups.conftest import InvoiceFactory
from tests.groups.sequence_contract import PAGE, validate

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
    validate(PAGE, page)
    assert "totalResultSize" in page["pagination"]
    return page


def ids_of(page: Page) -> list[str]:
    return [group["id"] for group in page["items"]]


def walk_forward(api: Api, invoice_id: int, order: str, limit: int) -> list[Page]:
    pages = [get_page(api, invoice_id, sortOrder=order, limit=limit)]
    while "after" in pages[-1]["pagination"]:
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
    assert "before" not in forward[0]["pagination"]
    assert all("before" in page["pagination"] for page in forward[1:])
    assert "after" not in forward[-1]["pagination"]

    # Back from the last page: each `before` returns exactly the page walked before it,
    # with the same cursors.
    backward = [forward[-1]]
    while "before" in backward[-1]["pagination"]:
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
        "pagination": {"totalResultSize": 0},
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
        assert api.delete(f"{url}/{group_id}").status_code == 200

    seen = ids_of(first)
    page = first
    while "after" in page["pagination"]:
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
        assert api.delete(f"{url}/{group_id}").status_code == 200

    # Both neighbours of the middle page are gone: each is an empty page with no cursor
    # onward, and a cursor back that returns the middle page whole.
    before = page(before=middle["pagination"]["before"])
    assert before["items"] == []
    assert "before" not in before["pagination"]
    assert ids_of(page(after=before["pagination"]["after"])) == in_order[3:6]
    after = page(after=middle["pagination"]["after"])
    assert after["items"] == []
    assert "after" not in after["pagination"]
    assert ids_of(page(before=after["pagination"]["before"])) == in_order[3:6]


def unpadded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def tamper(cursor: str) -> list[str]:
    """Cursors that are not ours: a flipped bit anywhere, truncated, extended, re-padded."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    flipped = [
        unpadded(raw[:index] + bytes([raw[index] ^ 1]) + raw[index + 1 :])
        for index in (0, 11, 12, len(raw) // 2, len(raw) - 1)
    ]
    return [
        *flipped,
        unpadded(raw[:-1]),
        unpadded(raw[:12]),
        unpadded(raw + b"\x00"),
        unpadded(raw[12:]),
        cursor + "AAAA",
    ]


def old_signed_cursor(secret: str, scope: str, position: int) -> str:
    """A cursor of the previous format (readable scope and position, HMAC-signed)."""
    payload = f"{scope}:{position}"
    tag = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:12]
    raw = f"{payload}.{base64.urlsafe_b64encode(tag).decode().rstrip('=')}"
    return unpadded(raw.encode())


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
        "A" * 100,
        *tamper(good),
    ]
    for cursor in bad:
        response = api.get(groups_url(invoice_id), params={param: cursor, "limit": 1})
        assert_problem(response, 400, param)


def test_cursor_of_another_invoice_or_account_is_400(
    api: Api, other_api: Api, new_invoice: InvoiceFactory
) -> None:
    mine, also_mine = new_invoice(api), new_invoice(api)
    # Ids are numbered per account: theirs is one this account has no invoice under.
    theirs = beyond([mine, also_mine], lambda: {"id": new_invoice(other_api)})["id"]
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


def test_cursors_reveal_nothing_inside(
    api: Api, backend: Backend, new_invoice: InvoiceFactory
) -> None:
    invoice_id = new_invoice(api)
    create_groups(api, invoice_id, 3)
    for order in ("ASC", "DESC"):
        cursor = get_page(api, invoice_id, limit=1, sortOrder=order)["pagination"]["after"]
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        # Encrypted: neither the scope, the ids, the order nor the format shows in the bytes.
        # (Only strings of several bytes: one byte shows up in random bytes by chance.)
        scope = f"line-item-groups:{api.account_id}:{invoice_id}"
        for visible in (scope, "line-item", f"{order}|", f"|{order}", order):
            assert visible.encode() not in raw, (visible, raw)
        assert backend.settings.secret_key is not None
        assert backend.settings.secret_key.encode() not in raw


def test_old_signed_cursors_are_400(
    api: Api, backend: Backend, new_invoice: InvoiceFactory
) -> None:
    invoice_id = new_invoice(api)
    created = create_groups(api, invoice_id, 3)
    assert backend.settings.secret_key is not None
    # The previous release's cursor for this very list, properly signed, is no longer taken.
    with_position = api.get(groups_url(invoice_id), params={"limit": 1}).json()
    assert with_position["items"][0]["id"] == created[-1]
    scope = f"line-item-groups:{api.account_id}:{invoice_id}"
    for position in (1, 10**6):
        cursor = old_signed_cursor(backend.settings.secret_key, scope, position)
        for param in ("after", "before"):
            assert_problem(api.get(groups_url(invoice_id), params={param: cursor}), 400, param)


@pytest.mark.parametrize(
    ("made_with", "used_with"), [("ASC", None), ("ASC", "DESC"), (None, "ASC")]
)
@pytest.mark.parametrize("param", ["after", "before"])
def test_a_cursor_used_with_another_sort_order_is_400(
    api: Api,
    new_invoice: InvoiceFactory,
    made_with: str | None,
    used_with: str | None,
    param: str,
) -> None:
    invoice_id = new_invoice(api)
    create_groups(api, invoice_id, 5)
    made = {"sortOrder": made_with} if made_with else {}
    first = get_page(api, invoice_id, limit=2, **made)
    second = get_page(api, invoice_id, limit=2, after=first["pagination"]["after"], **made)
    cursor = second["pagination"][param]
    used = {"sortOrder": used_with} if used_with else {}
    response = api.get(groups_url(invoice_id), params={param: cursor, "limit": 2, **used})
    body = assert_problem(response, 400, param, "sortOrder", made_with or "DESC")
    assert "items" not in body
    # The same cursor with its own order still works (in lower case too).
    again = get_page(api, invoice_id, limit=2, **{param: cursor}, **made)
    assert again["items"]
    lower = {"sortOrder": made_with.lower()} if made_with else {}
    assert get_page(api, invoice_id, limit=2, **{param: cursor}, **lower) == again


@settings(max_examples=200, deadline=None)
@given(
    position=st.integers(min_value=0, max_value=2**63 - 1),
    account=st.integers(min_value=1, max_value=2**63 - 1),
    invoice=st.integers(min_value=1, max_value=2**63 - 1),
    order=st.sampled_from(["ASC", "DESC"]),
    flip=st.integers(min_value=0, max_value=10_000),
)
def test_any_cursor_round_trips_and_any_changed_bit_is_refused(
    position: int, account: int, invoice: int, order: str, flip: int
) -> None:
    secret = "a-test-secret"
    scope = f"line-item-groups:{account}:{invoice}"
    cursor = encode_cursor(secret, scope, position, order)
    assert len(cursor) < 200
    assert decode_cursor(secret, scope, cursor, param="after", sort_order=order) == position
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[flip % len(raw)] ^= 1 << (flip % 8)
    with pytest.raises(CursorInvalid):
        decode_cursor(secret, scope, unpadded(bytes(raw)), param="after", sort_order=order)
    other_order = "DESC" if order == "ASC" else "ASC"
    for other_secret, other_scope, used_order in (
        ("another-secret", scope, order),
        (secret, scope + "0", order),
        (secret, scope, other_order),
    ):
        with pytest.raises(CursorInvalid):
            decode_cursor(other_secret, other_scope, cursor, param="after", sort_order=used_order)
