"""Use cases for line-item groups: create, read, replace, delete, and the keyset-paged list.

Groups are ordered by creation, i.e. by their internal sequence `LineItemGroup.id`, which is
also the keyset: a cursor carries the `id` of a page's first or last row and the sort order,
encrypted and bound to one invoice of one account (see `ledgerline.pagination`). Paging by
position rather than by offset is what keeps a walk stable while groups are inserted or
deleted between requests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

from sqlalchemy import ColumnElement, exists, func, select, update
from sqlalchemy.orm import Session

from ledgerline.auth import Principal, get_owned_by_public_id, owned, scoped
from ledgerline.db import utcnow
from ledgerline.errors import BadRequest, NotFound, UnknownReference
from ledgerline.groups.lookup import find_group
from ledgerline.groups.schemas import (
    GROUP_FIELDS,
    GroupBody,
    GroupFields,
    GroupPage,
    service_period_dates,
)
from ledgerline.invoices.service import touch_invoice
from ledgerline.invoices.totals import Totals, line_totals
from ledgerline.models import Invoice, LineItem, LineItemGroup, TaxCategory
from ledgerline.pagination import MAX_PAGE_SIZE, decode_cursor, encode_cursor
from ledgerline.request_types import MAX_ID
from ledgerline.tax_categories.service import find_tax_category, tax_categories_by_id

DEFAULT_PAGE_SIZE = 20
SORT_ORDERS = ("DESC", "ASC")


class InvoiceNotFound(NotFound):
    code = "invoice-not-found"


class GroupNotFound(NotFound):
    code = "line-item-group-not-found"


class ListParameterInvalid(BadRequest):
    """A bad list query parameter: Sequence documents 400 for these, not 422."""

    code = "invalid-parameter"

    @classmethod
    def named(cls, name: str, msg: str) -> ListParameterInvalid:
        return cls(f"{name}: {msg}", errors=[{"loc": ["query", name], "msg": msg}])


class CursorsConflict(ListParameterInvalid):
    """Both cursors at once: each may be valid, together they name no page."""

    code = "conflicting-parameters"


@dataclass(frozen=True)
class PageRequest:
    """A validated list request: at most one of `before`/`after`, `limit` 1..100."""

    limit: int
    sort_order: str
    before: str | None
    after: str | None

    @property
    def descending(self) -> bool:
        return self.sort_order == "DESC"


@dataclass(frozen=True)
class GroupView:
    """A group with what its answer shows besides its own columns."""

    group: LineItemGroup
    invoice: Invoice
    totals: Totals
    tax_category: TaxCategory | None


def _page_size(limit: str | None) -> int:
    """`limit` as ASCII digits only: `int()` would also take "１２" or " 12" or "1_2".

    Long digit strings are refused before `int()`, which raises on over 4,300 digits.
    """
    if limit is None:
        return DEFAULT_PAGE_SIZE
    digits = limit.isascii() and limit.isdigit() and len(limit) <= 10
    if not digits or not 1 <= int(limit) <= MAX_PAGE_SIZE:
        raise ListParameterInvalid.named(
            "limit", f"must be a whole number between 1 and {MAX_PAGE_SIZE}"
        )
    return int(limit)


def page_request(
    limit: str | None, sort_order: str | None, before: str | None, after: str | None
) -> PageRequest:
    """Validate the list's query parameters; each mistake is a 400 naming the parameter.

    An empty cursor (`?before=&after=`, the URL template's own form) means no cursor.
    """
    before, after = before or None, after or None
    size = _page_size(limit)
    order = "DESC" if sort_order is None else sort_order.upper()
    if order not in SORT_ORDERS:
        raise ListParameterInvalid.named("sortOrder", "must be DESC or ASC")
    if before is not None and after is not None:
        raise CursorsConflict.named("before", "give either before or after, not both")
    return PageRequest(limit=size, sort_order=order, before=before, after=after)


def get_invoice(session: Session, principal: Principal, invoice_ref: str) -> Invoice:
    """The principal's invoice named by the path, or 404.

    Invoice ids are positive integers; anything else (text, or a number no database could
    hold) names no invoice, so it is a 404 like any other missing id.
    """
    invoice_id = int(invoice_ref) if invoice_ref.isascii() and invoice_ref.isdigit() else 0
    if not 1 <= invoice_id <= MAX_ID:
        raise InvoiceNotFound(f"No invoice with id {invoice_ref[:40]!r}.")
    try:
        return get_owned_by_public_id(session, Invoice, invoice_id, principal)
    except NotFound as exc:
        raise InvoiceNotFound(f"No invoice with id {invoice_id}.") from exc


def _get_group(
    session: Session, principal: Principal, invoice: Invoice, public_id: str
) -> LineItemGroup:
    group = find_group(session, principal, invoice.id, public_id)
    if group is None:
        raise GroupNotFound(
            f"No line-item group with id {public_id} on invoice {invoice.public_id}."
        )
    return group


def group_totals(session: Session, principal: Principal, group_ids: list[int]) -> dict[int, Totals]:
    """Net and tax totals of each group's line items, in one query for all of `group_ids`."""
    if not group_ids:
        return {}
    return line_totals(
        session, principal, LineItem.group_id.expression, LineItem.group_id.in_(group_ids)
    )


def _next_index(session: Session, principal: Principal, invoice: Invoice) -> int:
    highest = session.execute(
        select(func.max(LineItemGroup.index)).where(
            owned(LineItemGroup, principal.account_id), LineItemGroup.invoice_id == invoice.id
        )
    ).scalar_one()
    return 0 if highest is None else int(highest) + 1


def _tax_category(
    session: Session, principal: Principal, public_id: str | None
) -> TaxCategory | None:
    """The account's tax category named by a body, or 422: another account's is unknown too."""
    if public_id is None:
        return None
    category = find_tax_category(session, principal, public_id)
    if category is None:
        raise UnknownReference.field(
            ["body", "taxCategoryId"], f"no tax category with id {public_id[:40]!r}"
        )
    return category


def _apply_body(group: LineItemGroup, body: GroupBody, category: TaxCategory | None) -> None:
    """Every field of the body onto the group; an omitted optional field becomes NULL."""
    group.title = body.title
    group.description = body.description
    group.tax_category_id = None if category is None else category.id
    group.revenue_recognition_method = body.revenue_recognition_method
    group.revenue_classification = body.revenue_classification
    group.service_period_start, group.service_period_end = service_period_dates(body)


def _view(
    session: Session, principal: Principal, group: LineItemGroup, invoice: Invoice
) -> GroupView:
    totals = group_totals(session, principal, [group.id]).get(group.id, Totals())
    category = tax_categories_by_id(session, principal, [group.tax_category_id]).get(
        group.tax_category_id or 0
    )
    return GroupView(group, invoice, totals, category)


def create_group(
    session: Session, principal: Principal, invoice_ref: str, body: GroupBody
) -> GroupView:
    """A new group on the invoice; `index` defaults to one past the invoice's highest."""
    invoice = get_invoice(session, principal, invoice_ref)
    category = _tax_category(session, principal, body.tax_category_id)
    group = LineItemGroup(
        account_id=principal.account_id,
        invoice_id=invoice.id,
        public_id=uuid.uuid4(),
        index=_next_index(session, principal, invoice) if body.index is None else body.index,
        created_at=utcnow(),
    )
    _apply_body(group, body, category)
    session.add(group)
    touch_invoice(invoice)
    session.flush()
    return GroupView(group, invoice, Totals(), category)


def get_group(
    session: Session, principal: Principal, invoice_ref: str, public_id: str
) -> GroupView:
    invoice = get_invoice(session, principal, invoice_ref)
    return _view(session, principal, _get_group(session, principal, invoice, public_id), invoice)


def replace_group(
    session: Session, principal: Principal, invoice_ref: str, public_id: str, body: GroupBody
) -> GroupView:
    """PUT: every field is replaced (an omitted optional field becomes absent); an omitted
    index keeps the group's place, since a group always has one."""
    invoice = get_invoice(session, principal, invoice_ref)
    group = _get_group(session, principal, invoice, public_id)
    _apply_body(group, body, _tax_category(session, principal, body.tax_category_id))
    if body.index is not None:
        group.index = body.index
    touch_invoice(invoice)
    session.flush()
    return _view(session, principal, group, invoice)


def delete_group(
    session: Session, principal: Principal, invoice_ref: str, public_id: str
) -> GroupView:
    """Delete the group and answer it as it was, totals included; its line items stay on the
    invoice, ungrouped.

    The foreign key says ON DELETE SET NULL too, but the lines are ungrouped explicitly so the
    rule does not depend on a database's foreign-key enforcement being switched on.
    """
    invoice = get_invoice(session, principal, invoice_ref)
    group = _get_group(session, principal, invoice, public_id)
    view = _view(session, principal, group, invoice)
    session.execute(
        update(LineItem)
        .where(owned(LineItem, principal.account_id), LineItem.group_id == group.id)
        .values(group_id=None)
        .execution_options(synchronize_session=False)
    )
    session.delete(group)
    touch_invoice(invoice)
    session.flush()
    return view


def _cursor_scope(invoice: Invoice) -> str:
    """What a cursor is bound to: this invoice (its public id, unique with the account)."""
    return f"line-item-groups:{invoice.account_id}:{invoice.public_id}"


def list_groups(
    session: Session, principal: Principal, invoice_ref: str, page: PageRequest, secret_key: str
) -> GroupPage:
    """One page of the invoice's groups in creation order (`DESC` newest first).

    `after` holds the position of the page's last row and `before` of its first; each is
    None (absent on the wire) when no row lies beyond it. A `before` page is read in reverse
    order and flipped, so paging forward then back yields the same pages.
    """
    invoice = get_invoice(session, principal, invoice_ref)
    scope = _cursor_scope(invoice)
    position: int | None = None
    order = page.sort_order
    if page.after is not None:
        position = decode_cursor(secret_key, scope, page.after, param="after", sort_order=order)
    elif page.before is not None:
        position = decode_cursor(secret_key, scope, page.before, param="before", sort_order=order)
    backwards = page.before is not None

    key = LineItemGroup.id

    def follows(boundary: int) -> ColumnElement[bool]:
        """Rows that come after `boundary` in the requested order."""
        return key < boundary if page.descending else key > boundary

    def precedes(boundary: int) -> ColumnElement[bool]:
        return key > boundary if page.descending else key < boundary

    base = scoped(LineItemGroup, principal).where(LineItemGroup.invoice_id == invoice.id)
    # Reading backwards walks the reverse order from the cursor and flips the result.
    read_descending = page.descending != backwards
    statement = base.order_by(key.desc() if read_descending else key.asc()).limit(page.limit + 1)
    if position is not None:
        statement = statement.where(precedes(position) if backwards else follows(position))
    # Rows of the shown columns, not ORM objects; a Row names its columns as attributes.
    rows = cast(
        "list[GroupFields]", session.execute(statement.with_only_columns(*GROUP_FIELDS)).all()
    )
    more_in_read_direction = len(rows) > page.limit
    rows = rows[: page.limit]
    if backwards:
        rows.reverse()

    def any_row(condition: ColumnElement[bool]) -> bool:
        return bool(session.execute(select(exists(base.where(condition)))).scalar_one())

    # A page's bounds are its first and last rows. An empty page (its rows were deleted) is
    # the gap beside the cursor's position, which itself belongs to the neighbouring page,
    # so its bounds sit one step past it: ids are integers, so `id > p - 1` is `id >= p`.
    step = -1 if page.descending else 1
    first: int | None
    last: int | None
    if rows:
        first, last = rows[0].id, rows[-1].id
    elif position is None:
        first = last = None
    elif backwards:
        first, last = position, position - step
    else:
        first, last = position + step, position
    if backwards:
        has_before = more_in_read_direction
        has_after = last is not None and any_row(follows(last))
    else:
        has_after = more_in_read_direction
        # The first page (no cursor) starts at the very first row: nothing precedes it.
        has_before = position is not None and first is not None and any_row(precedes(first))

    total = session.execute(
        select(func.count()).select_from(base.with_only_columns(key).subquery())
    ).scalar_one()
    return GroupPage(
        groups=rows,
        totals=group_totals(session, principal, [row.id for row in rows]),
        tax_categories=tax_categories_by_id(session, principal, [r.tax_category_id for r in rows]),
        invoice=invoice,
        after=(
            encode_cursor(secret_key, scope, last, order)
            if has_after and last is not None
            else None
        ),
        before=(
            encode_cursor(secret_key, scope, first, order)
            if has_before and first is not None
            else None
        ),
        total=int(total),
    )
