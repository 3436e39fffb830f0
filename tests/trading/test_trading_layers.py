"""Layering: pyplatform.execution imports pyplatform.risk, never the other way round.

Risk and execution used to import each other (``risk.manager`` took the order messages from
execution, ``execution.node`` the risk manager from risk). Prices and positions now live in
``pyplatform.risk.market.MarketState`` and risk reads orders through a protocol, so the
dependency goes one way. These tests walk the source (every import, also the ones inside
functions) and import each module in a fresh module table, so an import added back fails.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pyplatform

ROOT = Path(pyplatform.__file__).parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (absolute names)."""
    return _imports_of(path.read_text(), _module_name(path), path.name == "__init__.py")


def _imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    here = module.split(".")
    package = here if is_package else here[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)  # ``from pkg import submodule``
    return out


def _package_edges(top: str) -> dict[str, set[str]]:
    """``module -> imported pyplatform modules`` for every module under ``pyplatform.<top>``."""
    return {_module_name(p): {m for m in _imports(p) if m.startswith("pyplatform.")}
            for p in sorted((ROOT / top).rglob("*.py"))}


def test_no_module_of_risk_imports_execution():
    bad = {mod: sorted(m for m in deps if m == "pyplatform.execution" or m.startswith("pyplatform.execution."))
           for mod, deps in _package_edges("risk").items()}
    bad = {k: v for k, v in bad.items() if v}
    assert bad == {}, f"pyplatform.risk must not import pyplatform.execution (it imports risk): {bad}"


def test_the_walker_sees_the_one_allowed_direction():
    # execution -> risk exists (the node composes a RiskManager, positions live in MarketState):
    # if the walker found no edge at all, the test above would pass for the wrong reason
    edges = _package_edges("execution")
    assert "pyplatform.risk.manager" in edges["pyplatform.execution.node"]
    assert "pyplatform.risk.market" in edges["pyplatform.execution.positions"]


def test_walker_finds_relative_lazy_and_plain_imports():
    src = ("from ..execution import messages\n"
           "def f():\n    from .market import MarketState\n"
           "import pyplatform.execution.oms as o\n")
    found = _imports_of(src, "pyplatform.risk.manager")
    assert {"pyplatform.execution", "pyplatform.execution.messages", "pyplatform.risk.market",
            "pyplatform.execution.oms"} <= found
    assert _imports_of("from . import market\n", "pyplatform.risk", is_package=True) >= {"pyplatform.risk.market"}


_FRESH = r"""
import importlib, sys
mods = sys.argv[1:]
for name in mods:
    for m in [m for m in sys.modules if m == "pyplatform" or m.startswith("pyplatform.")]:
        del sys.modules[m]
    importlib.import_module(name)  # a cycle shows as ImportError on a partly initialised module
    if name.startswith("pyplatform.risk"):
        leaked = sorted(m for m in sys.modules if m.startswith("pyplatform.execution"))
        assert not leaked, f"importing {name} loaded {leaked}"
print("ok", len(mods))
"""


def test_each_module_imports_alone_in_a_fresh_module_table():
    names = sorted(set(_package_edges("risk")) | set(_package_edges("execution")))
    r = subprocess.run([sys.executable, "-c", _FRESH, *names], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == ["ok", str(len(names))]
