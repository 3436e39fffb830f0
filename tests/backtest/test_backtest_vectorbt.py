"""The backtests against vectorbt (an implementation nobody here wrote), over overnight gaps.

vectorbt's ``Portfolio.from_signals`` is given the signals decided at a bar's close, shifted
one bar, and told to trade at that bar's ``open`` with all the cash (``size=inf``) and no
fees: the next-open, fully invested convention the platform's frictionless runs follow. The
crossings themselves are computed here independently, exactly, from integer cents (a float
rolling mean turns a decimal tie of the two averages into a spurious cross).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import vectorbt as vbt

from pyplatform.backtest import BacktestConfig, run_backtest
from pyplatform.backtest.vectorized import sweep_dual_ma
from pyplatform.data import generate_bars


def exact_crossings(close: np.ndarray, fast: int, slow: int) -> tuple[np.ndarray, np.ndarray]:
    """Entries (fast average crosses above slow) and exits (below), decided at each close."""
    cents = np.round(close * 100).astype(np.int64)
    cs = np.concatenate([[0], np.cumsum(cents)])
    n = len(close)
    sign = np.zeros(n, np.int64)
    t = np.arange(slow - 1, n)
    fast_sum, slow_sum = cs[t + 1] - cs[t + 1 - fast], cs[t + 1] - cs[t + 1 - slow]
    sign[t] = np.sign(fast_sum * slow - slow_sum * fast)  # fast/f vs slow/s without division
    entries, exits = np.zeros(n, bool), np.zeros(n, bool)
    u = np.arange(slow, n)  # both averages defined at u - 1 and u
    entries[u] = (sign[u] > 0) & (sign[u - 1] <= 0)
    exits[u] = (sign[u] < 0) & (sign[u - 1] >= 0)
    return entries, exits


def vbt_next_open(o: np.ndarray, c: np.ndarray, entries: np.ndarray, exits: np.ndarray, cash=1_000_000.0):
    shift = lambda a: np.concatenate([[False], a[:-1]])  # noqa: E731 - decided at t-1, traded at t
    return vbt.Portfolio.from_signals(pd.Series(c), shift(entries), shift(exits), price=pd.Series(o),
                                      size=np.inf, init_cash=cash, fees=0.0, freq="1min")


@pytest.fixture(scope="module")
def gapped():
    # stocks (sessions with overnight and weekend gaps) and a 24/7 crypto pair
    return generate_bars(["MSFT.US", "AAPL.US", "BTCUSDT.BA"], "2024-01-02", "2024-01-16", freq="1min", seed=11)


def test_sweep_equals_vectorbt_across_gaps(gapped):
    pairs = [(5, 20), (10, 30), (3, 8)]
    sw = sweep_dual_ma(gapped, [3, 5, 10], [8, 20, 30], freq="1min")
    checked = 0
    for sym, g in gapped.groupby(level="symbol"):
        o, c = g["open"].to_numpy(), g["close"].to_numpy()
        for f, s in pairs:
            pf = vbt_next_open(o, c, *exact_crossings(c, f, s))
            row = sw.loc[(sym, f, s)]
            assert pf.trades.count() > 3, (sym, f, s)  # the case trades, across gaps too
            assert row["total_return"] == pytest.approx(pf.total_return(), rel=1e-10, abs=1e-12), (sym, f, s)
            assert row["trades"] == pf.trades.count(), (sym, f, s)
            assert row["max_drawdown"] == pytest.approx(pf.max_drawdown(), rel=1e-9, abs=1e-12), (sym, f, s)
            checked += 1
    assert checked == 9


@pytest.mark.parametrize("seed", [7, 8])
def test_event_driven_frictionless_equity_equals_vectorbt_across_gaps(seed):
    bars = generate_bars(["MSFT.US"], "2024-01-02", "2024-01-20", freq="1min", seed=seed)
    r = run_backtest({"kind": "ma_cross", "params": {"fast": 5, "slow": 20}}, bars=bars,
                     backtest=BacktestConfig.frictionless(freq="1min", audit_timestamps=0))
    o, c = bars["open"].to_numpy(), bars["close"].to_numpy()
    # vectorbt is fed the strategy's own decisions (the live factor engine decides them; the
    # question here is the accounting across gaps: sizing, fill price, marking)
    ts = bars.index.get_level_values("datetime").to_numpy(dtype="datetime64[ns]").astype(np.int64)
    at = np.searchsorted(ts, r.signals["ts"].to_numpy())
    d = r.signals["direction"].to_numpy()
    entries, exits = np.zeros(len(c), bool), np.zeros(len(c), bool)
    entries[at[d > 0]] = True
    exits[at[d <= 0]] = True
    pf = vbt_next_open(o, c, entries, exits)
    overnight = r.trades["ts"].to_numpy() - r.orders["ts"].to_numpy()[:len(r.trades)] > 3_600_000_000_000
    assert overnight.any()  # some orders decided at a session's last bar filled next morning
    np.testing.assert_allclose(r.equity.to_numpy(), pf.value().to_numpy(), rtol=1e-8)
    assert r.metrics["n_trades"] == pf.trades.count()
