"""Plot functions: structure of the figures and the small computations behind them (oracles: pandas, empyrical)."""

from __future__ import annotations

import empyrical
import numpy as np
import pandas as pd
import pytest

from pyplatform.plots import (
    candlestick_figure, depth_figure, drawdown, intraday_figure, monthly_returns, trades_figure,
)

DAY = 86_400_000_000_000


@pytest.fixture
def bars():
    rng = np.random.default_rng(7)
    c = 100 + np.cumsum(rng.normal(0, 1, 50))
    ts = 1_704_067_200_000_000_000 + np.arange(50) * DAY
    return pd.DataFrame({"ts": ts, "open": c - 0.5, "high": c + 1, "low": c - 1, "close": c,
                         "volume": rng.uniform(1, 10, 50)})


def test_candlestick_panels_share_the_category_axis(bars):
    fig = candlestick_figure(bars, "1d", symbol="AAA.US", overlays={"ma": bars["close"].rolling(5).mean()},
                             panels={"rsi": bars["close"], "mom": bars["close"].diff()})
    lay = fig.layout
    assert lay.xaxis.type == "category" and lay.xaxis2.matches == "x" and lay.xaxis4.matches == "x"
    assert [lay.xaxis.showticklabels, lay.xaxis4.showticklabels] == [False, True]  # labels on the bottom panel only
    domains = [lay.yaxis.domain, lay.yaxis2.domain, lay.yaxis3.domain, lay.yaxis4.domain]
    assert all(a[0] >= b[1] for a, b in zip(domains, domains[1:]))  # stacked top to bottom, not overlapping
    vol = [t for t in fig.data if t.type == "bar"]
    assert sum(len(t.y) for t in vol) == len(bars)
    assert np.isclose(sum(float(np.sum(t.y)) for t in vol), bars["volume"].sum())
    up = next(t for t in vol if t.marker.color == "#26a69a")
    assert len(up.y) == int((bars["close"] >= bars["open"]).sum())
    assert list(fig.data[0].x[:2]) == ["2024-01-01", "2024-01-02"]


def test_trades_are_marked_on_the_candle_that_contains_them(bars):
    trades = pd.DataFrame({"ts": [bars["ts"][3] + 3_600_000_000_000, bars["ts"][10]], "side": [1, -1],
                           "price": [101.0, 99.0]})
    fig = trades_figure(bars, trades, "1d", symbol="AAA.US")
    buy = next(t for t in fig.data if t.name == "buy")
    sell = next(t for t in fig.data if t.name == "sell")
    assert list(buy.x) == [fig.data[0].x[3]] and list(sell.x) == [fig.data[0].x[10]]


def test_drawdown_and_monthly_returns_match_empyrical():
    idx = pd.bdate_range("2023-01-02", periods=300)
    rets = pd.Series(np.random.default_rng(3).normal(0.0005, 0.01, 300), index=idx)
    equity = (1 + rets).cumprod() * 1e6
    assert drawdown(equity).min() == pytest.approx(empyrical.max_drawdown(rets))
    ours = monthly_returns(equity).stack().dropna()
    ref = empyrical.aggregate_returns(rets, "monthly")
    assert len(ours) == len(ref) == 14
    # the first month runs from the first equity point (the curve carries no prior capital)
    assert ours.iloc[0] == pytest.approx(equity.loc["2023-01"].iloc[-1] / equity.iloc[0] - 1)
    np.testing.assert_allclose(ours.to_numpy()[1:], ref.to_numpy()[1:])


def test_intraday_average_price_is_cumulative_vwap():
    ts = 1_704_205_800_000_000_000 + np.arange(5) * 60_000_000_000
    bars = pd.DataFrame({"ts": ts, "close": [10.0, 11, 12, 11, 10], "volume": [1.0, 3, 0, 2, 4]})
    fig = intraday_figure(bars, 10.5, symbol="AAA.US")
    avg = next(t for t in fig.data if t.name == "average price").y
    ref = (bars["close"] * bars["volume"]).cumsum() / bars["volume"].cumsum()
    np.testing.assert_allclose(avg, ref)
    assert "(-4.76%)" in fig.layout.title.text


def test_depth_is_cumulative_from_the_touch():
    bids = pd.DataFrame({"price": [99.0, 99.5, 98.0], "volume": [2.0, 1.0, 5.0]})
    asks = pd.DataFrame({"price": [100.5, 100.0], "volume": [3.0, 4.0]})
    fig = depth_figure(bids, asks, symbol="AAA.US")
    b, a = fig.data
    assert list(b.x) == [99.5, 99.0, 98.0] and list(b.y) == [1.0, 3.0, 8.0]
    assert list(a.x) == [100.0, 100.5] and list(a.y) == [4.0, 7.0]


def test_notebook_chart_is_the_market_page_chart(market_settings):
    from pyplatform.dashboard.context import AppContext
    from pyplatform.dashboard.data import StoreBarSource
    from pyplatform.dashboard.live_buffer import LiveBuffer
    from pyplatform.clock import LiveClock
    from pyplatform.dashboard.pages.market import build_chart
    from pyplatform.api import chart  # pp.chart: the top layer may import the app
    from pyplatform.backends import open_store

    fig = chart("BBB.US", "1m", start="2024-01-10", end="2024-01-12", overlays=["sma_20"], settings=market_settings)
    actx = AppContext(settings=market_settings, bars=StoreBarSource(open_store(market_settings)), live=LiveBuffer(), clock=LiveClock())
    ref, status, _ = build_chart(actx, "BBB.US", "1m", ["sma_20"], [], int(pd.Timestamp("2024-01-10").value),
                                 int(pd.Timestamp("2024-01-12").value), False)
    assert list(fig.data[0].x) == list(ref.data[0].x) and len(fig.data[0].x) == 2 * 390
    assert fig.layout.title.text == status and "candles of 1 minute" in status
    assert [t.name for t in fig.data] == [t.name for t in ref.data]
