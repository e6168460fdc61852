"""The tests' own layout, checked on their source with `ast`: tests/unit/ is in-process (no
test there asks for the `ragcli` fixture or calls a helper that starts ragcli as a process;
tests/unit/conftest.py also refuses such a process while a unit test runs), and no test module
imports another test module or conftest (shared helpers live in tests/support/)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
# Helpers that start `python -m ragcli` (tests/support/): a unit test calls none of them.
PROCESS_HELPERS = {"run_ragcli", "ragcli_and_modules", "run_home", "popen_home", "Served"}


def _modules(under: Path) -> list[Path]:
    return sorted(p for p in under.rglob("*.py") if "__pycache__" not in p.parts)


def _imported_modules(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_test_module_imports_another_test_module() -> None:
    bad = []
    for path in _modules(TESTS):
        for module in _imported_modules(ast.parse(path.read_text())):
            if module == "tests.conftest" or module.startswith(("tests.unit", "tests.e2e")):
                bad.append(f"{path.relative_to(TESTS)} imports {module}")
    assert not bad, "shared helpers belong in tests/support/:\n" + "\n".join(bad)


def test_unit_tests_do_not_run_ragcli_as_a_process() -> None:
    bad = []
    for path in _modules(TESTS / "unit"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if "ragcli" in [a.arg for a in node.args.args]:
                    bad.append(f"{path.relative_to(TESTS)}::{node.name} takes the ragcli fixture")
            elif isinstance(node, ast.Name) and node.id in PROCESS_HELPERS:
                bad.append(f"{path.relative_to(TESTS)}:{node.lineno} uses {node.id}")
            elif isinstance(node, ast.alias) and node.name in PROCESS_HELPERS:
                bad.append(f"{path.relative_to(TESTS)} imports {node.name}")
    assert not bad, "these run ragcli as a process; they belong in tests/e2e/:\n" + "\n".join(bad)
