"""Market-data messages. Immutable; timestamps are integer nanoseconds UTC."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Tick", "Quote", "DepthLevel", "Depth", "Bar"]


@dataclass(frozen=True, slots=True)
class Tick:
    """One trade. ``side`` is the aggressor: +1 buy, -1 sell, 0 unknown."""

    ts: int
    symbol: str
    price: float
    volume: float
    side: int = 0
    bid: float = float("nan")
    ask: float = float("nan")


@dataclass(frozen=True, slots=True)
class Quote:
    """A quote snapshot (iTick ``quote``: last, OHLC of the day, volume, turnover)."""

    ts: int
    symbol: str
    last: float
    open: float = float("nan")
    high: float = float("nan")
    low: float = float("nan")
    volume: float = 0.0
    turnover: float = 0.0
    bid: float = float("nan")
    ask: float = float("nan")
    bid_size: float = 0.0
    ask_size: float = 0.0


@dataclass(frozen=True, slots=True)
class DepthLevel:
    position: int
    price: float
    volume: float
    orders: int = 0


@dataclass(frozen=True, slots=True)
class Depth:
    """Order-book depth: ``bids`` best first (descending), ``asks`` best first (ascending)."""

    ts: int
    symbol: str
    bids: tuple[DepthLevel, ...] = field(default_factory=tuple)
    asks: tuple[DepthLevel, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Bar:
    """An OHLCV bar; ``ts`` is the window start."""

    ts: int
    symbol: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float = float("nan")
    trades: int = 0
