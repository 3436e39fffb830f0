"""The research app in headless Chromium: pages, chart interactions, live updates, screenshots."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pyplatform.dashboard import create_app
from pyplatform.dashboard.live import LiveBuffer

pytestmark = [pytest.mark.browser]

GD = "document.querySelector('#market-chart .js-plotly-plot')"


def _app(settings, **kw):
    return create_app(settings, poll_ms=300, **kw)


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


def test_each_page_loads_without_console_errors(duo, market_settings, screenshot):
    app = _app(market_settings)
    duo.start_server(app)
    _wait_status(duo, lambda t: "candles" in t)
    duo.wait_for_element("#market-intraday .js-plotly-plot", timeout=10)
    screenshot(duo.driver, "market")
    for path, marker, name in (("/factors", "#page .page", "factors"), ("/backtests", "#page .page", "backtests"),
                               ("/live", "#live-quotes", "live")):
        duo.driver.get(duo.server_url + path)
        duo.wait_for_element(marker, timeout=10)
        time.sleep(0.5)
        screenshot(duo.driver, name)
    assert duo.get_logs() == [], duo.get_logs()


def test_symbol_and_timeframe_change_update_the_chart(duo, market_settings):
    app = _app(market_settings)
    duo.start_server(app)
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
    assert duo.get_logs() == []


def test_zoom_into_a_range_shows_finer_bars(duo, market_settings, screenshot):
    app = _app(market_settings)
    duo.start_server(app)
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


def test_live_bar_appears_after_a_tick_is_published(duo, market_settings, market_frames, screenshot):
    buf = LiveBuffer()
    app = _app(market_settings, live=buf)
    duo.start_server(app)
    _wait_status(duo, lambda t: t.startswith("AAA.US"))
    _choose(duo, "#market-tf", "1 minute")
    duo.find_element("#market-live input").click()
    _wait_status(duo, lambda t: "live: waiting for ticks" in t)
    before = duo.driver.execute_script(f"return {GD}.data[0].x.slice(-1)[0]")
    buf.set_connection("connected", time.time_ns())
    duo.wait_for_text_to_equal("#live-badge", "● live", timeout=10)
    # a tick one session after the history ends, as the signal-service client would push it
    last = int(market_frames[0].index.get_level_values("datetime").max().value)
    tick_ts = last + 86_400_000_000_000 * 3 + 5 * 60_000_000_000
    buf.on_ticks({"ts": np.array([tick_ts, tick_ts + 1_000_000_000]), "symbol": np.array(["AAA.US"] * 2),
                  "price": np.array([123.45, 124.0]), "volume": np.array([10.0, 5.0])})
    _wait_status(duo, lambda t: "live: +1 candles" in t)
    after = duo.driver.execute_script(f"return {GD}.data[0].x.slice(-1)[0]")
    # plotly ships numeric arrays base64-encoded; read the decoded candle from calcdata
    close = duo.driver.execute_script(f"var c = {GD}._fullData[0].close; return c[c.length - 1]")
    assert after != before
    assert close == pytest.approx(124.0)
    screenshot(duo.driver, "market-live")
    buf.set_connection("disconnected", time.time_ns(), "socket closed")
    duo.wait_for_text_to_equal("#live-badge", "✕ live feed lost", timeout=10)
    assert duo.get_logs() == []
