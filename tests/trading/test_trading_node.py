"""TradingNode over real stream tables: factors -> signals -> risk -> OMS -> paper broker."""

from decimal import Decimal as D

import numpy as np
import pyarrow as pa

from pyplatform.clock import SimClock
from pyplatform.domain.schemas import QUOTES, SIGNALS, factor_schema
from pyplatform.execution.node import TradingNode
from pyplatform.execution.states import OrderStatus
from pyplatform.risk import AccountLimits, RiskConfig
from pyplatform.strategies import DualMACrossover
from pyplatform.strategies.run import factor_rows
from pyplatform.stream import StreamTable

from test_trading_strategies import bars


def make_tables():
    strat = DualMACrossover(fast=3, slow=8)
    names = list(strat.factors())
    return strat, {"factors": StreamTable("factors", factor_schema(names), clock=SimClock()),
                   "quotes": StreamTable("quotes", QUOTES, clock=SimClock()), "signals": StreamTable("signals", SIGNALS, clock=SimClock())}


def feed(tables, rows, b, t):
    """Append the quotes and factor rows of timestamp ``t``."""
    r = rows[rows["ts"] == t]
    close = b.xs(r["ts"].iloc[0].astype("datetime64[ns]"), level="datetime")["close"].reindex(r["symbol"]).to_numpy()
    n = len(r)
    tables["quotes"].append(pa.table({
        "ts": r["ts"].to_numpy(), "symbol": r["symbol"].to_numpy(), "last": close, "open": close, "high": close,
        "low": close, "volume": np.full(n, 1e6), "turnover": close * 1e6, "bid": close - 0.01, "ask": close + 0.01,
        "bid_size": np.full(n, 1e6), "ask_size": np.full(n, 1e6)}, schema=QUOTES))
    tables["factors"].append(pa.Table.from_pandas(r, preserve_index=False).cast(tables["factors"].schema))


WIDE = RiskConfig(default=AccountLimits(concentration=0.5, daily_loss_limit=0.5, fixed_stop=0.5, trailing_stop=0.5))


def run(tmp_path, steps=None, node_kwargs=None, risk=WIDE):
    strat, tables = make_tables()
    b = bars(n=80)
    rows = factor_rows([strat], b)
    clock = SimClock(int(rows["ts"].iloc[0]))
    node = TradingNode(None, tables, clock, "paper", strategies=[strat], journal=tmp_path / "orders.journal",
                       risk_config=risk, **(node_kwargs or {}))
    reports = []
    for t in sorted(rows["ts"].unique())[:steps]:
        clock.set(int(t))
        feed(tables, rows, b, t)
        reports.append(node.step())
    return node, tables, reports, strat


def test_signals_flow_to_orders_and_fills(tmp_path):
    node, tables, reports, strat = run(tmp_path)
    signals = [s for r in reports for s in r.signals]
    assert len(signals) >= 2
    assert tables["signals"].read(0).num_rows == len(signals)
    orders = [o for r in reports for o in r.orders]
    assert orders and all(o.client_order_id.startswith("ma_cross-") for o in orders)
    for o in orders:
        assert node.oms.orders[o.client_order_id].status is OrderStatus.FILLED
        assert o.quantity % 100 == 0  # board lots
    for sym in ("A.US", "B.US"):  # the position follows the last signal's direction
        last = [s for s in signals if s.symbol == sym][-1]
        q = node.oms.positions.quantity("main", sym)
        assert q != 0 and (q > 0) == (int(last.direction) > 0)
    st = node.status()
    assert st["kill_switch"] == "OFF" and st["positions"] and D(st["equity"]) > 0
    node.close()


def test_stop_loss_closes_and_daily_loss_throws_reduce_only(tmp_path):
    from pyplatform.domain import Direction, Quote, Signal

    clock = SimClock(10 * 86_400 * 10**9 + 15 * 3600 * 10**9)
    node = TradingNode(None, {}, clock, "paper", journal=tmp_path / "j")  # default limits

    def quote(px):
        return Quote(clock.now_ns(), "A.US", px, bid=px - 0.01, ask=px + 0.01, bid_size=1e7, ask_size=1e7)

    node.on_quote(quote(100.0))
    node.on_signal(Signal(clock.now_ns(), "A.US", "t", Direction.LONG))
    held = node.oms.positions.quantity("main", "A.US")
    assert held == 3000  # sized at the 30% concentration cap
    clock.advance(10**9)
    node.on_quote(quote(97.5))  # -2.5%: inside both the 5% fixed and the 3% trailing stop
    assert node.oms.positions.quantity("main", "A.US") == held
    clock.advance(10**9)
    node.on_quote(quote(94.0))  # through the 5% fixed stop: a closing market order
    stop = [o for o in node.oms.orders.values() if o.client_order_id.startswith("stop-fixed-")]
    assert len(stop) == 1 and stop[0].status is OrderStatus.FILLED and node.oms.positions.quantity("main", "A.US") == 0
    # that loss is ~1.8% of equity; lose more on a second round to touch the 5% daily limit
    for px in (94.0, 80.0):
        clock.advance(10**9)
        node.on_quote(quote(px))
    clock.advance(10**9)
    node.on_signal(Signal(clock.now_ns(), "A.US", "t", Direction.LONG, reason="again"))
    assert node.oms.positions.quantity("main", "A.US") > 0
    clock.advance(10**9)
    node.on_quote(quote(70.0))  # stopped out again, deep loss
    assert node.oms.positions.quantity("main", "A.US") == 0
    clock.advance(10**9)
    node.on_quote(quote(70.0))
    report = __import__("pyplatform.execution.node", fromlist=["StepReport"]).StepReport()
    assert node.on_signal(Signal(clock.now_ns(), "A.US", "t", Direction.LONG), report) is None
    assert report.refused[0].rule == "kill_switch" and "daily loss" in report.refused[0].reason
    assert node.status()["kill_switch"] == "REDUCE_ONLY"
    node.close()


def test_restart_rebuilds_positions_from_the_journal(tmp_path):
    node, _, _, _ = run(tmp_path)
    before = {s: node.oms.positions.quantity("main", s) for s in ("A.US", "B.US")}
    node.close()
    again = TradingNode(None, {}, SimClock(0), "paper", journal=tmp_path / "orders.journal")
    assert {s: again.oms.positions.quantity("main", s) for s in ("A.US", "B.US")} == before
    again.close()


def test_kill_switch_stops_new_orders(tmp_path):
    strat, tables = make_tables()
    b = bars(n=80)
    rows = factor_rows([strat], b)
    clock = SimClock(int(rows["ts"].iloc[0]))
    node = TradingNode(None, tables, clock, "paper", strategies=[strat], journal=tmp_path / "j")
    node.kill("halt", "test")
    refused, signals = [], []
    for t in sorted(rows["ts"].unique()):
        clock.set(int(t))
        feed(tables, rows, b, t)
        r = node.step()
        refused += r.refused
        signals += r.signals
        assert not r.orders
    # a signal sized to zero shares needs no order; every order the signals asked for was refused
    assert signals and refused and all(d.rule == "kill_switch" for d in refused)
    assert not node.oms.orders
    node.close()


def test_positions_are_reduced_to_the_overnight_limit_near_the_close(tmp_path):
    from pyplatform.domain import Direction, Quote, Signal

    day = 10 * 86_400 * 10**9
    clock = SimClock(day + 19 * 3600 * 10**9)  # 19:00 UTC, before the overnight window
    cfg = RiskConfig(default=AccountLimits(max_overnight_qty=1000, session_close_utc_s=20 * 3600,
                                           overnight_window_s=900))
    node = TradingNode(None, {}, clock, "paper", risk_config=cfg, journal=tmp_path / "j")
    node.on_quote(Quote(clock.now_ns(), "A.US", 100.0, bid=99.99, ask=100.01, bid_size=1e7, ask_size=1e7))
    node.on_signal(Signal(clock.now_ns(), "A.US", "t", Direction.LONG))
    assert node.oms.positions.quantity("main", "A.US") == 3000
    clock.set(day + 19 * 3600 * 10**9 + 44 * 60 * 10**9)
    node.step()
    assert node.oms.positions.quantity("main", "A.US") == 3000  # 19:44: not yet
    clock.set(day + 19 * 3600 * 10**9 + 45 * 60 * 10**9)
    node.step()
    node.step()  # once a day, not once a step
    assert node.oms.positions.quantity("main", "A.US") == 1000
    (o,) = [o for o in node.oms.orders.values() if o.client_order_id.startswith("overnight-")]
    assert o.side.name == "SELL" and o.quantity == 2000
    node.close()


def test_node_needs_a_clock(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="TradingNode needs a clock"):
        TradingNode(None, {}, None, "paper", journal=tmp_path / "j")


def test_one_market_state_behind_quotes_risk_prices_marks_and_stops():
    import pytest

    from pyplatform.domain import Quote
    from pyplatform.execution.messages import OrdType, Side, SubmitOrder
    from pyplatform.risk import RiskManager

    clock = SimClock(1)
    node = TradingNode(None, {}, clock, "paper", risk_config=WIDE)
    assert node.risk.market is node.market is node.oms.positions.market
    node.on_quote(Quote(1, "AAPL.US", 100.125, bid=100.12, ask=100.13, bid_size=1e6, ask_size=1e6))
    # one copy, seen under every old name; 100.125 rounds half-even to the stock's 2 decimals
    assert node.quotes is node.market.quotes and node.risk.last_price is node.market.last_price
    assert node.risk.last_price == {"AAPL.US": D("100.12")} and node.quotes["AAPL.US"].last == 100.125

    rep = node.submit(SubmitOrder("b1", "main", "AAPL.US", Side.BUY, D(100), OrdType.LIMIT, D("100.20"), ts=1))
    assert not rep.refused and node.oms.orders["b1"].status is OrderStatus.FILLED
    avg = node.oms.orders["b1"].avg_px
    pos = node.oms.positions.get("main", "AAPL.US")
    # booked once, read by risk and stops from the same place; marked at once (no quote since)
    assert node.market.quantity("main", "AAPL.US") == 100 and node.snapshot().positions == {"AAPL.US": D(100)}
    assert node.risk.stops.tracked("main", "AAPL.US").qty == 100
    assert pos.mark == D("100.12")
    node.on_quote(Quote(2, "AAPL.US", 101.0, bid=100.99, ask=101.01, bid_size=1e6, ask_size=1e6))
    assert pos.mark == D("101.00") and pos.unrealised() == 100 * D("101.00") - 100 * avg

    # a risk manager swapped in later (a backtest's sizing policy) reads the node's state
    swapped = RiskManager(WIDE, clock)
    node.risk = swapped
    assert swapped.market is node.market and swapped.last_price["AAPL.US"] == D("101.00")
    # one that already holds prices of its own is refused rather than silently emptied
    stale = RiskManager(WIDE, clock)
    stale.on_trade("MSFT.US", D(300))
    with pytest.raises(ValueError, match="already holds prices"):
        node.risk = stale
    assert node.risk is swapped
    # handed to the constructor: attached the same way
    given = RiskManager(WIDE, clock)
    other = TradingNode(None, {}, clock, "paper", risk=given)
    assert given.market is other.market is other.oms.positions.market
