"""Small tick batches for the stream tests (imported by name; pytest puts this folder on sys.path)."""

from __future__ import annotations

import numpy as np


def make_ticks(n: int, start: int = 0, symbols=("AAPL.US", "MSFT.US", "EURUSD.GB"), seed: int = 0) -> dict:
    rng = np.random.default_rng(seed + start)
    sym = np.array(symbols)[rng.integers(0, len(symbols), n)]
    return {
        "ts": np.arange(start, start + n, dtype=np.int64) * 1_000_000,
        "symbol": sym,
        "price": 100 + rng.normal(0, 1, n).round(2),
        "volume": rng.integers(1, 100, n).astype(np.float64),
        "side": rng.choice(np.array([-1, 1], dtype=np.int8), n),
        "bid": np.full(n, 99.0),
        "ask": np.full(n, 101.0),
    }

