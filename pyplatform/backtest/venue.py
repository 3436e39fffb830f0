"""The simulated venue of a backtest: the paper broker behind a network delay.

Commands sent by the live :class:`~pyplatform.execution.node.TradingNode` travel for
``latency`` before the paper broker's matching engine sees them, and then meet the quote
prevailing at their arrival. (The matching engine's own ``FillModel.latency_ns`` delays a
command but matches it against the book as it stood before the arrival-time quote; holding
the command here until the caller has delivered that quote avoids it.) Fills pass back
through here, where the optional square-root impact is applied and fees are charged (the
minimum once per order, not per fill).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Callable

from pyplatform.backtest.config import BacktestConfig
from pyplatform.clock import Clock
from pyplatform.domain import Quote, asset_class_of
from pyplatform.domain.instruments import PRICE_DECIMALS
from pyplatform.execution.matching import FillModel
from pyplatform.execution.messages import OrderFilled
from pyplatform.execution.paper import PaperBroker

__all__ = ["SimulatedVenue", "fill_model_of"]


def fill_model_of(cfg: BacktestConfig) -> FillModel:
    """The paper broker's fill model for the configured slippage and volume limit."""
    s = cfg.slippage
    lo, hi = {"none": (0.0, 0.0), "fixed": (s.bps, s.bps), "sqrt": (s.bps, s.bps),
              "liquidity": (s.min_bps, s.max_bps)}[s.kind]
    return FillModel(slippage_min=lo * 1e-4, slippage_max=hi * 1e-4, latency_ns=0,
                     partial_fills=cfg.participation is not None)


class SimulatedVenue:
    """A broker object for ``TradingNode(broker=...)``.

    Parameters
    ----------
    clock : Clock
    cfg : BacktestConfig
    on_fee : callable, optional
        Called with each fee (float) as it is charged (the backtest takes it off the
        account's capital so that sizing sees it).
    """

    name = "backtest"

    def __init__(self, clock: Clock, cfg: BacktestConfig, on_fee: Callable[[float], None] | None = None) -> None:
        self.clock = clock
        self.cfg = cfg
        self.paper = PaperBroker(clock, fill_model_of(cfg), venue="BT")
        self.on_fee = on_fee
        self._wire: list[tuple[int, int, object]] = []
        self._seq = 0
        self.bar_volume: dict[str, float] = {}
        self._live: dict[str, str] = {}  # client order id -> symbol, orders resting at the venue
        self._done: dict = {}
        self._finished: list[str] = []  # finished since the last ``release``
        self._waiting: dict[str, list] = {}  # symbol -> commands waiting for a price newer than them  # finished orders, moved out of the matching engine's scan
        #: one tuple per fill: ts, symbol, side, quantity, price, fee, client order id
        self.fills: list[tuple] = []
        # per open order: (proportional commission so far, fee charged so far) -- the minimum
        # fee is per order, so a fill pays only what it adds to the order's total
        self._fee_state: dict[str, tuple[float, float]] = {}

    # ------------------------------------------------------------------ broker protocol
    def send(self, cmd) -> list:
        if self.cfg.latency_ns == 0:
            return self._deliver(self._arrive(cmd))
        self._seq += 1
        heapq.heappush(self._wire, (self.clock.now_ns() + self.cfg.latency_ns, self._seq, cmd))
        return []

    def on_quote(self, quote: Quote) -> list:
        self.bar_volume[quote.symbol] = quote.volume
        out = self.paper.on_quote(quote)
        for cmd in self._waiting.pop(quote.symbol, []):
            out += self._arrive(cmd)
        return self._deliver(out)

    def _arrive(self, cmd) -> list:
        """A command reaches the matching engine -- unless the only price there is older than
        the command itself (the market has not traded since the decision: the session is
        closed or the bar's close is all there is); then it waits for the next price."""
        sym = getattr(cmd, "symbol", None)
        if sym is not None:
            book = self.paper.engine.books.get(sym)
            if book is None or book.quote is None or book.quote.ts < cmd.ts:
                self._waiting.setdefault(sym, []).append(cmd)
                return []
        return self.paper.send(cmd)

    def poll(self) -> list:
        """Hand the matching engine every command that has arrived by now."""
        now = self.clock.now_ns()
        out: list = []
        while self._wire and self._wire[0][0] <= now:
            _, _, cmd = heapq.heappop(self._wire)
            out += self._arrive(cmd)
        out += self.paper.poll()
        return self._deliver(out)

    def next_arrival(self) -> int | None:
        return self._wire[0][0] if self._wire else None

    def due_symbols(self, now: int) -> set[str]:
        """Symbols of the commands that have reached the venue by ``now``."""
        out = set()
        for arrival, _, cmd in self._wire:
            if arrival <= now:
                sym = getattr(cmd, "symbol", None)
                if sym is None:  # a cancel/replace names the order, not the symbol
                    known = self.paper.engine.orders.get(cmd.client_order_id)
                    sym = known.cmd.symbol if known is not None else None
                if sym is not None:
                    out.add(sym)
        return out

    def live_symbols(self) -> set[str]:
        """Symbols with orders resting at the venue."""
        return set(self._live.values()) | {s for s, cmds in self._waiting.items() if cmds}

    def end_of_day(self) -> list:
        return self._deliver(self.paper.end_of_day())

    def order_reports(self, client_order_id: str):
        return self.paper.order_reports(client_order_id)

    def close(self) -> None:
        self.paper.close()

    def release(self) -> int:
        """Drop the matching engine's reports of orders finished since the last call (they are
        never asked for again in a backtest); returns how many orders."""
        done, self._finished = self._finished, []
        reports = self.paper.engine._reports
        for cl in done:
            reports.pop(cl, None)
        return len(done)

    # ------------------------------------------------------------------ fills
    def _deliver(self, events: list) -> list:
        if not events:
            return events
        out = []
        orders = self.paper.engine.orders
        for ev in events:
            order = orders.get(ev.client_order_id)
            if order is not None:
                self._live[ev.client_order_id] = order.cmd.symbol
            else:  # a report about an order already finished (e.g. a cancel reject after its fill)
                order = self._done.get(ev.client_order_id)
            if isinstance(ev, OrderFilled):
                cmd = order.cmd
                side = int(cmd.side)
                if self.cfg.slippage.kind == "sqrt":
                    ev = self._impact(ev, cmd.symbol, side)
                qty, px = float(ev.last_qty), float(ev.last_px)
                fee = 0.0
                sched = self.cfg.fees.get(asset_class_of(cmd.symbol).value)
                if sched is not None:
                    raw, paid = self._fee_state.get(ev.client_order_id, (0.0, 0.0))
                    raw += sched.commission(qty, px)
                    total = max(sched.minimum, raw)
                    fee = total - paid
                    self._fee_state[ev.client_order_id] = (raw, total)
                    if fee and self.on_fee is not None:
                        self.on_fee(fee)
                self.fills.append((ev.ts, cmd.symbol, side, qty, px, fee, ev.client_order_id))
            out.append(ev)
        # The matching engine scans every order it ever saw on each quote; over a long
        # backtest that is quadratic, so finished orders leave its table (their reports stay).
        for cl in [cl for cl in self._live if cl not in orders or not orders[cl].live]:
            if cl in orders:
                self._done[cl] = orders.pop(cl)
                self._finished.append(cl)
            del self._live[cl]
            self._fee_state.pop(cl, None)
        return out

    def _impact(self, ev: OrderFilled, symbol: str, side: int) -> OrderFilled:
        vol = self.bar_volume.get(symbol, 0.0)
        if not vol or not math.isfinite(vol):
            return ev
        extra = self.cfg.slippage.impact * math.sqrt(float(ev.last_qty) / vol)
        unit = Decimal(1).scaleb(-PRICE_DECIMALS[asset_class_of(symbol)])
        px = Decimal(repr(float(ev.last_px) * (1 + side * extra)))
        return replace(ev, last_px=px.quantize(unit, rounding=ROUND_CEILING if side == 1 else ROUND_FLOOR))
