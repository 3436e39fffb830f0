"""Where the dashboard's numbers come from: bar sources and the market-view query.

A *bar source* answers three questions for one symbol: its daily bars, its one-minute bars
in a window, and how many one-minute bars a trading day holds. :class:`StoreBarSource` asks
the history store (``pyplatform.store``); :class:`FrameBarSource` wraps frames in memory
(notebooks, tests). :func:`market_view` turns a (symbol, timeframe, window) request into at
most ``cap`` candles, reading one-minute rows only for windows narrow enough to show them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from pyplatform.plots.downsample import DAY_NS, LADDER, Timeframe, aggregate_ohlcv, choose_timeframe, timeframe

__all__ = ["BarSource", "FrameBarSource", "StoreBarSource", "MarketView", "market_view", "to_ts_frame",
           "DAILY_CAP", "warmup_bars"]

_COLS = ["ts", "open", "high", "low", "close", "volume"]


def to_ts_frame(frame: pd.DataFrame, symbol: str | None = None) -> pd.DataFrame:
    """A store frame (indexed by ``(datetime, symbol)``) as flat columns with int64 ``ts``."""
    if frame is None or len(frame) == 0:
        return pd.DataFrame({c: np.array([], dtype=np.int64 if c == "ts" else float) for c in _COLS})
    if isinstance(frame.index, pd.MultiIndex):
        if symbol is not None and "symbol" in frame.index.names:
            frame = frame.xs(symbol, level="symbol")
        else:
            frame = frame.droplevel([n for n in frame.index.names if n != "datetime"])
    if "ts" not in frame.columns:
        idx = frame.index
        ts = np.asarray(idx.values).astype("datetime64[ns]").astype(np.int64)
        frame = frame.reset_index(drop=True).assign(ts=ts)
    keep = [c for c in _COLS + ["vwap"] if c in frame.columns]
    out = frame[keep].sort_values("ts", kind="stable").reset_index(drop=True)
    out["ts"] = out["ts"].astype(np.int64)
    return out


class BarSource(Protocol):
    """What the market page needs from history."""

    def symbols(self) -> list[str]: ...
    def daily(self, symbol: str) -> pd.DataFrame: ...
    def minutes(self, symbol: str, start_ns: int, end_ns: int) -> pd.DataFrame: ...
    def minutes_per_day(self, symbol: str) -> float: ...


class _DailyCache:
    """Daily bars per symbol, kept in memory: 12 years is ~3-4k rows, read once."""

    def __init__(self, maxsize: int = 64) -> None:
        self._data: OrderedDict[str, pd.DataFrame] = OrderedDict()
        self._lock = threading.Lock()
        self._maxsize = maxsize

    def get(self, symbol: str, load) -> pd.DataFrame:
        with self._lock:
            if symbol in self._data:
                self._data.move_to_end(symbol)
                return self._data[symbol]
        frame = load(symbol)
        with self._lock:
            self._data[symbol] = frame
            while len(self._data) > self._maxsize:
                self._data.popitem(last=False)
        return frame


class FrameBarSource:
    """Bars held in memory.

    Parameters
    ----------
    minutes : DataFrame
        One-minute bars indexed by ``(datetime, symbol)`` (the store's shape).
    daily : DataFrame, optional
        Daily bars in the same shape; aggregated from ``minutes`` when omitted.
    """

    def __init__(self, minutes: pd.DataFrame, daily: pd.DataFrame | None = None) -> None:
        syms = minutes.index.get_level_values("symbol")
        self._minutes = {s: to_ts_frame(minutes[syms == s]) for s in pd.unique(syms)}
        if daily is not None:
            dsyms = daily.index.get_level_values("symbol")
            self._daily = {s: to_ts_frame(daily[dsyms == s]) for s in pd.unique(dsyms)}
        else:
            self._daily = {s: aggregate_ohlcv(f, "1d") for s, f in self._minutes.items()}

    def symbols(self) -> list[str]:
        return sorted(set(self._minutes) | set(self._daily))

    def daily(self, symbol: str) -> pd.DataFrame:
        return self._daily.get(symbol, to_ts_frame(None))

    def minutes(self, symbol: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        f = self._minutes.get(symbol)
        if f is None:
            return to_ts_frame(None)
        ts = f["ts"].to_numpy()
        lo, hi = np.searchsorted(ts, start_ns, "left"), np.searchsorted(ts, end_ns, "left")
        return f.iloc[lo:hi].reset_index(drop=True)

    def minutes_per_day(self, symbol: str) -> float:
        f = self._minutes.get(symbol)
        if f is None or len(f) == 0:
            return 390.0
        days = f["ts"].to_numpy() // DAY_NS
        return float(len(days)) / float(len(np.unique(days)))


class StoreBarSource:
    """Bars from the history store (``bars_1d`` and ``bars_1m`` tables).

    Daily bars are cached per symbol (small); one-minute bars are read per window, which
    :func:`market_view` keeps bounded.
    """

    def __init__(self, store) -> None:
        self.store = store
        self._daily = _DailyCache()
        self._mpd: dict[str, float] = {}

    def symbols(self) -> list[str]:
        try:
            syms = self.store.symbols("bars_1d")
        except Exception:  # noqa: BLE001 - a missing table means "no symbols", shown as such
            syms = []
        return sorted(syms)

    def daily(self, symbol: str) -> pd.DataFrame:
        return self._daily.get(symbol, lambda s: self._read("bars_1d", s, None, None))

    def _read(self, table: str, symbol: str, start, end) -> pd.DataFrame:
        # Arrow keeps ts as int64 ns: no datetime round trip on the zoom path
        tbl = self.store.read(table, symbols=[symbol], start=start, end=end, as_arrow=True,
                              columns=["open", "high", "low", "close", "volume", "vwap"])
        cols = [c for c in _COLS + ["vwap"] if c in tbl.column_names]
        out = tbl.select(cols).to_pandas()
        out["ts"] = out["ts"].astype(np.int64)
        return out.sort_values("ts", kind="stable").reset_index(drop=True)

    def minutes(self, symbol: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        f = self._read("bars_1m", symbol, pd.Timestamp(int(start_ns)), pd.Timestamp(int(end_ns)))
        ts = f["ts"].to_numpy()
        # the contract is start <= ts < end; trim anyway so another backend's bounds cannot leak rows
        return f[(ts >= start_ns) & (ts < end_ns)].reset_index(drop=True)

    def minutes_per_day(self, symbol: str) -> float:
        if symbol not in self._mpd:
            d = self.daily(symbol)
            mpd = 390.0
            if len(d):
                # sample the most recent full day: one small read, cached per symbol
                day0 = int(d["ts"].iloc[-2] if len(d) > 1 else d["ts"].iloc[-1]) // DAY_NS * DAY_NS
                n = len(self.minutes(symbol, day0, day0 + DAY_NS))
                mpd = float(n) if n else 390.0
            self._mpd[symbol] = mpd
        return self._mpd[symbol]


@dataclass(frozen=True)
class MarketView:
    """The candles for one chart request and how they were chosen."""

    symbol: str
    requested: Timeframe
    shown: Timeframe
    start_ns: int
    end_ns: int
    bars: pd.DataFrame

    @property
    def note(self) -> str:
        """Human text for the status line under the chart."""
        n = len(self.bars)
        if n == 0:
            return f"{self.symbol}: no bars in this range"
        span = (f"{pd.Timestamp(self.start_ns):%Y-%m-%d %H:%M} → "
                f"{pd.Timestamp(self.end_ns):%Y-%m-%d %H:%M}")
        text = f"{self.symbol} · {n:,} candles of {self.shown.label} · {span}"
        if self.shown != self.requested:
            text += f" · {self.requested.label} needs a narrower window: zoom in for finer bars"
        return text


#: Candle budget for daily (and coarser) candles: daily bars are already stored, so sending a
#: decade of them (2,500-4,400 candles) costs little and the user asked for days, not weeks.
DAILY_CAP = 20_000


def market_view(source: BarSource, symbol: str, requested: str | Timeframe = "1d",
                start_ns: int | None = None, end_ns: int | None = None, *, cap: int = 3000,
                max_source_rows: int = 120_000, daily_cap: int = DAILY_CAP) -> MarketView:
    """Candles for ``symbol`` in ``[start_ns, end_ns)`` at the finest timeframe that fits.

    Parameters
    ----------
    source : BarSource
    symbol : str
    requested : str or Timeframe
        The user's timeframe; a coarser one is used when the window would exceed ``cap``.
    start_ns, end_ns : int, optional
        Window (ns UTC, half-open); the whole history when omitted.
    cap : int
        Most intraday candles returned.
    daily_cap : int
        Most candles when daily or coarser candles are requested (a per-timeframe budget:
        twelve years of daily bars stay daily).
    max_source_rows : int
        Most one-minute rows read for intraday candles (see :func:`choose_timeframe`).
    """
    req = timeframe(requested) if isinstance(requested, str) else requested
    daily = source.daily(symbol)
    if len(daily) == 0:
        empty = to_ts_frame(None)
        return MarketView(symbol, req, req, int(start_ns or 0), int(end_ns or 0), empty)
    dts = daily["ts"].to_numpy(np.int64)
    lo_ns = int(dts[0]) if start_ns is None else int(start_ns)
    hi_ns = int(dts[-1]) + DAY_NS if end_ns is None else int(end_ns)
    if hi_ns <= lo_ns:
        raise ValueError(f"empty window: start {pd.Timestamp(lo_ns)} is not before end {pd.Timestamp(hi_ns)}")
    # daily bars overlapping the window (a daily bar starts at 00:00, the window may not)
    d_lo = np.searchsorted(dts, lo_ns // DAY_NS * DAY_NS, "left")
    d_hi = np.searchsorted(dts, hi_ns, "left")
    window_days = dts[d_lo:d_hi]
    if not req.intraday:
        cap = max(cap, daily_cap)
    shown = choose_timeframe(req, window_days, source.minutes_per_day(symbol), cap=cap,
                             max_source_rows=max_source_rows)
    if shown.intraday:
        bars = source.minutes(symbol, lo_ns, hi_ns)
        if shown.name != "1m":
            bars = aggregate_ohlcv(bars, shown)
    else:
        bars = daily.iloc[d_lo:d_hi].reset_index(drop=True)
        if shown.name != "1d":
            bars = aggregate_ohlcv(bars, shown)
    # the intraday estimate assumes regular sessions; if it was short, step up the ladder
    # (re-aggregating the bars already read) rather than drop candles
    ladder = [t for t in LADDER if t.minutes > shown.minutes]
    while len(bars) > cap and ladder:
        shown = ladder.pop(0)
        bars = aggregate_ohlcv(bars, shown)
    return MarketView(symbol, req, shown, lo_ns, hi_ns, bars)


def warmup_bars(source: BarSource, symbol: str, view: MarketView, n: int) -> pd.DataFrame:
    """Up to ``n`` candles of ``view.shown`` that end where the view starts, so indicators
    drawn on the view start warmed up instead of blank at the window's left edge.

    Daily and coarser candles come from the cached daily bars; intraday ones from the
    minutes just before the window (a bounded read: ``n`` candles plus calendar slack).
    """
    if n <= 0 or len(view.bars) == 0:
        return to_ts_frame(None)
    first = int(view.bars["ts"].iloc[0])
    if not view.shown.intraday:
        daily = source.daily(symbol)
        dts = daily["ts"].to_numpy(np.int64)
        hi = int(np.searchsorted(dts, first, "left"))
        # a weekly/monthly candle spans several days: take enough days for n candles
        days = n * max(1, int(round(view.shown.nominal_ns / DAY_NS)))
        prior = daily.iloc[max(0, hi - days):hi].reset_index(drop=True)
        out = prior if view.shown.name == "1d" else aggregate_ohlcv(prior, view.shown)
    else:
        span = n * view.shown.minutes * 60 * 1_000_000_000
        # nights and weekends: look back up to three times the span, at most 10 days
        lo = first - min(3 * span + DAY_NS, 10 * DAY_NS)
        prior = source.minutes(symbol, lo, first)
        out = prior if view.shown.name == "1m" else aggregate_ohlcv(prior, view.shown)
    out = out[out["ts"].to_numpy(np.int64) < first]
    return out.iloc[-n:].reset_index(drop=True)
