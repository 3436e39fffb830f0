"""Shared helpers for the factor tests (imported by path-unique module name)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pyplatform.factors import compile_batch, compile_stream


def single(expr: str, **cols) -> tuple[np.ndarray, np.ndarray]:
    """Batch and stream values of ``expr`` over one symbol's columns."""
    n = len(next(iter(cols.values())))
    frame = pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in cols.items()})
    frame["symbol"] = "X.US"
    frame["ts"] = np.arange(n)
    return compile_batch(expr)(frame).to_numpy(), compile_stream(expr).update(frame)


def market(seed: int, n_symbols: int = 3, n_rows: int = 80, nan_frac: float = 0.0) -> pd.DataFrame:
    """A small interleaved multi-symbol bar + tick frame, rows in time order."""
    rng = np.random.default_rng(seed)
    k = n_symbols * n_rows
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_symbols, n_rows)), axis=1)).T.ravel()
    spread = np.abs(rng.normal(0, 0.5, k)) + 0.01
    frame = pd.DataFrame({
        "ts": np.repeat(np.arange(n_rows, dtype=np.int64), n_symbols),
        "symbol": np.tile([f"S{i}.US" for i in range(n_symbols)], n_rows),
        "close": close, "open": close * (1 + rng.normal(0, 0.002, k)),
        "high": close + spread, "low": close - spread,
        "volume": rng.integers(1, 1000, k).astype(float),
        "price": close, "side": rng.choice([-1.0, 1.0], k),
        "bid": close - spread / 4, "ask": close + spread / 4,
    })
    frame["vwap"] = (frame["high"] + frame["low"] + frame["close"]) / 3
    if nan_frac:
        for col in ("close", "volume", "price"):
            frame.loc[rng.random(k) < nan_frac, col] = np.nan
    return frame
