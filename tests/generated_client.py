"""Generate a typed Python client from an OpenAPI description, at test time, and import it.

`openapi-python-client` runs offline on a document written to a temporary directory; the
generated package is imported under a name unique to each call, so several generated clients
(e.g. one from a vendor's contract, one from our own /openapi.json) coexist in one test run.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
_counter = itertools.count()


def generate_client(document: dict[str, Any], directory: Path) -> ModuleType:
    """The client package generated from `document` (written into `directory`), imported.

    Its submodules (`.client`, `.api.<tag>.<operation>`, `.models`, `.types`) are reached with
    `importlib.import_module(package.__name__ + ".api....")` or through attributes once imported.
    """
    directory.mkdir(parents=True, exist_ok=True)
    spec_path = directory / "openapi.json"
    spec_path.write_text(json.dumps(document), encoding="utf-8")
    # No post-generation hooks: they would run ruff over the output, which needs nothing
    # but would slow every run and could differ between machines.
    config_path = directory / "config.json"
    config_path.write_text(json.dumps({"post_hooks": []}), encoding="utf-8")
    output = directory / "client"
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(spec_path),
            "--output-path",
            str(output),
            "--meta",
            "none",
            "--config",
            str(config_path),
            "--overwrite",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"client generation failed:\n{result.stdout}\n{result.stderr}"
    assert "Warning" not in result.stdout, f"the generator skipped parts:\n{result.stdout}"
    return _import_package(output, f"generated_client_{next(_counter)}_{directory.name}")


def _import_package(path: Path, name: str) -> ModuleType:
    name = "".join(char if char.isalnum() else "_" for char in name)
    spec = importlib.util.spec_from_file_location(
        name, path / "__init__.py", submodule_search_locations=[str(path)]
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def submodule(package: ModuleType, dotted: str) -> ModuleType:
    """`submodule(pkg, "api.default.get_thing")`: a module of a generated package."""
    return importlib.import_module(f"{package.__name__}.{dotted}")
