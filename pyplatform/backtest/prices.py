"""Prices inside a bar and the price prevailing at any instant.

A bar is replayed as four ticks -- open at the bar's start, the extreme reached first at
1/4, the other extreme at 1/2, the close at 3/4 of the bar (an up bar visits its low
first, a down bar its high) -- the same convention as ``pyplatform.feeds`` uses to replay
bars into the tick table. The price prevailing at time ``t`` is the last tick at or before
``t``, so an order reaching the market just after a bar closes meets the next bar's open.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["TickPath"]


class TickPath:
    """Per-symbol tick arrays built once, vectorised, from a bar table.

    Parameters
    ----------
    bars : pyarrow.Table
        ``ts``, ``symbol``, ``open``, ``high``, ``low``, ``close``, ``volume``.
    bar_ns : int
        Bar width.
    """

    def __init__(self, bars: pa.Table, bar_ns: int) -> None:
        sym = np.asarray(bars.column("symbol").to_numpy(zero_copy_only=False)).astype(str)
        ts = bars.column("ts").to_numpy().astype(np.int64)
        names, code = np.unique(sym, return_inverse=True)
        order = np.lexsort((ts, code))
        code, ts = code[order], ts[order]
        o, h, l, c, v = (np.asarray(bars.column(k).to_numpy(zero_copy_only=False), np.float64)[order]
                         for k in ("open", "high", "low", "close", "volume"))
        up = c >= o
        self.bar_ns = int(bar_ns)
        self.symbols = [str(s) for s in names]
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.ts = (ts[:, None] + (np.arange(4, dtype=np.int64) * (bar_ns // 4))[None, :]).ravel()
        self.price = np.stack([o, np.where(up, l, h), np.where(up, h, l), c], axis=1).ravel()
        self.volume = np.repeat(np.nan_to_num(v) / 4.0, 4)
        self.bar_volume = np.repeat(np.nan_to_num(v), 4)
        bounds = np.searchsorted(code, np.arange(len(names) + 1))
        self.start, self.end = bounds[:-1] * 4, bounds[1:] * 4

    def at(self, symbol: str, t: int) -> int:
        """Index of the tick prevailing at ``t`` (-1 before the symbol's first tick)."""
        i = self.index[symbol]
        lo, hi = self.start[i], self.end[i]
        k = int(np.searchsorted(self.ts[lo:hi], t, side="right")) - 1
        return -1 if k < 0 else lo + k

    def next_after(self, symbol: str, t: int) -> int | None:
        """Time of the symbol's first tick strictly after ``t`` (None at the end of the data)."""
        i = self.index[symbol]
        lo, hi = self.start[i], self.end[i]
        k = lo + int(np.searchsorted(self.ts[lo:hi], t, side="right"))
        return int(self.ts[k]) if k < hi else None
