"""The event-driven backtest: history through the live trading components under a SimClock.

Two phases, both the live code:

1. **signals** -- bars, in time order across symbols, through the live factor engine and
   strategies in micro-batches (:mod:`pyplatform.backtest.signals`);
2. **execution** -- a :class:`~pyplatform.execution.node.TradingNode` (risk manager, order
   manager, VWAP slicer) trading against a :class:`~pyplatform.backtest.venue.SimulatedVenue`
   (the paper broker behind a network delay). The clock visits only the instants where
   something can happen -- a bar closing with signals, an order arriving at the venue, a
   VWAP child being released, a new price for a symbol with a resting order -- and at each
   one the node is driven exactly as ``TradingNode.step`` drives it live: quotes first,
   then signals, then due child orders and venue reports.

A signal stamped with bar ``T`` is decided when that bar closes (``T + bar``); its order
reaches the market ``latency`` later and meets the price prevailing then
(:class:`~pyplatform.backtest.prices.TickPath`), never bar ``T``'s close.
"""

from __future__ import annotations

import heapq
import math
from decimal import Decimal
from typing import Callable

import numpy as np
import pyarrow as pa

from pyplatform.backtest.config import BacktestConfig
from pyplatform.backtest.prices import TickPath
from pyplatform.backtest.risk import BacktestRisk
from pyplatform.backtest.signals import audit_lookahead, generate_signals, long_only
from pyplatform.backtest.venue import SimulatedVenue
from pyplatform.clock import SimClock
from pyplatform.domain import AssetClass, Quote, Signal, asset_class_of
from pyplatform.execution.node import StepReport, TradingNode
from pyplatform.strategies.base import Strategy

__all__ = ["Execution", "simulate"]

_DAY = 86_400_000_000_000


class Execution:
    """What the execution phase produced (raw; :mod:`results` turns it into frames)."""

    def __init__(self, node: TradingNode, venue: SimulatedVenue, signals: list[Signal], orders: list,
                 refused: list, instants: int) -> None:
        self.node, self.venue, self.signals = node, venue, signals
        self.orders, self.refused, self.instants = orders, refused, instants


def make_node(cfg: BacktestConfig, clock: SimClock, account: str = "backtest",
              path: TickPath | None = None) -> tuple[TradingNode, SimulatedVenue]:
    """A TradingNode (journal in memory) over a simulated venue, configured by ``cfg``.

    The node composes what it is handed: the venue as its broker and a
    :class:`~pyplatform.backtest.risk.BacktestRisk` (the live risk manager with the run's
    sizing mode, gross limit and stop switch) as its risk manager -- nothing inside the node
    is replaced after construction. ``path`` (the replayed prices) lets all-in sizing look up
    the price an order will fill at.
    """
    holder: dict[str, TradingNode] = {}

    def charge(fee: float) -> None:
        holder["node"].capital -= Decimal(repr(fee))

    venue = SimulatedVenue(clock, cfg, on_fee=charge)
    fill_price = _fill_price_of(path, cfg.latency_ns) if path is not None else None
    risk = BacktestRisk(cfg.risk, clock, all_in=cfg.sizing == "all_in", max_gross=cfg.max_gross, stops=cfg.stops,
                        fill_price=fill_price)
    node = TradingNode(None, {}, clock, venue, strategies=[], account=account, capital=cfg.capital,
                       aggression=cfg.aggression, max_participation=cfg.participation or 1.0, risk=risk)
    risk.watch(node)
    holder["node"] = node
    return node, venue


def _fill_price_of(path: TickPath, latency_ns: int) -> Callable[[str, int], float | None]:
    """The price an order decided at ``now`` meets: the tick prevailing on arrival, unless that
    tick is older than the decision (nothing has traded since), then the next tick -- the
    venue's own rule (``SimulatedVenue._arrive``)."""
    def fill_price(symbol: str, now: int) -> float | None:
        if symbol not in path.index:
            return None
        k = path.at(symbol, now + latency_ns)
        if k >= 0 and path.ts[k] >= now:
            return float(path.price[k])
        i = path.index[symbol]
        nxt = (k + 1) if k >= 0 else path.start[i]
        return float(path.price[nxt]) if nxt < path.end[i] else None
    return fill_price


def simulate(strategies: list[Strategy], bars: pa.Table, cfg: BacktestConfig,
             progress: Callable[[int], None] | None = None) -> Execution:
    """Run both phases over ``bars`` (sorted by ts then symbol).

    ``progress`` is called with a number of bars: those of each micro-batch as the signals
    phase finishes it, then, during execution, the bars the simulated clock has passed (so a
    whole run reports ``2 x bars``).
    """
    signals = generate_signals(strategies, bars, cfg.chunk_rows, progress)
    audit_lookahead(strategies, bars, signals, cfg.audit_timestamps)
    if cfg.long_only:
        signals = long_only(signals)
    path = TickPath(bars, cfg.bar_ns)
    clock = SimClock(int(bars.column("ts")[0].as_py()) if bars.num_rows else 0)
    node, venue = make_node(cfg, clock, path=path)
    bar_ts = bars.column("ts").to_numpy() if progress is not None else None
    return _execute(node, venue, path, signals, cfg, clock, progress, bar_ts)


def _execute(node: TradingNode, venue: SimulatedVenue, path: TickPath, signals: list[Signal],
             cfg: BacktestConfig, clock: SimClock, progress: Callable[[int], None] | None = None,
             bar_ts=None) -> Execution:
    groups: dict[int, list[Signal]] = {}
    for s in signals:
        groups.setdefault(s.ts + cfg.bar_ns, []).append(s)
    static = sorted(groups)
    heap: list[int] = []
    fed: dict[str, int] = {}
    orders: list = []
    refused: list = []
    participation = cfg.participation
    whole = {s for s in path.symbols if asset_class_of(s) in (AssetClass.STOCK, AssetClass.INDEX)}

    def feed(sym: str, t: int) -> None:
        k = path.at(sym, t)
        if k < 0 or fed.get(sym) == k:
            return  # nothing yet, or this price was already offered once
        fed[sym] = k
        px = float(path.price[k])
        size = float(path.volume[k]) * participation if participation is not None else 0.0
        if size and sym in whole:
            size = max(1.0, math.floor(size))  # shares trade in whole units
        node.on_quote(Quote(int(path.ts[k]), sym, px, volume=float(path.bar_volume[k]), bid=px, ask=px,
                            bid_size=size, ask_size=size))

    acc = [cfg.risk.default, *cfg.risk.accounts.values()]
    overnight = any(a.max_overnight_qty is not None or any(x.max_overnight_qty is not None for x in a.symbols.values())
                    for a in acc)
    i, n_static, visited, prev_day = 0, len(static), 0, None
    reported = 0
    while i < n_static or heap:
        t = static[i] if i < n_static else heap[0]
        if heap and heap[0] < t:
            t = heap[0]
        while heap and heap[0] <= t:
            heapq.heappop(heap)
        sigs = ()
        if i < n_static and static[i] == t:
            sigs = groups[t]
            i += 1
        visited += 1
        if progress is not None and not visited % 512:  # bars the clock has passed (sorted by ts)
            k = int(np.searchsorted(bar_ts, t - cfg.bar_ns, side="right"))
            if k > reported:
                progress(k - reported)
                reported = k
        clock.set(t)
        day = t // _DAY
        if prev_day is not None and day != prev_day:
            for ev in venue.end_of_day():  # DAY orders still resting expire
                node._on_async_event(ev)
        prev_day = day
        syms = venue.live_symbols()
        arrival = venue.next_arrival()
        if arrival is not None and arrival <= t:
            syms |= venue.due_symbols(t)
        if sigs or cfg.stops:
            syms |= {s.symbol for s in sigs}
            syms |= {p.symbol for p in node.oms.positions.positions(node.account) if p.quantity}
        for sym in sorted(syms):
            feed(sym, t)
        report = StepReport()
        for s in sigs:
            if cfg.vwap_slicing:
                k = path.at(s.symbol, s.ts)
                vol = float(path.bar_volume[k]) if k >= 0 else 0.0
                if vol > 0:
                    # The slicer cuts ``qty / (participation x volume)`` one-minute children; on a
                    # thin bar that is thousands. Capping the schedule at ``max_slices`` minutes
                    # (for the largest order possible, a full flip) keeps it a schedule.
                    last = float(path.price[path.at(s.symbol, t)])
                    biggest = 2.0 * float(node.equity()) / last if last > 0 else 0.0
                    vol = max(vol, biggest / ((cfg.participation or 1.0) * cfg.max_slices))
                node.minute_volume[s.symbol] = vol
            node.on_signal(s, report)
        arrival = venue.next_arrival()
        slice_due = len(node.slices) and node.slices._pending[0].ts <= t
        if overnight or slice_due or (arrival is not None and arrival <= t):
            # due VWAP children, overnight reduction, venue reports of arrived orders; at other
            # instants ``step`` has nothing to do (its overnight check needs a limit to act on)
            step = node.step()
            report.orders += step.orders
            report.refused += step.refused
        orders += report.orders
        refused += report.refused
        # what can happen next
        nxt = venue.next_arrival()
        if nxt is not None:
            heapq.heappush(heap, nxt)
        if len(node.slices):
            heapq.heappush(heap, max(t + 1, node.slices._pending[0].ts))
        for sym in venue.live_symbols():
            nt = path.next_after(sym, t)
            if nt is not None:
                heapq.heappush(heap, nt)
        if cfg.stops:
            for p in node.oms.positions.positions(node.account):
                if p.quantity:
                    nt = path.next_after(p.symbol, t)
                    if nt is not None:
                        heapq.heappush(heap, nt)
    if progress is not None and bar_ts is not None and len(bar_ts) > reported:
        progress(len(bar_ts) - reported)
    return Execution(node, venue, signals, orders, refused, visited)
