"""The research app in headless Chromium: pages, chart interactions, live updates, screenshots."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from pyplatform.dashboard import create_app
from pyplatform.dashboard.live_buffer import LiveBuffer

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
    duo.wait_for_element(dropdown, timeout=15)  # the page's layout renders after #page appears
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
    from pyplatform.clock import LiveClock
    from pyplatform.dashboard.live_feed import LiveFeed
    from pyplatform.domain.market_data import Depth, DepthLevel

    duo, app, buf = session.open("/")
    service, tables, token = start_signal_service(tmp_path)
    feed = LiveFeed(buf, service.svc.url, token, flush_s=0.05, clock=LiveClock(), backoff_s=0.05,
                    backoff_max_s=0.2).start()
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


def _wait_js(duo, script: str, predicate, timeout: float = 15.0, what: str = ""):
    end = time.time() + timeout
    got = None
    while time.time() < end:
        got = duo.driver.execute_script(script)
        if predicate(got):
            return got
        time.sleep(0.15)
    raise AssertionError(f"{what or script} never matched; last: {got!r}")


def _query(duo) -> dict:
    from urllib.parse import parse_qs, urlparse

    return parse_qs(urlparse(duo.driver.current_url).query)


def test_state_in_the_url_reopens_the_chart_with_compared_symbols(session, market_frames, screenshot):
    """Issue 20 item 9: symbol, timeframe, window, overlays and compared symbols go into the URL
    after each draw; opening that link in a fresh page draws the same chart. A compared symbol
    is a line rebased to the chart's first candle."""
    duo, app, _ = session.open("/")
    _wait_status(duo, lambda t: t.startswith("AAA.US") and "candles of 1 day" in t)
    lib = app.pyplatform.factors.library
    _choose(duo, "#market-overlays", f"sma_20: {lib['sma_20']}")
    _choose(duo, "#market-compare", "BBB.US")
    _wait_status(duo, lambda t: "compared (rebased to the first candle): BBB.US" in t)
    # a box zoom over candles 10..29
    duo.driver.execute_script(f"Plotly.relayout({GD}, {{'xaxis.range[0]': 9.5, 'xaxis.range[1]': 29.4}})")
    _wait_status(duo, lambda t: t.startswith("AAA.US · 20 candles"))
    end = time.time() + 10
    while time.time() < end and "start" not in _query(duo):
        time.sleep(0.1)
    q = _query(duo)
    days = market_frames[1].xs("AAA.US", level="symbol").index
    assert q["symbol"] == ["AAA.US"] and q["tf"] == ["1d"] and q["overlays"] == ["sma_20"], q
    assert q["compare"] == ["BBB.US"]
    assert q["start"] == [f"{days[10]:%Y-%m-%d}"] and q["end"] == [f"{days[30]:%Y-%m-%d}"], q
    link = duo.driver.current_url
    # a fresh page (a colleague opening the link): same symbol, window, overlay and comparison
    duo.driver.get(duo.server_url + "/factors")
    duo.wait_for_element("#factor-name", timeout=10)
    duo.driver.get(link)
    duo.wait_for_element("#page", timeout=10)
    _wait_status(duo, lambda t: t.startswith("AAA.US · 20 candles") and "BBB.US" in t)
    names = _wait_js(duo, f"return {GD}.data.map(t => t.name)", lambda n: "BBB.US (rebased)" in n and "sma_20" in n)
    assert "sma_20" in names
    ys = duo.driver.execute_script(
        f"return Array.from({GD}._fullData.filter(t => t.name === 'BBB.US (rebased)')[0].y)")
    a = market_frames[1].xs("AAA.US", level="symbol")["close"].iloc[10:30].to_numpy()
    b = market_frames[1].xs("BBB.US", level="symbol")["close"].iloc[10:30].to_numpy()
    np.testing.assert_allclose(np.array(ys, float), b / b[0] * a[0], rtol=1e-12)  # rebased by hand
    screenshot(duo.driver, "market-url-compare")
    assert duo.get_logs() == []


def test_crosshair_labels_price_and_time_at_the_cursor(session, screenshot):
    """Issue 20 item 9: moving the mouse over the K-line draws Plotly's spike lines and labels
    the price at the cursor (right edge) and the candle's time (bottom)."""
    duo, app, _ = session.open("/")
    _wait_status(duo, lambda t: t.startswith("AAA.US") and "candles of 1 day" in t)
    _wait_js(duo, f"return {GD} && {GD}._fullLayout && {GD}._fullLayout.yaxis ? 1 : 0", lambda v: v == 1)
    geo = duo.driver.execute_script(f"""
        var gd = {GD}, fl = gd._fullLayout, b = gd.getBoundingClientRect();
        return {{w: b.width, h: b.height, xo: fl.xaxis._offset, xl: fl.xaxis._length, yo: fl.yaxis._offset,
                 yl: fl.yaxis._length, yr: fl.yaxis.range, xr: fl.xaxis.range, n: gd._fullData[0].x.length}}""")
    px, py = geo["xl"] * 0.5, geo["yl"] * 0.3  # inside the price panel
    # the mouse event goes to Plotly's hover layer at those coordinates, as a pointer's would
    # (a WebDriver pointer lands on whatever Dash keeps layered there, e.g. a closed menu)
    duo.driver.execute_script(f"""
        var gd = {GD}, b = gd.getBoundingClientRect(), drag = gd.querySelector('.nsewdrag');
        var x = b.left + arguments[0], y = b.top + arguments[1];
        drag.dispatchEvent(new MouseEvent('mousemove', {{clientX: x, clientY: y, bubbles: true}}));""",
                              geo["xo"] + px, geo["yo"] + py)
    label = _wait_js(duo, "var e = document.querySelector('.pp-cross-price'); "
                          "return e && e.style.display === 'block' ? e.dataset.value : null", lambda v: v is not None)
    lo, hi = geo["yr"]
    expected = hi - (hi - lo) * (py / geo["yl"])  # linear axis: value falls with pixel row
    assert float(label) == pytest.approx(expected, abs=(hi - lo) / geo["yl"] * 1.5)
    idx = int(duo.driver.execute_script("return document.querySelector('.pp-cross-time').dataset.index"))
    x0, x1 = geo["xr"]
    assert abs(idx - (x0 + (x1 - x0) * px / geo["xl"])) <= 1.0
    cats = duo.driver.execute_script(f"return {GD}._fullData[0].x")
    assert duo.find_element(".pp-cross-time").text == cats[idx]
    # Plotly's own spike lines are drawn too (the vertical one through every panel)
    assert duo.driver.execute_script(f"return {GD}.querySelectorAll('.spikeline').length") > 0
    screenshot(duo.driver, "market-crosshair")
    assert duo.get_logs() == []


def _click_when_settled(duo, css: str, index: int, settle_s: float = 0.7, timeout: float = 15.0) -> None:
    from selenium.common.exceptions import StaleElementReferenceException

    end = time.time() + timeout
    while time.time() < end:
        els = duo.driver.find_elements("css selector", css)
        if len(els) > index:
            el = els[index]
            time.sleep(settle_s)
            try:
                if el.is_displayed():  # still the same, attached element after settle_s
                    el.click()
                    return
            except StaleElementReferenceException:
                pass
        time.sleep(0.1)
    raise AssertionError(f"{css}[{index}] never settled")


def test_watchlist_persists_and_keyboard_shortcuts_drive_the_chart(session, market_frames, screenshot):
    """Issue 20 item 9: a watchlist kept in the browser's local storage (survives a reload),
    with last close and change; keys: w watches, j/k walk the list, l log axis, / expression."""
    from selenium.webdriver.common.action_chains import ActionChains

    duo, app, _ = session.open("/")
    duo.driver.execute_script("window.localStorage.clear()")
    duo.driver.get(duo.server_url + "/")
    _wait_status(duo, lambda t: t.startswith("AAA.US"))
    items = "return Array.from(document.querySelectorAll('#watchlist .watch-item')).map(b => b.innerText)"
    duo.find_element("#watch-add").click()
    got = _wait_js(duo, items, lambda v: len(v) == 1)
    d = market_frames[1].xs("AAA.US", level="symbol")["close"]
    # the row shows the last close and the change since the previous close (pandas by hand)
    assert "AAA.US" in got[0] and f"{d.iloc[-1]:,.6g}" in got[0] and f"{d.iloc[-1] / d.iloc[-2] - 1:+.2%}" in got[0]
    _choose(duo, "#market-symbol", "BBB.US")
    _wait_status(duo, lambda t: t.startswith("BBB.US"))
    duo.find_element("#market-status").click()  # focus out of the dropdown, as a user would
    ActionChains(duo.driver).send_keys("w").perform()
    _wait_js(duo, items, lambda v: len(v) == 2 and "BBB.US" in v[1])
    # local storage: the list survives a reload (the URL keeps the shown symbol)
    duo.driver.refresh()
    duo.wait_for_element("#page", timeout=10)
    _wait_status(duo, lambda t: t.startswith("BBB.US"))
    _wait_js(duo, items, lambda v: len(v) == 2)
    # after a reload the list is drawn from local storage and then redrawn once the URL state
    # is applied; click a row only once it has stopped being replaced (a click on a row that
    # is swapped out the same instant is lost, as it would be for a user)
    _click_when_settled(duo, "#watchlist .watch-item", 0)
    _wait_status(duo, lambda t: t.startswith("AAA.US"))
    duo.find_element("#market-status").click()
    ActionChains(duo.driver).send_keys("j").perform()  # next in the watchlist
    _wait_status(duo, lambda t: t.startswith("BBB.US"))
    ActionChains(duo.driver).send_keys("l").perform()
    _wait_js(duo, f"return {GD}.layout.yaxis.type", lambda v: v == "log")
    ActionChains(duo.driver).send_keys("/").perform()
    assert duo.driver.execute_script("return document.activeElement.id") == "market-expr"
    screenshot(duo.driver, "market-watchlist")
    duo.driver.execute_script("window.localStorage.clear()")
    assert duo.get_logs() == []


def test_factor_page_shows_progress_then_compares_factors_side_by_side(session, screenshot):
    """Issue 20 item 9: a factor not evaluated yet shows its progress (not a bare spinner);
    factors chosen side by side share a cumulative-IC chart and a summary table whose figures
    are pyplatform.research's for the same factor and universe."""
    from pyplatform.research.evaluation import evaluate

    duo, app, _ = session.open("/factors")
    fd = app.pyplatform.factors
    # slow the bar read a little so the progress of a fresh evaluation is visible to the test
    orig = fd.load_daily

    def slow(symbols):
        time.sleep(1.5)
        return orig(symbols)

    fd.load_daily = slow
    fd._frames.clear()
    try:
        names = list(fd.library)
        pick = [n for n in names[1:] if fd.cached(n, "stocks") is None and n in ("sma_20", "mom_10", "ema_12")
                ] or names[1:3]
        _choose(duo, "#factor-compare", f"{pick[0]}: {fd.library[pick[0]]}")
        duo.wait_for_contains_text("#factor-progress", "evaluating over stocks", timeout=15)
        # the progress block re-renders on every poll, so ask the page itself (a found element
        # can go stale between find and is_displayed)
        shown, end = False, time.monotonic() + 10
        while not shown and time.monotonic() < end:
            shown = duo.driver.execute_script(
                "const m = document.querySelector('#factor-progress .meter');"
                "return !!(m && m.offsetParent !== null && m.getBoundingClientRect().width > 0);")
            time.sleep(0.1)
        assert shown, "no progress meter while the factor was being evaluated"
        duo.wait_for_contains_text("#factor-compare-summary", pick[0], timeout=60)
    finally:
        fd.load_daily = orig
    first = names[0]
    rows = {tr.find_elements("css selector", "td")[0].text: [td.text for td in tr.find_elements("css selector", "td")]
            for tr in duo.driver.find_elements("css selector", "#factor-compare-summary tbody tr")}
    assert set(rows) == {first, pick[0]}
    daily = fd.load_daily(fd.universes["stocks"])
    for n in (first, pick[0]):
        vals = fd._values(daily.sort_index(), n)
        ref = evaluate(vals.dropna(), daily["close"].unstack("symbol"), horizons=(1, 5, 10), name=n, min_names=5)
        assert rows[n][1] == f"{ref.summary.iloc[0]['ic_mean']:+.4f}", (n, rows[n])
    traces = duo.driver.execute_script(
        "return document.querySelector('#factor-compare-ic .js-plotly-plot').data.map(t => t.name)")
    assert traces == [first, pick[0]]
    assert duo.find_element("#factor-progress").text == ""  # gone once everything is drawn
    duo.find_element("#factor-status").click()  # close the menu before the picture
    duo.driver.execute_script("document.querySelector('#factor-compare-ic').scrollIntoView({block: 'center'})")
    time.sleep(0.5)
    screenshot(duo.driver, "factors-side-by-side")
    assert duo.get_logs() == []


def test_backtests_are_listed_by_name_and_dates_and_show_a_chosen_symbols_trades(session, market_settings,
                                                                              screenshot):
    """Issue 20 item 9: runs are listed by strategy, kinds and dates (id last), and a
    multi-symbol run's trades are shown for the symbol picked in the selector."""
    from pyplatform.backtest import load_run, run_backtest

    syms = ["AAA.US", "BBB.US", "CCC.US", "DDD.US"]
    run = run_backtest({"kind": "ma_cross", "name": "wide_cross", "params": {"fast": 3, "slow": 8}}, symbols=syms,
                       settings=market_settings, save=True)
    duo, app, _ = session.open("/backtests")
    duo.wait_for_contains_text("#bt-runs", "wide_cross", timeout=10)
    label = [lab.text for lab in duo.driver.find_elements("css selector", "#bt-runs label") if run.run_id in lab.text][0]
    cfg = load_run(run.run_id, market_settings).config
    assert label.startswith("wide_cross (ma_cross) · ")
    assert f"{pd.Timestamp(cfg['start']):%Y-%m-%d} → {pd.Timestamp(cfg['end']):%Y-%m-%d}" in label
    assert "4 symbols" in label and "Sharpe" in label
    # tick only the new run
    for lab in duo.driver.find_elements("css selector", "#bt-runs label"):
        box = lab.find_element("css selector", "input")
        if box.is_selected() != (run.run_id in lab.text):
            box.click()
    fills = load_run(run.run_id, market_settings).trades
    other = [s for s in fills["symbol"].value_counts().index if s != run.symbol][0]
    n_other = int((fills["symbol"] == other).sum())
    _choose(duo, "#bt-symbol", f"{other} ({n_other} fills)")
    gd = "document.querySelector('#bt-trades .js-plotly-plot')"
    _wait_js(duo, f"return {gd} ? {gd}.layout.title.text : ''", lambda t: t.startswith(other), timeout=20)
    prices = duo.driver.execute_script(
        f"return {gd}._fullData.filter(t => t.name === 'buy' || t.name === 'sell').map(t => Array.from(t.y))")
    drawn = sorted(p for trace in prices for p in trace)
    mine = fills[fills["symbol"] == other]
    assert drawn == pytest.approx(sorted(mine["price"].astype(float)))  # that symbol's fills, all of them
    time.sleep(0.5)
    screenshot(duo.driver, "backtests-symbol")
    assert duo.get_logs() == []


@pytest.mark.parametrize("path, marker, name", [
    ("/", "#market-chart .js-plotly-plot", "market"),
    ("/factors", "#factor-ic .js-plotly-plot", "factors"),
    ("/backtests", "#bt-runs", "backtests"),
    ("/live", "#live-quotes", "live"),
])
def test_pages_fit_desktop_and_phone_widths(session, screenshot, path, marker, name):
    """Styling at a desktop (1366 px) and a phone (390 px) width: nothing wider than the
    screen, controls stacked on the phone; a screenshot of each."""
    duo, app, _ = session.open(path)
    for width, height, tag in ((1366, 900, "desktop"), (390, 844, "phone")):
        duo.driver.set_window_size(width, height)
        duo.wait_for_element(marker, timeout=30)
        time.sleep(0.6)  # relayout after the resize
        overflow = duo.driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (name, tag, overflow)
        if tag == "phone":
            # controls take the full width, one per row
            widths = duo.driver.execute_script(
                "return Array.from(document.querySelectorAll('.controls > .control')).map(e => e.getBoundingClientRect().width)")
            assert all(w >= 0.8 * (width - 40) for w in widths), widths
        screenshot(duo.driver, f"{name}-{tag}")
    assert duo.get_logs() == []
