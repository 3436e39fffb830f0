"""The vectorised sweep against a plain pandas implementation of the same rules."""

import numpy as np
import pandas as pd
import pytest

from pyplatform.backtest.vectorized import dual_ma_returns, moving_averages, sweep_dual_ma


def _bars(n=3000, seed=0, syms=("A.US", "B.US")):
    rng = np.random.default_rng(seed)
    frames = []
    for s in syms:
        c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        o = c * np.exp(rng.normal(0, 0.002, n))
        idx = pd.MultiIndex.from_arrays([pd.date_range("2020-01-01", periods=n, freq="min"), [s] * n],
                                        names=["datetime", "symbol"])
        frames.append(pd.DataFrame({"open": o, "close": c}, index=idx))
    return pd.concat(frames)


def _pandas_reference(o, c, fast, slow):
    """Obvious pandas/loop version of the rules in the module docstring."""
    s = pd.Series(c)
    f, sl = s.rolling(fast).mean(), s.rolling(slow).mean()
    golden = (f > sl) & (f.shift() <= sl.shift())
    death = (f < sl) & (f.shift() >= sl.shift())
    pos, cur = [], 0
    for g, d in zip(golden, death):
        if cur == 0 and g:
            cur = 1
        elif cur == 1 and d:
            cur = 0
        pos.append(cur)
    pos = np.array(pos)
    held = np.concatenate([[0], pos[:-1]])  # held during bar t: decided at t-1
    held_prev = np.concatenate([[0], held[:-1]])
    r = np.zeros(len(c))
    cc = np.concatenate([[np.nan], c[:-1]])
    both = (held == 1) & (held_prev == 1)
    enter = (held == 1) & (held_prev == 0)
    leave = (held == 0) & (held_prev == 1)
    r[both] = (c / cc - 1)[both]
    r[enter] = (c / o - 1)[enter]
    r[leave] = (o / cc - 1)[leave]
    r[0] = 0.0
    return r


def test_moving_average_matches_pandas():
    c = np.random.default_rng(1).normal(size=50).cumsum()
    ma = moving_averages(c, [1, 5, 60])
    np.testing.assert_allclose(ma[1], pd.Series(c).rolling(5).mean(), equal_nan=True)
    assert np.isnan(ma[2]).all()  # window longer than the data: all NULL


@pytest.mark.parametrize("fast,slow", [(5, 20), (10, 60), (3, 7)])
def test_returns_match_reference(fast, slow):
    b = _bars(n=2000).xs("A.US", level="symbol")
    ours = dual_ma_returns(b["open"].to_numpy(), b["close"].to_numpy(), fast, slow)
    ref = _pandas_reference(b["open"].to_numpy(), b["close"].to_numpy(), fast, slow)
    np.testing.assert_allclose(ours, ref, atol=1e-14)
    assert (ours != 0).sum() > 10  # the strategy actually traded


def test_sweep_matches_per_pair_returns():
    bars = _bars()
    res = sweep_dual_ma(bars, [5, 10], [20, 40], periods_per_year=252)
    assert len(res) == 2 * 4
    for sym in ("A.US", "B.US"):
        b = bars.xs(sym, level="symbol")
        r = dual_ma_returns(b["open"].to_numpy(), b["close"].to_numpy(), 10, 40)
        row = res.loc[(sym, 10, 40)]
        assert row["total_return"] == pytest.approx(np.prod(1 + r) - 1, rel=1e-10)
        rr = r[1:]
        assert row["sharpe"] == pytest.approx(rr.mean() / rr.std(ddof=1) * np.sqrt(252), rel=1e-8)
        eq = np.cumprod(1 + r)
        assert row["max_drawdown"] == pytest.approx((eq / np.maximum.accumulate(eq) - 1).min(), abs=1e-12)


def test_sweep_rejects_empty_grid():
    with pytest.raises(ValueError, match="fast < slow"):
        sweep_dual_ma(_bars(n=100), [50], [10])
