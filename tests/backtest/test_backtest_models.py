"""Impact model, stops, and the benchmark's pandas loop against the vectorised oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyplatform.backtest import BacktestConfig, SlippageConfig, run_backtest
from pyplatform.bench.backtest import pandas_loop_dual_ma
from pyplatform.backtest.vectorized import dual_ma_returns
from pyplatform.data import generate_bars
from pyplatform.risk import AccountLimits, RiskConfig

MA = {"kind": "ma_cross", "params": {"fast": 5, "slow": 20}}


@pytest.fixture(scope="module")
def aapl():
    return generate_bars(["AAPL.US"], "2024-01-02", "2024-01-03", freq="1min", seed=12)


def test_square_root_impact(aapl):
    base = run_backtest(MA, bars=aapl, backtest=BacktestConfig.frictionless(freq="1min", capital=20_000))
    hit = run_backtest(MA, bars=aapl, backtest=BacktestConfig.frictionless(
        freq="1min", capital=20_000, slippage=SlippageConfig(kind="sqrt", bps=0.0, impact=0.05)))
    assert len(hit.trades) == len(base.trades) > 3
    vol = aapl["volume"].droplevel("symbol")
    for (_, f0), (_, f1) in zip(base.trades.iterrows(), hit.trades.iterrows()):
        v = vol.loc[f0["datetime"].floor("min")]
        raw = f0["price"] * (1 + f1["side"] * 0.05 * math.sqrt(f1["quantity"] / v))
        want = math.ceil(raw * 100 - 1e-9) / 100 if f1["side"] > 0 else math.floor(raw * 100 + 1e-9) / 100
        assert f1["price"] == pytest.approx(want, abs=1e-9)


def test_stops_close_positions_only_when_switched_on(aapl):
    tight = RiskConfig(default=AccountLimits(fixed_stop=0.0005, trailing_stop=0.0005, concentration=0.9))
    on = run_backtest(MA, bars=aapl, backtest=BacktestConfig(freq="1min", risk=tight, stops=True,
                                                             participation=None, vwap_slicing=False))
    off = run_backtest(MA, bars=aapl, backtest=BacktestConfig(freq="1min", risk=tight, stops=False,
                                                              participation=None, vwap_slicing=False))
    stops = on.orders[on.orders["client_order_id"].str.startswith("stop-")]
    assert len(stops) > 0
    assert not off.orders["client_order_id"].str.startswith("stop-").any()


def test_pandas_loop_is_the_same_backtest(aapl):
    o, c = aapl["open"].to_numpy(), aapl["close"].to_numpy()
    np.testing.assert_allclose(pandas_loop_dual_ma(aapl.iloc[:300], 5, 20).to_numpy(),
                               dual_ma_returns(o[:300], c[:300], 5, 20), atol=1e-12)
