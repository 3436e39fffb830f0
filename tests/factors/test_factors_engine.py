"""FactorEngine: per-row output, snapshot/restore equivalence, adding/removing factors while
running, history warm-up, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from helpers_factors import market
from pyplatform.domain.schemas import TICKS
from pyplatform.factors import FactorEngine, FactorTypeError, compile_batch

FACTORS = {
    "ma": "mavg(price, 5)",
    "vol": "mstd(log(ratios(price)), 8)",
    "imb": "msum(side * volume, 10) / msum(volume, 10)",
    "rsi": "rsi(price, 6)",
    "hi": "mmax(price, 7)",
    "x": "cross(ema(price, 3), ema(price, 8))",
}


def ticks(seed=0, n_symbols=70, n_rows=30) -> pa.Table:
    f = market(seed, n_symbols, n_rows)
    f["ts"] = f["ts"] * 1_000_000_000 + 1_700_000_000_000_000_000
    f["side"] = f["side"].astype(np.int8)
    return pa.Table.from_pandas(f[TICKS.names], schema=TICKS, preserve_index=False)


def batch_values(table: pa.Table, factors: dict[str, str]) -> dict[str, np.ndarray]:
    frame = table.to_pandas()
    return {k: compile_batch(v)(frame).to_numpy() for k, v in factors.items()}


def test_feed_returns_one_row_per_input_with_factor_columns():
    t = ticks()
    eng = FactorEngine(FACTORS, columns=TICKS.names)
    out = eng.feed(t)
    assert out.schema.names == ["ts", "symbol", *FACTORS]
    assert out.num_rows == t.num_rows
    assert out.column("ts").equals(t.column("ts"))
    assert out.column("symbol").to_pylist() == t.column("symbol").to_pylist()
    ref = batch_values(t, FACTORS)
    for name in FACTORS:
        got = out.column(name).to_numpy(zero_copy_only=False)
        np.testing.assert_allclose(got, ref[name], rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name)
    assert out.column("ma").null_count == 4 * 70  # warm-up NULLs are Arrow nulls
    assert eng.next_offset == t.num_rows and len(eng.symbols) == 70


def test_dict_and_pandas_batches_give_the_same_result():
    t = ticks(1, 5, 20)
    a = FactorEngine(FACTORS).feed(t)
    b = FactorEngine(FACTORS).feed({c: t.column(c).to_numpy(zero_copy_only=False) for c in t.schema.names})
    c = FactorEngine(FACTORS).feed(t.to_pandas())
    assert a.equals(b) and a.equals(c)


@pytest.mark.parametrize("cut", [1, 333, 1050, 2099])
def test_snapshot_restore_equals_uninterrupted_run(cut):
    t = ticks(2)
    whole = FactorEngine(FACTORS).feed(t)
    first = FactorEngine(FACTORS)
    head = first.feed(t.slice(0, cut))
    blob = first.snapshot()
    del first  # the process "crashes"
    again = FactorEngine.from_snapshot(blob)
    assert again.next_offset == cut
    rest = again.feed(t.slice(again.next_offset))
    assert pa.concat_tables([head, rest]).equals(whole)


def test_snapshot_tracks_stream_table_offsets():
    t = ticks(3, 4, 10)
    with_offsets = t.append_column("offset", pa.array(np.arange(1000, 1000 + t.num_rows), pa.int64()))
    eng = FactorEngine({"ma": "mavg(price, 3)"})
    eng.feed(with_offsets.slice(0, 17))
    assert eng.next_offset == 1017
    restored = FactorEngine.from_snapshot(eng.snapshot())
    assert restored.next_offset == 1017 and restored.factors == {"ma": "mavg(price, 3)"}


def test_restore_rejects_garbage():
    with pytest.raises(ValueError, match="snapshot"):
        FactorEngine.from_snapshot(b"not a snapshot")


def test_add_factor_while_running_warms_up_from_rows_it_sees():
    t = ticks(4, 6, 40)
    n1 = 6 * 15
    eng = FactorEngine({"ma": "mavg(price, 5)"})
    a = eng.feed(t.slice(0, n1))
    eng.add_factor("ma_again", "mavg(price, 5)")  # same text: must still start fresh
    eng.add_factor("e", "ema(price, 4)")
    b = eng.feed(t.slice(n1))
    assert b.schema.names == ["ts", "symbol", "ma", "ma_again", "e"]
    full = batch_values(t, {"ma": "mavg(price, 5)"})["ma"]
    np.testing.assert_allclose(np.r_[a.column("ma").to_numpy(zero_copy_only=False), b.column("ma").to_numpy(zero_copy_only=False)],
                               full, rtol=1e-12, equal_nan=True)
    fresh = batch_values(t.slice(n1), {"ma_again": "mavg(price, 5)", "e": "ema(price, 4)"})
    for name in ("ma_again", "e"):
        np.testing.assert_allclose(b.column(name).to_numpy(zero_copy_only=False), fresh[name], rtol=1e-12, equal_nan=True)
    assert b.column("ma_again").null_count == 4 * 6 and b.column("ma").null_count == 0


def test_add_factor_with_history_continues_as_if_it_had_always_run():
    t = ticks(5, 6, 40)
    n1 = 6 * 25
    eng = FactorEngine({"ma": "mavg(price, 5)"})
    eng.feed(t.slice(0, n1))
    history = t.slice(0, n1).to_pandas()
    eng.add_factor("r", "rsi(price, 5)", history=history)
    b = eng.feed(t.slice(n1))
    np.testing.assert_allclose(b.column("r").to_numpy(zero_copy_only=False),
                               batch_values(t, {"r": "rsi(price, 5)"})["r"][n1:], rtol=1e-9, equal_nan=True)


def test_remove_factor_keeps_the_others_running():
    t = ticks(6, 5, 30)
    eng = FactorEngine(FACTORS)
    a = eng.feed(t.slice(0, 50))
    eng.remove_factor("vol")
    b = eng.feed(t.slice(50))
    assert "vol" not in b.schema.names
    whole = FactorEngine(FACTORS).feed(t)
    for name in ("ma", "imb", "rsi", "hi", "x"):
        assert pa.concat_arrays([a.column(name).combine_chunks(), b.column(name).combine_chunks()]).equals(
            whole.column(name).combine_chunks())
    with pytest.raises(KeyError, match="no factor named 'vol'"):
        eng.remove_factor("vol")


def test_snapshot_after_add_and_remove_restores_the_same_engine():
    t = ticks(7, 5, 30)
    eng = FactorEngine({"ma": "mavg(price, 5)"})
    eng.feed(t.slice(0, 40))
    eng.add_factor("e", "ema(price, 6)")
    eng.feed(t.slice(40, 40))
    eng.remove_factor("ma")
    eng.add_factor("ma", "mavg(price, 5)")
    eng.feed(t.slice(80, 20))
    clone = FactorEngine.from_snapshot(eng.snapshot())
    assert clone.feed(t.slice(100)).equals(eng.feed(t.slice(100)))


def test_bad_input_is_named():
    with pytest.raises(FactorTypeError, match="factor 'f': unknown column 'close'"):
        FactorEngine({"f": "mavg(close, 5)"}, columns=TICKS.names)
    with pytest.raises(ValueError, match="identifier"):
        FactorEngine({"bad name": "price"})
    with pytest.raises(ValueError, match="identifier"):
        FactorEngine({"symbol": "price"})
    eng = FactorEngine({"f": "mavg(price, 5)"})
    with pytest.raises(ValueError, match="already exists"):
        eng.add_factor("f", "price")
    with pytest.raises(KeyError, match="'price'"):
        eng.feed({"ts": np.array([1]), "symbol": np.array(["A.US"]), "close": np.array([1.0])})
    with pytest.raises(TypeError, match="'price' must be numeric"):
        eng.feed({"ts": np.array([1]), "symbol": np.array(["A.US"]), "price": np.array(["x"])})
    assert eng.rows_fed == 0  # nothing half-applied


def test_empty_batch_and_new_symbols_mid_stream():
    eng = FactorEngine({"c": "cumsum(price)"})
    out = eng.feed({"ts": np.zeros(0, np.int64), "symbol": np.array([], dtype=object), "price": np.zeros(0)})
    assert out.num_rows == 0
    for i in range(3):  # more symbols than the initial state capacity, arriving one by one
        syms = np.array([f"S{j}.US" for j in range(100 * i, 100 * (i + 1))], dtype=object)
        out = eng.feed({"ts": np.full(100, i), "symbol": syms, "price": np.ones(100)})
    assert out.column("c").to_pylist() == [1.0] * 100
    out = eng.feed({"ts": np.array([9]), "symbol": np.array(["S5.US"], dtype=object), "price": np.array([2.0])})
    assert out.column("c").to_pylist() == [3.0]


def test_pandas_history_frame_indexed_by_datetime_symbol():
    f = market(8, 2, 30)
    f["datetime"] = pd.to_datetime(f["ts"], unit="s")
    frame = f.set_index(["datetime", "symbol"]).drop(columns="ts")
    s = compile_batch("mavg(close, 3)")(frame)
    assert s.index.equals(frame.index)
    per_symbol = frame["close"].groupby(level="symbol").transform(lambda v: v.rolling(3).mean())
    np.testing.assert_allclose(s.to_numpy(), per_symbol.to_numpy(), equal_nan=True)


def test_feed_accepts_a_history_store_frame():
    f = market(9, 2, 20)
    f["datetime"] = pd.to_datetime(f["ts"], unit="s")
    frame = f.drop(columns="ts").set_index(["datetime", "symbol"])
    out = FactorEngine({"ma": "mavg(close, 3)"}).feed(frame)
    assert out.column("ts").to_pylist() == (f["ts"] * 1_000_000_000).tolist()
    np.testing.assert_allclose(out.column("ma").to_numpy(zero_copy_only=False),
                               compile_batch("mavg(close, 3)")(frame).to_numpy(), equal_nan=True)
    with pytest.raises(KeyError, match="neither a 'ts'"):
        FactorEngine({"ma": "mavg(close, 3)"}).feed({"symbol": np.array(["A.US"]), "close": np.array([1.0])})
