"""No import cycles among the modules of auditagent/ and api/ (installed as auditagent_api).

Every import counts, also one inside a function (a lazy import that closes a circle is still a
circle: it only moves the failure to run time); imports under ``if TYPE_CHECKING:`` do not, they
never run. Importing ``a.b.c`` is an edge to ``a.b.c`` only, not to its parent packages, and so is
``from a.b import c`` when ``c`` is a module; so a package's ``__init__`` may re-export its
modules' names as long as no module of the package imports a name from the package itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import ROOT

PACKAGES = {"auditagent": ROOT / "auditagent", "auditagent_api": ROOT / "api"}

# Cycles allowed for now (none): a cycle not listed fails the test, and so does a listed one that
# is gone.
KNOWN: set[frozenset[str]] = set()


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for top, base in PACKAGES.items():
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([top, *parts])] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for orelse in child.orelse:
                    walk(orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            walk(child)

    walk(tree)
    return found


def _canonical(name: str) -> str:
    # The repository's api/ is the auditagent_api package.
    return "auditagent_api" + name[3:] if name == "api" or name.startswith("api.") else name


def _edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        package = mod if is_pkg else mod.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [_canonical(a.name) for a in node.names]
            else:
                if node.level:
                    base_parts = package.split(".")
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = _canonical(node.module or "")
                # `from pkg import sub` is an edge to the submodule only, as `import pkg.sub`
                # is; a name that is not a submodule is read from pkg's namespace, which makes
                # pkg (its __init__ and what that imports) a dependency too.
                targets = [f"{base}.{a.name}" for a in node.names]
                if not all(t in modules for t in targets):
                    targets.append(base)
            for target in targets:
                if target in modules and target != mod:
                    graph[mod].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[frozenset[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: set[str] = set()
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        component.add(m)
                        if m == node:
                            break
                    if len(component) > 1:
                        out.append(frozenset(component))
    return out


def _describe(cycle: frozenset[str]) -> str:
    return "{" + ", ".join(sorted(cycle)) + "}"


def test_the_walker_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [frozenset({"a", "b", "c"})]


def test_a_name_from_a_package_is_an_edge_to_the_package() -> None:
    graph = _edges(_modules())
    # `from .. import records` is the module; `from ..errors import X` is errors, not the package
    assert "auditagent" not in graph["auditagent.recorder.sealing"]
    assert "auditagent.records" in graph["auditagent.recorder.sealing"]
    # `from ..recorder import AuditRecorder` (a re-export) depends on the package
    assert "auditagent.recorder" in graph["auditagent.cli.demo"]


def test_every_module_is_walked() -> None:
    modules = _modules()
    graph = _edges(modules)
    assert "auditagent.cli" in modules and "auditagent_api.main" in modules
    # A relative import resolves: cli/expire.py imports cli/_common.py.
    assert "auditagent.cli._common" in graph["auditagent.cli.expire"]


def test_no_import_cycles() -> None:
    found = set(_cycles(_edges(_modules())))
    new = sorted(_describe(c) for c in found - KNOWN)
    gone = sorted(_describe(c) for c in KNOWN - found)
    assert not new, "import cycles:\n" + "\n".join(new)
    assert not gone, "known cycles that are gone (remove them from KNOWN):\n" + "\n".join(gone)
