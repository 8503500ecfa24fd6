"""netspec imports nothing from a module that imports it back: the import graph of ``netspec/`` has no circle.

The graph is read from the source with :mod:`ast` (nothing is imported). An edge A -> B is any ``import`` or
``from ... import`` in A that names netspec module B, wherever it is written: at the top, inside a class, or inside a
function. A deferred import (inside a function) only hides a circle from the interpreter; the two modules still
need each other, and the next engineer cannot change one without the other, so it counts. Not counted:

- imports under ``if TYPE_CHECKING:``, which never run: annotations may name a type from a module that imports
  this one (``compiler.analyse(spec: Spec)`` while ``spec`` imports ``compiler``; ``Layer.rescaled(scale: Scale)``);
- the implicit import of a module's parent packages (``import netspec.spec`` runs ``netspec/__init__.py`` first):
  counting it would make every package a circle with each of its submodules. ``netspec/__init__.py`` and each
  subpackage's ``__init__.py`` are nodes like any module, so a submodule that imports its package root explicitly
  (``import netspec``, ``from netspec import build``) is an edge, and a circle if the root imports it.

``from package import name`` is an edge to ``package.name`` when that is a module, else to ``package``.
"""
from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "netspec"


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``package`` (``__init__.py``: the package)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: anywhere in the file except under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and _type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports (see the module docstring for what counts)."""
    modules = module_files(package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: `from . import x`, `from ..y import z`
                    anchor = here.split(".")[:len(here.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            for target in targets:
                while target and target not in modules:  # `import netspec.x.func`-like names: the module holding it
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def tangles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The groups of modules that import each other (strongly connected components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(start: str) -> None:  # Tarjan's strongly connected components, iteratively (no recursion limit)
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return groups


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest circle (``[a, b, a]``) per group of modules that import each other, sorted."""
    return sorted(_shortest_circle(graph, group) for group in tangles(graph))


def _shortest_circle(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    best: list[str] = []
    for start in sorted(group):
        previous: dict[str, str | None] = {start: None}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if start in graph[node]:
                path = [node]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])  # type: ignore[arg-type]
                circle = [*reversed(path), start]
                if not best or len(circle) < len(best):
                    best = circle
                break
            for child in sorted(graph[node] & group):
                if child not in previous:
                    previous[child] = node
                    queue.append(child)
    return best


def test_netspec_has_no_import_circle() -> None:
    graph = import_graph(PACKAGE)
    assert "netspec.layers.base" in graph["netspec.registry"]  # the graph is read (a known edge is there)
    found = sorted((_shortest_circle(graph, group), sorted(group)) for group in tangles(graph))
    assert not found, "modules that import each other (a deferred import counts):\n" + "\n".join(
        f"{' -> '.join(circle)}" + (f" (within a tangle of {len(group)} modules: {', '.join(group)})"
                                    if len(group) > len(circle) - 1 else "") for circle, group in found)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_a_deferred_import_of_the_package_root_is_a_circle_and_is_named(tmp_path: Path) -> None:
    package = _write(tmp_path, {
        "pkg/__init__.py": "from pkg.weights import save\nfrom pkg.sub import helper\n",
        "pkg/weights.py": "def save():\n    import pkg\n    return pkg.build\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/helper.py": "from ..weights import save\n",
    })
    assert import_graph(package)["pkg.sub.helper"] == {"pkg.weights"}  # relative import resolved
    assert circles(import_graph(package)) == [["pkg", "pkg.weights", "pkg"]]


@pytest.mark.parametrize("guard", ["TYPE_CHECKING", "typing.TYPE_CHECKING"])
def test_type_checking_imports_do_not_count(tmp_path: Path, guard: str) -> None:
    package = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import B\n",
        "pkg/b.py": f"import typing\nfrom typing import TYPE_CHECKING\nif {guard}:\n    from pkg.a import A\n"
                    "class B:\n    def f(self):\n        from pkg import c\n",
        "pkg/c.py": "",
    })
    assert import_graph(package) == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": set()}
    assert circles(import_graph(package)) == []


def test_three_modules_in_a_ring_are_one_circle(tmp_path: Path) -> None:
    package = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg import b\n",
        "pkg/b.py": "import pkg.c\n",
        "pkg/c.py": "from pkg.a import thing\nfrom pkg.d import other\n",
        "pkg/d.py": "",
    })
    assert circles(import_graph(package)) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
