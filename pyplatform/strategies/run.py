"""Running strategies over history: compute their factors in batch, then replay the rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pyplatform.domain import Signal
from pyplatform.strategies.base import Strategy

__all__ = ["factor_rows", "run_over_history"]


def factor_rows(strategies: list[Strategy], bars: pd.DataFrame) -> pd.DataFrame:
    """Factor rows (ts, symbol, one column per strategy factor) for a bar frame.

    ``bars`` is indexed by (datetime, symbol) with at least the columns the expressions
    use. Factors are computed with the batch compiler of ``pyplatform.factors`` -- the same
    definitions the live factor engine runs -- and rows come back in time order.
    """
    from pyplatform.factors import compile_batch, parse

    if not isinstance(bars.index, pd.MultiIndex) or list(bars.index.names)[:2] != ["datetime", "symbol"]:
        raise ValueError(f"bars must be indexed by (datetime, symbol), got index names {list(bars.index.names)}")
    bars = bars.sort_index()
    out = pd.DataFrame(index=bars.index)
    for strat in strategies:
        for col, text in strat.factors().items():
            out[col] = compile_batch(parse(text))(bars).reindex(bars.index)
    out = out.reset_index()
    out.insert(0, "ts", out.pop("datetime").to_numpy(dtype="datetime64[ns]").astype(np.int64))
    return out.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)


def run_over_history(strategies: list[Strategy], bars: pd.DataFrame) -> list[Signal]:
    """Signals the strategies emit over ``bars`` (fed in time order, no look-ahead)."""
    rows = factor_rows(strategies, bars)
    return sorted((s for strat in strategies for s in strat.on_batch(rows)),
                  key=lambda s: (s.ts, s.symbol, s.strategy))
