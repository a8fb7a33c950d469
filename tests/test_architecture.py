"""The packages' layers: `entropy` (entropy coding of tokens) imports nothing from `encodec_fx`, which
builds the codec and file compression on it, and no module's imports lead back to itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.util import resolve_name
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("entropy", "encodec_fx")


def package_modules() -> dict[str, Path]:
    """Module name → file, for every module of both packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, inside functions too, except those under `if TYPE_CHECKING:` (which
    never run)."""
    found, pending = [], [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return found


def imported_modules(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of both packages that `module` imports; `from package import x` counts as the
    module package.x where there is one, else as the package."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = resolve_name("." * node.level + (node.module or ""), package) if node.level else node.module
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        for name in names:
            while name and name not in modules:  # a name inside a module, or a module of another package
                name = name.rpartition(".")[0]
            found.add(name)
    return found - {"", module}


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {module: imported_modules(module, path, modules) for module, path in modules.items()}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = "open", path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node], _ = "done", path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_entropy_imports_nothing_from_encodec_fx():
    offending = {module: sorted(target for target in targets if target.partition(".")[0] == "encodec_fx")
                 for module, targets in import_graph().items() if module.partition(".")[0] == "entropy"}
    assert not {module: targets for module, targets in offending.items() if targets}


def test_the_import_graph_has_no_cycles():
    graph = import_graph()
    assert any(target.startswith("entropy") for module in graph if module.startswith("encodec_fx")
               for target in graph[module])  # the graph does see imports across the packages
    assert cycle(graph) is None, " → ".join(cycle(graph))


def test_entropy_loads_no_encodec_fx_module():
    """Every module and public name of `entropy` (its lazy ones too) loads without `encodec_fx`."""
    modules = [module for module in package_modules() if module.startswith("entropy")]
    script = (f"import importlib, sys, entropy\nfor name in {modules!r}: importlib.import_module(name)\n"
              "[getattr(entropy, name) for name in entropy.__all__]\n"
              "print(sorted(m for m in sys.modules if m.partition('.')[0] == 'encodec_fx'))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]"
