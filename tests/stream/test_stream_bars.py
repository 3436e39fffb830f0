"""Bar engine: pandas oracle, out-of-order ticks within the delay, late-tick policy,
batch-size independence against a row-by-row reference, snapshot/restore."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyplatform.domain.schemas import BARS
from pyplatform.stream.bar_engine import BarEngine

S = 1_000_000_000
MIN = 60 * S


def random_ticks(n, seed, symbols=("AAPL.US", "MSFT.US", "BTCUSDT.BA"), span_s=600, unique_ts=True):
    rng = np.random.default_rng(seed)
    if unique_ts:
        ts = np.sort(rng.choice(span_s * 1000, n, replace=False)).astype(np.int64) * 1_000_000
    else:
        ts = np.sort(rng.integers(0, span_s, n)).astype(np.int64) * S  # many equal times
    return pd.DataFrame({
        "ts": ts + 1_700_000_000 * S,
        "symbol": np.array(symbols)[rng.integers(0, len(symbols), n)],
        "price": (100 + rng.normal(0, 1, n).cumsum()).round(2),
        "volume": rng.integers(0, 50, n).astype(float),  # zero volumes exercise the VWAP NaN
    })


def pandas_bars(ticks: pd.DataFrame, size: int) -> pd.DataFrame:
    """The oracle: group time-sorted ticks by (symbol, window start) with pandas."""
    t = ticks.sort_values("ts", kind="stable").assign(w=lambda d: d.ts // size * size, pv=lambda d: d.price * d.volume)
    g = t.groupby(["w", "symbol"], sort=True)
    out = pd.DataFrame({
        "open": g.price.first(), "high": g.price.max(), "low": g.price.min(), "close": g.price.last(),
        "volume": g.volume.sum(), "pv": g.pv.sum(), "trades": g.price.size(),
    }).reset_index().rename(columns={"w": "ts"})
    out["vwap"] = np.where(out.volume > 0, out.pv / out.volume.where(out.volume > 0, 1), np.nan)
    return out[BARS.names].sort_values(["ts", "symbol"]).reset_index(drop=True)


def run(engine, ticks: pd.DataFrame, sizes) -> pd.DataFrame:
    out, i = [], 0
    for k in sizes:
        if i >= len(ticks):
            break
        out.append(engine.feed(pa.Table.from_pandas(ticks.iloc[i:i + k], preserve_index=False)))
        i += k
    assert i >= len(ticks)
    out.append(engine.flush())
    return sorted_bars(pa.concat_tables(out).to_pandas())


def sorted_bars(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["ts", "symbol"]).reset_index(drop=True)


@pytest.mark.parametrize("window", ["1s", "1min", "5min"])
@pytest.mark.parametrize("unique_ts", [True, False])
def test_bars_equal_pandas_groupby(window, unique_ts):
    ticks = random_ticks(3000, seed=7, unique_ts=unique_ts)
    size = pd.Timedelta(window).value
    rng = np.random.default_rng(1)
    got = run(BarEngine(window), ticks, rng.integers(1, 400, 10_000))
    pd.testing.assert_frame_equal(got, pandas_bars(ticks, size), check_exact=False, rtol=1e-12)


def test_out_of_order_ticks_within_accepted_delay_are_merged():
    ticks = random_ticks(2000, seed=3)
    delay = 10 * S
    rng = np.random.default_rng(5)
    # Each tick arrives up to (not including) `delay` after its event time: never late.
    arrival = ticks.ts + rng.integers(0, delay, len(ticks))
    shuffled = ticks.iloc[np.argsort(arrival.to_numpy(), kind="stable")].reset_index(drop=True)
    assert not shuffled.ts.is_monotonic_increasing
    eng = BarEngine("1min", accepted_delay=delay)
    got = run(eng, shuffled, rng.integers(1, 50, 10_000))
    assert eng.late_ticks == {}
    pd.testing.assert_frame_equal(got, pandas_bars(ticks, MIN), check_exact=False, rtol=1e-12)


def test_late_ticks_are_counted_reported_and_not_merged():
    eng = BarEngine("1min", accepted_delay=10 * S)
    def tick(t_s, sym="A", price=1.0):
        return {"ts": [int(t_s * S)], "symbol": [sym], "price": [price], "volume": [1.0]}
    assert eng.feed(tick(0, price=10)).num_rows == 0
    eng.feed(tick(50, price=11))
    eng.feed(tick(65, price=20))                 # next window; window 0 still open (65 < 60 + 10)
    assert eng.feed(tick(59, price=12)).num_rows == 0   # out of order but within the delay: merged
    eng.feed(tick(5, sym="B", price=100))
    bars = eng.feed(tick(70, price=21))          # watermark 70 >= 60 + 10 closes window 0
    assert bars.to_pylist() == [{"ts": 0, "symbol": "A", "open": 10.0, "high": 12.0, "low": 10.0,
                                 "close": 12.0, "volume": 3.0, "vwap": 11.0, "trades": 3}]
    assert eng.feed(tick(55, price=99)).num_rows == 0   # window 0 already emitted: late
    assert eng.late_ticks == {"A": 1}
    late = eng.drain("late")
    assert late.column("ts").to_pylist() == [55 * S] and late.column("price").to_pylist() == [99.0]
    assert eng.drain("late") is None
    # B is quiet: only the clock closes its window, and only after end + delay.
    assert eng.on_clock(69 * S).num_rows == 0
    closed = eng.on_clock(70 * S)
    assert closed.column("symbol").to_pylist() == ["B"]
    # After the clock closed window 0 for everyone, a first tick of a new symbol there is late too.
    eng.feed(tick(30, sym="C"))
    assert eng.late_ticks == {"A": 1, "C": 1}
    rest = eng.flush()
    assert rest.column("ts").to_pylist() == [60 * S] and rest.column("close").to_pylist() == [21.0]


def reference_bars(rows: pd.DataFrame, size: int, delay: int):
    """A plain per-row implementation of the documented policy (the spec, slowly)."""
    wm, closed, open_, out, late = {}, {}, {}, [], {}
    for r in rows.itertuples(index=False):
        w = r.ts // size * size
        if r.symbol in wm and w + size + delay <= wm[r.symbol] or w < closed.get(r.symbol, -2**63):
            late[r.symbol] = late.get(r.symbol, 0) + 1
            continue
        wm[r.symbol] = max(wm.get(r.symbol, r.ts), r.ts)
        b = open_.setdefault((r.symbol, w), [])
        b.append((r.ts, len(b), r.price, r.volume))
        for (sym, ws) in [k for k in open_ if k[0] == r.symbol]:
            if ws + size + delay <= wm[sym]:
                closed[sym] = max(closed.get(sym, -2**63), ws + size)
                out.append((sym, ws, open_.pop((sym, ws))))
    out += [(sym, ws, ticks) for (sym, ws), ticks in open_.items()]
    bars = []
    for sym, ws, ticks in out:
        s = sorted(ticks)
        v = sum(t[3] for t in s)
        bars.append({"ts": ws, "symbol": sym, "open": s[0][2], "high": max(t[2] for t in s),
                     "low": min(t[2] for t in s), "close": s[-1][2], "volume": v,
                     "vwap": sum(t[2] * t[3] for t in s) / v if v > 0 else np.nan, "trades": len(s)})
    return sorted_bars(pd.DataFrame(bars, columns=BARS.names)), late


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), delay_s=st.sampled_from([0, 3, 20, 90]),
       jitter_s=st.sampled_from([0, 5, 40, 200]), data=st.data())
def test_any_batching_equals_the_row_by_row_reference(seed, delay_s, jitter_s, data):
    ticks = random_ticks(150, seed=seed, span_s=400, unique_ts=False)
    rng = np.random.default_rng(seed)
    arrival = ticks.ts + rng.integers(0, jitter_s * S + 1, len(ticks))
    rows = ticks.iloc[np.argsort(arrival.to_numpy(), kind="stable")].reset_index(drop=True)
    sizes = data.draw(st.lists(st.integers(1, 60), min_size=1, max_size=200))
    sizes = sizes * (len(rows) // max(sum(sizes), 1) + 1)
    eng = BarEngine("1min", accepted_delay=delay_s * S)
    got = run(eng, rows, sizes)
    want, late = reference_bars(rows, MIN, delay_s * S)
    assert eng.late_ticks == late
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)


def test_snapshot_restore_continues_exactly():
    ticks = random_ticks(2000, seed=11, unique_ts=False)
    rng = np.random.default_rng(2)
    rows = ticks.iloc[np.argsort((ticks.ts + rng.integers(0, 30 * S, len(ticks))).to_numpy(), kind="stable")]
    rows = rows.reset_index(drop=True).assign(offset=np.arange(len(ticks)))
    whole = BarEngine("1min", accepted_delay=5 * S)
    first = whole.feed(pa.Table.from_pandas(rows.iloc[:900], preserve_index=False))
    snap = whole.snapshot()
    rest = whole.feed(pa.Table.from_pandas(rows.iloc[900:], preserve_index=False))
    fresh = BarEngine("1min", accepted_delay=5 * S)
    assert fresh.restore(snap) == 900  # the input offset the snapshot corresponds to
    again = fresh.feed(pa.Table.from_pandas(rows.iloc[900:], preserve_index=False))
    assert again.equals(rest)
    assert fresh.late_ticks == whole.late_ticks and sum(whole.late_ticks.values()) > 0
    assert fresh.drain().equals(whole.drain())
    assert fresh.flush().equals(whole.flush())
    assert first.num_rows > 0
    with pytest.raises(ValueError, match="window="):
        BarEngine("5min").restore(snap)


def test_bad_ticks_are_rejected_with_column_and_row():
    eng = BarEngine("1s")
    good = {"ts": [1, 2], "symbol": ["A", "A"], "price": [1.0, 2.0], "volume": [1.0, 1.0]}
    with pytest.raises(ValueError, match="'price' is not finite .* at row 1"):
        eng.feed({**good, "price": [1.0, np.nan]})
    with pytest.raises(ValueError, match="missing column.*volume"):
        eng.feed({k: v for k, v in good.items() if k != "volume"})
    with pytest.raises(ValueError, match="'ts' is null at row 0"):
        eng.feed(pa.table({**good, "ts": pa.array([None, 2], type=pa.int64())}))
    with pytest.raises(ValueError, match="cannot read 'soon'"):
        BarEngine("soon")
    assert eng.open_windows == 0  # rejected batches left no trace
    eng.feed(good)
    assert eng.open_windows == 1
