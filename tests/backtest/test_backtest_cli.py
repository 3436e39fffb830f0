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


def test_run_interrupted_then_resumed(market_settings, monkeypatch):
    from pyplatform.backtest import engine

    d = str(market_settings.data_dir)
    args = ["run", "-k", "ma_cross", "-p", "fast=3", "-p", "slow=12", "--data-dir", d, "--no-save",
            "--config", None]
    cfg = market_settings.data_dir / "bt.json"
    cfg.write_text(json.dumps({"window_days": 14}))
    args[-1] = str(cfg)
    whole = runner.invoke(app, args)
    assert whole.exit_code == 0, whole.output
    real, calls = engine.Simulation.feed, []

    def feed(self, *a, **k):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # Ctrl-C in the fourth window
        return real(self, *a, **k)

    monkeypatch.setattr(engine.Simulation, "feed", feed)
    res = runner.invoke(app, args + ["--resume"])
    assert res.exit_code == 130 and "--resume" in res.output
    ckpts = list((market_settings.data_dir / "backtests" / "checkpoints").glob("*.ckpt"))
    assert len(ckpts) == 1
    monkeypatch.setattr(engine.Simulation, "feed", real)
    # --resume with another parameter: nothing to resume, and the user is told so, in one line
    other = [x if x != "slow=12" else "slow=13" for x in args]
    res = runner.invoke(app, other + ["--resume"])
    assert res.exit_code == 0, res.output
    (line,) = [ln for ln in res.output.splitlines() if ln.startswith("warning:")]
    assert "starting from the beginning" in line and ckpts[0].name in line and "strategies" in line
    assert runner.invoke(app, args + ["--resume", "--checkpoint-every", "0"]).exit_code == 2
    res = runner.invoke(app, args + ["--resume"])
    assert res.exit_code == 0, res.output
    assert "warning:" not in res.output
    def metric_rows(out):  # the metrics table's rows (not the progress bar, not the run id)
        return [ln for ln in out.splitlines() if "\u2502" in ln and "ma_cross-" not in ln]

    assert len(metric_rows(whole.output)) > 5
    assert metric_rows(res.output) == metric_rows(whole.output)
    assert not ckpts[0].exists()


def test_progress_bar_counts_bars_once(market_settings):
    """The bar shows the run's bars (the engine reports each twice: signals, then execution)."""
    from tqdm import tqdm

    from pyplatform.backends import open_store

    n = open_store(market_settings).read("bars_1d", as_arrow=True).num_rows
    res = runner.invoke(app, ["run", "-k", "ma_cross", "-p", "fast=3", "-p", "slow=12", "--no-save",
                              "--data-dir", str(market_settings.data_dir)])
    assert res.exit_code == 0, res.output
    done = f"{tqdm.format_sizeof(n)}/{tqdm.format_sizeof(n)}"
    assert done in res.output and f"/{tqdm.format_sizeof(2 * n)}" not in res.output
