"""Positions with average cost and realised/unrealised P&L, per account and symbol.

Arithmetic is exact: inputs are Decimals and the cost basis is kept as a
:class:`fractions.Fraction`, so ``realised + unrealised == cash flow + position x mark``
holds to the last digit (a property test checks it). Average-cost method: a reducing fill
realises ``qty x (price - average cost)``; a fill through zero opens the rest at its price.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from pyplatform.risk.market import MarketState

__all__ = ["Position", "PositionSnapshot", "PositionBook", "to_decimal"]

_ZERO = Fraction(0)


def to_decimal(x: Fraction, places: int = 10) -> Decimal:
    """A Fraction as a Decimal rounded to ``places`` (for display and reports)."""
    q = Decimal(1).scaleb(-places)
    return (Decimal(x.numerator) / Decimal(x.denominator)).quantize(q)


@dataclass(frozen=True, slots=True)
class PositionSnapshot:
    account: str
    symbol: str
    quantity: Decimal
    avg_price: Decimal | None
    realised: Decimal
    unrealised: Decimal | None
    mark: Decimal | None


class Position:
    """One account's position in one symbol (mutable; owned by a :class:`PositionBook`).

    Parameters
    ----------
    account, symbol : str
    prices : dict, optional
        ``symbol -> last price`` the mark is read from: the book's shared
        :class:`~pyplatform.risk.market.MarketState` prices, so a position never holds a copy
        of the price that could fall behind. A standalone position gets a dict of its own.
    """

    __slots__ = ("account", "symbol", "quantity", "cost", "realised", "opened_ts", "_prices")

    def __init__(self, account: str, symbol: str, prices: dict[str, Decimal] | None = None) -> None:
        self.account, self.symbol = account, symbol
        self.quantity = Decimal(0)
        self.cost = Fraction(0)  # signed cost of the open quantity
        self.realised = Fraction(0)
        self.opened_ts: int | None = None
        self._prices = {} if prices is None else prices

    @property
    def mark(self) -> Decimal | None:
        """The symbol's last price in the shared state (None before its first price)."""
        return self._prices.get(self.symbol)

    @mark.setter
    def mark(self, price: Decimal | None) -> None:
        # one price per symbol: marking one position marks every position in the symbol
        if price is None:
            self._prices.pop(self.symbol, None)
        else:
            self._prices[self.symbol] = price

    @property
    def avg_price(self) -> Fraction | None:
        if self.quantity == 0:
            return None
        hn, hd = self.quantity.as_integer_ratio()
        c = self.cost
        return Fraction(c.numerator * hd, c.denominator * hn)

    def apply_fill(self, signed_qty: Decimal, price: Decimal, ts: int = 0) -> Fraction:
        """Book a fill (``signed_qty`` > 0 buys); returns the P&L it realised.

        The arithmetic is the exact average-cost rule on rationals, done on the integer
        numerators and denominators (``as_integer_ratio``) with one ``Fraction`` built per
        result: building Fractions from Decimals and chaining Fraction operators cost
        about 50 us a fill, most of a backtest's booking time.
        """
        qn, qd = signed_qty.as_integer_ratio()
        pn, pd = price.as_integer_ratio()
        held = self.quantity
        c = self.cost
        cn, cd = c.numerator, c.denominator
        if held == 0 or (held > 0) == (qn > 0):
            # opening or adding: cost += q x px
            self.cost = Fraction(cn * qd * pd + qn * pn * cd, cd * qd * pd)
            if held == 0:
                self.opened_ts = ts
            realised = _ZERO
        else:
            hn, hd = held.as_integer_ratio()
            # avg = cost / held = cn hd / (cd hn); the part of q that reduces the position:
            if abs(qn * hd) >= abs(hn * qd):
                xn, xd = -hn, hd  # the whole position closes
            else:
                xn, xd = qn, qd
            # realised = -closing x (px - avg)
            realised = Fraction(-xn * (pn * cd * hn - cn * hd * pd), xd * pd * cd * hn)
            rn, rd = qn * xd - xn * qd, qd * xd  # rest = q - closing
            if rn:
                self.cost = Fraction(rn * pn, rd * pd)  # went through zero: the remainder opens at px
                self.opened_ts = ts
            elif xn * hd == -hn * xd:  # held + closing == 0: flat
                self.cost = _ZERO
                self.opened_ts = None
            else:  # cost += closing x avg
                self.cost = Fraction(cn * (xd * hn + xn * hd), xd * cd * hn)
            self.realised += realised
        self.quantity += signed_qty
        return realised

    def unrealised(self, mark: Decimal | None = None) -> Fraction | None:
        mark = self.mark if mark is None else mark
        if mark is None:
            return None
        qn, qd = self.quantity.as_integer_ratio()
        mn, md = mark.as_integer_ratio()
        c = self.cost
        cd = c.denominator
        return Fraction(qn * mn * cd - c.numerator * qd * md, qd * md * cd)

    def snapshot(self, places: int = 10) -> PositionSnapshot:
        avg, unr = self.avg_price, self.unrealised()
        return PositionSnapshot(self.account, self.symbol, self.quantity,
                                None if avg is None else to_decimal(avg, places),
                                to_decimal(self.realised, places),
                                None if unr is None else to_decimal(unr, places), self.mark)


class PositionBook:
    """All positions, keyed by (account, symbol), kept in a :class:`MarketState`.

    Parameters
    ----------
    market : MarketState, optional
        Where the positions and their marks live (a new, empty one by default). Risk checks
        and stops read the same object, so there is no second copy to keep in step.
    """

    def __init__(self, market: MarketState | None = None) -> None:
        self.market = market if market is not None else MarketState()
        self._positions: dict[tuple[str, str], Position] = self.market.positions  # type: ignore[assignment]

    def get(self, account: str, symbol: str) -> Position:
        key = (account, symbol)
        pos = self._positions.get(key)
        if pos is None:
            pos = self._positions[key] = Position(account, symbol, self.market.last_price)
        return pos

    def quantity(self, account: str, symbol: str) -> Decimal:
        pos = self._positions.get((account, symbol))
        return Decimal(0) if pos is None else pos.quantity

    def mark(self, symbol: str, price: Decimal) -> None:
        """Set the mark (last price) of ``symbol``: every account's position in it, now or
        opened later, is valued at it."""
        self.market.set_price(symbol, price)

    def positions(self, account: str | None = None) -> list[Position]:
        return [p for (acc, _), p in sorted(self._positions.items()) if account is None or acc == account]

    def _of(self, account: str) -> list[Position]:
        # the totals below are exact sums, so they need no sorted order (``positions`` sorts)
        return [p for (acc, _), p in self._positions.items() if acc == account]

    def realised(self, account: str) -> Fraction:
        n, d = 0, 1
        for p in self._of(account):
            r = p.realised
            rn, rd = r.numerator, r.denominator
            if rn:
                n, d = n * rd + rn * d, d * rd
        return Fraction(n, d)

    def unrealised(self, account: str) -> Fraction:
        # summed on integer numerators over a common denominator, one Fraction at the end
        # (the equity is asked for on every sizing decision; a Fraction per term was its cost)
        n, d = 0, 1
        for p in self._of(account):
            if not p.quantity:  # a flat position's unrealised P&L is exactly 0 (its cost is reset)
                continue
            mark = p._prices.get(p.symbol)  # p.mark
            if mark is None:
                continue
            qn, qd = p.quantity.as_integer_ratio()
            mn, md = mark.as_integer_ratio()
            c = p.cost
            cn, cd = c.numerator, c.denominator
            # q x mark - cost = (qn mn cd - cn qd md) / (qd md cd)
            tn, td = qn * mn * cd - cn * qd * md, qd * md * cd
            n, d = n * td + tn * d, d * td
        return Fraction(n, d)

    def gross_exposure(self, account: str) -> Fraction:
        return sum((abs(Fraction(p.quantity) * Fraction(p.mark)) for p in self._of(account)
                    if p.mark is not None), _ZERO)
