"""market_pipeline(): ticks in, bars, late ticks and factors out, resumable from disk."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pyplatform.clock import SimClock
from pyplatform.stream import StreamTables
from pyplatform.stream.pipelines import market_pipeline

S = 1_000_000_000


def _ticks(n, t0_s, seed):
    rng = np.random.default_rng(seed)
    ts = (t0_s + np.sort(rng.integers(0, 300, n))).astype(np.int64) * S
    return {"ts": ts, "symbol": np.array(["AAPL.US", "MSFT.US"])[rng.integers(0, 2, n)],
            "price": 100 + rng.normal(0, 1, n).cumsum(), "volume": rng.integers(1, 9, n).astype(float),
            "side": np.ones(n, np.int8), "bid": np.zeros(n), "ask": np.zeros(n)}


def test_market_pipeline_produces_bars_factors_and_late_ticks_and_resumes(tmp_path):
    tables = StreamTables(tmp_path, clock=SimClock())
    mp = market_pipeline(tables, window="1min", factors={"ma2": "mavg(close, 2)"})
    first = _ticks(300, 0, 1)
    mp.ticks.append(first)
    mp.ticks.append({**_ticks(5, 0, 2), "ts": np.full(5, 10 * S)})  # window 0 is long closed: late
    mp.run_until_idle()
    mp.close()
    tables.close()

    tables = StreamTables(tmp_path, clock=SimClock())  # a restarted process
    mp = market_pipeline(tables, window="1min", factors={"ma2": "mavg(close, 2)"})
    mp.ticks.append(_ticks(300, 300, 3))
    mp.run_until_idle()
    mp.on_clock(10_000 * S)  # close the last windows
    mp.run_until_idle()
    bars = mp.bars.read().to_pandas()
    factors = mp.factors.read().to_pandas()
    assert mp.late.read().num_rows == 5
    assert len(bars) == len(factors) == 2 * 10  # 2 symbols x 10 one-minute windows, each once
    assert not bars.duplicated(["ts", "symbol"]).any()
    for sym, g in bars.sort_values("ts").groupby("symbol"):
        f = factors[factors.symbol == sym].sort_values("ts")
        want = g.close.rolling(2).mean().to_numpy()
        np.testing.assert_allclose(f.ma2.to_numpy(), want, equal_nan=True)
    assert pd.Series(bars.ts).min() == 0
    mp.close()
    tables.close()
