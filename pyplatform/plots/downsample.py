"""Server-side OHLCV down-sampling for charts over long histories.

A browser cannot usefully draw millions of candles, so the chart asks for a window and a
*requested* timeframe and gets back at most ``cap`` candles: the finest timeframe on the
ladder that is at least the requested one and fits the cap. Zooming in narrows the window,
so finer bars fit and are re-aggregated from the 1-minute table.

Everything here is vectorised NumPy (``ufunc.reduceat`` over sorted bucket keys): no Python
loop runs per bar, because this sits on the path of every zoom.

Buckets
-------
* intraday (``1m`` .. ``4h``): aligned to the first bar of each UTC day (the session open),
  so a 1h bar of a market opening at 14:30 covers 14:30-15:30, not 14:00-15:00;
* ``1d``: the UTC day; ``1w``: weeks starting Monday; ``1M``: calendar months.
Each output bar is stamped with its bucket START (the platform convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "TIMEFRAMES", "LADDER", "MINUTE_NS", "DAY_NS", "Timeframe", "timeframe", "bucket_keys",
    "aggregate_ohlcv", "reduce_buckets", "estimate_count", "choose_timeframe",
]

MINUTE_NS = 60_000_000_000
DAY_NS = 86_400_000_000_000


@dataclass(frozen=True)
class Timeframe:
    """A bar size. ``minutes`` is the nominal length (a month counts as 30 days)."""

    name: str
    minutes: int
    label: str

    @property
    def intraday(self) -> bool:
        return self.minutes < 1440

    @property
    def nominal_ns(self) -> int:
        return self.minutes * MINUTE_NS


LADDER: tuple[Timeframe, ...] = (
    Timeframe("1m", 1, "1 minute"), Timeframe("5m", 5, "5 minutes"), Timeframe("15m", 15, "15 minutes"),
    Timeframe("30m", 30, "30 minutes"), Timeframe("1h", 60, "1 hour"), Timeframe("4h", 240, "4 hours"),
    Timeframe("1d", 1440, "1 day"), Timeframe("1w", 7 * 1440, "1 week"), Timeframe("1M", 30 * 1440, "1 month"),
)
TIMEFRAMES: dict[str, Timeframe] = {t.name: t for t in LADDER}


def timeframe(name: str) -> Timeframe:
    """Look a timeframe up by name, with an error listing the valid ones."""
    try:
        return TIMEFRAMES[name]
    except KeyError:
        raise ValueError(f"unknown timeframe {name!r}; choose one of {', '.join(TIMEFRAMES)}") from None


def _day_origin(ts: np.ndarray) -> np.ndarray:
    """For each row, the timestamp of the first row of its UTC day (ts sorted)."""
    day = ts // DAY_NS
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    run_len = np.diff(np.r_[starts, len(ts)])
    return np.repeat(ts[starts], run_len)


def bucket_keys(ts: np.ndarray, tf: Timeframe | str) -> tuple[np.ndarray, np.ndarray]:
    """Bucket key and bucket start (ns) of each timestamp for a timeframe.

    Parameters
    ----------
    ts : ndarray of int64
        Bar start times in ns UTC, sorted ascending.
    tf : Timeframe or str

    Returns
    -------
    keys, starts : ndarray of int64
        Non-decreasing keys (equal within a bucket) and each row's bucket start.
    """
    tf = timeframe(tf) if isinstance(tf, str) else tf
    ts = np.asarray(ts, dtype=np.int64)
    if tf.intraday:
        step = tf.nominal_ns
        origin = _day_origin(ts)
        start = origin + ((ts - origin) // step) * step
        return start, start
    if tf.name == "1d":
        key = ts // DAY_NS
        return key, key * DAY_NS
    if tf.name == "1w":
        # 1970-01-01 was a Thursday: shifting by 3 days makes weeks start on Monday.
        key = (ts // DAY_NS + 3) // 7
        return key, (key * 7 - 3) * DAY_NS
    if tf.name == "1M":
        key = ts.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
        start = key.astype("datetime64[M]").astype("datetime64[ns]").astype(np.int64)
        return key, start
    raise ValueError(f"no bucketing rule for timeframe {tf.name!r}")


def aggregate_ohlcv(bars: pd.DataFrame, tf: Timeframe | str) -> pd.DataFrame:
    """Re-aggregate OHLCV bars of one symbol to a coarser timeframe.

    Parameters
    ----------
    bars : DataFrame
        Columns ``ts`` (int64 ns, window start, sorted), ``open``, ``high``, ``low``,
        ``close``, ``volume``; an optional ``vwap`` is volume-weighted into the result.
    tf : Timeframe or str

    Returns
    -------
    DataFrame
        Same columns, one row per non-empty bucket, ``ts`` = bucket start.
    """
    cols = ["ts", "open", "high", "low", "close", "volume"]
    missing = [c for c in cols if c not in bars.columns]
    if missing:
        raise ValueError(f"bars are missing column(s) {missing}; have {list(bars.columns)}")
    if len(bars) == 0:
        return bars[cols].copy()
    ts = bars["ts"].to_numpy(np.int64)
    if len(ts) > 1 and (np.diff(ts) < 0).any():
        pos = int(np.flatnonzero(np.diff(ts) < 0)[0]) + 1
        raise ValueError(f"bars must be sorted by ts; row {pos} goes back in time")
    keys, starts = bucket_keys(ts, tf)
    return reduce_buckets(bars, keys, starts)


def reduce_buckets(bars: pd.DataFrame, keys: np.ndarray, starts: np.ndarray) -> pd.DataFrame:
    """OHLCV of each run of equal ``keys`` (rows sorted by key), stamped with ``starts``."""
    ts = bars["ts"].to_numpy(np.int64)
    if len(ts) == 0:
        return bars[["ts", "open", "high", "low", "close", "volume"]].copy()
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    last = np.r_[first[1:], len(ts)] - 1
    high = bars["high"].to_numpy(np.float64)
    low = bars["low"].to_numpy(np.float64)
    vol = bars["volume"].to_numpy(np.float64)
    out = {
        "ts": starts[first],
        "open": bars["open"].to_numpy(np.float64)[first],
        "high": np.fmax.reduceat(high, first),
        "low": np.fmin.reduceat(low, first),
        "close": bars["close"].to_numpy(np.float64)[last],
        "volume": np.add.reduceat(vol, first),
    }
    if "vwap" in bars.columns:
        vw = bars["vwap"].to_numpy(np.float64)
        vw = np.where(np.isfinite(vw), vw, bars["close"].to_numpy(np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            out["vwap"] = np.add.reduceat(vw * vol, first) / out["volume"]
    return pd.DataFrame(out)


def estimate_count(daily_ts: np.ndarray, tf: Timeframe, minutes_per_day: float) -> int:
    """Candles a window would show at ``tf``, from the window's daily bar times.

    Exact for ``1d``/``1w``/``1M``; for intraday timeframes it assumes each trading day holds
    ``minutes_per_day`` one-minute bars, aligned to the session open as :func:`bucket_keys` does.
    """
    n_days = len(daily_ts)
    if n_days == 0:
        return 0
    if tf.intraday:
        return int(n_days * np.ceil(max(minutes_per_day, 1.0) / tf.minutes))
    keys, _ = bucket_keys(np.asarray(daily_ts, dtype=np.int64), tf)
    return int(np.count_nonzero(np.r_[True, keys[1:] != keys[:-1]]))


def choose_timeframe(requested: Timeframe | str, daily_ts: np.ndarray, minutes_per_day: float,
                     cap: int = 3000, max_source_rows: int = 120_000) -> Timeframe:
    """The finest ladder timeframe >= ``requested`` that keeps the window within the budgets.

    Parameters
    ----------
    requested : Timeframe or str
        What the user picked.
    daily_ts : ndarray of int64
        Start times of the daily bars inside the window (one per trading day).
    minutes_per_day : float
        One-minute bars per trading day for the symbol.
    cap : int
        Most candles sent to the browser.
    max_source_rows : int
        Most one-minute rows read from the store to build intraday candles; beyond it the
        window is drawn from daily bars (policy: zoom in to see intraday detail).
    """
    req = timeframe(requested) if isinstance(requested, str) else requested
    source_rows = len(daily_ts) * minutes_per_day
    for tf in LADDER:
        if tf.minutes < req.minutes:
            continue
        if tf.intraday and source_rows > max_source_rows:
            continue
        if estimate_count(daily_ts, tf, minutes_per_day) <= cap:
            return tf
    return LADDER[-1]
