"""The import graph of ``mint_rl`` runs one way: no cycles, and lower layers never import higher ones.

Every ``import`` statement of every module counts, the lazy ones inside functions included
(a lazy import hides a cycle from the interpreter, not from a reader).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mint_rl"


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(module: str, level: int, current: str, is_package: bool) -> str:
    if level == 0:
        return module
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _is_extension(package: Path, module: str) -> bool:
    """Whether ``module`` is a compiled extension (``mint_rl._C``) rather than Python source."""
    rel = Path(*module.split(".")[1:])
    folder = package / rel.parent
    return folder.is_dir() and any(folder.glob(f"{rel.name}.*.so")) or any(folder.glob(f"{rel.name}.*.pyd"))


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the ``mint_rl`` modules it imports (``from a.b import c`` counts ``a.b.c`` if it is a module)."""
    files = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node.module or "", node.level, name, path.name == "__init__.py")
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in files:
                        targets.append(sub)
                    elif not _is_extension(package, sub):  # `from mint_rl import _C` is no edge to the package
                        targets.append(base)
            for t in targets:
                if t.split(".")[0] == "mint_rl" and t != name:
                    while t not in files and "." in t:  # a compiled module (mint_rl._C) or an attribute
                        t = t.rsplit(".", 1)[0]
                    if t in files and t != name:
                        graph[name].add(t)
    return graph


def third_party_imports(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> top-level names of everything it imports."""
    out: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        out[_module_name(path, package)] = names
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or ``None`` (iterative DFS, white/grey/black)."""
    colour = {n: 0 for n in graph}
    for root in sorted(graph):
        if colour[root]:
            continue
        stack = [(root, iter(sorted(graph[root])))]
        path = [root]
        colour[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour[child] == 1:
                return path[path.index(child):] + [child]
            elif colour[child] == 0:
                colour[child] = 1
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
    return None


def _in(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def test_find_cycle_finds_a_planted_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_graph_sees_lazy_imports(tmp_path):
    pkg = tmp_path / "mint_rl"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from mint_rl.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from .. import a\n")
    graph = import_graph(pkg)
    assert graph["mint_rl.a"] == {"mint_rl.sub.b"}
    assert graph["mint_rl.sub.b"] == {"mint_rl.a"}
    assert find_cycle(graph) is not None


def without_parent_package_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Drop the edges from a module to a package that contains it.

    A package's ``__init__`` imports its children, and a child importing its own package is no
    new dependency (Python imports the parent first anyway); every other edge stays.
    """
    return {m: {t for t in deps if not m.startswith(t + ".")} for m, deps in graph.items()}


def test_mint_rl_has_no_import_cycle():
    graph = without_parent_package_edges(import_graph())
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle in mint_rl: {' -> '.join(cycle)}"


LAYER_RULES = [
    # (importer layer, layers it must not import)
    ("mint_rl.coords", ["mint_rl.ops", "mint_rl.models", "mint_rl.losses", "mint_rl.training", "mint_rl.wrappers",
                        "mint_rl.policies", "mint_rl.envs", "mint_rl.experiments", "mint_rl.data", "mint_rl.viz"]),
    ("mint_rl.video", ["mint_rl.data", "mint_rl.viz", "mint_rl.models", "mint_rl.training"]),
    ("mint_rl.ops", ["mint_rl.models", "mint_rl.losses", "mint_rl.training", "mint_rl.wrappers", "mint_rl.policies"]),
    ("mint_rl.entropy", ["mint_rl.models", "mint_rl.losses", "mint_rl.training"]),
    ("mint_rl.models", ["mint_rl.losses", "mint_rl.training", "mint_rl.wrappers", "mint_rl.policies",
                        "mint_rl.envs", "mint_rl.experiments", "mint_rl.dynamics"]),
    ("mint_rl.losses", ["mint_rl.training", "mint_rl.wrappers", "mint_rl.policies", "mint_rl.experiments", "mint_rl.dynamics"]),
    ("mint_rl.metrics", ["mint_rl.training", "mint_rl.policies", "mint_rl.experiments", "mint_rl.dynamics"]),
    ("mint_rl.data", ["mint_rl.models", "mint_rl.losses", "mint_rl.training", "mint_rl.wrappers",
                      "mint_rl.policies", "mint_rl.experiments", "mint_rl.viz", "mint_rl.dynamics"]),
    ("mint_rl.wrappers", ["mint_rl.training", "mint_rl.policies", "mint_rl.experiments", "mint_rl.dynamics"]),
    ("mint_rl.policies", ["mint_rl.training", "mint_rl.envs", "mint_rl.experiments", "mint_rl.dynamics"]),
    ("mint_rl.envs", ["mint_rl.training", "mint_rl.policies", "mint_rl.experiments", "mint_rl.dynamics"]),
    ("mint_rl.training", ["mint_rl.policies", "mint_rl.experiments", "mint_rl.dynamics"]),
    # the information status sits beside the losses: it reads entropy and heatmaps, not the trainer or the agents
    ("mint_rl.status", ["mint_rl.training", "mint_rl.wrappers", "mint_rl.policies", "mint_rl.envs",
                        "mint_rl.experiments", "mint_rl.dynamics"]),
    # the inference path is a leaf beside ops: it folds any detector's layers without knowing the classes
    ("mint_rl.inference", ["mint_rl.models", "mint_rl.losses", "mint_rl.training", "mint_rl.wrappers",
                           "mint_rl.policies", "mint_rl.envs", "mint_rl.experiments", "mint_rl.dynamics",
                           "mint_rl.baselines", "mint_rl.detectors"]),
    # the baselines sit beside models (they reuse its output type), below the loader and the trainer
    ("mint_rl.baselines", ["mint_rl.losses", "mint_rl.training", "mint_rl.wrappers", "mint_rl.policies",
                           "mint_rl.envs", "mint_rl.experiments", "mint_rl.dynamics", "mint_rl.detectors"]),
    ("mint_rl.detectors", ["mint_rl.training", "mint_rl.wrappers", "mint_rl.policies", "mint_rl.envs",
                           "mint_rl.experiments", "mint_rl.dynamics"]),
    # dynamics is a top layer: it uses detectors, data, envs and the policies' network; only scripts use it
    ("mint_rl.dynamics", ["mint_rl.experiments", "mint_rl.wrappers"]),
]


@pytest.mark.parametrize("layer,forbidden", LAYER_RULES, ids=[r[0] for r in LAYER_RULES])
def test_lower_layers_never_import_higher_ones(layer, forbidden):
    graph = import_graph()
    members = [m for m in graph if _in(m, layer)]
    assert members, f"no module in layer {layer}"
    bad = sorted((m, t) for m in members for t in graph[m] if any(_in(t, f) for f in forbidden))
    assert not bad, f"{layer} imports a higher layer: {bad}"


def test_only_viz_imports_matplotlib():
    users = sorted(m for m, names in third_party_imports().items() if "matplotlib" in names)
    assert users == ["mint_rl.viz"], users
