"""The architecture's rules, checked on the source with `ast` (stdlib only, no import of ragcli).

Every `import` and `from … import` in ragcli/ counts: at module level, inside functions, under
`if TYPE_CHECKING:`, and the dynamic ones (`native_import("chromadb")`,
`importlib.import_module("…")`). The rules, written once here and again in
docs/architecture.md (a test keeps the two the same):

- the subpackages depend on each other only as `ALLOWED` says, so there is no cycle;
- no module imports a private name (`_name`) from another subpackage, nor uses one as
  `module._name`;
- chromadb is imported only under ragcli/index/; SQL (sqlite3, sqlite_utils, `.execute`) only
  in ragcli/core/db.py, ragcli/index/catalog*.py and ragcli/caches/;
- importing a subpackage (its `__init__.py`), or the module behind the `ragcli` command, loads
  no heavy library (chromadb, onnxruntime, openai, numpy, …): they stay inside functions;
- no function is longer than `MAX_FUNCTION_LINES`.

Each failure names file:line and what to do.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / "ragcli"
DOC = REPO / "docs" / "architecture.md"

# What each subpackage may import (besides itself). Nothing imports `cli`; `cli` and the
# top-level modules (ragcli/__init__.py, ragcli/__main__.py) may import anything.
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "providers": frozenset({"core"}),
    "caches": frozenset({"core"}),
    "embedders": frozenset({"core", "providers", "caches"}),
    "generators": frozenset({"core", "providers"}),
    "index": frozenset({"core", "embedders", "caches", "providers"}),
    "ingest": frozenset({"core", "index", "embedders", "caches", "providers"}),
    "retrieval": frozenset({"core", "index", "caches", "embedders", "generators", "providers"}),
    "profile": frozenset({"core", "retrieval", "serve", "daemon"}),
    "serve": frozenset({"core", "retrieval", "caches", "providers"}),
    "eval": frozenset({"core", "ingest", "index", "retrieval", "embedders", "caches", "profile"}),
    "status": frozenset({"core", "index", "caches"}),
    "daemon": frozenset({"core", "serve", "retrieval", "embedders"}),
}
ENTRY = "cli"  # may import every package; no package may import it
TOP = ""  # the package of ragcli/__init__.py and ragcli/__main__.py: an entry point too
PACKAGES = frozenset(ALLOWED) | {ENTRY}

# Allowed edges that are limited to some modules of the imported package.
ONLY_THROUGH: dict[tuple[str, str], frozenset[str]] = {
    ("profile", "serve"): frozenset({"ragcli.serve.remote"}),  # the HTTP client, not the server
    ("eval", "profile"): frozenset({"ragcli.profile.stats"}),  # the statistics, not the runs
}

HEAVY = frozenset(
    {"chromadb", "onnxruntime", "openai", "numpy", "sqlite_utils", "tiktoken", "httpx"}
)
CHROMADB_HOMES = ("ragcli/index/*",)
SQL_MODULES = frozenset({"sqlite3", "sqlite_utils"})
SQL_METHODS = frozenset({"execute", "executemany", "executescript"})
# Chroma's own SQLite file is read (for `ragcli status`, without importing chromadb) where the
# rest of Chroma lives: index/chroma_files.py.
SQL_HOMES = (
    "ragcli/core/db.py",
    "ragcli/index/catalog*.py",
    "ragcli/caches/*",
    "ragcli/index/chroma_files.py",
)
DYNAMIC_IMPORTERS = frozenset({"native_import", "import_module", "__import__"})
MAX_FUNCTION_LINES = 80  # the "~80 lines"


@dataclass(frozen=True)
class Ref:
    """One import in a ragcli file: `module` (absolute) and, for `from m import n`, `name`."""

    rel: str  # the file, relative to the repository: ragcli/index/store.py
    line: int
    module: str
    name: str | None
    runtime: bool  # runs when the file is imported (module level, not under TYPE_CHECKING)

    @property
    def where(self) -> str:
        return f"{self.rel}:{self.line}"


@dataclass(frozen=True)
class Module:
    name: str  # ragcli.index.store
    rel: str
    tree: ast.Module
    is_package: bool  # an __init__.py

    @property
    def package(self) -> str:
        """The subpackage the file belongs to ("" for ragcli/__init__.py, ragcli/__main__.py)."""
        parts = self.name.split(".")
        return parts[1] if len(parts) > 2 or (len(parts) == 2 and self.is_package) else TOP


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


@functools.cache
def modules() -> dict[str, Module]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        name, is_package = _module_name(path)
        rel = path.relative_to(REPO).as_posix()
        found[name] = Module(
            name, rel, ast.parse(path.read_text(encoding="utf-8"), rel), is_package
        )
    return found


def package_of(module: str) -> str | None:
    """The ragcli subpackage a dotted name lies in; None outside ragcli; TOP for `ragcli`."""
    parts = module.split(".")
    if parts[0] != "ragcli":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in PACKAGES else TOP


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(mod: Module, level: int, module: str | None) -> str:
    """The absolute module of a relative `from` import."""
    if level == 0:
        return module or ""
    base = mod.name.split(".")
    base = base if mod.is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _refs_in(mod: Module, nodes: list[ast.AST], runtime: bool) -> Iterator[Ref]:
    """The imports in `nodes` and below; `runtime` while they run when the file is imported."""
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Ref(mod.rel, node.lineno, alias.name, None, runtime)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(mod, node.level, node.module)
            for alias in node.names:
                yield Ref(mod.rel, node.lineno, source, alias.name, runtime)
        elif isinstance(node, ast.Call) and _dynamic_import(node):
            arg = node.args[0]
            assert isinstance(arg, ast.Constant)
            yield Ref(mod.rel, node.lineno, str(arg.value), None, runtime)
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _refs_in(mod, children, runtime=False)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _refs_in(mod, list(node.body), runtime=False)
            yield from _refs_in(mod, list(node.orelse), runtime)
        else:
            yield from _refs_in(mod, children, runtime)


def _dynamic_import(call: ast.Call) -> bool:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    return (
        name in DYNAMIC_IMPORTERS
        and bool(call.args)
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    )


@functools.cache
def refs() -> tuple[Ref, ...]:
    out: list[Ref] = []
    for mod in modules().values():
        out.extend(_refs_in(mod, [mod.tree], runtime=True))
    return tuple(out)


def target(ref: Ref) -> str:
    """What a ref loads: `from ragcli.x import y` loads ragcli.x.y when that is a module."""
    if ref.name is not None and f"{ref.module}.{ref.name}" in modules():
        return f"{ref.module}.{ref.name}"
    return ref.module


def module_of(rel: str) -> Module:
    return next(m for m in modules().values() if m.rel == rel)


def _matches(rel: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(rel, p) for p in patterns)


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


# --- the dependency graph -------------------------------------------------------------------


def package_edges() -> dict[tuple[str, str], list[Ref]]:
    """(importer package, imported package) -> the imports that make that edge."""
    edges: dict[tuple[str, str], list[Ref]] = {}
    seen: set[tuple[str, int, str]] = set()  # one ref per line and module (`import a, b`)
    for ref in refs():
        src = module_of(ref.rel).package
        dst = package_of(target(ref))
        if dst is None or dst in (TOP, src) or (ref.rel, ref.line, target(ref)) in seen:
            continue
        seen.add((ref.rel, ref.line, target(ref)))
        edges.setdefault((src, dst), []).append(ref)
    return edges


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_subpackage_has_a_row_in_the_table() -> None:
    found = {m.package for m in modules().values() if m.is_package} - {TOP}
    assert found == PACKAGES, (
        f"subpackages on disk {sorted(found)} differ from the table {sorted(PACKAGES)}: "
        "give a new subpackage its row in ALLOWED here and in docs/architecture.md"
    )


def test_the_allowed_table_has_no_cycle() -> None:
    cycle = _find_cycle({k: set(v) for k, v in ALLOWED.items()})
    assert cycle is None, f"ALLOWED has a cycle: {' -> '.join(cycle or [])}"


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_cycle_between_subpackages() -> None:
    edges = package_edges()
    graph: dict[str, set[str]] = {}
    for src, dst in edges:
        graph.setdefault(src, set()).add(dst)
    reach = {node: _reachable(graph, node) for node in graph}
    # an edge a -> b closes a cycle when b leads back to a
    closing = sorted((a, b) for a, b in edges if a in reach.get(b, set()))
    hops = [
        f"  {a} -> {b}: {edges[(a, b)][0].where} imports {target(edges[(a, b)][0])}"
        + (f" (and {len(edges[(a, b)]) - 1} more)" if len(edges[(a, b)]) > 1 else "")
        for a, b in closing
    ]
    assert not hops, "import cycles between subpackages (each edge on one):\n" + "\n".join(hops)


def test_subpackages_import_only_what_the_table_allows() -> None:
    problems = []
    for (src, dst), found in sorted(package_edges().items()):
        if src in (ENTRY, TOP):
            continue
        if dst == ENTRY:
            problems += [
                f"{r.where}: {src} imports {target(r)}: nothing imports cli" for r in found
            ]
        elif dst not in ALLOWED[src]:
            problems += [
                f"{r.where}: {src} imports {target(r)}, but {src} may import only "
                f"{', '.join(sorted(ALLOWED[src])) or 'nothing'}"
                for r in found
            ]
        elif (only := ONLY_THROUGH.get((src, dst))) is not None:
            problems += [
                f"{r.where}: {src} imports {target(r)}: from {dst}, {src} may import only "
                f"{', '.join(sorted(only))}"
                for r in found
                if not any(target(r) == m or target(r).startswith(m + ".") for m in only)
            ]
    assert not problems, "imports against the dependency table:\n" + "\n".join(problems)


def test_docs_state_the_same_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- import-rules -->\s*```text\n(.*?)```", text, re.S)
    assert block, f"{DOC.relative_to(REPO)}: no ```text block after <!-- import-rules -->"
    documented: dict[str, frozenset[str]] = {}
    for line in block.group(1).splitlines():
        if "->" not in line:
            continue
        left, right = (side.strip() for side in line.split("->", 1))
        if right.startswith("anything"):
            documented[left] = PACKAGES - {left}
        else:  # "a, b, c (a note)"
            documented[left] = frozenset(re.findall(r"[a-z]+", right.split("(")[0]))
    expected = {**ALLOWED, ENTRY: PACKAGES - {ENTRY}}
    differ = [
        f"  {k}: the docs say {sorted(documented[k]) if k in documented else 'nothing'}, "
        f"the test {sorted(expected[k]) if k in expected else 'nothing'}"
        for k in sorted(expected.keys() | documented.keys())
        if documented.get(k) != expected.get(k)
    ]
    assert not differ, (
        f"{DOC.relative_to(REPO)} states another table than ALLOWED in this test:\n"
        + "\n".join(differ)
    )


# --- private names --------------------------------------------------------------------------


def test_no_private_name_imported_across_subpackages() -> None:
    problems = []
    for ref in refs():
        src, dst = module_of(ref.rel).package, package_of(ref.module)
        if dst is None or dst == src:
            continue
        dotted = ref.module.split(".") + ([ref.name] if ref.name else [])
        private = [p for p in dotted[1:] if _is_private(p)]
        if private:
            problems.append(
                f"{ref.where}: imports the private {'.'.join(dotted)} from another subpackage "
                f"({dst}): make it public there (drop the underscore) or move it"
            )
    assert not problems, "\n".join(problems)


def _module_aliases(mod: Module) -> dict[str, str]:
    """Local names bound to ragcli modules: `import ragcli.x.y [as z]`, `from ragcli.x import y`."""
    aliases = {}
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules():
                    local = alias.asname or alias.name.split(".")[0]
                    aliases[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                full = f"{_resolve(mod, node.level, node.module)}.{alias.name}"
                if full in modules():
                    aliases[alias.asname or alias.name] = full
    return aliases


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (head := _dotted(node.value)):
        return f"{head}.{node.attr}"
    return None


def test_no_private_attribute_of_another_subpackages_module() -> None:
    problems = []
    for mod in modules().values():
        aliases = _module_aliases(mod)
        for node in ast.walk(mod.tree):
            if not (isinstance(node, ast.Attribute) and _is_private(node.attr)):
                continue
            dotted = _dotted(node.value)
            if dotted is None or dotted.split(".")[0] not in aliases:
                continue
            head, *rest = dotted.split(".")
            owner = ".".join([aliases[head], *rest])
            if owner in modules() and package_of(owner) != mod.package:
                problems.append(
                    f"{mod.rel}:{node.lineno}: uses the private {owner}.{node.attr} of another "
                    "subpackage: make it public there or move it"
                )
    assert not problems, "\n".join(problems)


# --- where chromadb and SQL may be used ------------------------------------------------------


def _top(module: str) -> str:
    return module.split(".")[0]


def test_chromadb_only_inside_index() -> None:
    problems = [
        f"{r.where}: imports {r.module}: chromadb belongs to ragcli/index/ (add a function there)"
        for r in refs()
        if _top(r.module) == "chromadb" and not _matches(r.rel, CHROMADB_HOMES)
    ]
    assert not problems, "\n".join(problems)


def test_sql_only_in_the_catalogue_the_caches_and_core_db() -> None:
    problems = [
        f"{r.where}: imports {r.module}: SQL belongs to {', '.join(SQL_HOMES)} "
        "(add a Catalog method or a caches function)"
        for r in refs()
        if _top(r.module) in SQL_MODULES and not _matches(r.rel, SQL_HOMES)
    ]
    for mod in modules().values():
        if _matches(mod.rel, SQL_HOMES):
            continue
        for node in ast.walk(mod.tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_METHODS
            ):
                problems.append(
                    f"{mod.rel}:{node.lineno}: .{node.func.attr}(…) runs SQL outside "
                    f"{', '.join(SQL_HOMES)} (add a Catalog method or a caches function)"
                )
    assert not problems, "\n".join(problems)


# --- what importing a package costs ---------------------------------------------------------


def _heavy_chain(start: str) -> list[Ref] | None:
    """The chain of import-time imports from `start` to a heavy library, if there is one."""
    by_rel: dict[str, list[Ref]] = {}
    for ref in refs():
        if ref.runtime:
            by_rel.setdefault(ref.rel, []).append(ref)
    parts = start.split(".")  # importing a.b.c runs a, a.b and a.b.c
    steps = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    seen = set(steps)
    queue: list[tuple[str, list[Ref]]] = [(step, []) for step in steps if step in modules()]
    while queue:
        name, chain = queue.pop(0)
        for ref in by_rel.get(modules()[name].rel, []):
            loaded = target(ref)
            if _top(loaded) in HEAVY:
                return [*chain, ref]
            parts = loaded.split(".")  # importing a.b.c runs a, a.b and a.b.c
            for i in range(1, len(parts) + 1):
                step = ".".join(parts[:i])
                if step in modules() and step not in seen:
                    seen.add(step)
                    queue.append((step, [*chain, ref]))
    return None


def _heavy_problem(start: str, why: str) -> str | None:
    chain = _heavy_chain(start)
    if chain is None:
        return None
    hops = " -> ".join(f"{r.where} imports {target(r)}" for r in chain)
    return (
        f"importing {start} ({why}) loads {_top(target(chain[-1]))}: {hops}; "
        "import it inside the function that needs it"
    )


def test_subpackage_inits_import_nothing_heavy() -> None:
    inits = [m.name for m in modules().values() if m.is_package]
    problems = [p for name in inits if (p := _heavy_problem(name, "a package __init__"))]
    assert not problems, "\n".join(problems)


def test_the_ragcli_command_imports_nothing_heavy() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    entry = scripts["ragcli"].split(":")[0]
    assert entry == "ragcli.cli.entry", "the fast-path rules below assume this entry point"
    for start in (entry, "ragcli.cli.app"):  # the entry, then the Typer app it hands over to
        problem = _heavy_problem(start, "`ragcli --help`")
        assert problem is None, problem


# The modules a forwarded `ask` runs (the entry point, then ragcli.daemon.fastpath): they may
# import the standard library and each other, nothing else (no Typer, rich, asyncio, numpy,
# pipeline) — what keeps a warm `ragcli ask` at Python's own start-up cost.
FAST_PATH = frozenset(
    {
        "ragcli",
        "ragcli.cli",
        "ragcli.cli.entry",
        "ragcli.core",
        "ragcli.core.unix_http",
        "ragcli.daemon",
        "ragcli.daemon.argv",
        "ragcli.daemon.client",
        "ragcli.daemon.fastpath",
        "ragcli.daemon.location",
        "ragcli.daemon.spawn",
    }
)
NOT_ON_THE_FAST_PATH = frozenset({"asyncio"})  # stdlib, but costs what the fast path saves


def test_the_fast_path_imports_only_the_standard_library() -> None:
    import sys

    by_rel: dict[str, list[Ref]] = {}
    for ref in refs():
        if ref.runtime:
            by_rel.setdefault(ref.rel, []).append(ref)
    problems = []
    for name in sorted(FAST_PATH):
        for ref in by_rel.get(modules()[name].rel, []):
            loaded = target(ref)
            if loaded.startswith("ragcli"):
                parts = loaded.split(".")
                steps = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
                outside = sorted(m for m in steps if m in modules() and m not in FAST_PATH)
                if outside:
                    problems.append(f"{ref.where} imports {outside[0]}, not on the fast path")
            elif (
                _top(loaded) not in sys.stdlib_module_names or _top(loaded) in NOT_ON_THE_FAST_PATH
            ):
                problems.append(f"{ref.where} imports {loaded} at import time")
    assert not problems, "the fast path (ask through the daemon) must stay stdlib-only:\n" + (
        "\n".join(problems)
    )


# --- size -----------------------------------------------------------------------------------


def test_no_function_longer_than_the_limit() -> None:
    problems = []
    for mod in modules().values():
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    problems.append(
                        f"{mod.rel}:{node.lineno}: {node.name} is {lines} lines "
                        f"(at most {MAX_FUNCTION_LINES}): split it into named steps"
                    )
    assert not problems, "\n".join(problems)
