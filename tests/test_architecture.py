"""The import graph obeys the layering table in docs/architecture.md, and has no cycles."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("isa", "sim", "rtl", "compiler", "workbench")


def layering_table() -> dict[str, set[str]]:
    """Package -> the packages of ours it may import, read from the table in docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("<!-- layering-table", 1)[1].split("\n\n", 1)[0]
    allowed: dict[str, set[str]] = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`\w+`", cells[0]):
            allowed[cells[0].strip("`")] = set(re.findall(r"`(\w+)`", cells[2]))
    return allowed


def module_files() -> dict[str, Path]:
    """Every module of our packages by dotted name (a package by its own name)."""
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def imported_modules(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Our modules that `name` imports, at any depth of its code (function-level imports count)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
        for t in targets:
            while t and t not in mods:  # `from pkg.mod import name` resolves to pkg.mod
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    mods = module_files()
    g = nx.DiGraph()
    for name, path in mods.items():
        g.add_node(name)
        for target in imported_modules(name, path, mods):
            g.add_edge(name, target)
    return g


def test_table_lists_every_package():
    table = layering_table()
    assert set(table) == set(PACKAGES)
    assert table["isa"] == set() and table["workbench"] == {"isa", "sim", "rtl", "compiler"}


def test_no_package_imports_above_its_layer(graph):
    table = layering_table()
    breaks = sorted(f"{a} imports {b}" for a, b in graph.edges
                    if a.split(".")[0] != b.split(".")[0] and b.split(".")[0] not in table[a.split(".")[0]])
    assert not breaks, "imports that break docs/architecture.md's layering:\n" + "\n".join(breaks)


def test_no_import_cycles(graph):
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_checker_sees_a_planted_break(tmp_path):
    """The graph builder finds relative, absolute and function-level imports (so the tests above can fail)."""
    mods = {"sim.a": tmp_path / "a.py", "sim.b": tmp_path / "b.py", "rtl.c": tmp_path / "c.py"}
    mods["sim.a"].write_text("from . import b\ndef f():\n    import rtl.c\n")
    assert imported_modules("sim.a", mods["sim.a"], mods) == {"sim.b", "rtl.c"}
