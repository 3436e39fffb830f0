"""``pyplatform backtest run|sweep|list|show`` over the shared generated market."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from pyplatform.cli.backtest import app

runner = CliRunner()


def test_run_list_show(market_settings, tmp_path):
    d = str(market_settings.data_dir)
    res = runner.invoke(app, ["run", "-k", "ma_cross", "-p", "fast=3", "-p", "slow=12", "--data-dir", d,
                              "--latency-ms", "100", "--report", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    assert "sharpe" in res.output and "saved under" in res.output
    assert (tmp_path / "r.html").stat().st_size > 10_000
    listed = json.loads(runner.invoke(app, ["list", "--json", "--data-dir", d]).output)
    assert len(listed) == 1 and listed[0]["name"] == "ma_cross"
    run_id = listed[0]["run_id"]
    res = runner.invoke(app, ["show", run_id, "--data-dir", d, "--report", str(tmp_path / "s.html")])
    assert res.exit_code == 0, res.output
    assert '"fast": 3.0' in res.output and (tmp_path / "s.html").exists()
    res = runner.invoke(app, ["show", "missing-run", "--data-dir", d])
    assert res.exit_code == 1 and "no backtest run 'missing-run'" in res.output


def test_bad_options_are_named(market_settings):
    d = str(market_settings.data_dir)
    res = runner.invoke(app, ["run", "-p", "fast", "--data-dir", d])
    assert res.exit_code == 2 and "expected NAME=VALUE" in res.output
    res = runner.invoke(app, ["run", "--slippage", "magic", "--data-dir", d])
    assert res.exit_code == 2 and "SlippageConfig" in res.output and "magic" in res.output
    res = runner.invoke(app, ["run", "-s", "NOPE.US", "--data-dir", d])
    assert res.exit_code == 1 and "no bars_1d rows" in res.output


def test_sweep(market_settings, tmp_path):
    out = tmp_path / "sweep.csv"
    res = runner.invoke(app, ["sweep", "--fast", "3,5", "--slow", "10,20", "--data-dir", str(market_settings.data_dir),
                              "-o", str(out), "--top", "3"])
    assert res.exit_code == 0, res.output
    import pandas as pd

    df = pd.read_csv(out)
    assert len(df) == 8 * 4 and set(df.columns) >= {"symbol", "fast", "slow", "sharpe", "total_return"}
