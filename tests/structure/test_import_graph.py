"""The layering of pyplatform's packages, from the source (issue 19: "No import circle among
pyplatform packages ... and no domain package importing the CLI, the bench package or api.py").

Nodes are the top-level subpackages and top-level modules of ``pyplatform`` (``store``,
``research``, ``api``, ``demo`` ...; ``pyplatform`` itself for the root ``__init__``). Every
import statement counts, at module level or inside a function (a lazy import still ties the
layers together), absolute or relative.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "pyplatform"

#: The edges of the platform: they may import anything, nothing in the domain imports them.
EDGES = {"cli", "bench", "api"}
#: Not domain packages either: the root package (whose lazy verbs come from ``api``).
NOT_DOMAIN = EDGES | {"pyplatform", "__main__"}


def _module_name(path: Path, root: Path) -> list[str]:
    rel = path.relative_to(root.parent).with_suffix("").parts
    return list(rel[:-1]) if rel[-1] == "__init__" else list(rel)


def _node(parts: list[str]) -> str:
    """``pyplatform.store.embedded`` -> ``store``; ``pyplatform`` -> ``pyplatform``."""
    return parts[1] if len(parts) > 1 else "pyplatform"


def _targets(node: ast.AST, module: list[str], is_package: bool, root: Path) -> list[list[str]]:
    """The pyplatform modules an import statement names (as dotted parts)."""
    if isinstance(node, ast.Import):
        return [a.name.split(".") for a in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = module if is_package else module[:-1]
        base = base[:len(base) - (node.level - 1)]
        mod = base + (node.module.split(".") if node.module else [])
    else:
        mod = (node.module or "").split(".")
    if mod == [root.name]:
        # ``from pyplatform import x``: a submodule when there is one, else the root's attribute
        return [mod + [a.name] if (root / a.name).exists() or (root / f"{a.name}.py").exists() else mod
                for a in node.names]
    return [mod]


def import_edges(root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    """``{(from node, to node): ["file:line  statement", ...]}`` for every cross-node import."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        src = _node(module)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _targets(node, module, path.name == "__init__.py", root):
                if not target or target[0] != root.name:
                    continue
                dst = _node(target)
                if dst != src:
                    where = f"{path.relative_to(root.parent)}:{node.lineno}  {ast.unparse(node)}"
                    edges[(src, dst)].append(where)
    return dict(edges)


def cycles(edges: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative), sorted."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
        graph[b]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
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
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return sorted(out)


def _report(edges, pairs) -> str:
    lines = []
    for a, b in sorted(pairs):
        lines.append(f"  {a} -> {b}:")
        lines.extend(f"      {w}" for w in edges[(a, b)])
    return "\n".join(lines)


def cycle_report(edges) -> str:
    parts = []
    for comp in cycles(edges):
        inside = [(a, b) for (a, b) in edges if a in comp and b in comp]
        parts.append(f"cycle among {comp}:\n{_report(edges, inside)}")
    return "\n".join(parts)


def forbidden(edges) -> list[tuple[str, str]]:
    """Domain packages importing the CLI, the bench package or the notebook API."""
    return sorted((a, b) for (a, b) in edges if b in EDGES and a not in NOT_DOMAIN)


def test_no_import_cycle_among_pyplatform_packages():
    edges = import_edges()
    report = cycle_report(edges)
    assert not report, "import cycles between pyplatform packages (edge: file:line statement):\n" + report


def test_domain_packages_do_not_import_cli_bench_or_api():
    edges = import_edges()
    bad = forbidden(edges)
    assert not bad, ("domain packages import the platform's edges (cli, bench, api); move the shared "
                     "code down instead:\n" + _report(edges, bad))


def test_the_walker_sees_lazy_relative_and_root_imports(tmp_path):
    """The checks can fail: a fake package with a cycle made of a function-level relative import
    and a ``from pyplatform import x``, and a domain module importing the API."""
    pkg = tmp_path / "pyplatform"
    (pkg / "low").mkdir(parents=True)
    (pkg / "high").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "api.py").write_text("from pyplatform.high import thing\n")
    (pkg / "low" / "__init__.py").write_text("")
    (pkg / "low" / "a.py").write_text("def f():\n    from ..high import b\n    return b\n")
    (pkg / "high" / "__init__.py").write_text("")
    (pkg / "high" / "b.py").write_text("from pyplatform import low\n\n\ndef g():\n    import pyplatform.api\n")
    edges = import_edges(pkg)
    assert set(edges) == {("low", "high"), ("high", "low"), ("high", "api"), ("api", "high")}
    assert cycles(edges) == [["api", "high", "low"]]
    report = cycle_report(edges)
    assert "pyplatform/low/a.py:2  from ..high import b" in report
    assert "pyplatform/high/b.py:1  from pyplatform import low" in report
    assert forbidden(edges) == [("high", "api")]
