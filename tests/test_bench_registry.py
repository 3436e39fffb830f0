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
