"""The bench command registry: every listed module exists and adds its commands."""

import importlib

import pytest
import typer
from typer.testing import CliRunner


def test_every_bench_module_registers_commands():
    from pyplatform.cli import bench

    for name in bench.BENCH_MODULES:
        mod = importlib.import_module(name)
        probe = typer.Typer()
        before = len(probe.registered_commands) + len(probe.registered_groups)
        mod.register(probe)
        after = len(probe.registered_commands) + len(probe.registered_groups)
        assert after > before, f"{name}.register added no command"


def test_help_lists_commands_of_each_area():
    from pyplatform.cli.main import app

    out = CliRunner().invoke(app, ["bench", "--help"]).output
    for command in ("history", "trading", "backtest", "research", "soak"):
        assert command in out, f"bench {command} missing from help:\n{out}"


def test_missing_bench_module_is_an_error(monkeypatch):
    from pyplatform.cli import bench

    monkeypatch.setattr(bench, "BENCH_MODULES", ["pyplatform.nope.bench"])
    with pytest.raises(ImportError, match="pyplatform.nope.bench"):
        bench._register_modules()


def test_bench_history_quick_from_the_cli():
    from pyplatform.cli.main import app

    r = CliRunner().invoke(app, ["bench", "history", "--quick", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "last bar of every symbol at a time" in r.output and "DuckDB into Arrow" in r.output


def _bench_commands():
    import typer.main

    from pyplatform.cli import bench

    return typer.main.get_group(bench.app).commands


def test_every_bench_command_has_a_quick_form():
    missing = [name for name, cmd in _bench_commands().items()
               if "--quick" not in {opt for p in cmd.params for opt in p.opts}]
    assert not missing, f"bench commands without --quick: {missing}"


def test_listing_the_bench_commands_imports_no_numeric_library():
    """``pyplatform --help`` (and every command's start) pays for the bench registry: the bench
    modules import NumPy, pandas, Arrow and the domain code only when a benchmark runs."""
    import subprocess
    import sys

    code = ("import sys, pyplatform.cli.bench; "
            "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_no_production_function_takes_a_naive_flag():
    """Baselines are functions or subclasses in pyplatform.bench, never a flag of production code."""
    import ast
    from pathlib import Path

    import pyplatform

    root = Path(pyplatform.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        if path.relative_to(root).parts[0] == "bench":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
                found += [f"{path.relative_to(root)}:{node.lineno} {node.name}({n})" for n in names if "naive" in n]
    assert not found, found
