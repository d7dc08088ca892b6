"""Use cases for tax categories: create, list, read, and resolving the id a group names."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy.orm import Session

from ledgerline.auth import Principal, scoped
from ledgerline.db import utcnow
from ledgerline.errors import NotFound
from ledgerline.models import TaxCategory
from ledgerline.tax_categories.schemas import TaxCategoryBody


class TaxCategoryNotFound(NotFound):
    code = "tax-category-not-found"


def create_tax_category(
    session: Session, principal: Principal, body: TaxCategoryBody
) -> TaxCategory:
    category = TaxCategory(
        account_id=principal.account_id,
        public_id=uuid.uuid4(),
        name=body.name,
        created_at=utcnow(),
    )
    session.add(category)
    session.flush()
    return category


def list_tax_categories(session: Session, principal: Principal) -> list[TaxCategory]:
    """All of the account's tax categories, oldest first."""
    statement = scoped(TaxCategory, principal).order_by(TaxCategory.id)
    return list(session.execute(statement).scalars())


def find_tax_category(session: Session, principal: Principal, public_id: str) -> TaxCategory | None:
    """The account's tax category with this UUID, or None (malformed, missing or foreign)."""
    try:
        parsed = uuid.UUID(public_id)
    except ValueError:
        return None
    return session.execute(
        scoped(TaxCategory, principal).where(TaxCategory.public_id == parsed)
    ).scalar_one_or_none()


def get_tax_category(session: Session, principal: Principal, public_id: str) -> TaxCategory:
    category = find_tax_category(session, principal, public_id)
    if category is None:
        raise TaxCategoryNotFound(f"No tax category with id {public_id[:40]!r}.")
    return category


def tax_categories_by_id(
    session: Session, principal: Principal, ids: Collection[int | None]
) -> dict[int, TaxCategory]:
    """The account's tax categories with these internal ids, in one query (none if no ids)."""
    wanted = {ident for ident in ids if ident is not None}
    if not wanted:
        return {}
    statement = scoped(TaxCategory, principal).where(TaxCategory.id.in_(wanted))
    return {category.id: category for category in session.execute(statement).scalars()}
