"""Finding a line-item group by the public UUID a client names.

Its own module because two services need it: the group use cases, and the invoice service's
line-item writes (a body's `group_id`). The group service imports the invoice service (a
group change touches its invoice), so the invoice service cannot import the group service
back; both import this instead.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from ledgerline.auth import Principal, scoped
from ledgerline.models import LineItemGroup


def find_group(
    session: Session, principal: Principal, invoice_id: int, public_id: str
) -> LineItemGroup | None:
    """The group with this public UUID on this invoice of the principal's account, or None
    (a malformed UUID names no group either)."""
    try:
        parsed = uuid.UUID(public_id)
    except ValueError:
        return None
    return session.execute(
        scoped(LineItemGroup, principal).where(
            LineItemGroup.invoice_id == invoice_id, LineItemGroup.public_id == parsed
        )
    ).scalar_one_or_none()
