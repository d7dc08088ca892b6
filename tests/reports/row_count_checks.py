"""Independent checks of the kept row counts (`ledgerline.row_counts`): each is compared with
a COUNT(*) of the rows themselves, written here in plain SQL, never with the code under test."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text


def kept_and_counted(conn: Connection, account_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what the counters say, what COUNT(*) says) for one account, in `conn`'s snapshot:
    its invoices and line items, each invoice's lines, and the lines of each status."""
    a = {"a": account_id}
    kept_rows: dict[str, int] = dict(
        conn.execute(
            text("SELECT entity, row_count FROM account_row_counts WHERE account_id = :a"), a
        ).all()
    )
    kept = {
        "invoices": int(kept_rows.get("invoices", 0)),
        "line_items": int(kept_rows.get("line_items", 0)),
        "per_invoice": {
            int(key): int(n)
            for key, n in conn.execute(
                text("SELECT id, line_count FROM invoices WHERE account_id = :a"), a
            )
        },
        "per_status": {
            status: int(n)
            for status, n in conn.execute(
                text(
                    "SELECT status, SUM(line_count) FROM invoices WHERE account_id = :a "
                    "GROUP BY status"
                ),
                a,
            )
            if int(n)
        },
    }
    counted = {
        "invoices": int(
            conn.execute(
                text("SELECT COUNT(*) FROM invoices WHERE account_id = :a"), a
            ).scalar_one()
        ),
        "line_items": int(
            conn.execute(
                text("SELECT COUNT(*) FROM line_items WHERE account_id = :a"), a
            ).scalar_one()
        ),
        "per_invoice": {
            int(key): int(n)
            for key, n in conn.execute(
                text(
                    "SELECT i.id, COUNT(l.id) FROM invoices i LEFT JOIN line_items l "
                    "ON l.invoice_id = i.id WHERE i.account_id = :a GROUP BY i.id"
                ),
                a,
            )
        },
        "per_status": {
            status: int(n)
            for status, n in conn.execute(
                text(
                    "SELECT i.status, COUNT(*) FROM line_items l JOIN invoices i "
                    "ON i.id = l.invoice_id WHERE l.account_id = :a GROUP BY i.status"
                ),
                a,
            )
        },
    }
    return kept, counted
