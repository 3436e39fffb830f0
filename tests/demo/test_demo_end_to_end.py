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
        assert rep.health["redis"] == "ok"  # the service authenticated to the demo's Redis
        pw = market_settings.path("secrets", "redis.password")
        assert pw.exists() and pw.stat().st_mode & 0o077 == 0
    assert rep.health["status"] == "ok"
    assert rep.dash_url and "subscribe_forever" in rep.subscribe_example
    assert rep.risk["kill"] == "OFF"
    # the P&L reported is consistent with the equity (capital 1,000,000)
    assert rep.equity == pytest.approx(1_000_000 + rep.pnl, abs=0.05)
    # journaled orders and signals agree: every order came from a signal
    assert rep.orders <= rep.signals
    # the seed's sentence was drafted into a rule strategy and traded live on its symbol
    cfg = rep.drafted["config"]
    assert cfg == {"kind": "rule", "name": "drafted", "symbols": ["EURUSD.GB"],
                   "rules": {"entry_long": "cross(mavg(close, 5), mavg(close, 20)) == 1",
                             "exit_long": "cross(mavg(close, 5), mavg(close, 20)) == -1"},
                   "params": {"position_pct": 0.02, "stop_loss_points": 100.0}}
    # its rules were evaluated live on EURUSD's 1-second bars once warmed up (20 bars); whether
    # a 5/20 cross happens within a 30-second run is up to the market, so signals are not asserted
    assert rep.drafted["evaluated_rows"] > 0, rep.drafted
    # ... and backtested over the daily history first, saved for the Backtests page
    bt = rep.drafted_backtest
    assert "error" not in bt, bt
    from pyplatform.backtest import load_run

    saved = load_run(bt["run_id"], market_settings)
    assert saved.config["strategies"][0]["kind"] == "rule" and saved.config["symbols"] == ["EURUSD.GB"]
    assert saved.metrics["n_trades"] == bt["n_trades"]


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


def test_demo_history_is_generated_once_then_reused(tmp_path):
    """`make demo` generates its years of history once (a marker records them) and reuses them;
    a demo market shorter than asked is regenerated. A small ``years`` keeps the test fast."""
    import json

    from rich.console import Console

    from pyplatform.config import get_settings
    from pyplatform.demo import _ensure_history, _history_span

    settings = get_settings(data_dir=tmp_path, fsync="never")
    out = Console(record=True, width=200)
    syms = _ensure_history(settings, 4, out, years=1 / 12)
    assert len(syms) == 4 and "generating" in out.export_text()
    marker = json.loads((tmp_path / "demo_market.json").read_text())
    assert marker["years"] == pytest.approx(1 / 12) and marker["minute_bars"] > 0
    # dates by hand: one month of sessions before the demo's end date
    _, span = _history_span(settings)
    assert 20 / 365.25 < span < 31 / 365.25
    again = Console(record=True, width=200)
    assert _ensure_history(settings, 4, again, years=1 / 12) == syms
    assert "already" in again.export_text() and "generating" not in again.export_text()
    longer = Console(record=True, width=200)
    _ensure_history(settings, 4, longer, years=2 / 12)
    assert "generating it again" in longer.export_text()
    assert 50 / 365.25 < _history_span(settings)[1] < 62 / 365.25


def test_demo_drafts_the_seed_sentence_and_sizes_it_per_symbol():
    """The seed's sentence drafts into the rule kind; its 2% position becomes EURUSD's
    concentration limit (with micro lots), leaving other symbols at the account defaults."""
    from pyplatform.demo import _draft_risk, draft_demo_strategy
    from pyplatform.risk.config import AccountLimits

    cfg, report = draft_demo_strategy(["AAA.US", "EURUSD.GB"])
    assert cfg["symbols"] == ["EURUSD.GB"] and not report["unparsed"]
    risk = _draft_risk(cfg)
    eur = risk.limits("demo", "EURUSD.GB")
    assert eur.concentration == 0.02 and eur.lot_size == 1000.0
    assert risk.limits("demo", "AAA.US").concentration == AccountLimits().concentration
    # a market without the sentence's symbol: refused with the reason, nothing guessed
    cfg2, report2 = draft_demo_strategy(["AAA.US", "BBB.US"])
    assert cfg2 is None and any("EURUSD" in u for u in report2["unparsed"])
