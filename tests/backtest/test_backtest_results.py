"""Results: metrics against independent computations, saved runs, the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pyplatform.backtest import BacktestConfig, list_runs, load_run, run_backtest
from pyplatform.data import generate_bars

MA = {"kind": "ma_cross", "name": "ma10_40", "params": {"fast": 10, "slow": 40}}


@pytest.fixture(scope="module")
def result():
    b = generate_bars(["AAPL.US"], "2024-01-02", "2024-01-05", freq="1min", seed=21)
    return run_backtest(MA, bars=b, backtest=BacktestConfig.frictionless(freq="1min")), b


def test_metrics_against_numpy(result):
    r, _ = result
    eq = r.equity.to_numpy()
    ret = np.diff(np.concatenate([[1_000_000.0], eq])) / np.concatenate([[1_000_000.0], eq[:-1]])
    m = r.metrics
    assert m["total_return"] == pytest.approx(eq[-1] / 1_000_000 - 1, abs=1e-12)
    assert m["max_drawdown"] == pytest.approx((eq / np.maximum.accumulate(eq) - 1).min(), abs=1e-12)
    ppy = 252 * 390
    assert m["sharpe"] == pytest.approx(ret.mean() / ret.std(ddof=1) * np.sqrt(ppy), rel=1e-9)
    assert m["annual_volatility"] == pytest.approx(ret.std(ddof=1) * np.sqrt(ppy), rel=1e-9)
    down = np.minimum(ret, 0)
    assert m["sortino"] == pytest.approx(ret.mean() * ppy / (np.sqrt((down ** 2).mean()) * np.sqrt(ppy)), rel=1e-9)


def test_round_trips_from_fill_pairs(result):
    r, _ = result
    f = r.trades
    buys, sells = f[f["side"] > 0].reset_index(drop=True), f[f["side"] < 0].reset_index(drop=True)
    n = len(sells)  # long-only: buy, sell, buy, sell...
    assert n >= 3 and len(r.round_trips) == n
    pnl = (sells["price"] - buys["price"][:n]) * buys["quantity"][:n]
    np.testing.assert_allclose(r.round_trips["pnl"].to_numpy(), pnl.to_numpy(), rtol=1e-9, atol=1e-6)
    assert r.metrics["win_rate"] == pytest.approx((pnl > 0).mean())
    wins, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    assert r.metrics["profit_factor"] == pytest.approx(wins / losses)
    # one definition of a trade (issue 20 item 3): positions opened, the last one possibly
    # still open at the end; the closed ones are n_closed_trades
    assert r.metrics["n_closed_trades"] == n
    assert r.metrics["n_trades"] == len(buys)


def test_saved_runs_are_listed_and_load_back(market_settings):
    r = run_backtest({"kind": "ma_cross", "params": {"fast": 3, "slow": 12}}, settings=market_settings,
                     save=True, latency_ms=100)
    import pyplatform.api as pp  # the notebook verb calls run_backtest

    r2 = pp.run_backtest({"kind": "momentum", "params": {"window": 5, "threshold": 0.01}}, settings=market_settings,
                     save=True, latency_ms=50)
    assert r2.config["backtest"]["latency_ms"] == 50 and len(r2.signals)
    runs = list_runs(market_settings)
    assert set(runs["run_id"]) == {r.run_id, r2.run_id}
    row = runs.set_index("run_id").loc[r.run_id]
    assert row["name"] == "ma_cross" and row["freq"] == "1d" and row["symbols"] == 8
    assert row["total_return"] == pytest.approx(r.metrics["total_return"])
    back = load_run(r.run_id, market_settings)
    pd.testing.assert_frame_equal(back.equity_curve, r.equity_curve, check_freq=False)
    pd.testing.assert_frame_equal(back.trades, r.trades)
    assert back.config["backtest"]["latency_ms"] == 100
    cfg = json.loads((market_settings.path("backtests", r.run_id, "config.json")).read_text())
    assert cfg["strategies"][0]["params"] == {"fast": 3.0, "slow": 12.0}
    with pytest.raises(KeyError, match="no backtest run 'nope'"):
        load_run("nope", market_settings)


def test_report_figures(result):
    r, b = result
    fig = r.report()
    types = {t.type for t in fig.data}
    assert {"scatter", "heatmap", "candlestick"} <= types
    assert len(r.figures()) == 4
    html = r._repr_html_()
    assert "sharpe" in html and "plotly" in html.lower()


def test_bad_input_is_named():
    b = generate_bars(["AAPL.US"], "2024-01-02", "2024-01-03", freq="1min", seed=1)
    with pytest.raises(ValueError, match="unknown strategy kind 'nope'"):
        run_backtest({"kind": "nope"}, bars=b)
    with pytest.raises(ValueError, match=r"lack column\(s\) \['volume'\]"):
        run_backtest(MA, bars=b.drop(columns=["volume"]))
    with pytest.raises(ValueError, match="latency_ms"):
        run_backtest(MA, bars=b, latency_ms=-1)
