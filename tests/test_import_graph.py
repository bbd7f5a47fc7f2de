"""The packages' import graph: no circles, config below components, no bare top-level names.

Every import statement counts, wherever it stands (module level, under ``TYPE_CHECKING``, or
inside a function): a circle hidden in a function body or a type-checking block is still a
circle between two modules that should depend one way. Modules are read from the source
with ``ast``, mapped to their installed names through pyproject's ``package-dir``.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def package_dirs() -> dict[str, Path]:
    """Installed package name -> its directory (pyproject ``[tool.setuptools.package-dir]``)."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {name: ROOT / path for name, path in setuptools["package-dir"].items()}


def modules() -> dict[str, Path]:
    """Every module of llm_infra, llm_infra.components and llm_infra.config, by its installed name."""
    found: dict[str, Path] = {}
    for package, directory in package_dirs().items():
        for path in sorted(directory.rglob("*.py")):
            parts = path.relative_to(directory).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((package, *parts))
            found.setdefault(name, path)  # llm_infra/ does not hold the mapped subpackages
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``name`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                # `from pkg import sub` imports the submodule; `from mod import name` the module
                sub = f"{module}.{alias.name}"
                targets.add(sub if sub in known else module)
    return {t for t in targets if t in known and t != name}


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_graph_covers_both_packages():
    edges = graph()
    assert "llm_infra.config.stack" in edges and "llm_infra.config.checks.cluster" in edges
    assert "llm_infra.components.serving.rayservice" in edges
    # the resolver sees relative, absolute and in-function imports (else an empty graph would pass)
    assert "llm_infra.config.checks.base" in edges["llm_infra.config.checks.cluster"]
    assert "llm_infra.components.serving.ray_observability" in edges["llm_infra.components.serving.rayservice"]
    assert "llm_infra.config.stack" in edges["llm_infra.components.serving.context"]


def test_no_import_circles():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_circle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]


def test_config_never_imports_components():
    """config is validated before any resource is declared: it must not need the components."""
    offenders = {
        name: sorted(t for t in targets if t.startswith("llm_infra.components"))
        for name, targets in graph().items()
        if name.startswith("llm_infra.config")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def python_files() -> list[Path]:
    skip = {".venv", ".venv-uv", ".venv-tools", "build", ".git", "node_modules"}
    return [p for p in sorted(ROOT.rglob("*.py")) if not skip & set(p.relative_to(ROOT).parts)]


@pytest.mark.parametrize("bare", ["components", "config"])
def test_no_bare_top_level_imports(bare):
    """The subpackages install as llm_infra.components / llm_infra.config; the bare names only
    resolve from the repository root and would load second copies of every module."""
    found = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            if isinstance(node, ast.stmt) and any(n == bare or n.startswith(bare + ".") for n in names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
