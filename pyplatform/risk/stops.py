"""Stops that generate closing orders: fixed stop-loss, trailing stop, time stop."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Protocol

__all__ = ["StopBook", "StopTriggered", "StopLevels", "StopPolicy", "NoStops"]

_NS = 1_000_000_000


@lru_cache(maxsize=256)
def _dec(x: float) -> Decimal:
    # a level as the Decimal of its shortest repr; the few configured levels are converted
    # once instead of four times per tracked position per price
    return Decimal(str(x))


@dataclass(frozen=True, slots=True)
class StopLevels:
    fixed: float = 0.05
    trailing: float = 0.03
    time_s: float | None = None


@dataclass(frozen=True, slots=True)
class StopTriggered:
    """A stop fired: close ``quantity`` (signed: negative sells a long) of ``symbol``."""

    ts: int
    account: str
    symbol: str
    kind: str  # fixed | trailing | time
    quantity: Decimal
    price: Decimal
    reason: str


class StopPolicy(Protocol):
    """What ``RiskManager(stops=...)`` feeds: fills (``sync``) and prices (``on_price``)."""

    def sync(self, account: str, symbol: str, qty: Decimal, avg_price: Decimal | None, ts: int,
             levels: StopLevels, last: Decimal | None = None) -> None: ...

    def on_price(self, symbol: str, price: Decimal, ts: int) -> list[StopTriggered]: ...

    def tracked(self, account: str, symbol: str): ...


class NoStops:
    """Stops switched off: tracks nothing, never fires."""

    def sync(self, account: str, symbol: str, qty: Decimal, avg_price: Decimal | None, ts: int,
             levels: StopLevels, last: Decimal | None = None) -> None:
        return None

    def on_price(self, symbol: str, price: Decimal, ts: int) -> list[StopTriggered]:
        return []

    def tracked(self, account: str, symbol: str):
        return None


@dataclass
class _Tracked:
    qty: Decimal
    avg: Decimal
    opened_ts: int
    best: Decimal  # high-water mark for a long, low-water mark for a short
    levels: StopLevels
    fired: bool = False


class StopBook:
    """Tracks open positions and fires each position's first breached stop once.

    ``sync`` after every fill (quantity and average cost), ``on_price`` on every trade.
    """

    def __init__(self) -> None:
        self._pos: dict[tuple[str, str], _Tracked] = {}

    def sync(self, account: str, symbol: str, qty: Decimal, avg_price: Decimal | None, ts: int,
             levels: StopLevels, last: Decimal | None = None) -> None:
        key = (account, symbol)
        cur = self._pos.get(key)
        if qty == 0 or avg_price is None:
            self._pos.pop(key, None)
            return
        if cur is None or (cur.qty > 0) != (qty > 0):
            start = avg_price if last is None else last
            self._pos[key] = _Tracked(qty, avg_price, ts, start, levels)
        else:
            grew = abs(qty) > abs(cur.qty)  # added to: the stops re-arm for the bigger position
            cur.qty, cur.avg, cur.levels = qty, avg_price, levels
            cur.fired = False if grew else cur.fired

    def tracked(self, account: str, symbol: str):
        return self._pos.get((account, symbol))

    def on_price(self, symbol: str, price: Decimal, ts: int) -> list[StopTriggered]:
        """Update high/low-water marks and return the stops this price breaches."""
        out = []
        for (account, sym), t in self._pos.items():
            if sym != symbol or t.fired:
                continue
            long = t.qty > 0
            t.best = max(t.best, price) if long else min(t.best, price)
            lv = t.levels
            hit = None
            fixed = t.avg * (1 - _dec(lv.fixed)) if long else t.avg * (1 + _dec(lv.fixed))
            trail = t.best * (1 - _dec(lv.trailing)) if long else t.best * (1 + _dec(lv.trailing))
            if (long and price <= fixed) or (not long and price >= fixed):
                hit = ("fixed", f"price {price} through fixed stop {fixed:.8f} ({lv.fixed:.2%} from cost {t.avg})")
            elif (long and price <= trail) or (not long and price >= trail):
                hit = ("trailing", f"price {price} through trailing stop {trail:.8f} "
                                   f"({lv.trailing:.2%} from {'high' if long else 'low'} {t.best})")
            elif lv.time_s is not None and ts - t.opened_ts >= int(lv.time_s * _NS):
                hit = ("time", f"held {(ts - t.opened_ts) / _NS:.0f}s >= time stop {lv.time_s:.0f}s")
            if hit:
                t.fired = True
                out.append(StopTriggered(ts, account, symbol, hit[0], -t.qty, price, hit[1]))
        return out
