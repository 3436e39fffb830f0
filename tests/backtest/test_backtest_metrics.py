"""Metrics cross-checked against independent NumPy computations."""

import numpy as np
import pandas as pd
import pytest

from pyplatform.backtest.metrics import compute_metrics, drawdown, max_drawdown_duration


@pytest.fixture
def rets():
    rng = np.random.default_rng(3)
    return pd.Series(rng.normal(0.0005, 0.01, 750), index=pd.bdate_range("2020-01-01", periods=750))


def test_against_numpy(rets):
    m = compute_metrics(rets, periods_per_year=252)
    r = rets.to_numpy()
    eq = np.cumprod(1 + r)
    n = len(r)
    assert m["total_return"] == pytest.approx(eq[-1] - 1)
    assert m["annual_return"] == pytest.approx(eq[-1] ** (252 / n) - 1, rel=1e-9)
    assert m["annual_volatility"] == pytest.approx(r.std(ddof=1) * np.sqrt(252), rel=1e-9)
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252), rel=1e-9)
    downside = np.sqrt(np.mean(np.minimum(r, 0) ** 2)) * np.sqrt(252)
    assert m["sortino"] == pytest.approx(r.mean() * 252 / downside, rel=1e-9)
    peak = np.maximum.accumulate(eq)
    mdd = (eq / peak - 1).min()
    assert m["max_drawdown"] == pytest.approx(mdd, rel=1e-9)
    assert m["calmar"] == pytest.approx((eq[-1] ** (252 / n) - 1) / abs(mdd), rel=1e-9)


def test_drawdown_duration_hand_example():
    eq = pd.Series([1, 2, 1.5, 1.8, 2.1, 2.0, 1.0, 1.2])
    assert drawdown(eq).min() == pytest.approx(1.0 / 2.1 - 1)
    # below peak at indices 2,3 (2 periods) and 5,6,7 (3 periods, to the end)
    assert max_drawdown_duration(eq) == 3
    assert max_drawdown_duration(pd.Series([1.0, 2.0, 3.0])) == 0


def test_trade_stats():
    trades = pd.DataFrame({"pnl": [10.0, -5.0, 20.0, -5.0, 0.0]})
    m = compute_metrics(pd.Series([0.01, -0.01, 0.02]), trades=trades,
                        turnover=pd.Series([0.5, 0.0, 0.5]), exposure=pd.Series([1.0, 0.0, 1.0]))
    assert m["win_rate"] == pytest.approx(0.4)
    assert m["profit_factor"] == pytest.approx(3.0)
    assert m["exposure"] == pytest.approx(2 / 3)
    assert m["turnover"] == pytest.approx(252 / 3)
