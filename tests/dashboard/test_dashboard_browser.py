"""The research app in headless Chromium: pages, chart interactions, live updates, screenshots."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from pyplatform.dashboard import create_app
from pyplatform.dashboard.live import LiveBuffer

pytestmark = [pytest.mark.browser]

GD = "document.querySelector('#market-chart .js-plotly-plot')"


class _Session:
    """One app, one server and one Chromium for the whole module (starting them per test costs
    ~10 s each on a shared 2-core machine); each test opens its page afresh."""

    def __init__(self, duo, app, buf) -> None:
        self.duo, self.app, self.buf = duo, app, buf

    def open(self, path: str = "/"):
        self.duo.driver.set_window_size(1366, 900)
        self.duo.get_logs()  # drop entries of earlier tests
        self.duo.driver.get(self.duo.server_url + path)
        self.duo.wait_for_element("#page", timeout=10)
        return self.duo, self.app, self.buf


@pytest.fixture(scope="module")
def session(market_settings, tmp_path_factory):
    from dash.testing.application_runners import ThreadedRunner
    from dash.testing.composite import DashComposite

    from dashboard_helpers import chrome_options

    buf = LiveBuffer()
    app = create_app(market_settings, poll_ms=300, live=buf)
    with ThreadedRunner() as runner, DashComposite(
            server=runner, browser="Chrome", headless=False, options=[chrome_options()],
            download_path=str(tmp_path_factory.mktemp("downloads"))) as duo:
        duo.start_server(app)
        yield _Session(duo, app, buf)


def _status(duo) -> str:
    return duo.find_element("#market-status").text


def _wait_status(duo, predicate, timeout=15.0) -> str:
    end = time.time() + timeout
    text = ""
    while time.time() < end:
        text = _status(duo)
        if text and predicate(text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"market status never matched; last: {text!r}")


def _choose(duo, dropdown: str, label: str) -> None:
    """Pick a dcc.Dropdown option by its label, as a user would (open the menu, click the option)."""
    duo.find_element(dropdown).click()
    end = time.time() + 10
    while time.time() < end:
        for opt in duo.driver.find_elements("css selector", ".dash-dropdown-option"):
            if opt.text.strip() == label:
                # the menu's sticky search box can overlap an option near the top edge: click via JS
                duo.driver.execute_script("arguments[0].click()", opt)
                return
        time.sleep(0.1)
    raise AssertionError(f"option {label!r} not found in {dropdown}")


def _n_candles(duo) -> int:
    return int(duo.driver.execute_script(f"return {GD}.data[0].x.length"))


def test_each_page_loads_without_console_errors(session, screenshot):
    duo, app, _ = session.open("/")
    _wait_status(duo, lambda t: "candles" in t)
    duo.wait_for_element("#market-intraday .js-plotly-plot", timeout=10)
    screenshot(duo.driver, "market")
    for path, marker, name in (("/factors", "#factor-quantiles .js-plotly-plot", "factors"),
                               ("/backtests", "#page .page", "backtests"), ("/live", "#live-quotes", "live")):
        duo.driver.get(duo.server_url + path)
        duo.wait_for_element(marker, timeout=30)
        time.sleep(0.5)  # let plotly finish drawing before the screenshot
        screenshot(duo.driver, name)
    assert duo.get_logs() == [], duo.get_logs()


def test_market_page_fits_a_phone_screen(session, screenshot):
    duo, app, _ = session.open("/")
    duo.driver.set_window_size(390, 844)
    _wait_status(duo, lambda t: "candles" in t)
    duo.wait_for_element("#market-intraday .js-plotly-plot", timeout=10)
    time.sleep(0.5)
    # one column, nothing wider than the screen
    overflow = duo.driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, overflow
    chart = duo.find_element("#market-chart").rect
    side = duo.find_element("#market-intraday").rect
    assert side["y"] > chart["y"] + chart["height"] - 5  # the side charts stack below the K-line
    screenshot(duo.driver, "market-phone")
    assert duo.get_logs() == []


def test_symbol_and_timeframe_change_update_the_chart(session):
    duo, app, _ = session.open("/")
    first = _wait_status(duo, lambda t: t.startswith("AAA.US"))
    assert "candles of 1 day" in first
    _choose(duo, "#market-symbol", "CCC.US")
    _wait_status(duo, lambda t: t.startswith("CCC.US"))
    title = duo.driver.execute_script(f"return {GD}.layout.title.text")
    assert "CCC.US" in title
    daily_n = _n_candles(duo)
    _choose(duo, "#market-tf", "1 hour")
    text = _wait_status(duo, lambda t: "candles of 1 hour" in t)
    assert text.startswith("CCC.US")
    assert _n_candles(duo) > daily_n * 5  # 40 sessions of ~7 hourly candles vs 40 daily ones
    lib = app.pyplatform.factors.library
    _choose(duo, "#market-overlays", f"sma_20: {lib['sma_20']}")
    _choose(duo, "#market-panels", f"rsi_14: {lib['rsi_14']}")
    end = time.time() + 15
    names: list = []
    while time.time() < end and not {"sma_20", "rsi_14"} <= set(names):
        names = duo.driver.execute_script(f"return {GD}.data.map(t => t.name)")
        time.sleep(0.2)
    assert {"sma_20", "rsi_14"} <= set(names), names
    assert duo.driver.execute_script(f"return {GD}.layout.yaxis3.title.text") == "rsi_14"  # its own panel
    assert duo.get_logs() == []


def test_zoom_into_a_range_shows_finer_bars(session, screenshot):
    duo, app, _ = session.open("/")
    _wait_status(duo, lambda t: t.startswith("AAA.US"))
    _choose(duo, "#market-tf", "1 minute")
    coarse = _wait_status(duo, lambda t: "candles of 15 minutes" in t)  # 40 x 390 minutes do not fit 3000 candles
    assert "zoom in" in coarse
    # a user's box zoom over ~2 sessions of 15-minute candles (26 per session)
    duo.driver.execute_script(f"Plotly.relayout({GD}, {{'xaxis.range[0]': 100.5, 'xaxis.range[1]': 152.4}})")
    fine = _wait_status(duo, lambda t: "candles of 1 minute" in t)
    assert "zoom in" not in fine
    n = _n_candles(duo)
    assert 600 <= n <= 3000, n
    screenshot(duo.driver, "market-zoomed")
    # double-click (autorange) goes back to the whole history
    duo.driver.execute_script(f"Plotly.relayout({GD}, {{'xaxis.autorange': true}})")
    _wait_status(duo, lambda t: "candles of 15 minutes" in t)
    assert duo.get_logs() == []


def test_live_bar_appears_after_a_tick_is_published(session, market_frames, screenshot, tmp_path):
    """End to end: a quote published into the signal service's stream table reaches the chart
    through the real service, the client library and the app's buffer; a dropped service shows."""
    from dashboard_helpers import quotes_batch, start_signal_service
    from pyplatform.dashboard.live_feed import LiveFeed
    from pyplatform.domain.market import Depth, DepthLevel

    duo, app, buf = session.open("/")
    service, tables, token = start_signal_service(tmp_path)
    feed = LiveFeed(buf, service.svc.url, token, flush_s=0.05, backoff_s=0.05, backoff_max_s=0.2).start()
    try:
        duo.wait_for_text_to_equal("#live-badge", "● live", timeout=15)
        _wait_status(duo, lambda t: t.startswith("AAA.US"))
        _choose(duo, "#market-tf", "1 minute")
        duo.find_element("#market-live input").click()
        _wait_status(duo, lambda t: "live: waiting for ticks" in t)
        before = duo.driver.execute_script(f"return {GD}.data[0].x.slice(-1)[0]")
        # quotes three days after the history ends: their last prices form a new one-minute bar
        last = int(market_frames[0].index.get_level_values("datetime").max().value)
        tick_ts = last + 86_400_000_000_000 * 3 + 5 * 60_000_000_000
        last_close = float(market_frames[1].xs("AAA.US", level="symbol")["close"].iloc[-1])
        p1, p2 = round(last_close + 0.3, 2), round(last_close + 0.55, 2)
        tables["quotes"].append(quotes_batch([tick_ts, tick_ts + 1_000_000_000], "AAA.US", [p1, p2], [9000.0, 9500.0]))
        _wait_status(duo, lambda t: "live: +1 candles" in t)
        after = duo.driver.execute_script(f"return {GD}.data[0].x.slice(-1)[0]")
        # plotly ships numeric arrays base64-encoded; read the decoded candle from _fullData
        close = duo.driver.execute_script(f"var c = {GD}._fullData[0].close; return c[c.length - 1]")
        assert after != before and after.endswith(pd.Timestamp(tick_ts).strftime("%H:%M"))
        assert close == pytest.approx(p2)
        # depth snapshots are not a signal-service topic: an adapter pushes them into the buffer
        buf.on_depth(Depth(tick_ts, "AAA.US",
                           bids=tuple(DepthLevel(i + 1, p2 - 0.01 * (i + 1), 5.0 + i) for i in range(5)),
                           asks=tuple(DepthLevel(i + 1, p2 + 0.01 * (i + 1), 4.0 + 2 * i) for i in range(5))))
        depth = "document.querySelector('#market-depth .js-plotly-plot')"
        end = time.time() + 10
        while time.time() < end and duo.driver.execute_script(f"return {depth}.data.length") < 2:
            time.sleep(0.1)
        assert duo.driver.execute_script(f"return {depth}.data.map(t => t.name)") == ["bids", "asks"]
        screenshot(duo.driver, "market-live")
        service.stop()
        duo.wait_for_text_to_equal("#live-badge", "◌ reconnecting…", timeout=15)
    finally:
        feed.stop()
    duo.wait_for_text_to_equal("#live-badge", "○ no live feed", timeout=10)
    assert duo.get_logs() == []


def test_factor_page_shows_ic_and_quantile_plots(session, screenshot):
    from pyplatform.research.evaluation import evaluate

    duo, app, _ = session.open("/factors")
    _choose(duo, "#factor-name", "rsi_14: " + app.pyplatform.factors.library["rsi_14"])
    # stocks are the default universe: one calendar, no weekends of 24/7 names in the IC
    assert app.pyplatform.factors.universes and list(app.pyplatform.factors.universes)[0] == "stocks"
    duo.wait_for_contains_text("#factor-status", "rsi_14 on stocks", timeout=30)
    ic_trace = "document.querySelector('#factor-ic .js-plotly-plot')._fullData[0]"
    q_trace = "document.querySelector('#factor-quantiles .js-plotly-plot')._fullData"
    duo.wait_for_element("#factor-ic .js-plotly-plot", timeout=10)
    n_ic = duo.driver.execute_script(f"return {ic_trace}.y.length")
    q_labels = duo.driver.execute_script(f"return Array.from({q_trace}[0].x)")
    q_first = duo.driver.execute_script(f"return Array.from({q_trace}[0].y)")
    # the page draws what pyplatform.research computes for the same factor and universe
    r = app.pyplatform.factors.evaluate("rsi_14", "stocks")
    ref = evaluate(r.values.dropna(), app.pyplatform.factors.load_daily(app.pyplatform.factors.universes["stocks"])
                   ["close"].unstack("symbol"), horizons=(1, 5, 10), name="rsi_14", min_names=5)
    assert n_ic == len(ref.ic)
    assert q_labels == [f"Q{int(q)}" for q in ref.quantile_returns.index]
    np.testing.assert_allclose(q_first, ref.quantile_returns.iloc[:, 0].to_numpy() * 1e4)
    for gid in ("#factor-values", "#factor-decay", "#factor-turnover", "#factor-corr"):
        duo.wait_for_element(f"{gid} .js-plotly-plot", timeout=10)
    screenshot(duo.driver, "factors-rsi")
    assert duo.get_logs() == []


def test_live_page_shows_quotes_signals_orders_positions_and_risk(session, screenshot):
    duo, app, buf = session.open("/live")
    duo.wait_for_contains_text("#live-signals", "no signals yet", timeout=10)
    t0 = time.time_ns()
    buf.set_connection("connected", t0)
    buf.on_quotes({"ts": np.array([t0, t0]), "symbol": np.array(["AAA.US", "BBB.US"]), "last": np.array([101.5, 55.25]),
                   "bid": np.array([101.4, 55.2]), "ask": np.array([101.6, 55.3]), "volume": np.array([1e4, 2e4])})
    buf.on_signals({"ts": np.array([t0]), "symbol": np.array(["AAA.US"]), "strategy": np.array(["ma_cross"]),
                    "direction": np.array([1]), "strength": np.array([0.8])})
    buf.on_orders([{"order_id": "o-1", "symbol": "AAA.US", "side": "BUY", "qty": 100, "price": 101.5,
                    "filled": 0, "status": "NEW"}])
    buf.on_orders([{"order_id": "o-1", "filled": 100, "status": "FILLED"}])
    buf.on_positions([{"symbol": "AAA.US", "qty": 100, "avg_price": 101.5, "market_value": 10150.0,
                       "unrealized_pnl": 0.0}])
    for i, v in enumerate([0.0, 12.5, -3.0, 20.0]):
        buf.on_pnl(t0 + i * 1_000_000_000, v)
    buf.on_risk({"kill_switch": True, "limits": {"gross exposure": {"used": 10150.0, "limit": 12000.0},
                                                 "orders / min": {"used": 2, "limit": 60}}})
    duo.wait_for_text_to_equal("#kill-switch", "ENGAGED", timeout=10)  # pushed last: the rest is drawn
    assert "55.25" in duo.find_element("#live-quotes").text
    assert "ma_cross" in duo.find_element("#live-signals").text
    orders = duo.find_element("#live-orders").text
    assert "o-1" in orders and "FILLED" in orders and "NEW" not in orders  # the update replaced the row
    assert "10,150" in duo.find_element("#live-positions").text
    duo.wait_for_text_to_equal("#kill-switch", "ENGAGED", timeout=10)
    assert "gross exposure: 10,150 / 12,000 (85%)" in duo.find_element("#live-risk").text
    duo.wait_for_text_to_equal("#live-badge", "● live", timeout=10)
    time.sleep(0.5)
    screenshot(duo.driver, "live-filled")
    assert duo.get_logs() == []


def test_saved_backtest_runs_appear_in_the_list_and_compare(session, market_settings, screenshot):
    from pyplatform.backtest import run_backtest

    runs = [run_backtest({"kind": "ma_cross", "params": {"fast": f, "slow": s}}, symbols=["AAA.US", "BBB.US"],
                         settings=market_settings, save=True) for f, s in ((3, 8), (5, 15))]
    duo, app, _ = session.open("/backtests")
    duo.wait_for_element("#bt-runs", timeout=10)
    listed = duo.find_element("#bt-runs").text
    for r in runs:
        assert r.run_id in listed
    duo.wait_for_contains_text("#bt-metrics", "sharpe", timeout=20)
    # tick a second run: equity and drawdown compare both, metrics side by side
    boxes = duo.driver.find_elements("css selector", "#bt-runs input")
    for box in boxes:
        if not box.is_selected():
            box.click()
    gd = "document.querySelector('#bt-equity .js-plotly-plot')"
    end = time.time() + 20
    while time.time() < end and duo.driver.execute_script(f"return {gd} ? {gd}.data.length : 0") < len(boxes):
        time.sleep(0.2)
    assert duo.driver.execute_script(f"return {gd}.data.length") == len(boxes) >= 2
    header = duo.find_element("#bt-metrics thead").text
    assert all(r.run_id in header for r in runs)
    sharpe_row = [tr.text for tr in duo.driver.find_elements("css selector", "#bt-metrics tbody tr")
                  if tr.text.startswith("sharpe")][0]
    for r in runs:
        assert f"{r.metrics['sharpe']:,.4f}" in sharpe_row
    duo.wait_for_element("#bt-trades .js-plotly-plot", timeout=10)
    time.sleep(0.5)
    screenshot(duo.driver, "backtests")
    assert duo.get_logs() == []


def test_oscillator_overlay_gets_its_own_axis_log_scale_and_kept_zoom(session, screenshot):
    """Issue 20 item 9: an RSI chosen as an *overlay* is drawn on its own axis (the candles keep
    their scale), the log toggle switches the price axis, and a zoom survives a symbol change."""
    duo, app, _ = session.open("/")
    _wait_status(duo, lambda t: t.startswith("AAA.US") and "candles of 1 day" in t)
    lib = app.pyplatform.factors.library
    _choose(duo, "#market-overlays", f"rsi_14: {lib['rsi_14']}")
    text = _wait_status(duo, lambda t: "own axis" in t)
    assert "rsi_14" in text
    names = duo.driver.execute_script(f"return {GD}.data.map(t => t.name + '@' + (t.yaxis || 'y'))")
    rsi_axis = [n.split("@")[1] for n in names if n.startswith("rsi_14")]
    assert rsi_axis and rsi_axis[0] != "y", names  # not on the price axis
    # price axis range stays on the candles' scale (RSI 0..100 would stretch it)
    rng = duo.driver.execute_script(f"return {GD}._fullLayout.yaxis.range")
    closes = app.pyplatform.bars.daily("AAA.US")["close"]
    assert rng[0] > closes.min() * 0.8 and rng[1] < closes.max() * 1.2, rng
    # indicators are warmed up: the first candle of a zoomed window already has an RSI value
    duo.driver.execute_script(f"Plotly.relayout({GD}, {{'xaxis.range[0]': 19.5, 'xaxis.range[1]': 35.4}})")
    _wait_status(duo, lambda t: "AAA.US · 16 candles" in t)
    first_rsi = duo.driver.execute_script(
        f"var d = {GD}._fullData.filter(t => t.name === 'rsi_14')[0]; return d.y[0]")
    assert first_rsi is not None and 0 < first_rsi < 100
    window = _status(duo).split(" · ")[2]
    _choose(duo, "#market-symbol", "BBB.US")
    kept = _wait_status(duo, lambda t: t.startswith("BBB.US"))
    assert kept.split(" · ")[2] == window and "16 candles" in kept  # same dates, other symbol
    duo.find_element("#market-log input").click()
    end = time.time() + 10
    while time.time() < end and duo.driver.execute_script(f"return {GD}.layout.yaxis.type") != "log":
        time.sleep(0.1)
    assert duo.driver.execute_script(f"return {GD}.layout.yaxis.type") == "log"
    screenshot(duo.driver, "market-oscillator-log")
    assert duo.get_logs() == []


def test_expression_box_validates_inline_and_draws_and_csv_exports(session, screenshot):
    """Issue 20 item 9: an expression typed in the app is validated inline (the parser's error
    shown under the box) and, once valid, drawn on the chart; CSV export downloads the shown
    candles."""
    import os

    from selenium.webdriver.common.keys import Keys

    duo, app, _ = session.open("/")
    _wait_status(duo, lambda t: t.startswith("AAA.US") and "candles of 1 day" in t)
    box = duo.find_element("#market-expr")
    box.send_keys("mavg(close, ")
    box.send_keys(Keys.ENTER)
    duo.wait_for_contains_text("#market-expr-error", "1:13", timeout=10)  # position of the error
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("mavg(close, 5)")
    box.send_keys(Keys.ENTER)
    end = time.time() + 15
    names: list = []
    while time.time() < end and "mavg(close, 5)" not in names:
        names = duo.driver.execute_script(f"return {GD}.data.map(t => t.name)")
        time.sleep(0.2)
    assert "mavg(close, 5)" in names, names
    assert duo.find_element("#market-expr-error").text == ""
    # the drawn values are the 5-day mean of the shown closes (hand formula via pandas)
    ys = duo.driver.execute_script(f"return Array.from({GD}._fullData.filter(t => t.name === 'mavg(close, 5)')[0].y)")
    closes = app.pyplatform.bars.daily("AAA.US")["close"]
    np.testing.assert_allclose(np.array(ys[4:], float), closes.rolling(5).mean().to_numpy()[4:], rtol=1e-9)
    screenshot(duo.driver, "market-expression")
    duo.find_element("#market-csv").click()
    path = os.path.join(duo.download_path, "AAA.US_1d.csv")
    end = time.time() + 15
    while time.time() < end and not os.path.exists(path):
        time.sleep(0.2)
    csv = pd.read_csv(path)
    assert list(csv.columns[:3]) == ["datetime", "symbol", "open"] and len(csv) == len(closes)
    np.testing.assert_allclose(csv["close"].to_numpy(), closes.to_numpy())
    assert duo.get_logs() == []
