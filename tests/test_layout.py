"""The package's layout: every module has a test module of its own, and the modules' imports form no cycle.

The import walk reads each module's source (``ast``): every ``import`` and ``from ... import``, inside functions too,
relative ones resolved. ``from package import name`` imports the submodule ``package.name`` when there is one, else
the package's ``__init__``. Importing ``a.b.c`` also runs the ``__init__`` of ``a.b`` unless the importer is inside
``a.b`` already. ``importlib.import_module`` calls (the root package's lazy names) are not seen.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Optional, Set

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "paddle_dynafast"
TESTS = ROOT / "tests"

TESTED_ELSEWHERE = {
    # the configuration dataclasses, tested together (bad values named, JSON round trips)
    "config/analysis.py": "test_config.py",
    "config/base.py": "test_config.py",
    "config/data.py": "test_config.py",
    "config/pipeline.py": "test_config.py",
    "config/train.py": "test_config.py",
    "config/runtime.py": "test_config_runtime.py",  # the configs of the commands that run an export
}
"""Modules whose tests live in another module's test file. ``__init__`` (re-exports and documentation) and
``__main__`` (``python -m``, which runs the command line) have none by rule."""


def package_modules(package_dir: Path) -> Dict[str, Path]:
    """Every module of the package by dotted name; a package is its ``__init__``."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def expected_test_module(module: Path, package_dir: Path, modules: List[Path]) -> str:
    """``test_cli_<command>.py`` for a module of the command line; else ``test_<name>.py``, in a subpackage
    ``test_<subpackage>_<name>.py`` when another module (not a command's) has the same name."""
    relative = module.relative_to(package_dir)
    if relative.parts[0] == "cli":
        return f"test_cli_{module.stem}.py"
    same_name = [m for m in modules if m.stem == module.stem and m != module
                 and m.relative_to(package_dir).parts[0] != "cli"]
    if len(relative.parts) > 1 and same_name:
        return f"test_{'_'.join(relative.parent.parts)}_{module.stem}.py"
    return f"test_{module.stem}.py"


def test_every_module_has_its_test_module():
    modules = [m for m in sorted(PACKAGE.rglob("*.py")) if m.stem not in ("__init__", "__main__")]
    missing = []
    for module in modules:
        relative = module.relative_to(PACKAGE).as_posix()
        expected = TESTED_ELSEWHERE.get(relative) or expected_test_module(module, PACKAGE, modules)
        if not (TESTS / expected).is_file():
            missing.append(f"paddle_dynafast/{relative}: no tests/{expected}")
    assert not missing, "\n".join(missing)
    stale = sorted(name for name in TESTED_ELSEWHERE if not (PACKAGE / name).is_file())
    assert not stale, f"TESTED_ELSEWHERE names modules that are gone: {stale}"


def import_graph(package_dir: Path) -> Dict[str, Set[str]]:
    """Every module of the package -> the modules of the package that importing it runs (see the module docstring)."""
    modules = package_modules(package_dir)
    graph = {}
    for name, path in modules.items():
        own_package = name if path.stem == "__init__" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = own_package.split(".")[:len(own_package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module
                for alias in node.names:
                    targets.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source)
        inside = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}  # itself and its packages
        edges = set()
        for target in targets:
            parts = target.split(".")
            for i in range(1, len(parts) + 1):  # the module and every package above it not yet being imported
                ancestor = ".".join(parts[:i])
                if ancestor in modules and (ancestor == target or ancestor not in inside):
                    edges.add(ancestor)
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """A cycle ``[a, b, ..., a]`` of ``graph``, or None."""
    state: Dict[str, str] = {}
    path: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = "open"
        path.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                return path[path.index(child):] + [child]
            if child not in state:
                found = visit(child)
                if found:
                    return found
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_imports_no_cycle():
    graph = import_graph(PACKAGE)
    assert "paddle_dynafast.runtime.choose" in graph["paddle_dynafast.runtime.auto"]  # the walk sees the imports
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def write_package(root: Path, files: Dict[str, str]) -> Path:
    for name, source in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(source)
    return root / "pkg"


def test_the_walk_finds_a_cycle_through_an_import_inside_a_function(tmp_path):
    package = write_package(tmp_path, {
        "pkg/__init__.py": "from .a import x\nfrom .b import y\n",  # re-exports: no cycle by themselves
        "pkg/a.py": "from .b import y\nx = 1\n",
        "pkg/b.py": "import os\n\ny = 2\n\ndef later():\n    from pkg import a\n    return a\n",
    })
    graph = import_graph(package)
    assert graph == {"pkg": {"pkg.a", "pkg.b"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]


def test_importing_into_another_subpackage_runs_its_init(tmp_path):
    package = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from .sub.d import z\n",  # runs pkg/sub/__init__.py, which imports c, which imports a
        "pkg/sub/__init__.py": "from .c import w\n",
        "pkg/sub/c.py": "from .. import a\nfrom . import d\nw = 1\n",
        "pkg/sub/d.py": "from ..sub import c\nz = 2\n",  # inside pkg.sub already: its __init__ is not run again
    })
    graph = import_graph(package)
    assert graph["pkg.a"] == {"pkg.sub", "pkg.sub.d"} and graph["pkg.sub.d"] == {"pkg.sub.c"}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub", "pkg.sub.c", "pkg.a"]
    (tmp_path / "pkg" / "sub" / "c.py").write_text("w = 1\n")
    assert find_cycle(import_graph(package)) is None


def test_the_test_module_names():
    modules = [PACKAGE / "config" / "base.py", PACKAGE / "runtime" / "base.py", PACKAGE / "runtime" / "serve.py",
               PACKAGE / "pipeline.py", PACKAGE / "config" / "pipeline.py"]
    assert [expected_test_module(m, PACKAGE, modules) for m in modules] == [
        "test_config_base.py", "test_runtime_base.py", "test_serve.py", "test_pipeline.py", "test_config_pipeline.py"]
