"""The import rules of the layout, read from every .py file of the project (with `ast`, so an import inside a
function or under TYPE_CHECKING counts too).

The core (`stockyard`) is imported by everything and imports no package above it; `ml` and `orchestration`
build on it; `serving` only reads what they wrote, so it stays light; `cli` sits on top and may import
everything; `bench` and `tests` are imported by nobody. Inside the core, no two subpackages import each other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("stockyard", "ml", "orchestration", "serving", "cli", "bench", "tests")
UNIMPORTED = ("bench", "tests")
# Top-level modules each package must not import.
FORBIDDEN: dict[str, set[str]] = {
    "stockyard": {"ml", "orchestration", "serving", "cli", *UNIMPORTED},
    "ml": {"dagster", "orchestration", "serving", "cli", *UNIMPORTED},
    "orchestration": {"serving", "cli", *UNIMPORTED},
    # The API runs without the pipeline's or the models' dependencies installed.
    "serving": {
        "dagster",
        "torch",
        "prophet",
        "xgboost",
        "mlflow",
        "ml",
        "orchestration",
        "cli",
        *UNIMPORTED,
    },
    "cli": set(UNIMPORTED),
    "bench": {"tests"},
    "tests": set(),
}
CORE = "stockyard"


def imported_modules(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file at `path` of the project at `root`.
    `from a import b` names `a.b` when `b` is a module of the project, else `a`."""
    package = path.relative_to(root).parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                yield node.lineno, submodule if _is_module(root, submodule) else module


def _is_module(root: Path, name: str) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layer_violations(root: Path = PROJECT_ROOT) -> list[str]:
    violations = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            # One line per module: `from a import b, c` names a twice when b and c are not modules.
            for line, module in dict.fromkeys(imported_modules(path, root)):
                top = module.split(".")[0]
                if top not in FORBIDDEN[package]:
                    continue
                where = path.relative_to(root).as_posix()
                violations.append(f"{where}:{line} imports {module} ({package} must not import {top})")
    return violations


def core_dependencies(root: Path = PROJECT_ROOT) -> dict[str, set[str]]:
    """Which of the core's subpackages (and top-level modules) each one imports."""
    graph: dict[str, set[str]] = {}
    for path in sorted((root / CORE).rglob("*.py")):
        parts = path.relative_to(root / CORE).with_suffix("").parts
        if parts == ("__init__",):
            continue
        source = parts[0]
        targets = graph.setdefault(source, set())
        for _, module in imported_modules(path, root):
            names = module.split(".")
            if names[0] == CORE and len(names) > 1 and names[1] != source:
                targets.add(names[1])
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One path around each cycle found by a depth-first walk of `graph`."""
    found: list[list[str]] = []
    done: set[str] = set()

    def walk(node: str, path: list[str]) -> None:
        if node in path:
            found.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        for target in sorted(graph.get(node, ())):
            walk(target, [*path, node])
        done.add(node)

    for node in sorted(graph):
        walk(node, [])
    return found


def test_no_package_imports_one_above_it() -> None:
    assert layer_violations() == []


def test_the_cores_subpackages_import_each_other_in_one_direction() -> None:
    graph = core_dependencies()
    assert {"marketdata", "quality", "db", "analytics"} <= graph.keys()
    assert cycles(graph) == []


def test_a_violation_is_found(tmp_path: Path) -> None:
    """The rules catch what they are meant to, on a small project: an upward import (lazy, in a function)
    and the cycle the core once had (the loader's schema importing the quality rules, which read market data).
    """
    files = {
        "stockyard/__init__.py": "",
        "stockyard/marketdata/__init__.py": "",
        "stockyard/marketdata/schema.py": "from stockyard.quality.rules import DUPLICATE_ROW\n",
        "stockyard/quality/__init__.py": "",
        "stockyard/quality/rules.py": "DUPLICATE_ROW = 'duplicate_row'\n",
        "stockyard/quality/metadata.py": "from ..marketdata import schema\n",
        "stockyard/products.py": "def late() -> None:\n    from cli import main\n",
        "cli/__init__.py": "",
        "cli/main.py": "import serving.app\nfrom stockyard import products\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert layer_violations(tmp_path) == [
        "stockyard/products.py:2 imports cli.main (stockyard must not import cli)"
    ]
    assert cycles(core_dependencies(tmp_path)) == [["marketdata", "quality", "marketdata"]]


def test_the_api_imports_neither_dagster_nor_the_ml_stack() -> None:
    """What serving imports at run time, however indirectly (the rules above read one file at a time)."""
    forbidden = ["dagster", "torch", "prophet", "xgboost", "mlflow", "ml", "orchestration"]
    script = (
        "import sys, serving.app; "
        f"print([name for name in {forbidden!r} if name in sys.modules or "
        "any(module.startswith(name + '.') for module in sys.modules)])"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
