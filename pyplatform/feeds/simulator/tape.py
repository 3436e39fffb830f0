"""The simulator's market: a vectorised random-walk tape over a symbol universe.

Each call to :meth:`MarketTape.generate` produces ``n`` ticks spread evenly over a time
interval, for the symbols whose trading session is open (``pyplatform.calendars``), as
columns: symbol index, per-symbol sequence number, timestamp, price, volume. Prices follow
a per-symbol geometric random walk rounded to the asset class's precision; no per-row
Python anywhere (grouped cumulative sums do the per-symbol walks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pyplatform.calendars import calendar_for
from pyplatform.domain import PRICE_DECIMALS, asset_class_of

__all__ = ["MarketTape", "TapeBatch", "DEFAULT_SYMBOLS", "default_price"]

DEFAULT_SYMBOLS = ("AAPL.US", "MSFT.US", "NVDA.US", "EURUSD.GB", "GBPUSD.GB", "BTCUSDT.BA",
                   "ETHUSDT.BA", "SPX.IDX")

_START = {"AAPL.US": 225.0, "MSFT.US": 415.0, "NVDA.US": 135.0, "EURUSD.GB": 1.08,
          "GBPUSD.GB": 1.27, "BTCUSDT.BA": 67600.0, "ETHUSDT.BA": 3000.0, "SPX.IDX": 5900.0}


def default_price(symbol: str, rng: np.random.Generator) -> float:
    """A plausible starting price for a symbol (known majors, else by asset class)."""
    if symbol in _START:
        return _START[symbol]
    cls = asset_class_of(symbol).value
    lo, hi = {"stock": (10, 500), "forex": (0.5, 2.0), "crypto": (1, 5000), "index": (1000, 20000)}[cls]
    return float(rng.uniform(lo, hi))


@dataclass(frozen=True)
class TapeBatch:
    """Ticks generated for one interval (aligned arrays)."""

    sym: np.ndarray  # int32 index into MarketTape.symbols
    seq: np.ndarray  # int64 per-symbol sequence, 1-based, gap-free per symbol
    ts: np.ndarray  # int64 ns UTC
    price: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.sym)

    def to_arrow(self, symbols: list[str]) -> pa.Table:
        return pa.table({"ts": self.ts, "symbol": pa.array(np.asarray(symbols, object)[self.sym], pa.string()),
                         "price": self.price, "volume": self.volume, "seq": self.seq})


class MarketTape:
    """A stateful random-walk market over ``symbols``.

    Parameters
    ----------
    symbols : list of str
        Platform symbols (``AAPL.US``); each trades on its asset class's calendar.
    seed : int
        Random seed (the tape is reproducible for a seed and a sequence of calls).
    sessions : bool
        Respect trading sessions (stocks only in exchange hours, forex 24x5, crypto 24x7).
        Tests and benchmarks turn this off so every symbol trades at any hour.
    vol_per_tick : float
        Standard deviation of the log-price step per tick.
    """

    def __init__(self, symbols: list[str], seed: int = 7, sessions: bool = True,
                 vol_per_tick: float = 2e-4, start_prices: dict[str, float] | None = None) -> None:
        if not symbols:
            raise ValueError("the simulator needs at least one symbol")
        self.symbols = list(symbols)
        self.rng = np.random.default_rng(seed)
        self.sessions = sessions
        self.vol = vol_per_tick
        start_prices = start_prices or {}
        self.price = np.array([start_prices.get(s) or default_price(s, self.rng) for s in self.symbols])
        self.decimals = np.array([PRICE_DECIMALS[asset_class_of(s)] for s in self.symbols])
        self.lot = np.array([{"stock": 100.0, "index": 1.0, "forex": 1000.0, "crypto": 0.001}[
            asset_class_of(s).value] for s in self.symbols])
        self.seq = np.zeros(len(self.symbols), np.int64)
        self._calendars = [calendar_for(s) for s in self.symbols]
        self._open_cache: tuple[int, np.ndarray] | None = None

    def open_mask(self, now_ns: int) -> np.ndarray:
        """Which symbols are in session at ``now_ns`` (re-evaluated at most once a second)."""
        if not self.sessions:
            return np.ones(len(self.symbols), bool)
        if self._open_cache is None or abs(now_ns - self._open_cache[0]) >= 1_000_000_000:
            by_cal: dict[int, bool] = {}
            mask = np.zeros(len(self.symbols), bool)
            for i, cal in enumerate(self._calendars):  # a handful of calendars, not rows
                key = id(cal)
                if key not in by_cal:
                    by_cal[key] = bool(cal.is_open(np.array([now_ns], np.int64))[0])
                mask[i] = by_cal[key]
            self._open_cache = (now_ns, mask)
        return self._open_cache[1]

    def generate(self, n: int, t0_ns: int, t1_ns: int) -> TapeBatch:
        """``n`` ticks stamped evenly in ``(t0_ns, t1_ns]`` for the symbols in session."""
        open_idx = np.flatnonzero(self.open_mask(t1_ns))
        if n <= 0 or not len(open_idx):
            e = np.empty(0)
            return TapeBatch(e.astype(np.int32), e.astype(np.int64), e.astype(np.int64), e, e)
        sym = open_idx[self.rng.integers(0, len(open_idx), n)].astype(np.int32)
        step = np.exp(self.rng.normal(0.0, self.vol, n))
        # per-symbol cumulative product of steps, in arrival order (grouped, vectorised)
        order = np.argsort(sym, kind="stable")
        s_sorted = sym[order]
        logcum = np.cumsum(np.log(step[order]))
        starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
        base = np.repeat(np.r_[0.0, logcum][starts], np.diff(np.r_[starts, n]))
        grouped = logcum - base
        rank = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
        price_sorted = self.price[s_sorted] * np.exp(grouped)
        scale = 10.0 ** self.decimals[s_sorted]
        price_sorted = np.maximum(np.round(price_sorted * scale), 1.0) / scale
        seq_sorted = self.seq[s_sorted] + rank + 1
        price = np.empty(n)
        seq = np.empty(n, np.int64)
        price[order] = price_sorted
        seq[order] = seq_sorted
        last = np.r_[starts[1:] - 1, n - 1]
        self.price[s_sorted[last]] = price_sorted[last]
        self.seq[s_sorted[last]] = seq_sorted[last]
        volume = self.rng.integers(1, 20, n) * self.lot[sym]
        span = max(int(t1_ns) - int(t0_ns), n)
        ts = int(t0_ns) + ((np.arange(1, n + 1, dtype=np.int64) * span) // n)
        return TapeBatch(sym, seq, ts.astype(np.int64), price, volume)
