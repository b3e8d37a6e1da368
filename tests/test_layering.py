"""The layering contract, read from the source with ``ast``: no import cycles, and a device side without torch.

Every ``import`` in every module under ``feredge/`` counts — top level, inside functions and under
``if TYPE_CHECKING:`` — because a function-level import that dodges a cycle still ties the two
modules together (neither can be moved or tested without the other). ``from pkg import name`` is an
edge to ``pkg.name`` when that is a module, else to ``pkg``. Imports by computed name
(``importlib.import_module``: the back-end rows' runner and build references, the default bundle's
fallback export, the model-family discovery) are not edges: they are the plugin points.

Device side (:data:`DEVICE_SIDE`: what a Jetson runs from a bundle) must never import the training
side: neither its packages (torch, ModelOpt, NNCF, ONNX tooling, …) nor feredge's export, train,
quantize, models, checkpoint and calibration. Two checks: no device-side module imports any of them
at all (:data:`DEVICE_SIDE_EXCEPTIONS` lists the one module that legitimately does), and importing a
device-side module never runs such an import (module-level imports followed through every feredge
module, parent packages included) — the static twin of tests/test_torch_free.py.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: What runs on the device from a bundle: packages and modules (a name covers its submodules).
DEVICE_SIDE = ("feredge.backends", "feredge.runtimes", "feredge.preprocess", "feredge.video", "feredge.bundle",
               "feredge.parity", "feredge.errors", "feredge.fileio", "feredge.dirswap", "feredge.labels",
               "feredge.serve", "feredge.default_bundle", "feredge.progress")
#: Distributions of the ``train`` and ``int8`` extras (pyproject.toml), by import name.
TRAINING_PACKAGES = frozenset({"torch", "torchvision", "safetensors", "onnx", "onnxscript", "onnxconverter_common",
                               "modelopt", "nncf", "skimage"})
#: feredge's training/export side.
TRAINING_MODULES = ("feredge.export", "feredge.train", "feredge.quantize", "feredge.models", "feredge.checkpoint",
                    "feredge.calibration")
#: module → the forbidden imports it may make, and why.
DEVICE_SIDE_EXCEPTIONS: dict[str, tuple[frozenset[str], str]] = {
    "feredge.runtimes.torch_runner": (frozenset({"torch", "safetensors", "feredge.models"}),
                                      "the PyTorch back end: the reference runner, imported only when asked for "
                                      "by name (runtimes.registry), and only inside activate()"),
}


@dataclass(frozen=True)
class Import:
    target: str  # a feredge module, or the top-level name of another package
    line: int
    top_level: bool  # runs when the module is imported (not inside a function or under TYPE_CHECKING)
    internal: bool


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: list[Import] = field(default_factory=list)


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.Module) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it runs at import time (module body, not in a def or TYPE_CHECKING)."""
    stack: list[tuple[ast.AST, bool]] = [(tree, True)]
    while stack:
        node, runs = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, runs
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack += [(child, False) for child in node.body] + [(child, runs) for child in node.orelse]
            continue
        inside = runs and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        stack += [(child, inside) for child in ast.iter_child_nodes(node)]


def scan(root: Path, package: str = "feredge") -> dict[str, Module]:
    """Every module of ``root/package`` with its imports, feredge targets resolved to modules."""
    modules: dict[str, Module] = {}
    for path in sorted((root / package).rglob("*.py")):
        name, is_package = _module_name(path, root)
        modules[name] = Module(name, path, is_package)

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    for module in modules.values():
        tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
        here = module.name if module.is_package else module.name.rpartition(".")[0]
        for node, runs in _import_nodes(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
                found = [(t, resolve(t)) if t.split(".")[0] == package else (t, None) for t in targets]
            else:
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                if base.split(".")[0] == package:
                    found = [(base, f"{base}.{a.name}" if f"{base}.{a.name}" in modules else resolve(base))
                             for a in node.names]
                else:
                    found = [(base, None)]
            for raw, internal in found:
                if internal is not None:
                    if internal != module.name:
                        module.imports.append(Import(internal, node.lineno, runs, True))
                elif raw.split(".")[0] != package and raw != "__future__":
                    module.imports.append(Import(raw.split(".")[0], node.lineno, runs, False))
    return modules


def edges(modules: dict[str, Module]) -> dict[str, set[str]]:
    return {name: {i.target for i in module.imports if i.internal} for name, module in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The components of more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
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
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle through the component's first module, ``[a, b, ..., a]``: the shortest (BFS)."""
    members, start = set(component), component[0]
    parent: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node] & members):
            if child == start:
                path = [node]
                while (previous := parent[path[-1]]) is not None:
                    path.append(previous)
                return [*reversed(path), start]
            if child not in parent:
                parent[child] = node
                queue.append(child)
    raise AssertionError(f"{component} is not a cycle")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    return [a_cycle(graph, component) for component in strongly_connected(graph)]


def _within(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _training_import(target: str, internal: bool) -> bool:
    return _within(target, TRAINING_MODULES) if internal else target in TRAINING_PACKAGES


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return scan(ROOT)


# --- the analyser itself finds what it must -------------------------------------------------------

def test_the_scanner_counts_function_level_and_type_checking_imports(tmp_path):
    pkg = tmp_path / "feredge"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from feredge.sub.b import thing\n")
    (pkg / "a.py").write_text("def f():\n    from feredge.sub import b\n    import torch\n")
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                      "    from feredge.a import f\nthing = 1\nfrom . import c\n")
    (pkg / "sub" / "c.py").write_text("import numpy as np\nfrom feredge.sub import thing\n")
    found = scan(tmp_path)
    graph = edges(found)
    assert graph == {"feredge": set(), "feredge.sub": {"feredge.sub.b"}, "feredge.a": {"feredge.sub.b"},
                     "feredge.sub.b": {"feredge.a", "feredge.sub.c"}, "feredge.sub.c": {"feredge.sub"}}
    assert [(i.target, i.top_level) for i in found["feredge.a"].imports if not i.internal] == [("torch", False)]
    assert {(i.target, i.top_level) for i in found["feredge.sub.b"].imports} == {("feredge.a", False),
                                                                                  ("typing", True),
                                                                                  ("feredge.sub.c", True)}
    assert strongly_connected(graph) == [["feredge.a", "feredge.sub", "feredge.sub.b", "feredge.sub.c"]]
    assert cycles(graph) == [["feredge.a", "feredge.sub.b", "feredge.a"]]  # the shortest through the first
    assert cycles({"x": {"y"}, "y": {"z"}, "z": {"x"}, "w": {"x"}}) == [["x", "y", "z", "x"]]
    assert cycles({"x": {"y"}, "y": set()}) == []


# --- the contract -----------------------------------------------------------------------------------

def test_no_import_cycles_beyond_the_pending_export_quantize_edges(modules):
    found = [" -> ".join(cycle) for cycle in cycles(edges(modules))]
    assert not found, "import cycles (function-level and TYPE_CHECKING imports count):\n" + "\n".join(found)


def test_device_side_never_imports_the_training_side(modules):
    device = [m for m in modules.values() if _within(m.name, DEVICE_SIDE)]
    assert {"feredge.runtimes.tensorrt.runner", "feredge.runtimes.tensorrt.builder", "feredge.bundle",
            "feredge.preprocess.detect", "feredge.video.processor"} <= {m.name for m in device}
    bad = []
    for module in device:
        allowed, _why = DEVICE_SIDE_EXCEPTIONS.get(module.name, (frozenset(), ""))
        bad += [f"{module.name}:{i.line} imports {i.target}" for i in module.imports
                if _training_import(i.target, i.internal) and i.target not in allowed]
    assert not bad, "device-side modules import the training side:\n" + "\n".join(bad)


def test_device_side_exceptions_are_still_needed(modules):
    for name, (allowed, _why) in DEVICE_SIDE_EXCEPTIONS.items():
        used = {i.target for i in modules[name].imports}
        assert allowed <= used, f"{name} no longer imports {sorted(allowed - used)}: drop it from the exceptions"


def test_importing_the_device_side_never_runs_a_training_import(modules):
    """Module-level imports followed through every feredge module reached, parent packages included."""
    run_at_import = {name: [i for i in m.imports if i.top_level] for name, m in modules.items()}
    bad = []
    for start in sorted(n for n in modules if _within(n, DEVICE_SIDE)):
        came_from: dict[str, str | None] = {start: None}
        queue = deque([start])
        while queue:
            name = queue.popleft()
            nexts = [p for p in _parents(name) if p in modules]
            for imp in run_at_import[name]:
                if _training_import(imp.target, imp.internal):
                    chain = [name]
                    while (parent := came_from[chain[-1]]) is not None:
                        chain.append(parent)
                    bad.append(" -> ".join([*reversed(chain), imp.target]))
                if imp.internal:
                    nexts += [imp.target, *(p for p in _parents(imp.target) if p in modules)]
            for child in nexts:
                if child not in came_from:
                    came_from[child] = name
                    queue.append(child)
    assert not bad, "importing the device side runs training-side imports:\n" + "\n".join(sorted(set(bad)))


def test_nothing_under_runtimes_imports_export(modules):
    bad = [f"{m.name}:{i.line} imports {i.target}" for m in modules.values() if _within(m.name, ["feredge.runtimes"])
           for i in m.imports if i.internal and _within(i.target, ["feredge.export"])]
    assert not bad, "\n".join(bad)
