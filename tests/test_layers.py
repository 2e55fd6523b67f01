"""The layers of the tree hold: who may import whom, and no import cycle.

docs/architecture.md draws the layers: the front end (voxasm), formats and ISA
(voxvm.isa, .formats, .program, .errors, ...), the machine, the backends
(reference and compiled), the host natives, and the command line on top. The
import graph is read statically from the sources (module-level and lazy
imports alike, so a lazy import cannot hide an upward arrow).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

PACKAGES = ("voxvm", "voxasm")

# What the assembler may use of the VM package: the shared lower layers only.
VOXASM_MAY_IMPORT = {"voxvm", "voxvm.isa", "voxvm.tags", "voxvm.records", "voxvm.program", "voxvm.formats",
                     "voxvm.vvefile", "voxvm.errors", "voxvm.values", "voxvm.debugmap", "voxvm.dataseg",
                     "voxvm.syntax", "voxvm.stdstreams"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _python_imports(path: Path) -> str:
    text = path.read_text()
    if path.suffix != ".pyx":
        return text
    # Cython: only its plain Python import lines matter here (cimports are C-level).
    return "\n".join(line for line in text.splitlines()
                     if line.startswith(("from ", "import ")) and " cimport " not in line)


def _import_graph() -> dict[str, set[str]]:
    files = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*"):
            if path.suffix in (".py", ".pyx"):
                files[_module_name(path)] = path
    graph = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(_python_imports(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    targets.add(candidate if candidate in files else base)
        graph[module] = {t for t in targets if t in files and t != module}
    return graph


GRAPH = _import_graph()


def test_the_graph_was_read():
    assert "voxvm.machine" in GRAPH and "voxasm.assembler" in GRAPH
    assert "voxvm.host.io" in GRAPH["voxvm.machine"]


def test_only_the_command_line_and_the_embedding_api_import_the_assembler():
    offenders = {m for m, deps in GRAPH.items()
                 if m.startswith("voxvm") and not m.startswith(("voxvm.cli", "voxvm.embed"))
                 and any(d.startswith("voxasm") for d in deps)}
    assert not offenders, f"runtime modules reaching up into voxasm: {sorted(offenders)}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("voxasm")))
def test_the_assembler_uses_only_the_shared_lower_layers(module):
    used = {d for d in GRAPH[module] if d.startswith("voxvm")}
    assert used <= VOXASM_MAY_IMPORT, f"{module} imports {sorted(used - VOXASM_MAY_IMPORT)}"


def test_backends_and_host_do_not_import_the_machine_or_the_command_line():
    for module, deps in GRAPH.items():
        if module.startswith(("voxvm.backends", "voxvm.host")):
            upward = {d for d in deps if d.startswith(("voxvm.machine", "voxvm.cli"))}
            assert not upward, f"{module} imports {sorted(upward)}"


def test_no_import_cycle():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:       # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in GRAPH[node]:
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
                cycles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"
