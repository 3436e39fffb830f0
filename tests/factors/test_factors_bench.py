"""The benchmark command runs end to end on a tiny market (no timing assertions)."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from pyplatform.bench.engine import bench_factors, generate_tick_batches, register


def test_bench_factors_are_library_factors_on_tick_columns():
    f20 = bench_factors(20)
    assert len(f20) == 20 and "trade_sign_imbalance_50" in f20
    assert "close" not in " ".join(f20.values())
    b = generate_tick_batches(7, 3)
    assert len(b) == 3 and b[0].num_rows == 7


def test_bench_engine_command_prints_and_writes_figures(tmp_path):
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # a group, as in `pyplatform bench`
        pass

    out = tmp_path / "engine.md"
    res = CliRunner().invoke(app, ["engine", "--symbols", "40", "--batches", "30", "--repeats", "1",
                                   "--baseline-batches", "1", "--output", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert "rows/s" in text and "single tick" in text and "| ratio |" in text
