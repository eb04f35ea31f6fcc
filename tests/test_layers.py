"""The package's shape: layers import only layers below them, and no import cycle exists.

Every ``import`` and ``from ... import`` in every module counts, lazy ones inside functions
included; only imports under ``if TYPE_CHECKING:`` are left out (they never run).
"""

import ast
from pathlib import Path

import pytest
from conftest import ROOT

SYNTH = ROOT / "synth"

# Bottom to top. Packages on one rank sit side by side and may not import each other.
LAYERS = [
    {"kernel"},
    {"store"},
    {"llm"},
    {"generate", "analysis"},
    {"workflows"},
    {"outputs"},
    {"cli"},
]
RANK = {pkg: rank for rank, pkgs in enumerate(LAYERS) for pkg in pkgs}
TOP_LEVEL = {"__init__", "__main__"}  # synth/__init__.py (nothing) and python -m synth (the CLI)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def imports_of(path: Path) -> set[str]:
    """The synth modules a file imports (``from synth.x import y`` counts y when it is a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = _type_checking_blocks(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "synth")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "synth":
                continue
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
    return found


MODULES = {module_name(p): p for p in SYNTH.rglob("*.py")}
GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def package_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) == 1:
        return None  # synth itself
    return parts[1]


def test_every_module_belongs_to_a_layer():
    for name in MODULES:
        pkg = package_of(name)
        assert pkg is None or pkg in RANK or pkg in TOP_LEVEL, f"{name} is in no layer: add it to LAYERS"


def test_every_layer_package_says_what_it_owns():
    for pkg in RANK:
        init = SYNTH / pkg / "__init__.py"
        assert init.is_file(), f"synth/{pkg} has no __init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc.split()) >= 5, f"synth/{pkg}/__init__.py needs a docstring saying what it owns"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_package_imports_a_package_above_or_beside_it(module):
    own = package_of(module)
    if own in TOP_LEVEL or own is None:
        return
    for target in GRAPH[module]:
        other = package_of(target)
        if other is None or other == own:
            continue
        assert other in RANK, f"{module} imports {target}, which is in no layer"
        assert RANK[other] < RANK[own], (
            f"{module} ({own}, layer {RANK[own]}) imports {target} ({other}, layer {RANK[other]}): "
            "a layer may import only the layers below it")


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycles():
    assert find_cycles(GRAPH) == []


def test_the_cycle_finder_finds_cycles():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_a_lazy_import_counts(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from synth.kernel import settings\n"
                      "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from synth.store import DuckStore\n")
    assert imports_of(module) == {"synth.kernel.settings"}


MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 500


def test_modules_and_functions_stay_small():
    too_long = []
    for name, path in MODULES.items():
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{name}: {text.count(chr(10))} lines (at most {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {length} lines (at most {MAX_FUNCTION_LINES})")
    assert too_long == []
