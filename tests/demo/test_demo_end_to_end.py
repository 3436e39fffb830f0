"""The main job end to end: simulator -> feed -> bars -> factors -> strategies -> risk ->
paper broker, with the signal service (real redis-server) and the Dash app up."""

import shutil
import urllib.request

import pytest

from pyplatform.demo import run_demo


@pytest.mark.timeout(240)
def test_demo_runs_the_whole_path(market_settings):
    rep = run_demo(seconds=30, n_symbols=8, settings=market_settings, live_table=False)
    assert rep.ticks > 1000
    assert rep.bars > 20 and rep.factor_rows == rep.bars  # one factor row per bar
    # factors warmed up and carry finite values for live symbols
    assert any(v == v for f in rep.latest_factors for k, v in f.items() if k not in ("symbol", "ts"))
    assert rep.service_url.startswith("ws://127.0.0.1:")
    if shutil.which("redis-server"):
        assert rep.health["redis"] == "ok"
    assert rep.health["status"] == "ok"
    assert rep.dash_url and "subscribe_forever" in rep.subscribe_example
    assert rep.risk["kill"] == "OFF"
    # the P&L reported is consistent with the equity (capital 1,000,000)
    assert rep.equity == pytest.approx(1_000_000 + rep.pnl, abs=0.05)
    # journaled orders and signals agree: every order came from a signal
    assert rep.orders <= rep.signals


def test_demo_dash_app_serves(market_settings):
    from pyplatform.demo import _start_dash, _free_port
    from rich.console import Console

    url, server = _start_dash(market_settings, _free_port(), Console())
    try:
        body = urllib.request.urlopen(url, timeout=20).read().decode()
        assert "pyplatform" in body.lower() or "_dash-config" in body
    finally:
        server.shutdown()


@pytest.mark.timeout(240)
def test_demo_routes_orders_over_fix(market_settings):
    """--broker fix: the same path, but orders travel a real quickfix FIX 4.4 session over
    loopback to the exchange simulator, and its execution reports come back into the OMS."""
    rep = run_demo(seconds=35, n_symbols=8, settings=market_settings, live_table=False, broker="fix")
    assert rep.broker == "fix"
    assert rep.factor_rows > 0
    assert rep.orders > 0, "no order reached the FIX session"
    assert rep.equity == pytest.approx(1_000_000 + rep.pnl, abs=0.05)
    log_dir = market_settings.data_dir / "trading" / "demo" / "fix"
    assert log_dir.exists()  # the initiator's FileStore: sequence numbers persisted across restarts


def test_demo_rejects_unknown_broker(market_settings):
    with pytest.raises(ValueError, match="broker"):
        run_demo(seconds=1, settings=market_settings, live_table=False, broker="carrier-pigeon")
