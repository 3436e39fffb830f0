"""The backtest and a live TradingNode fed by replaying the same history through stream
tables at full speed produce identical signals and orders."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa

from pyplatform.backtest import BacktestConfig, SlippageConfig, run_backtest
from pyplatform.backtest.prices import TickPath
from pyplatform.backtest.run import bars_table
from pyplatform.backtest.venue import SimulatedVenue
from pyplatform.clock import SimClock
from pyplatform.data import generate_bars
from pyplatform.domain.schemas import QUOTES, SIGNALS, factor_schema
from pyplatform.execution.node import TradingNode
from pyplatform.factors import FactorEngine
from pyplatform.risk import AccountLimits, RiskConfig
from pyplatform.strategies import build
from pyplatform.stream import StreamTable

STRAT = {"kind": "ma_cross", "params": {"fast": 4, "slow": 15}}
MINUTE = 60_000_000_000


def live_run(bars: pa.Table, cfg: BacktestConfig):
    """Replay ``bars`` as fast as possible: every tick into the quotes table, every closed bar
    through the live factor engine into the factors table, the node stepping at each instant."""
    strat = build(STRAT)
    engine = FactorEngine(strat.factors())
    tables = {"factors": StreamTable("factors", factor_schema(list(strat.factors())), clock=SimClock()),
              "quotes": StreamTable("quotes", QUOTES, clock=SimClock()), "signals": StreamTable("signals", SIGNALS, clock=SimClock())}
    path = TickPath(bars, MINUTE)
    ts0 = int(bars.column("ts")[0].as_py())
    clock = SimClock(ts0)
    holder = {}
    venue = SimulatedVenue(clock, cfg, on_fee=lambda fee: setattr(holder["n"], "capital",
                                                                 holder["n"].capital - Decimal(repr(fee))))
    node = TradingNode(None, tables, clock, venue, strategies=[strat], risk_config=cfg.risk, account="backtest",
                       capital=cfg.capital, aggression=cfg.aggression, fsync=False)
    holder["n"] = node
    # quotes in time order across symbols
    tick_sym = np.repeat(np.array(path.symbols), (path.end - path.start))
    order = np.argsort(path.ts, kind="stable")
    tick_ts, tick_px, tick_sym = path.ts[order], path.price[order], tick_sym[order]
    bar_ts = bars.column("ts").to_numpy()
    closes = np.unique(bar_ts) + MINUTE
    instants = np.unique(np.concatenate([tick_ts, closes, closes + cfg.latency_ns]))
    qi, bi = 0, 0
    signals, orders = [], []
    for t in instants:
        clock.set(int(t))
        j = int(np.searchsorted(tick_ts, t, side="right"))
        if j > qi:
            px = tick_px[qi:j]
            tables["quotes"].append(pa.table({
                "ts": tick_ts[qi:j], "symbol": tick_sym[qi:j], "last": px, "open": px, "high": px, "low": px,
                "volume": np.zeros(j - qi), "turnover": np.zeros(j - qi), "bid": px, "ask": px,
                "bid_size": np.zeros(j - qi), "ask_size": np.zeros(j - qi)}, schema=QUOTES))
            qi = j
        k = int(np.searchsorted(bar_ts, t - MINUTE, side="right"))  # bars closed by now
        if k > bi:
            rows = engine.feed(bars.slice(bi, k - bi))
            tables["factors"].append(rows.cast(tables["factors"].schema))
            bi = k
        rep = node.step()
        signals += rep.signals
        orders += rep.orders
    return signals, orders, node


def test_backtest_equals_live_replay():
    b = bars_table(generate_bars(["AAPL.US", "MSFT.US", "JPM.US"], "2024-01-03", "2024-01-04", freq="1min",
                                 seed=4))
    risk = RiskConfig(default=AccountLimits(fixed_stop=0.99, trailing_stop=0.99, concentration=0.5))
    # the live node has the live risk manager, which has no gross exposure limit: the backtest's
    # (BacktestConfig.max_gross) is switched off so that both apply the same rules
    cfg = BacktestConfig(freq="1min", latency_ms=50, participation=None, vwap_slicing=False, risk=risk,
                         slippage=SlippageConfig(kind="fixed", bps=2.0), audit_timestamps=0, max_gross=None)
    bt = run_backtest(STRAT, bars=b, backtest=cfg)
    live_signals, live_orders, node = live_run(b, cfg)
    assert len(live_signals) > 10 and len(live_orders) > 10
    assert [(s.ts, s.symbol, int(s.direction), s.strength) for s in live_signals] == \
        list(zip(bt.signals["ts"], bt.signals["symbol"], bt.signals["direction"], bt.signals["strength"]))
    live = [(o.client_order_id, o.ts, o.symbol, int(o.side), float(o.quantity), float(o.price)) for o in live_orders]
    back = list(bt.orders[["client_order_id", "ts", "symbol", "side", "quantity", "price"]].itertuples(index=False,
                                                                                                       name=None))
    assert live == back
    # and the fills the two venues reported
    live_fills = [(f[0], f[1], f[2], f[3], f[4]) for f in node.broker.fills]
    assert live_fills == list(bt.trades[["ts", "symbol", "side", "quantity", "price"]].itertuples(index=False,
                                                                                                  name=None))
