"""No module of the chassis imports, even lazily, a module that imports it back.

A cycle forces imports into functions and ordering tricks, and makes a module impossible to
read or test on its own. Imports inside functions count too: deferring one hides a cycle
from the interpreter, not from the reader. Imports under ``if TYPE_CHECKING:`` do not run
and are left out.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator
from pathlib import Path

import flotilla

PACKAGE_ROOT = Path(flotilla.__file__).parent


def module_names() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    names = {}
    for path in PACKAGE_ROOT.rglob("*.py"):
        parts = ["flotilla", *path.relative_to(PACKAGE_ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported_modules(
    tree: ast.AST, module: str, is_package: bool, modules: Collection[str]
) -> Iterator[str]:
    """The modules ``tree`` imports: ``from X import name`` is ``X.name`` if that is one, else X."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".rstrip(".")
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in modules else base


def without_type_checking_blocks(tree: ast.Module) -> ast.Module:
    """``tree`` less the bodies of ``if TYPE_CHECKING:``, which never run."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = [ast.Pass()]
    return tree


def import_graph() -> dict[str, set[str]]:
    """Which modules of the package each module imports."""
    modules = module_names()
    graph = {}
    for name, path in modules.items():
        tree = without_type_checking_blocks(ast.parse(path.read_text()))
        found = imported_modules(tree, name, path.name == "__init__.py", modules)
        graph[name] = {target for target in found if target in modules} - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_chassis_has_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_graph_sees_imports_made_inside_functions() -> None:
    graph = import_graph()
    assert (
        "flotilla.data.migrations" in graph["flotilla.data.dbcli"]
    )  # imported when a command runs
