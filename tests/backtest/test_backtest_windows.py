"""A history replayed in windows equals one pass over it (issue 17: stream long runs).

The windowed run carries the factor engine, strategies, node, venue and pending instants
across window edges; any state lost or duplicated at an edge changes an order, a fill or a
bar of the equity curve, so everything is compared exactly.
"""

import pandas as pd
import pytest

from pyplatform.backtest import BacktestConfig, run_backtest
from pyplatform.backtest.run import bars_table
from pyplatform.data import generate_bars


@pytest.fixture(scope="module")
def bars():
    # two stocks (sessions, a weekend: some window edges fall where they do not trade), forex
    # and a 24/7 crypto symbol (edges fall in the middle of trading)
    b = bars_table(generate_bars(4, "2024-01-02", "2024-01-13", freq="1min", seed=3))
    assert {s.split(".")[1] for s in b.column("symbol").unique().to_pylist()} == {"US", "GB", "BA"}
    return b


def _run(bars, **kw):
    cfg = BacktestConfig(freq="1min", audit_timestamps=0, **kw)
    return run_backtest({"kind": "ma_cross", "params": {"fast": 10, "slow": 40}}, bars=bars, backtest=cfg)


@pytest.mark.parametrize("window_days", [1.0, 2.5])
def test_windows_equal_one_pass(bars, window_days):
    whole = _run(bars, window_days=0)
    split = _run(bars, window_days=window_days)
    assert len(whole.trades) > 100 and len(whole.orders) > 10  # the case trades across the edges
    pd.testing.assert_frame_equal(split.trades, whole.trades)
    pd.testing.assert_frame_equal(split.orders, whole.orders)
    pd.testing.assert_frame_equal(split.equity_curve, whole.equity_curve, check_exact=True)
    for k, v in whole.metrics.items():
        assert split.metrics[k] == v or (v != v and split.metrics[k] != split.metrics[k]), k

