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

Streaming
---------
A long history is replayed in time windows (:class:`Simulation`, ``feed``): both phases
run over one window's bars at a time, and everything that lives across windows -- the
factor engine's and the strategies' state, the node, the venue, the instants still to visit
-- is carried over, so only one window of bars is ever in memory. The tick path of a window
also holds each symbol's last bar before it (the price prevailing at the window's start)
and ``lookahead_ns`` of the bars after it (the price an order decided near the window's end
will meet); instants at or after the window's end wait for the next window. The result
equals one pass over the whole history (tested) as long as no symbol's data has a gap
longer than the lookahead.
"""

from __future__ import annotations

import heapq
import math
from decimal import Decimal
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pyplatform.backtest.config import BacktestConfig
from pyplatform.backtest.ledger import EquityCurve, fills_frame
from pyplatform.backtest.prices import TickPath
from pyplatform.backtest.risk import BacktestRisk
from pyplatform.backtest.signals import audit_lookahead, generate_signals, long_only, signal_engine
from pyplatform.backtest.venue import SimulatedVenue
from pyplatform.clock import SimClock
from pyplatform.domain import AssetClass, Quote, Signal, asset_class_of
from pyplatform.execution.node import StepReport, TradingNode
from pyplatform.strategies.base import Strategy

__all__ = ["Execution", "Simulation", "simulate", "make_node"]

_DAY = 86_400_000_000_000


class Execution:
    """What the execution phase produced (raw; :mod:`results` turns it into frames).

    Attributes
    ----------
    fills : DataFrame
        Every fill (``ledger.fills_frame``), sorted by time then symbol.
    curve : DataFrame
        The equity curve (``ledger.equity_frame``'s columns).
    symbols : list of str
        Every symbol replayed.
    bars : int
        Bars replayed.
    """

    def __init__(self, node: TradingNode, venue: SimulatedVenue, signals: list[Signal], orders: list,
                 refused: list, instants: int, fills=None, curve=None, symbols=None, bars: int = 0,
                 first_ts: int | None = None, last_ts: int | None = None) -> None:
        self.node, self.venue, self.signals = node, venue, signals
        self.orders, self.refused, self.instants = orders, refused, instants
        self.fills, self.curve, self.symbols, self.bars = fills, curve, symbols or [], bars
        self.first_ts, self.last_ts = first_ts, last_ts


class _PathRef:
    """The tick path of the window being replayed (sizing reads it through this)."""

    def __init__(self, path: TickPath | None = None) -> None:
        self.path = path


def make_node(cfg: BacktestConfig, clock: SimClock, account: str = "backtest",
              path: TickPath | _PathRef | None = None) -> tuple[TradingNode, SimulatedVenue]:
    """A TradingNode (journal in memory) over a simulated venue, configured by ``cfg``.

    The node composes what it is handed: the venue as its broker and a
    :class:`~pyplatform.backtest.risk.BacktestRisk` (the live risk manager with the run's
    sizing mode, gross limit and stop switch) as its risk manager -- nothing inside the node
    is replaced after construction. ``path`` (the replayed prices) lets all-in sizing look up
    the price an order will fill at.
    """
    fee = _ChargeFee()
    venue = SimulatedVenue(clock, cfg, on_fee=fee)
    ref = path if isinstance(path, _PathRef) or path is None else _PathRef(path)
    fill_price = _FillPrice(ref, cfg.latency_ns) if ref is not None else None
    risk = BacktestRisk(cfg.risk, clock, all_in=cfg.sizing == "all_in", max_gross=cfg.max_gross, stops=cfg.stops,
                        fill_price=fill_price)
    node = TradingNode(None, {}, clock, venue, strategies=[], account=account, capital=cfg.capital,
                       aggression=cfg.aggression, max_participation=cfg.participation or 1.0, risk=risk)
    risk.watch(node)
    fee.node = node
    return node, venue


# The two callbacks below are small classes rather than closures so that a simulation's whole
# object graph pickles (a checkpoint at a window's edge, see ``pyplatform.backtest.checkpoint``).
class _ChargeFee:
    """Takes each fee the venue charges off the node's capital (so that sizing sees it)."""

    def __init__(self) -> None:
        self.node: TradingNode | None = None

    def __call__(self, fee: float) -> None:
        self.node.capital -= Decimal(repr(fee))


class _FillPrice:
    """The price an order decided at ``now`` meets: the tick prevailing on arrival, unless that
    tick is older than the decision (nothing has traded since), then the next tick -- the
    venue's own rule (``SimulatedVenue._arrive``)."""

    def __init__(self, ref: _PathRef, latency_ns: int) -> None:
        self.ref, self.latency_ns = ref, latency_ns

    def __call__(self, symbol: str, now: int) -> float | None:
        path = self.ref.path
        if path is None or symbol not in path.index:
            return None
        k = path.at(symbol, now + self.latency_ns)
        if k >= 0 and path.ts[k] >= now:
            return float(path.price[k])
        i = path.index[symbol]
        nxt = (k + 1) if k >= 0 else path.start[i]
        return float(path.price[nxt]) if nxt < path.end[i] else None


def _last_per_symbol(table: pa.Table) -> pa.Table:
    """Each symbol's last row of a (ts, symbol)-sorted table."""
    if not table.num_rows:
        return table
    codes = pc.dictionary_encode(table.column("symbol")).combine_chunks().indices.to_numpy()
    rev = codes[::-1]
    _, first = np.unique(rev, return_index=True)
    return table.take(np.sort(len(codes) - 1 - first))


class Simulation:
    """A backtest fed window by window (or all at once): the live components' state between.

    Parameters
    ----------
    strategies : list of Strategy
    cfg : BacktestConfig
    progress : callable, optional
        Called with numbers of bars: those of each micro-batch as the signals phase finishes
        it, then those the simulated clock has passed (``2 x bars`` in all).

    Examples
    --------
    >>> sim = Simulation(strategies, cfg)                             # doctest: +SKIP
    >>> for bars, ahead, end in windows:                              # doctest: +SKIP
    ...     sim.feed(bars, lookahead=ahead, until=end)
    >>> ex = sim.finish()                                             # doctest: +SKIP
    """

    def __init__(self, strategies: list[Strategy], cfg: BacktestConfig,
                 progress: Callable[[int], None] | None = None) -> None:
        self.strategies = strategies
        self.cfg = cfg
        self.progress = progress
        self.engine = signal_engine(strategies)
        self.ref = _PathRef()
        self.clock: SimClock | None = None
        self.node: TradingNode | None = None
        self.venue: SimulatedVenue | None = None
        self.signals: list[Signal] = []
        self.orders: list = []
        self.refused: list = []
        self.visited = 0
        self.bars = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.symbols: set[str] = set()
        self._whole: set[str] = set()  # symbols that trade in whole units (stocks, indices)
        self._groups: dict[int, list[Signal]] = {}  # decision instant -> signals, not yet visited
        self._heap: list[int] = []
        self._fed: dict[str, int] = {}  # symbol -> time of the tick last offered
        self._deferred: dict[str, int] = {}  # symbol -> instant whose next tick lies past the window's path
        self._prev_day: int | None = None
        self._carry: pa.Table | None = None  # each symbol's last bar so far
        self._audited = False
        self._fill_parts: list[pd.DataFrame] = []
        self.equity = EquityCurve(cfg.capital, cfg.bar_ns)
        acc = [cfg.risk.default, *cfg.risk.accounts.values()]
        self._overnight = any(a.max_overnight_qty is not None
                              or any(x.max_overnight_qty is not None for x in a.symbols.values()) for a in acc)

    # ------------------------------------------------------------------ windows
    def feed(self, bars: pa.Table, lookahead: pa.Table | None = None, until: int | None = None) -> None:
        """Replay one window: ``bars`` (sorted by ts then symbol), every instant before ``until``.

        Parameters
        ----------
        bars : pyarrow.Table
            The window's bars; the next window's bars all start at or after ``until``.
        lookahead : pyarrow.Table, optional
            Bars after the window (prices only: orders decided near its end meet them).
        until : int, optional
            The window's end (ns); None: the last window (every instant left is visited).
        """
        cfg = self.cfg
        if bars.num_rows:
            self.bars += bars.num_rows
            ts = bars.column("ts")
            first = int(ts[0].as_py())
            if self.first_ts is None:
                self.first_ts = first
            self.last_ts = int(ts[-1].as_py())
        if self.clock is None:
            if not bars.num_rows and until is not None:
                return  # nothing yet: the clock starts at the first bar
            self.clock = SimClock(self.first_ts if self.first_ts is not None else 0)
            self.node, self.venue = make_node(cfg, self.clock, path=self.ref)
        sigs = generate_signals(self.strategies, bars, cfg.chunk_rows, self.progress, engine=self.engine)
        if not self._audited:
            audit_lookahead(self.strategies, bars, sigs, cfg.audit_timestamps)
            self._audited = True
        if cfg.long_only:
            sigs = long_only(sigs)
        self.signals += sigs
        for s in sigs:
            self._groups.setdefault(s.ts + cfg.bar_ns, []).append(s)
        parts = [t for t in (self._carry, bars, lookahead) if t is not None and t.num_rows]
        table = pa.concat_tables(parts) if len(parts) > 1 else (parts[0] if parts else bars)
        path = TickPath(table, cfg.bar_ns)
        self.ref.path = path
        self.symbols.update(path.symbols)
        self._whole.update(s for s in path.symbols if asset_class_of(s) in (AssetClass.STOCK, AssetClass.INDEX))
        for sym, t in list(self._deferred.items()):
            if sym in path.index:
                nt = path.next_after(sym, t)
                if nt is not None:
                    del self._deferred[sym]
                    heapq.heappush(self._heap, nt)
        bar_ts = bars.column("ts").to_numpy() if self.progress is not None and bars.num_rows else None
        self._run(path, until, bar_ts)
        fills = self.venue.fills
        self.venue.fills = []
        # sorted per window (the equity needs each symbol's fills in time order); the whole run's
        # stable sort in ``finish`` then gives the order one pass would
        frame = fills_frame(fills)
        self._fill_parts.append(frame)
        lo = int(bars.column("ts")[0].as_py()) if bars.num_rows else None
        self.equity.add(path, frame, lo, until, final=until is None)
        # memory follows the open orders, not every fill so far: closed orders' execution
        # identities and venue reports are not needed again (the paper broker never resends)
        self.venue.release()
        self.node.oms.release_closed()
        if bars.num_rows:
            both = pa.concat_tables([self._carry, bars]) if self._carry is not None else bars
            self._carry = _last_per_symbol(both.sort_by([("ts", "ascending"), ("symbol", "ascending")]))

    def finish(self) -> Execution:
        """Visit what is left (``feed`` with ``until=None`` already did) and hand back the result."""
        if self.clock is None:
            raise ValueError("backtest: no bars to replay")
        if self._heap or self._groups:
            self.feed(self._carry.slice(0, 0), until=None)
        fills = pd.concat(self._fill_parts, ignore_index=True) if self._fill_parts else fills_frame([])
        fills = fills.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)
        return Execution(self.node, self.venue, self.signals, self.orders, self.refused, self.visited,
                         fills=fills, curve=self.equity.frame(), symbols=sorted(self.symbols), bars=self.bars,
                         first_ts=self.first_ts, last_ts=self.last_ts)

    # ------------------------------------------------------------------ the instant loop
    def _run(self, path: TickPath, until: int | None, bar_ts) -> None:
        cfg, node, venue, clock = self.cfg, self.node, self.venue, self.clock
        heap, fed, groups = self._heap, self._fed, self._groups
        participation = cfg.participation
        whole = self._whole
        progress = self.progress

        def feed(sym: str, t: int) -> None:
            k = path.at(sym, t)
            if k < 0:
                return  # nothing yet
            tick = int(path.ts[k])
            if fed.get(sym) == tick:
                return  # this price was already offered once
            fed[sym] = tick
            px = float(path.price[k])
            size = float(path.volume[k]) * participation if participation is not None else 0.0
            if size and sym in whole:
                size = max(1.0, math.floor(size))  # shares trade in whole units
            node.on_quote(Quote(tick, sym, px, volume=float(path.bar_volume[k]), bid=px, ask=px,
                                bid_size=size, ask_size=size))

        def push_next(sym: str, t: int) -> None:
            nt = path.next_after(sym, t) if sym in path.index else None
            if nt is not None:
                heapq.heappush(heap, nt)
            elif until is not None:
                self._deferred[sym] = t  # its next tick lies past this window's path

        static = sorted(t for t in groups if until is None or t < until)
        i, n_static = 0, len(static)
        reported = 0
        while i < n_static or heap:
            t = static[i] if i < n_static else heap[0]
            if heap and heap[0] < t:
                t = heap[0]
            if until is not None and t >= until:
                break  # the next window's
            while heap and heap[0] <= t:
                heapq.heappop(heap)
            sigs = ()
            if i < n_static and static[i] == t:
                sigs = groups.pop(t)
                i += 1
            self.visited += 1
            if bar_ts is not None and not self.visited % 512:  # bars the clock has passed (sorted by ts)
                k = int(np.searchsorted(bar_ts, t - cfg.bar_ns, side="right"))
                if k > reported:
                    progress(k - reported)
                    reported = k
            clock.set(t)
            day = t // _DAY
            if self._prev_day is not None and day != self._prev_day:
                for ev in venue.end_of_day():  # DAY orders still resting expire
                    node._on_async_event(ev)
            self._prev_day = day
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
            if self._overnight or slice_due or (arrival is not None and arrival <= t):
                # due VWAP children, overnight reduction, venue reports of arrived orders; at other
                # instants ``step`` has nothing to do (its overnight check needs a limit to act on)
                step = node.step()
                report.orders += step.orders
                report.refused += step.refused
            self.orders += report.orders
            self.refused += report.refused
            # what can happen next
            nxt = venue.next_arrival()
            if nxt is not None:
                heapq.heappush(heap, nxt)
            if len(node.slices):
                heapq.heappush(heap, max(t + 1, node.slices._pending[0].ts))
            for sym in venue.live_symbols():
                push_next(sym, t)
            if cfg.stops:
                for p in node.oms.positions.positions(node.account):
                    if p.quantity:
                        push_next(p.symbol, t)
        if bar_ts is not None and len(bar_ts) > reported:
            progress(len(bar_ts) - reported)


def simulate(strategies: list[Strategy], bars: pa.Table, cfg: BacktestConfig,
             progress: Callable[[int], None] | None = None) -> Execution:
    """Run both phases over ``bars`` (sorted by ts then symbol) in one window.

    ``progress`` is called with a number of bars: those of each micro-batch as the signals
    phase finishes it, then, during execution, the bars the simulated clock has passed (so a
    whole run reports ``2 x bars``).
    """
    sim = Simulation(strategies, cfg, progress)
    sim.feed(bars, until=None)
    return sim.finish()


def simulate_windows(strategies: list[Strategy], windows: Iterable[tuple[pa.Table, pa.Table | None, int | None]],
                     cfg: BacktestConfig, progress: Callable[[int], None] | None = None) -> Execution:
    """Run both phases window by window: ``(bars, lookahead, until)`` triples, the last with
    ``until=None`` (see :class:`Simulation`)."""
    sim = Simulation(strategies, cfg, progress)
    for bars, ahead, until in windows:
        sim.feed(bars, lookahead=ahead, until=until)
    return sim.finish()
