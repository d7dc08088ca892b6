"""Tenancy cannot be forgotten: the account filter is written in one place.

`auth.scoped` (ORM) and `auth.owned` (Core) build every `account_id = …` condition, and they
take only models the type checker knows to be account-owned (`auth.AccountOwned`). This test
reads the source: an `account_id ==` comparison anywhere else is a query that wrote the
filter by hand, which is how a query ends up without one.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ledgerline"
THE_HELPERS = SRC / "auth.py"


def _is_account_column(node: ast.expr) -> bool:
    """`Model.account_id` or `table.c.account_id`: the column, not a principal's value."""
    if not isinstance(node, ast.Attribute) or node.attr != "account_id":
        return False
    owner = node.value
    return (isinstance(owner, ast.Name) and owner.id[:1].isupper()) or (
        isinstance(owner, ast.Attribute) and owner.attr == "c"
    )


def account_comparisons(path: Path) -> list[int]:
    """Lines of `path` that compare an `account_id` column with `==`."""
    found: list[int] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Compare) or not any(isinstance(op, ast.Eq) for op in node.ops):
            continue
        operands = [node.left, *node.comparators]
        if any(_is_account_column(side) for side in operands):
            found.append(node.lineno)
    return sorted(found)


def test_only_the_helpers_write_the_account_filter() -> None:
    written = {
        str(path.relative_to(SRC)): lines
        for path in sorted(SRC.rglob("*.py"))
        if path != THE_HELPERS and (lines := account_comparisons(path))
    }
    assert written == {}, "use auth.scoped or auth.owned instead"


def test_the_check_sees_a_hand_written_filter(tmp_path: Path) -> None:
    module = tmp_path / "query.py"
    module.write_text(
        "a = select(Job).where(Job.account_id == principal.account_id)\n"
        "b = select(Account.id).where(Account.id == principal.account_id)\n"
        "c = line_items.c.account_id == 5\n"
    )
    assert account_comparisons(module) == [1, 3]
