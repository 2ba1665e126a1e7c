"""The code's shape: paths are imports, imports go one way, plugins use only the public API."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import biobench
import biobench_plugins

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "benchmark" / "biobench"
PLUGINS = REPO / "plugins" / "biobench_plugins"


def _module_name(path: Path, root: Path, package: str) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((package, *parts))


def _modules(root: Path, package: str) -> dict[str, Path]:
    return {_module_name(p, root, package): p for p in sorted(root.rglob("*.py"))}


def _is_module(name: str, known: dict[str, Path]) -> bool:
    return name in known


def _imported(path: Path, known: dict[str, Path]) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every biobench import in ``path``, anywhere in it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0].startswith("biobench")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0].startswith("biobench"):
                found.append((node.module, [a.name for a in node.names], node.lineno))
    return found


def _edges(known: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for module, names, _ in _imported(path, known):
            targets = [f"{module}.{n}" for n in names if _is_module(f"{module}.{n}", known)]
            if len(targets) < len(names) or not names:
                targets.append(module)
            graph[name].update(t for t in targets if t in known and t != name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def test_import_names_are_the_paths_on_disk():
    assert Path(biobench.__file__).resolve() == CORE / "__init__.py"
    assert Path(biobench_plugins.__file__).resolve() == PLUGINS / "__init__.py"
    for name, path in {**_modules(CORE, "biobench"), **_modules(PLUGINS, "biobench_plugins")}.items():
        assert Path(importlib.import_module(name).__file__).resolve() == path.resolve(), name


def test_there_is_no_import_cycle_inside_the_package():
    graph = _edges(_modules(CORE, "biobench"))
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_uses_another_modules_private_names():
    known = {**_modules(CORE, "biobench"), **_modules(PLUGINS, "biobench_plugins")}
    problems = []
    for name, path in known.items():
        tree = ast.parse(path.read_text())
        aliases = {}
        for module, names, line in _imported(path, known):
            problems += [f"{name}:{line} imports {module}.{n}" for n in names if n.startswith("_") and module != name]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("biobench"):
                for a in node.names:
                    if f"{node.module}.{a.name}" in known:
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in known and a.asname:
                        aliases[a.asname] = a.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.attr.startswith("_") and not node.attr.startswith("__")
            ):
                problems.append(f"{name}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert problems == []


def test_internal_modules_do_not_import_the_public_facade():
    known = _modules(CORE, "biobench")
    offenders = [
        f"{name}:{line} takes {names} from biobench"
        for name, path in known.items() if name != "biobench"
        for module, names, line in _imported(path, known)
        if module == "biobench" and any(f"biobench.{n}" not in known for n in names)
    ]
    assert offenders == []


def test_plugins_import_only_the_public_api_and_never_each_other():
    known = _modules(PLUGINS, "biobench_plugins")
    offenders = []
    for name, path in known.items():
        for module, _, line in _imported(path, known):
            if module != "biobench":
                offenders.append(f"{name}:{line} imports {module}")
    assert offenders == []


def test_every_public_name_of_the_facade_exists():
    for name in biobench.__all__:
        assert hasattr(biobench, name), name
