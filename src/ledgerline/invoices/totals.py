"""Totals of line items: exact sums of their rounded values, per invoice or per group.

A module of its own beside the invoices domain, so the invoice and group schemas, and both
services, share these without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import QueryableAttribute, Session

from ledgerline.auth import Principal, owned
from ledgerline.models import LineItem


@dataclass(frozen=True)
class Totals:
    """Exact sums of rounded line values, in minor units (SPEC §4)."""

    net: int = 0
    tax: int = 0
    credit: int = 0
    refund: int = 0

    @property
    def gross(self) -> int:
        return self.net + self.tax

    @property
    def amount_due(self) -> int:
        """TeamUp's `total_amount_due`: gross less the credits and refunds applied (the sum
        of the lines' own `total_amount_due`)."""
        return self.gross - self.credit - self.refund


def line_totals(
    session: Session,
    principal: Principal,
    key: ColumnElement[Any] | QueryableAttribute[Any],
    *conditions: ColumnElement[bool],
) -> dict[Any, Totals]:
    """SUM(amount), SUM(tax_amount) of the principal's line items matching `conditions`, per
    `key` (the account filter is part of the statement, not left to the callers)."""
    rows = session.execute(
        select(
            key,
            func.sum(LineItem.amount),
            func.sum(LineItem.tax_amount),
            func.sum(LineItem.credit_amount),
            func.sum(LineItem.refund_amount),
        )
        .where(owned(LineItem, principal.account_id), *conditions)
        .group_by(key)
    ).all()
    return {
        row[0]: Totals(
            net=int(row[1] or 0),
            tax=int(row[2] or 0),
            credit=int(row[3] or 0),
            refund=int(row[4] or 0),
        )
        for row in rows
    }
