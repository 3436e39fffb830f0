"""The backtest's risk policy: the live :class:`~pyplatform.risk.manager.RiskManager` plus the
two things a backtest configures on top of it, handed to the ``TradingNode`` it composes.

* **Gross exposure limit** (``BacktestConfig.max_gross``, 1.0 by default): the live limits
  cap each position (concentration 30% of equity) but not their sum, so a strategy signalling
  on many symbols at once levered up (the z-score strategy averaged 2.3x equity). Sizing now
  shrinks a new position to what fits under ``max_gross x equity`` beside everything else the
  account holds or has working, and the pre-trade check refuses an opening order that would
  still exceed it (rule ``gross_exposure``). Closing orders always pass, as in the live rules.
* **All-in sizing** (``sizing="all_in"``, research and parity): the whole equity in the symbol,
  at the price the order will *fill* at -- the price prevailing when it reaches the venue, or
  the next price when the market has not traded since the decision (a signal on a session's
  last bar fills at the next session's open). Sizing at the signal bar's close instead bought
  ``equity / close`` shares at the open across every overnight gap, so a stock's result drifted
  from a next-open vectorised backtest (vectorbt) by up to 1.6 points of total return. The fill
  price is read from the replayed price path, which is deterministic; this is a deliberate
  look at the fill (what a market-on-open order for "all my cash" means), never used by risk
  sizing.
* **Stops off** (``stops=False``): :class:`pyplatform.risk.NoStops` (prices of held symbols
  are then not replayed tick by tick, so stops could not be simulated faithfully).
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import Callable

from pyplatform.clock import Clock
from pyplatform.risk.config import RiskConfig
from pyplatform.risk.manager import RiskManager
from pyplatform.risk.sizing import lot_size_of, round_to_lot
from pyplatform.risk.stops import NoStops

__all__ = ["BacktestRisk"]

_QTY = Decimal("1e-8")


class BacktestRisk(RiskManager):
    """The live risk manager with the backtest's sizing mode, gross limit and stop switch.

    Handed to ``TradingNode(risk=...)``, which attaches it to the node's market state.

    Parameters
    ----------
    config : RiskConfig
    clock : Clock
    all_in : bool
        Size every position at the whole equity, at the fill price (fractional quantities).
    max_gross : float or None
        Gross exposure limit as a multiple of equity (None: none).
    stops : bool
        Keep the live stop book (True) or switch stops off (:class:`pyplatform.risk.NoStops`).
    fill_price : callable, optional
        ``fill_price(symbol, now_ns) -> float | None``: the price an order decided at
        ``now_ns`` will meet at the venue (all-in sizing; the engine supplies it).
    """

    def __init__(self, config: RiskConfig | None, clock: Clock, *, all_in: bool = False,
                 max_gross: float | None = None, stops: bool = True,
                 fill_price: Callable[[str, int], float | None] | None = None) -> None:
        super().__init__(config, clock, stops=None if stops else NoStops())
        self.all_in = all_in
        self.max_gross = None if max_gross is None else Decimal(repr(float(max_gross)))
        self.fill_price = fill_price
        self._node = None
        self._seen = 0  # orders of the order manager already looked at
        self._working: dict[str, object] = {}  # client order id -> Order, those that were open

    def watch(self, node) -> None:
        """The node whose working orders and unreleased VWAP slices count as exposure
        (positions and prices come from the market state the node attached)."""
        self._node = node

    # ------------------------------------------------------------------ exposure
    def gross_besides(self, account: str, symbol: str) -> Decimal:
        """Gross value of everything the account holds or has working, ``symbol`` excluded
        (its own position and orders are what the order being sized replaces)."""
        m = self.market
        total = Decimal(0)
        held = m.holdings(account)
        for sym, q in held.items():
            if q and sym != symbol:
                px = m.price(sym)
                if px is not None:
                    total += abs(q) * px
        node = self._node
        if node is None:
            return total

        def adds(sym: str, side) -> bool:  # an order that does not reduce what is held
            q = held.get(sym, 0)
            return not (q and (q > 0) != (int(side) > 0))

        for o in self._open_orders(node):
            if o.account == account and o.symbol != symbol and adds(o.symbol, o.side):
                px = o.price if o.price is not None else m.price(o.symbol)
                if px is not None:
                    total += o.leaves_qty * px
        for c in node.slices._pending:  # unreleased VWAP children of other symbols
            if c.symbol != symbol and c.account == account and adds(c.symbol, c.side):
                px = c.price if c.price is not None else m.price(c.symbol)
                if px is not None:
                    total += c.quantity * px
        return total

    def _open_orders(self, node) -> list:
        """The order manager's open orders, without rescanning every order ever placed
        (``OrderManager.open_orders`` walks them all, which over a long run is quadratic):
        the orders added since the last call, newest first from the end of the insertion-
        ordered table, plus those seen open before."""
        orders = node.oms.orders
        new = len(orders) - self._seen
        if new > 0:
            it = reversed(orders.values())
            for _ in range(new):
                o = next(it)
                if o.is_open:
                    self._working[o.client_order_id] = o
            self._seen = len(orders)
        out = []
        for cl, o in list(self._working.items()):
            cur = orders.get(cl, o)
            if cur.is_open:
                out.append(cur)
            else:
                del self._working[cl]
        return out

    def _gross_room(self, account: str, symbol: str, equity: Decimal) -> Decimal | None:
        if self.max_gross is None:
            return None
        return max(Decimal(0), self.max_gross * Decimal(equity) - self.gross_besides(account, symbol))

    # ------------------------------------------------------------------ sizing
    def size(self, account: str, symbol: str, equity: Decimal, strength: float = 1.0,
             price: Decimal | None = None) -> Decimal:
        """Quantity for a new position: the live sizing (or all-in), then the gross limit."""
        if self.all_in:
            if price is None and self.fill_price is not None:
                fp = self.fill_price(symbol, self.clock.now_ns())
                price = None if fp is None else Decimal(repr(fp))
            price = self.market.price(symbol) if price is None else Decimal(price)
            if price is None or price <= 0 or equity <= 0:
                return Decimal(0)
            value = Decimal(equity)
            room = self._gross_room(account, symbol, equity)
            if room is not None:
                value = min(value, room)
            return (value / price).quantize(_QTY, rounding=ROUND_FLOOR)
        qty = super().size(account, symbol, equity, strength, price)
        px = self.market.price(symbol) if price is None else Decimal(price)
        room = self._gross_room(account, symbol, equity) if qty else None
        if room is None or px is None or px <= 0 or qty * px <= room:
            return qty
        lim = self.config.limits(account, symbol)
        return round_to_lot(room / px, lot_size_of(symbol, lim.lot_size))

    # ------------------------------------------------------------------ the check
    def _first_breach(self, cmd, snap, lim, pos, signed, closing, now):
        rule, reason = super()._first_breach(cmd, snap, lim, pos, signed, closing, now)
        if rule is not None or closing or self.max_gross is None or snap.equity <= 0:
            return rule, reason
        last = self.market.price(cmd.symbol)
        if last is None:
            return rule, reason
        gross = self.gross_besides(cmd.account, cmd.symbol) + abs(pos + signed) * last
        # a hair of tolerance: sizing and this check value the position at the same last price
        if gross > self.max_gross * snap.equity * Decimal("1.000001"):
            return "gross_exposure", (f"{cmd.symbol}: gross exposure after order {gross / snap.equity:.2f}x "
                                      f"equity, above the limit {self.max_gross}x")
        return None, None
