"""No import cycle inside actjepa_core / actjepa_ros: every import of one of our modules by
another (module level and inside functions, `import a.b` and `from a import b`) is an edge, and
the graph has no cycle. A cycle means two modules that cannot be understood, tested or moved
apart; it usually hides a concern in the wrong place (a config that imports the models, a policy
that loads the trainer)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("actjepa_core", "actjepa_ros")


def module_files() -> dict[str, Path]:
    """Module name -> file, for every .py file of the packages (a package is its __init__)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_names(path: Path, module: str, is_package: bool) -> set[str]:
    """Every module name an import statement anywhere in the file can load (absolute names;
    `from a import b` yields both `a` and `a.b`, as b may be a submodule)."""
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> our modules it imports. Importing `a.b.c` runs `a` and `a.b` first, so an edge
    goes to the module itself and to every package above it (except the module's own
    ancestors, which are always loaded before it and are not a cycle of its making)."""
    files = module_files()
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets: set[str] = set()
        for name in imported_names(path, module, path.name == "__init__.py"):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                target = ".".join(parts[:i])
                if target in files and target != module and not module.startswith(target + "."):
                    targets.add(target)
        graph[module] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_cycle_finder_finds_a_cycle_and_only_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from . import sib\nfrom .sub import x\ndef f():\n    import pkg.other\n")
    names = imported_names(source, "pkg.m", is_package=False)
    assert {"pkg.sib", "pkg.sub", "pkg.sub.x", "pkg.other"} <= names


def test_the_graph_covers_both_packages():
    graph = import_graph()
    assert "actjepa_core.training.trainer" in graph and "actjepa_ros.policy_node" in graph
    assert "actjepa_core.config" in graph["actjepa_core.training.trainer"]


def test_no_import_cycle_inside_the_packages():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles (modules that import one another):\n" + "\n".join(
        "  " + " <-> ".join(cycle) for cycle in cycles)


def test_a_policy_loads_without_the_trainer():
    """The policy node loads policies; the trainer (optimizer, data loaders, DDP) is not its
    business, and neither are the objectives' names checked by a config."""
    code = ("import sys, actjepa_core.policies, actjepa_core.config; "
            "print('actjepa_core.training.trainer' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.strip() == "False"


def test_the_raw_objective_head_is_the_bc_policy_default_head():
    from actjepa_core.config import TrainConfig
    from actjepa_core.objectives.raw import RawBC
    from actjepa_core.policies.configs import BCConfig

    config = TrainConfig()
    objective = RawBC({"state": (5,)}, 3, config)
    widths = [m.out_features for m in objective.head if hasattr(m, "out_features")]
    assert widths == [*BCConfig().hidden, 3]


def test_the_packages_never_import_the_experiments():
    """experiments/ is not installed: a package module that imported it would break every
    installed copy."""
    offenders = sorted(module for module, path in module_files().items()
                       if any(name == "experiments" or name.startswith("experiments.")
                              for name in imported_names(path, module,
                                                         path.name == "__init__.py")))
    assert not offenders, f"{offenders} import experiments/"
