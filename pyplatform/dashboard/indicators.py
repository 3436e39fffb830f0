"""Chart indicators from the factor library (overlays on price, lower panels).

A factor expression is compiled with the factor language's batch compiler and evaluated on
the candles being shown, so ``mavg(close, 20)`` on 1-hour candles is a 20-hour average, as on
any charting terminal. The first ``lookback`` candles of a window are warm-up (NaN).
When ``pyplatform.factors`` is not importable the page offers no indicators and says why.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

__all__ = ["library", "library_error", "indicator_values"]


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
