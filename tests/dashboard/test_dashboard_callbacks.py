"""Callback logic without a browser: zoom mapping, chart building, live merging, pages' pure parts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard_helpers import SYMBOLS
from pyplatform.dashboard import create_app
from pyplatform.dashboard.context import AppContext
from pyplatform.dashboard.data import FrameBarSource, StoreBarSource, market_view
from pyplatform.dashboard.live_buffer import LiveBuffer, merge_live_bars
from pyplatform.clock import LiveClock
from pyplatform.dashboard.pages import backtests as bt_page
from pyplatform.dashboard.pages import live as live_page
from pyplatform.dashboard.pages.market import build_chart, window_from_relayout
from pyplatform.plots.downsample import DAY_NS, MINUTE_NS, aggregate_ohlcv

MIN = MINUTE_NS


@pytest.fixture(scope="module")
def source(market_frames):
    m, d = market_frames
    return FrameBarSource(m, d)


@pytest.fixture
def actx(source, market_settings):
    return AppContext(settings=market_settings, bars=source, live=LiveBuffer(), clock=LiveClock())


# ------------------------------------------------------------------ zoom mapping
VIEW = {"ts": [0, 10, 20, 30, 40, 50], "shown": "1m", "end": 60}


@pytest.mark.parametrize("relayout, expected", [
    ({"xaxis.range[0]": 0.6, "xaxis.range[1]": 3.2}, (10, 40)),
    ({"xaxis.range": [1.0, 5.9]}, (10, 60)),            # to the last bar: end of the view
    ({"xaxis3.range[0]": 2.1, "xaxis3.range[1]": 4.0}, (30, 50)),  # zoom on a lower panel
    ({"xaxis.autorange": True}, "reset"),
    ({"autosize": True}, None),
    ({"xaxis.range[0]": -3, "xaxis.range[1]": 9}, None),  # covers everything: nothing to refine
    ({"yaxis.range[0]": 1, "yaxis.range[1]": 2}, None),
    ({"xaxis.range[0]": 3.4, "xaxis.range[1]": 3.6}, None),  # between two bars
    ({"xaxis.range[0]": "2024-01-01", "xaxis.range[1]": "2024-02-01"}, None),
])
def test_window_from_relayout(relayout, expected):
    assert window_from_relayout(relayout, VIEW) == expected


# ------------------------------------------------------------------ chart building
def test_whole_history_is_capped_and_zoom_gets_finer(actx, market_frames):
    fig, status, view = build_chart(actx, "AAA.US", "1m", [], [], None, None, False)
    assert view["shown"] == "15m" and view["n"] <= actx.cap
    assert "zoom in" in status
    assert list(fig.data[0].x) == [str(x) for x in fig.data[0].x] and len(fig.data[0].x) == view["n"]
    win = window_from_relayout({"xaxis.range[0]": 100, "xaxis.range[1]": 140}, view)
    _, status2, view2 = build_chart(actx, "AAA.US", "1m", [], [], *win, False)
    assert view2["shown"] == "1m"
    m = market_frames[0].xs("AAA.US", level="symbol")
    ts = m.index.to_numpy().astype("datetime64[ns]").astype(np.int64)
    expect = ts[(ts >= win[0]) & (ts < win[1])]
    np.testing.assert_array_equal(view2["ts"], expect)  # every minute of the window, nothing else


def test_small_cap_steps_up_the_ladder(actx):
    actx.cap = 100
    _, _, view = build_chart(actx, "BBB.US", "1m", [], [], None, None, False)
    assert view["n"] <= 100 and view["shown"] == "4h"  # 40 sessions x 2; 1h would be 40 x 7 = 280


def test_store_and_frame_sources_agree(source, market_settings):
    from pyplatform.backends import open_store

    store_src = StoreBarSource(open_store(market_settings))
    assert store_src.symbols() == sorted(SYMBOLS)
    lo = int(pd.Timestamp("2024-01-10").value)
    for tf, start, end in (("1d", None, None), ("1h", lo, lo + 5 * DAY_NS), ("1m", lo, lo + DAY_NS)):
        a = market_view(source, "DDD.US", tf, start, end).bars
        b = market_view(store_src, "DDD.US", tf, start, end).bars
        pd.testing.assert_frame_equal(a[["ts", "open", "high", "low", "close", "volume"]],
                                      b[["ts", "open", "high", "low", "close", "volume"]])


def test_overlays_and_panels_come_from_the_factor_library(actx):
    from pyplatform.dashboard.indicators import library

    lib = library()
    if "sma_20" not in lib or "rsi_14" not in lib:
        pytest.fail(f"factor library lacks sma_20/rsi_14: {sorted(lib)}")
    fig, _, view = build_chart(actx, "AAA.US", "1d", ["sma_20"], ["rsi_14"], None, None, False)
    names = [t.name for t in fig.data]
    assert "sma_20" in names and "rsi_14" in names
    close = pd.Series(actx.bars.daily("AAA.US")["close"].to_numpy())
    sma = next(t for t in fig.data if t.name == "sma_20").y
    np.testing.assert_allclose(np.asarray(sma, float)[19:], close.rolling(20).mean().to_numpy()[19:])
    assert np.isnan(np.asarray(sma, float)[:19]).all()  # warm-up


def test_an_indicator_that_cannot_run_on_bars_is_reported_not_fatal(actx):
    fig, status, view = build_chart(actx, "AAA.US", "1d", ["spread_bps"], ["nonexistent"], None, None, False)
    assert view["n"] > 0 and "not drawn: spread_bps:" in status and "nonexistent: not in the factor library" in status
    assert [t.name for t in fig.data if t.type == "scatter"] == []


def test_unknown_symbol_shows_an_empty_chart(actx):
    fig, status, view = build_chart(actx, "ZZZ.US", "1d", [], [], None, None, False)
    assert "no bars" in status and view["n"] == 0


# ------------------------------------------------------------------ live
def _ticks(ts, px, vol, sym="AAA.US"):
    return {"ts": np.asarray(ts, np.int64), "symbol": np.array([sym] * len(ts)), "price": np.asarray(px, float),
            "volume": np.asarray(vol, float)}


def test_buffer_folds_ticks_into_minute_bars_like_pandas():
    rng = np.random.default_rng(1)
    ts = np.sort(rng.integers(0, 10 * MIN, 400)) + 1_700_000_000 * 1_000_000_000
    px, vol = rng.uniform(99, 101, 400), rng.uniform(1, 9, 400)
    buf = LiveBuffer()
    buf.on_ticks(_ticks(ts[:150], px[:150], vol[:150]))  # two batches split inside a minute
    buf.on_ticks(_ticks(ts[150:], px[150:], vol[150:]))
    ref = pd.DataFrame({"price": px, "volume": vol}, index=pd.to_datetime(ts)).resample("1min").agg(
        open=("price", "first"), high=("price", "max"), low=("price", "min"), close=("price", "last"),
        volume=("volume", "sum")).dropna()
    got = buf.bars("AAA.US")
    np.testing.assert_allclose(got[["open", "high", "low", "close", "volume"]].to_numpy(), ref.to_numpy())


def test_buffer_rejects_bad_ticks_by_row():
    buf = LiveBuffer()
    with pytest.raises(ValueError, match="tick row 1: price nan"):
        buf.on_ticks(_ticks([0, 1], [1.0, np.nan], [1, 1]))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['volume'\]"):
        buf.on_ticks({"ts": np.array([0]), "symbol": np.array(["A.US"]), "price": np.array([1.0])})
    with pytest.raises(ValueError, match="connection state 'up'"):
        buf.set_connection("up", 0)
    assert buf.version == 0  # nothing half-applied


def test_connection_reconnects_are_counted():
    buf = LiveBuffer()
    for state in ("connecting", "connected", "reconnecting", "connected", "disconnected", "connected"):
        buf.set_connection(state, 5)
    assert buf.connection.state == "connected" and buf.connection.reconnects == 2


def test_merge_live_updates_the_last_candle_and_appends_new_ones():
    day = 1_704_067_200_000_000_000  # 2024-01-01
    open_ = day + (14 * 60 + 30) * MIN
    hist_1m = pd.DataFrame({"ts": open_ + np.arange(90) * MIN, "open": 10.0, "high": 11.0, "low": 9.0,
                            "close": 10.5, "volume": 1.0})
    hist = aggregate_ohlcv(hist_1m, "1h")  # 14:30 and 15:30 candles, the last one half full
    live = pd.DataFrame({"ts": open_ + np.array([80, 95, 150]) * MIN, "open": [12.0, 8.0, 7.0],
                         "high": [12.5, 8.0, 7.0], "low": [12.0, 8.0, 6.5], "close": [12.2, 8.0, 6.8],
                         "volume": [2.0, 3.0, 4.0]})
    live = pd.concat([pd.DataFrame({"ts": [open_], "open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0],
                                    "volume": [1.0]}), live])  # older than history: ignored
    out = merge_live_bars(hist, live, "1h")
    assert list(pd.to_datetime(out["ts"]).dt.strftime("%H:%M")) == ["14:30", "15:30", "16:30"]
    last_hist = out.iloc[1]
    assert (last_hist["high"], last_hist["low"], last_hist["close"], last_hist["volume"]) == (12.5, 8.0, 8.0, 35.0)
    assert out.iloc[2]["close"] == 6.8 and out.iloc[2]["volume"] == 4.0


def test_live_mode_appends_the_forming_bar(actx, market_frames):
    last = int(market_frames[0].index.get_level_values("datetime").max().value)
    actx.live.on_ticks(_ticks([last + 2 * DAY_NS], [77.0], [3.0]))
    from pyplatform.dashboard.pages.market import _live_window

    fig, status, view = build_chart(actx, "AAA.US", "1m", [], [], *_live_window(actx, "AAA.US"), True)
    assert "live: +1 candles" in status
    assert view["ts"][-1] == (last + 2 * DAY_NS) // MIN * MIN
    assert fig.data[0].close[-1] == 77.0


# ------------------------------------------------------------------ pages' pure parts
def test_pages_without_sources_say_so(market_settings):
    app = create_app(market_settings, bars=None, factors=None, backtests=None)
    actx = app.pyplatform
    from pyplatform.dashboard.pages import factors, market

    for mod, marker in ((market, "market-unavailable"), (factors, "factors-unavailable"),
                        (bt_page, "backtests-unavailable")):
        layout = mod.layout(actx)
        assert layout.children.id == marker and "no data source" in layout.children.children


def test_default_sources_find_the_store(market_settings):
    app = create_app(market_settings)
    actx = app.pyplatform
    assert actx.bars.symbols() == sorted(SYMBOLS)
    assert actx.factors is not None and "all" in actx.factors.universes


def test_risk_panel_shows_kill_switch_and_limits():
    panel = live_page.risk_panel({"kill_switch": True, "limits": {"gross": {"used": 90.0, "limit": 100.0}}})
    text = str(panel)
    assert "ENGAGED" in text and "90%" in text and "meter high" in text
    assert "no risk state" in str(live_page.risk_panel({}))


def test_metrics_table_puts_runs_side_by_side():
    table = bt_page.metrics_table({"r1": {"sharpe": 1.25, "cagr": 0.1}, "r2": {"sharpe": -0.5}})
    header = [th.children for th in table.children[0].children.children]
    assert header == ["metric", "r1", "r2"]
    rows = [[td.children for td in tr.children] for tr in table.children[1].children]
    assert rows == [["sharpe", "1.2500", "-0.5000"], ["cagr", "0.1000", ""]]


def test_node_status_reaches_the_live_page_state():
    from pyplatform.dashboard.node_bridge import push_node_status

    buf = LiveBuffer()
    status = {"account": "paper", "equity": "1000120.50", "realised": "100.00", "unrealised": "20.50",
              "positions": [{"symbol": "AAA.US", "quantity": "200", "avg_price": "10.25", "realised": "100.00",
                             "unrealised": "20.50"}],
              "open_orders": 1, "kill_switch": "REDUCE_ONLY", "kill_reason": "daily loss", "daily_loss_hit": True,
              "decisions": 12, "refused": 3}
    push_node_status(buf, status, 5)
    pos = buf.positions().set_index("symbol")
    assert pos.loc["AAA.US", "qty"] == 200.0 and pos.loc["AAA.US", "unrealized_pnl"] == 20.5
    assert buf.pnl().iloc[-1] == pytest.approx(120.5)
    text = str(live_page.risk_panel(buf.risk()))
    assert "ENGAGED" in text and "REDUCE_ONLY" in text and "3 of 12 decisions" in text
