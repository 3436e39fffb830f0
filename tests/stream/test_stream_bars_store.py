"""The bar engine agrees with the history store's resampling of the same ticks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pyplatform.config import Settings
from pyplatform.backends import open_store
from pyplatform.stream.bar_engine import BarEngine

S = 1_000_000_000


def test_bar_engine_equals_store_resample(tmp_path):
    rng = np.random.default_rng(4)
    n = 4000
    t0 = pd.Timestamp("2024-03-04 14:30").value
    ts = t0 + np.sort(rng.choice(1800 * 1000, n, replace=False)).astype(np.int64) * 1_000_000
    ticks = pd.DataFrame({
        "ts": ts, "symbol": np.array(["AAPL.US", "MSFT.US", "NVDA.US"])[rng.integers(0, 3, n)],
        "price": (200 + rng.normal(0, 0.3, n).cumsum()).round(2),  # stock precision: 2 decimals
        "volume": rng.integers(1, 500, n).astype(float),
        "side": rng.choice(np.array([-1, 1], np.int8), n), "bid": 0.0, "ask": 0.0,
    })
    ticks["bid"], ticks["ask"] = ticks.price - 0.01, ticks.price + 0.01
    store = open_store(Settings(data_dir=tmp_path))
    store.write("ticks", ticks)
    for freq in ("1s", "1min", "5min"):
        _compare(store, ticks, freq)


def _compare(store, ticks, freq):
    n = len(ticks)
    want = store.resample("ticks", freq).reset_index()
    want["ts"] = want["datetime"].astype("datetime64[ns]").astype(np.int64)

    eng = BarEngine(freq)
    parts = [eng.feed(pa.Table.from_pandas(ticks.iloc[i:i + 333], preserve_index=False))
             for i in range(0, n, 333)]
    got = pa.concat_tables(parts + [eng.flush()]).to_pandas().sort_values(["ts", "symbol"]).reset_index(drop=True)
    want = want.sort_values(["ts", "symbol"]).reset_index(drop=True)
    assert len(got) == len(want) > 0
    assert got.ts.tolist() == want.ts.tolist() and got.symbol.tolist() == want.symbol.tolist()
    for col in ("open", "high", "low", "close", "volume", "vwap"):
        np.testing.assert_allclose(got[col].to_numpy(), want[col].to_numpy(dtype=float), rtol=1e-12, err_msg=col)
    assert got.trades.tolist() == want.trades.astype(np.int64).tolist()
