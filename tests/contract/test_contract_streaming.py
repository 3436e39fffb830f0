"""Stream tables, bar and factor outputs and publishing: the same assertions for every backend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pyplatform.domain.schemas import BARS, TICKS

MIN = 60_000_000_000
T0 = pd.Timestamp("2024-03-04 09:30:00").value


def _ticks(minutes: int, per_minute: int = 4, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    rows = []
    for k, sym in enumerate(["AAPL.US", "MSFT.US"]):
        n = minutes * per_minute
        ts = T0 + np.arange(n, dtype=np.int64) * (MIN // per_minute) + 1_000_000 * (k + 1)
        price = (100 + 50 * k + np.cumsum(rng.normal(0, 0.2, n))).round(2)
        rows.append(pd.DataFrame({"ts": ts, "symbol": sym, "price": price, "volume": rng.integers(1, 50, n) * 1.0,
                                  "side": np.int8(1), "bid": price - 0.01, "ask": price + 0.01}))
    frame = pd.concat(rows).sort_values("ts", kind="stable").reset_index(drop=True)
    return pa.Table.from_pandas(frame, schema=TICKS, preserve_index=False)


def test_stream_table_numbers_rows_and_reads_from_an_offset(backend):
    ticks = _ticks(2)
    first, last = backend.append("ticks", TICKS, ticks.slice(0, 5))
    nxt, end = backend.append("ticks", TICKS, ticks.slice(5))
    assert (first, last) == (0, 4) and (nxt, end) == (5, ticks.num_rows - 1)
    got = backend.read_stream("ticks", TICKS, 5)
    assert got.column("offset").to_pylist() == list(range(5, ticks.num_rows))
    assert got.column("ts").to_pylist() == ticks.column("ts").to_pylist()[5:]
    np.testing.assert_allclose(got.column("price").to_numpy(), ticks.column("price").to_numpy()[5:])


def test_bars_from_ticks_match_pandas(backend):
    ticks = _ticks(4)
    closing = pa.table({"ts": [T0 + 4 * MIN + 5_000_000] * 2, "symbol": ["AAPL.US", "MSFT.US"],
                        "price": [1.0, 1.0], "volume": [1.0, 1.0], "side": pa.array([1, 1], pa.int8()),
                        "bid": [1.0, 1.0], "ask": [1.0, 1.0]}, schema=TICKS)
    bars = backend.ticks_to_bars(pa.concat_tables([ticks, closing]), expect=8).to_pandas()  # 4 windows x 2
    frame = ticks.to_pandas()
    for sym in ["AAPL.US", "MSFT.US"]:
        t = frame[frame.symbol == sym].assign(dt=lambda d: pd.to_datetime(d.ts)).set_index("dt")
        r = t.resample("1min")
        oracle = pd.DataFrame({"open": r.price.first(), "high": r.price.max(), "low": r.price.min(),
                               "close": r.price.last(), "volume": r.volume.sum(), "trades": r.price.count()})
        mine = bars[bars.symbol == sym].sort_values("ts")
        assert mine.ts.tolist() == [T0 + i * MIN for i in range(4)]  # stamped with the window start
        np.testing.assert_allclose(mine[["open", "high", "low", "close", "volume"]].to_numpy(),
                                   oracle[["open", "high", "low", "close", "volume"]].to_numpy())
        assert mine.trades.astype("int64").tolist() == oracle.trades.tolist()
        vw = (t.price * t.volume).resample("1min").sum() / r.volume.sum()
        np.testing.assert_allclose(mine.vwap.to_numpy(), vw.to_numpy())


def _bars(n: int, start: int = 0) -> pa.Table:
    rows = []
    for k, sym in enumerate(["AAPL.US", "MSFT.US"]):
        close = 100.0 + 10 * k + np.sin(np.arange(start, start + n)) * (k + 1)
        rows.append(pd.DataFrame({"ts": T0 + np.arange(start, start + n, dtype=np.int64) * MIN, "symbol": sym,
                                  "open": close, "high": close, "low": close, "close": close, "volume": 1.0,
                                  "vwap": close, "trades": 1}))
    frame = pd.concat(rows).sort_values("ts", kind="stable").reset_index(drop=True)
    return pa.Table.from_pandas(frame, schema=BARS, preserve_index=False)


def _oracle(bars: pd.DataFrame) -> pd.DataFrame:
    out = []
    for sym, g in bars.groupby("symbol"):
        g = g.sort_values("ts")
        out.append(pd.DataFrame({"ts": g.ts, "symbol": sym, "ma3": g.close.rolling(3).mean(),
                                 "ret1": g.close / g.close.shift(1) - 1}))
    return pd.concat(out)


def _wide(long: pd.DataFrame) -> pd.DataFrame:
    return long.pivot_table(index=["ts", "symbol"], columns="factor", values="value", dropna=False).reset_index()


def test_factor_outputs_match_pandas_with_warm_up_nulls(backend):
    bars = _bars(8)
    got = _wide(backend.bars_to_factors(bars)).sort_values(["symbol", "ts"]).reset_index(drop=True)
    oracle = _oracle(bars.to_pandas()).sort_values(["symbol", "ts"]).reset_index(drop=True)
    assert got[["ts", "symbol"]].values.tolist() == oracle[["ts", "symbol"]].values.tolist()
    for f in ("ma3", "ret1"):
        np.testing.assert_allclose(got[f].to_numpy(dtype=float), oracle[f].to_numpy(), equal_nan=True)
    assert got.groupby("symbol").ma3.apply(lambda s: int(s.isna().sum())).tolist() == [2, 2]


def test_publishing_adds_a_factor_to_the_running_engine(backend):
    first = _bars(5)
    backend.bars_to_factors(first)
    backend.publish("mom2", "close - move(close, 2)")
    later = _bars(4, start=5)
    got = _wide(backend.bars_to_factors(later)).sort_values(["symbol", "ts"])
    assert {"ma3", "ret1", "mom2"} <= set(got.columns)
    allbars = pd.concat([first.to_pandas(), later.to_pandas()])
    oracle = _oracle(allbars)
    oracle = oracle[oracle.ts >= T0 + 5 * MIN].sort_values(["symbol", "ts"])
    # the engine's running factors keep their state across the publish
    np.testing.assert_allclose(got.ma3.to_numpy(dtype=float), oracle.ma3.to_numpy())
    # the new factor starts cold and is exact once its look-back (2 rows) has passed
    for sym, g in got.groupby("symbol"):
        closes = later.to_pandas().query("symbol == @sym").close.to_numpy()
        np.testing.assert_allclose(g.mom2.to_numpy(dtype=float)[2:], closes[2:] - closes[:-2])
