"""The package's import graph: no cycles, and every module imports on its own.

A cycle (even one hidden behind `if TYPE_CHECKING:`) says a type lives in the wrong place.
Imports inside functions are left out: they are the deliberate late imports (the command line
loads each command's dependencies when it runs) and do not run at import time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "ledgerline"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(_module_name(path) for path in (SRC / PACKAGE).rglob("*.py"))


def _module_level_imports(path: Path, name: str) -> set[str]:
    """The package's modules that `name` imports outside any function body."""
    tree = ast.parse(path.read_text(), filename=str(path))
    imported: set[str] = set()
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
            # `from ledgerline.jobs import service` imports the module ledgerline.jobs.service
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.ClassDef):
            pending.extend(ast.iter_child_nodes(node))
    return {module for module in imported if module in MODULES and module != name}


def _graph() -> dict[str, set[str]]:
    return {
        _module_name(path): _module_level_imports(path, _module_name(path))
        for path in (SRC / PACKAGE).rglob("*.py")
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first walk, each as the path that closes it."""
    found: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_the_graph_is_read() -> None:
    graph = _graph()
    assert "ledgerline.app" in graph
    assert "ledgerline.invoices.endpoints" in graph["ledgerline.app"]
    assert "ledgerline.jobs.service" in graph["ledgerline.jobs.endpoints"]


def test_no_module_imports_itself_round_a_cycle() -> None:
    assert _cycles(_graph()) == []


def test_a_cycle_would_be_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]


def _imports_alone(module: str) -> tuple[str, int, str]:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return module, result.returncode, result.stderr[-2000:]


@pytest.mark.slow
def test_every_module_imports_on_its_own() -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_imports_alone, MODULES))
    failed = [(module, error) for module, code, error in results if code != 0]
    assert failed == []
    assert len(results) == len(MODULES) > 30


# What the commands that need no web app load when they run (cli.py imports them lazily):
# `accounts create`, `tokens create`, `console-link`, `seed`, `demo` and `db upgrade`.
COMMAND_LINE_MODULES = (
    "ledgerline.cli",
    "ledgerline.accounts",
    "ledgerline.auth",
    "ledgerline.console.sessions",
    "ledgerline.db",
    "ledgerline.models",
    "ledgerline.seed",
)


def test_commands_that_need_no_web_app_import_none_of_it() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; import {', '.join(COMMAND_LINE_MODULES)}; "
            "print(sorted({name.split('.')[0] for name in sys.modules} "
            "& {'fastapi', 'starlette', 'uvicorn', 'huey'}))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
