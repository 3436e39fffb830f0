"""Market and portfolio state: last prices and positions, in one place.

The node writes the latest quote of each symbol here, the order manager's position book
keeps its positions here, and everything that needs a price or a position -- the risk
checks, sizing, the stops, P&L marks, the node's own signal handling -- reads it from here.
Before this object the same facts lived in four copies (``node.quotes``,
``risk.last_price``, each position's ``mark`` and the OMS book) that had to be kept in step.

It lives in ``pyplatform.risk`` because that is the lower of the two layers:
``pyplatform.execution`` (order manager, node, brokers) imports risk, and risk imports
nothing from execution, so the two packages form no import cycle. Positions are stored
as the objects the position book makes (``pyplatform.execution.positions.Position``);
this module reads them only through their ``quantity`` and ``avg_price`` attributes.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Protocol

from pyplatform.domain import Quote, asset_class_of, round_price

__all__ = ["MarketState", "HeldPosition"]


class HeldPosition(Protocol):
    """What the state needs of a position: signed quantity and average cost."""

    quantity: Decimal

    @property
    def avg_price(self) -> Fraction | Decimal | None: ...


class MarketState:
    """Last quote and trade price per symbol, and positions per (account, symbol).

    Attributes
    ----------
    quotes : dict[str, Quote]
        The latest quote of each symbol (``TradingNode.quotes`` is this dict).
    last_price : dict[str, Decimal]
        The last trade price of each symbol, at its asset class's precision when it came
        from a quote. It is the mark of every position in that symbol
        (``RiskManager.last_price`` and ``Position.mark`` read it).
    positions : dict[tuple[str, str], HeldPosition]
        ``(account, symbol) -> position``; the order manager's ``PositionBook`` stores its
        positions in this dict, so a fill is visible to risk and stops the moment it is booked.
    """

    __slots__ = ("quotes", "last_price", "positions")

    def __init__(self) -> None:
        self.quotes: dict[str, Quote] = {}
        self.last_price: dict[str, Decimal] = {}
        self.positions: dict[tuple[str, str], HeldPosition] = {}

    # ------------------------------------------------------------------ prices
    def on_quote(self, q: Quote) -> Decimal:
        """Record ``q`` as the latest quote of its symbol; returns its last price, rounded
        to the symbol's price precision (that rounded price is the mark)."""
        self.quotes[q.symbol] = q
        last = round_price(q.last, asset_class_of(q.symbol))
        self.last_price[q.symbol] = last
        return last

    def set_price(self, symbol: str, price: Decimal) -> Decimal:
        """Record a last trade price as given (no rounding); returns it as a Decimal."""
        price = price if isinstance(price, Decimal) else Decimal(str(price))
        self.last_price[symbol] = price
        return price

    def price(self, symbol: str) -> Decimal | None:
        """The last trade price of ``symbol`` (None before its first quote)."""
        return self.last_price.get(symbol)

    # ------------------------------------------------------------------ positions
    def quantity(self, account: str, symbol: str) -> Decimal:
        """Signed quantity held (0 for a symbol never traded)."""
        pos = self.positions.get((account, symbol))
        return Decimal(0) if pos is None else pos.quantity

    def avg_price(self, account: str, symbol: str) -> Fraction | Decimal | None:
        """Average cost of the open quantity (None when flat)."""
        pos = self.positions.get((account, symbol))
        return None if pos is None else pos.avg_price

    def holdings(self, account: str) -> dict[str, Decimal]:
        """``symbol -> signed quantity`` of every non-flat position of ``account``."""
        return {sym: p.quantity for (acc, sym), p in self.positions.items() if acc == account and p.quantity}
