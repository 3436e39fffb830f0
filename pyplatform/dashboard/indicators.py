"""Chart indicators from the factor library (overlays on price, lower panels).

A factor expression is compiled with the factor language's batch compiler and evaluated on
the candles being shown, so ``mavg(close, 20)`` on 1-hour candles is a 20-hour average, as on
any charting terminal. The page prepends ``lookback`` earlier candles so values start warmed
up at the window's edge (:func:`pyplatform.dashboard.data.warmup_bars`). An overlay whose
values are not on the price's scale (RSI, z-scores, MACD) is drawn on its own axis
(:func:`on_price_scale`) instead of flattening the candles.
When ``pyplatform.factors`` is not importable the page offers no indicators and says why.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

__all__ = ["library", "library_error", "indicator_values", "on_price_scale", "lookback_of"]


def _factors():
    import pyplatform.factors as f  # late: the factor package is optional for the app

    return f


def library() -> dict[str, str]:
    """Factor library as ``{name: expression}``; empty when unavailable."""
    try:
        defs = _factors().load_library()
    except Exception:  # noqa: BLE001 - reported by library_error()
        return {}
    return {d.name: d.expression for d in defs}


def library_error() -> str | None:
    """Why the library cannot be used, or ``None`` when it can."""
    try:
        f = _factors()
        f.load_library
        f.compile_batch
        f.parse
    except Exception as exc:  # noqa: BLE001
        return f"factor library not available yet ({type(exc).__name__}: {exc})"
    return None


@lru_cache(maxsize=256)
def _compiled(expression: str):
    f = _factors()
    return f.compile_batch(f.parse(expression))


def indicator_values(bars: pd.DataFrame, symbol: str, expression: str) -> np.ndarray:
    """Evaluate a factor expression on one symbol's candles; aligned with ``bars`` rows."""
    if len(bars) == 0:
        return np.array([], dtype=float)
    idx = pd.MultiIndex.from_arrays(
        [pd.to_datetime(bars["ts"].to_numpy(np.int64)), np.full(len(bars), symbol, dtype=object)],
        names=["datetime", "symbol"])
    frame = pd.DataFrame({c: bars[c].to_numpy() for c in bars.columns if c != "ts"}, index=idx)
    out = _compiled(expression)(frame)
    return np.asarray(pd.Series(out).reindex(idx).to_numpy(dtype=float))


def lookback_of(expression: str) -> int:
    """Rows of history the expression needs before its first value (0 when unknown)."""
    try:
        f = _factors()
        return int(f.parse(expression).lookback or 0)
    except Exception:  # noqa: BLE001 - an expression that does not parse fails later, with its error
        return 0


def on_price_scale(values: np.ndarray, bars: pd.DataFrame) -> bool:
    """Whether an indicator lives on the price's scale (a moving average, a band) rather than
    its own (an oscillator): its values stay inside the candles' range widened by half."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size or len(bars) == 0:
        return True
    lo, hi = float(np.nanmin(bars["low"])), float(np.nanmax(bars["high"]))
    pad = 0.5 * max(hi - lo, abs(hi) * 1e-3)
    inside = (v >= lo - pad) & (v <= hi + pad)
    return bool(inside.mean() >= 0.95)
