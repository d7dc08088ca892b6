"""Tenancy cannot be forgotten: the account filter is written in one place, and every query
on an account-owned table goes through it.

`auth.scoped` (ORM), `auth.get_owned_by_public_id` (one row or 404) and `auth.owned` (Core)
build every `account_id = …` condition, and they take only models the type checker knows to
be account-owned (`auth.AccountOwned`). These tests read the source:

- an `account_id ==` comparison outside `auth.py` is a filter written by hand;
- a `select`, `update` or `delete` naming an account-owned model (or its table), or a
  `session.get` of one, whose statement contains no call of the helpers is a query that
  forgot the filter. A statement that acts for every account on purpose (the token lookup,
  the job consumers and sweeps) says so with `auth.across_accounts`.

"The statement" is the whole expression the query call sits in (`session.execute(select(…)
.where(owned(…)))`), so the helper must be written where the query is, not trusted to a
caller. It does not follow a statement built across several assignments; keep the filter in
the expression that names the table.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ledgerline"
THE_HELPERS = SRC / "auth.py"
HELPER_CALLS = frozenset({"scoped", "owned", "get_owned_by_public_id", "across_accounts"})
QUERY_CALLS = frozenset({"select", "update", "delete"})


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


def owned_models(models: Path) -> set[str]:
    """The classes of models.py that declare an `account_id` column."""
    found: set[str] = set()
    for node in ast.parse(models.read_text()).body:
        if isinstance(node, ast.ClassDef) and any(
            isinstance(item, ast.AnnAssign)
            and isinstance(item.target, ast.Name)
            and item.target.id == "account_id"
            for item in node.body
        ):
            found.add(node.name)
    return found


def table_names(paths: list[Path], models: set[str]) -> set[str]:
    """Names bound to an owned model's table (`line_items = LineItem.__table__`)."""
    found: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "__table__"
                and isinstance(node.value.value, ast.Name)
                and node.value.value.id in models
            ):
                found.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return found


def _called(call: ast.Call) -> str | None:
    function = call.func
    if isinstance(function, ast.Name):
        return function.id
    return function.attr if isinstance(function, ast.Attribute) else None


def _names_owned(call: ast.Call, owned: set[str]) -> bool:
    arguments = [*call.args, *(keyword.value for keyword in call.keywords)]
    return any(
        isinstance(node, ast.Name) and node.id in owned
        for argument in arguments
        for node in ast.walk(argument)
    )


def _is_owned_query(call: ast.Call, owned: set[str]) -> bool:
    name = _called(call)
    if name in QUERY_CALLS and isinstance(call.func, ast.Name):
        return _names_owned(call, owned)
    if name == "get" and isinstance(call.func, ast.Attribute) and call.args:
        first = call.args[0]
        return isinstance(first, ast.Name) and first.id in owned
    return name == "query" and isinstance(call.func, ast.Attribute) and _names_owned(call, owned)


def unscoped_queries(path: Path, owned: set[str]) -> list[int]:
    """Lines of `path` with a query on an owned table whose statement calls no helper."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: list[int] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not _is_owned_query(node, owned):
            continue
        statement: ast.AST = node
        while isinstance(parents.get(statement), ast.expr):
            statement = parents[statement]
        if not any(
            isinstance(inner, ast.Call) and _called(inner) in HELPER_CALLS
            for inner in ast.walk(statement)
        ):
            found.append(node.lineno)
    return sorted(found)


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_only_the_helpers_write_the_account_filter() -> None:
    written = {
        str(path.relative_to(SRC)): lines
        for path in _sources()
        if path != THE_HELPERS and (lines := account_comparisons(path))
    }
    assert written == {}, "use auth.scoped or auth.owned instead"


def test_every_query_on_an_owned_table_goes_through_the_helpers() -> None:
    models = owned_models(SRC / "models.py")
    # Every table with customer data is seen as owned (a model added without being seen
    # would make this test pass for the wrong reason).
    assert {"Customer", "Invoice", "Job", "LineItem", "LineItemGroup", "Venue"} <= models
    owned = models | table_names(_sources(), models)
    assert {"line_items", "invoices"} <= owned
    missing = {
        str(path.relative_to(SRC)): lines
        for path in _sources()
        if (lines := unscoped_queries(path, owned))
    }
    assert missing == {}, "start from auth.scoped/get_owned_by_public_id/owned or across_accounts"


def test_the_checks_see_a_hand_written_filter_and_a_missing_one(tmp_path: Path) -> None:
    module = tmp_path / "query.py"
    module.write_text(
        "a = select(Job).where(Job.account_id == principal.account_id)\n"
        "b = select(Account.id).where(Account.id == principal.account_id)\n"
        "c = line_items.c.account_id == 5\n"
        "d = session.execute(select(LineItem.id).where(LineItem.invoice_id == 1))\n"
        "e = session.execute(select(LineItem.id).where(owned(LineItem, 1)))\n"
        "f = session.get(Venue, 3)\n"
        "g = update(Job).where(Job.id == 1)\n"
        "h = across_accounts(update(Job).where(Job.id == 1))\n"
        "i = select(func.sum(line_items.c.amount))\n"
        "j = scoped(Invoice, principal).where(Invoice.id.in_(select(LineItem.invoice_id)))\n"
        "k = select(Account).where(Account.id == 1)\n"
    )
    assert account_comparisons(module) == [1, 3]
    owned = {"Job", "LineItem", "Venue", "Invoice", "line_items"}
    assert unscoped_queries(module, owned) == [1, 4, 6, 7, 9]
