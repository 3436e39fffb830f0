"""Order matching against quotes -- the one engine behind the paper broker and the FIX
exchange simulator (pure: commands, quotes and times in; order events out).

Fill model (configurable, :class:`FillModel`):

* a buy takes the ask (a sell the bid; the last trade when the quote has no side);
* partial fills: one quote offers its quoted size once, shared by orders in time priority;
* slippage grows with the share of the quoted size an order takes: from ``slippage_min``
  (a sliver of the size, default 0.05%) to ``slippage_max`` (all of it, default 0.2%); a
  limit price caps it;
* latency: a command reaches the engine ``latency_ns`` after it was sent, and only then
  sees quotes;
* limit orders that do not cross rest until a quote touches them; IOC remainders cancel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from pyplatform.domain import Quote, asset_class_of
from pyplatform.domain.instruments import PRICE_DECIMALS
from pyplatform.execution.messages import (
    CancelOrder, OrderAccepted, OrderCanceled, OrderCancelRejected, OrderExpired, OrderFilled,
    OrderRejected, OrderReplaced, OrderReplaceRejected, OrdType, ReplaceOrder, SubmitOrder,
    TimeInForce,
)

__all__ = ["FillModel", "MatchingEngine", "RestingOrder"]


@dataclass(frozen=True, slots=True)
class FillModel:
    """How the simulated venue fills orders.

    Parameters
    ----------
    slippage_min, slippage_max : float
        Fractional slippage for a negligible and for a whole-quote fill (0.0005 = 0.05%).
    latency_ns : int
        Delay between sending a command and the venue acting on it.
    partial_fills : bool
        Cap fills at the quoted size (True) or fill any size at the touch (False).
    """

    slippage_min: float = 0.0005
    slippage_max: float = 0.002
    latency_ns: int = 0
    partial_fills: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.slippage_min <= self.slippage_max < 1:
            raise ValueError(f"FillModel: need 0 <= slippage_min <= slippage_max < 1, got "
                             f"{self.slippage_min}, {self.slippage_max}")
        if self.latency_ns < 0:
            raise ValueError(f"FillModel.latency_ns must be >= 0, got {self.latency_ns}")


@dataclass
class RestingOrder:
    """The venue's view of one live order."""

    cmd: SubmitOrder
    client_order_id: str
    quantity: Decimal
    price: Decimal | None
    cum_qty: Decimal = Decimal(0)
    status: str = "new"  # new | partially_filled | filled | cancelled | rejected | expired | replaced
    seq: int = 0

    @property
    def leaves(self) -> Decimal:
        return self.quantity - self.cum_qty

    @property
    def live(self) -> bool:
        return self.status in ("new", "partially_filled")


@dataclass
class _Book:
    quote: Quote | None = None
    available: dict[int, float] = field(default_factory=dict)  # side -> size left in this quote


class MatchingEngine:
    """Simulated venue.

    Parameters
    ----------
    fill_model : FillModel
    venue : str
        Prefix of broker order ids and execution ids (unique per engine).
    """

    def __init__(self, fill_model: FillModel | None = None, venue: str = "SIM") -> None:
        self.fill_model = fill_model or FillModel()
        self.venue = venue
        self.orders: dict[str, RestingOrder] = {}
        self.books: dict[str, _Book] = {}
        self._reports: dict[str, list] = {}
        self._inbox: list[tuple[int, int, object]] = []  # (arrival ns, seq, command)
        self._seq = 0
        self._exec = 0
        self.now = 0
        self._units: dict[str, Decimal] = {}  # symbol -> price tick (its asset class's precision)
        self._slip: tuple = (None, Decimal(0), Decimal(0))  # (fill model, slippage_min, _max) as Decimals

    # ------------------------------------------------------------------ inputs
    def send(self, cmd, now_ns: int) -> list:
        """Deliver a command sent at ``now_ns``; returns events that are due by then."""
        self._seq += 1
        self._inbox.append((now_ns + self.fill_model.latency_ns, self._seq, cmd))
        return self.advance(now_ns)

    def advance(self, now_ns: int) -> list:
        """Act on every command that has arrived by ``now_ns``."""
        self.now = max(self.now, now_ns)
        if not self._inbox:  # the usual case on a quote: nothing in flight
            return []
        out: list = []
        due = sorted(x for x in self._inbox if x[0] <= now_ns)
        if due:
            self._inbox = [x for x in self._inbox if x[0] > now_ns]
        for arrival, _, cmd in due:
            if isinstance(cmd, SubmitOrder):
                out += self._submit(cmd, arrival)
            elif isinstance(cmd, CancelOrder):
                out += self._cancel(cmd, arrival)
            elif isinstance(cmd, ReplaceOrder):
                out += self._replace(cmd, arrival)
            else:
                raise TypeError(f"matching engine cannot handle {type(cmd).__name__}")
        return out

    def on_quote(self, quote: Quote) -> list:
        """A new quote: act on arrived commands, then match resting orders in ``quote.symbol``."""
        out = self.advance(quote.ts)
        book = self.books.setdefault(quote.symbol, _Book())
        book.quote = quote
        book.available = {1: _size(quote.ask_size), -1: _size(quote.bid_size)}
        for order in sorted((o for o in self.orders.values() if o.live and o.cmd.symbol == quote.symbol),
                            key=lambda o: o.seq):
            out += self._match(order, quote.ts)
        return out

    def expire_day_orders(self, now_ns: int) -> list:
        """End of the trading day: DAY orders still live expire."""
        out = []
        for o in self.orders.values():
            if o.live and o.cmd.tif is TimeInForce.DAY:
                o.status = "expired"
                out.append(self._emit(OrderExpired(o.client_order_id, now_ns, "end of day", self._exec_id())))
        return out

    def order_reports(self, client_order_id: str) -> list | None:
        """Every event produced for the order, or None if it never arrived here."""
        r = self._reports.get(client_order_id)
        return None if r is None else list(r)

    # ------------------------------------------------------------------ handlers
    def _exec_id(self) -> str:
        self._exec += 1
        return f"{self.venue}-E{self._exec}"

    def _emit(self, event):
        self._reports.setdefault(event.client_order_id, []).append(event)
        return event

    def _submit(self, cmd: SubmitOrder, ts: int) -> list:
        cl = cmd.client_order_id
        if cl in self._reports:
            return []  # a resend of an order this venue already has: idempotent
        try:
            asset_class_of(cmd.symbol)
        except ValueError as exc:
            self._reports[cl] = []
            return [self._emit(OrderRejected(cl, ts, f"unknown symbol: {exc}", self._exec_id()))]
        self._seq += 1
        order = RestingOrder(cmd, cl, cmd.quantity, cmd.price, seq=self._seq)
        self.orders[cl] = order
        self._reports[cl] = []
        out = [self._emit(OrderAccepted(cl, ts, f"{self.venue}-{self._seq}", self._exec_id()))]
        book = self.books.get(cmd.symbol)
        if book is not None and book.quote is not None:
            out += self._match(order, ts)
        if cmd.tif is TimeInForce.IOC and order.live:
            order.status = "cancelled"
            out.append(self._emit(OrderCanceled(cl, ts, "IOC remainder", self._exec_id())))
        return out

    def _cancel(self, cmd: CancelOrder, ts: int) -> list:
        order = self.orders.get(cmd.client_order_id)
        if order is None or not order.live:
            why = "unknown order" if order is None else f"order is {order.status}"
            return [self._emit(OrderCancelRejected(cmd.client_order_id, ts, why, self._exec_id()))]
        order.status = "cancelled"
        return [self._emit(OrderCanceled(order.client_order_id, ts, cmd.reason or "cancelled on request",
                                         self._exec_id()))]

    def _replace(self, cmd: ReplaceOrder, ts: int) -> list:
        order = self.orders.get(cmd.client_order_id)
        if order is None or not order.live:
            why = "unknown order" if order is None else f"order is {order.status}"
            return [self._emit(OrderReplaceRejected(cmd.client_order_id, ts, why, self._exec_id()))]
        if cmd.quantity <= order.cum_qty:
            return [self._emit(OrderReplaceRejected(cmd.client_order_id, ts,
                                                    f"new quantity {cmd.quantity} <= filled {order.cum_qty}",
                                                    self._exec_id()))]
        if cmd.new_client_order_id in self._reports:
            return [self._emit(OrderReplaceRejected(cmd.client_order_id, ts,
                                                    f"duplicate id {cmd.new_client_order_id}", self._exec_id()))]
        order.status = "replaced"
        new = RestingOrder(order.cmd, cmd.new_client_order_id, cmd.quantity,
                           cmd.price if cmd.price is not None else order.price, order.cum_qty,
                           "new" if order.cum_qty == 0 else "partially_filled", order.seq)
        self.orders[new.client_order_id] = new
        self._reports[new.client_order_id] = []
        out = [self._emit(OrderReplaced(order.client_order_id, ts, new.client_order_id, new.quantity,
                                        cmd.price, self._exec_id()))]
        book = self.books.get(order.cmd.symbol)
        if book is not None and book.quote is not None:
            out += self._match(new, ts)
        return out

    def _match(self, order: RestingOrder, ts: int) -> list:
        cmd = order.cmd
        book = self.books[cmd.symbol]
        q = book.quote
        side = int(cmd.side)
        ref = q.ask if side == 1 else q.bid
        if not (isinstance(ref, float) and math.isfinite(ref) and ref > 0):
            ref = q.last
        if not (math.isfinite(ref) and ref > 0):
            return []
        # the quote's size is spent (checked before any Decimal is built: most calls end here)
        avail = book.available.get(side, math.inf)
        if avail <= 0:
            return []
        limit = order.price if cmd.order_type is OrdType.LIMIT else None
        ref_d = Decimal(repr(ref))
        if limit is not None and ((side == 1 and limit < ref_d) or (side == -1 and limit > ref_d)):
            return []  # not touched: rest
        fm = self.fill_model
        size_capped = fm.partial_fills and math.isfinite(avail)
        leaves = order.leaves
        qty = min(leaves, _dec(avail)) if size_capped else leaves
        if qty <= 0:
            return []
        share = float(qty) / avail if size_capped else 0.0
        # decimal arithmetic: in floats 1.5 x (1 - 0.002) is 1.49699999.. and would round a tick off
        cached, lo, hi = self._slip
        if cached is not fm:  # the model is frozen: convert its floats once per model
            lo, hi = Decimal(repr(fm.slippage_min)), Decimal(repr(fm.slippage_max))
            self._slip = (fm, lo, hi)
        slip = lo + (hi - lo) * Decimal(repr(min(1.0, share)))
        unit = self._units.get(cmd.symbol)
        if unit is None:
            unit = self._units[cmd.symbol] = Decimal(1).scaleb(-PRICE_DECIMALS[asset_class_of(cmd.symbol)])
        raw = ref_d * (1 + side * slip)
        # round against the trader (a buy never pays less than its slipped price)
        px = raw.quantize(unit, rounding=ROUND_CEILING if side == 1 else ROUND_FLOOR)
        if limit is not None:
            px = min(px, limit) if side == 1 else max(px, limit)
        if math.isfinite(avail):
            book.available[side] = avail - float(qty)
        order.cum_qty += qty
        order.status = "filled" if order.leaves == 0 else "partially_filled"
        return [self._emit(OrderFilled(order.client_order_id, ts, self._exec_id(), qty, px, order.leaves,
                                       "taker"))]


def _size(x: float) -> float:
    """Quoted size; a missing/zero size means 'unknown', i.e. unlimited at the touch."""
    return float(x) if x and math.isfinite(x) and x > 0 else math.inf


def _dec(x: float) -> Decimal:
    d = Decimal(repr(x))
    return d.to_integral_value() if d == d.to_integral_value() else d
