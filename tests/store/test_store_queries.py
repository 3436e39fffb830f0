"""The embedded store's queries, each against the same answer computed with pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pyplatform.normalize import NormalizationError

SYMBOLS = ["AAA.US", "BBB.US", "EURUSD.GB", "BTCUSDT.BA"]  # as in tests/store/conftest.py


def test_round_trip_is_exact(store, bars):
    assert store.write("bars_1m", bars) == len(bars)
    back = store.read("bars_1m")
    pd.testing.assert_frame_equal(back, bars, check_index_type=False, check_categorical=False)
    assert back.index.names == ["datetime", "symbol"]
    assert back.index.get_level_values("datetime").dtype == "datetime64[ns]"
    assert store.symbols("bars_1m") == sorted(SYMBOLS)
    # two month partitions, each a single file
    assert sorted(store.manifest("bars_1m").partitions) == ["year=2024/month=02", "year=2024/month=03"]


def test_read_filters_match_pandas(store, bars):
    store.write("bars_1m", bars)
    start, end = pd.Timestamp("2024-02-28 15:00"), pd.Timestamp("2024-03-01 10:00")
    got = store.read("bars_1m", symbols=["EURUSD.GB", "AAA.US"], start=start, end=end, columns=["close", "volume"])
    dt = bars.index.get_level_values("datetime")
    sym = bars.index.get_level_values("symbol")
    want = bars.loc[(dt >= start) & (dt < end) & sym.isin(["EURUSD.GB", "AAA.US"]), ["close", "volume"]]
    pd.testing.assert_frame_equal(got, want, check_index_type=False, check_categorical=False)
    assert list(got.columns) == ["close", "volume"]
    assert store.read("bars_1m", symbols=["NOPE.US"]).empty


def test_arrow_result_uses_the_table_schema(store, bars):
    store.write("bars_1m", bars)
    t = store.read("bars_1m", symbols=["AAA.US"], as_arrow=True)
    assert isinstance(t, pa.Table)
    assert t.schema.names[:3] == ["ts", "symbol", "open"] and t.schema.field("ts").type == pa.int64()
    assert t.num_rows == int((bars.index.get_level_values("symbol") == "AAA.US").sum())


def test_writing_the_same_rows_twice_keeps_one_copy(store, bars):
    store.write("bars_1m", bars)
    store.write("bars_1m", bars)
    sub = bars.iloc[100:2000]
    store.write("bars_1m", sub)
    assert len(store.read("bars_1m")) == len(bars)
    assert store.manifest("bars_1m").rows == len(bars)


def test_later_write_of_a_key_replaces_the_earlier(store, bars):
    store.write("bars_1m", bars)
    row = bars.iloc[[500]].copy()
    row["close"] = row["high"] = 9999.0
    store.write("bars_1m", row)
    got = store.read("bars_1m")
    assert len(got) == len(bars)
    assert got.loc[row.index[0], "close"] == 9999.0
    # duplicates inside one batch: the last one wins
    dup = pd.concat([row.assign(close=1.0, low=1.0), row.assign(close=2.0, low=1.0)])
    store.write("bars_1m", dup)
    assert store.read("bars_1m").loc[row.index[0], "close"] == 2.0


def test_disjoint_appends_become_segments_and_compact(store, bars):
    dt = bars.index.get_level_values("datetime")
    cut = pd.Timestamp("2024-03-04")
    store.write("bars_1m", bars[dt < cut])
    store.write("bars_1m", bars[dt >= cut])
    assert len(store.manifest("bars_1m").partitions["year=2024/month=03"]) == 2
    assert store.compact("bars_1m") == 1
    assert len(store.manifest("bars_1m").partitions["year=2024/month=03"]) == 1
    pd.testing.assert_frame_equal(store.read("bars_1m"), bars, check_index_type=False, check_categorical=False)


def test_cross_section_day_matches_pandas(store, bars):
    store.write("bars_1m", bars)
    got = store.cross_section("bars_1m", day="2024-02-29")
    dt = bars.index.get_level_values("datetime")
    want = bars[dt.normalize() == pd.Timestamp("2024-02-29")]
    pd.testing.assert_frame_equal(got, want, check_index_type=False, check_categorical=False)


@pytest.mark.parametrize("at", ["2024-02-29 15:30:30", "2024-03-02 12:00", "2024-02-26 00:00"])
def test_cross_section_at_is_each_symbols_last_row(store, bars, at):
    store.write("bars_1m", bars)
    at = pd.Timestamp(at)
    got = store.cross_section("bars_1m", at=at)
    flat = bars.reset_index()
    want = flat[flat["datetime"] <= at].sort_values("datetime").groupby("symbol").tail(1)
    want = want.set_index(["datetime", "symbol"]).sort_index(level=["datetime", "symbol"])
    got = got.sort_index(level=["datetime", "symbol"])
    pd.testing.assert_frame_equal(got, want, check_index_type=False, check_categorical=False)
    # on Saturday the stocks' last bar is Friday's close, found by widening the window
    if at == pd.Timestamp("2024-03-02 12:00"):
        assert got.xs("AAA.US", level="symbol").index[0] == pd.Timestamp("2024-03-01 20:59")


def test_resample_bars_matches_pandas(store, bars):
    store.write("bars_1m", bars)
    got = store.resample("bars_1m", "1h", symbols=["EURUSD.GB", "AAA.US"], start="2024-02-27", end="2024-02-29")
    flat = bars.reset_index()
    flat = flat[flat.symbol.isin(["EURUSD.GB", "AAA.US"]) & (flat.datetime >= "2024-02-27")
                & (flat.datetime < "2024-02-29")]
    flat["bucket"] = flat["datetime"].dt.floor("1h")
    flat["pv"] = flat["vwap"] * flat["volume"]
    g = flat.sort_values("datetime").groupby(["bucket", "symbol"])
    want = pd.DataFrame({
        "open": g["open"].first(), "high": g["high"].max(), "low": g["low"].min(), "close": g["close"].last(),
        "volume": g["volume"].sum(), "vwap": g["pv"].sum() / g["volume"].sum(), "trades": g["trades"].sum(),
    })
    want.index.names = ["datetime", "symbol"]
    pd.testing.assert_frame_equal(got, want, check_index_type=False, check_categorical=False, rtol=1e-12)


def test_resample_ticks_hand_computed(store):
    t0 = pd.Timestamp("2024-03-11 14:00").value
    s = 10**9
    ticks = {
        "ts": [t0 + 1 * s, t0 + 20 * s, t0 + 59 * s, t0 + 61 * s, t0 + 2 * s],
        "symbol": ["AAA.US", "AAA.US", "AAA.US", "AAA.US", "BBB.US"],
        "price": [10.00, 10.50, 9.80, 10.10, 50.00],
        "volume": [100.0, 300.0, 100.0, 200.0, 10.0],
    }
    store.write("ticks", ticks)
    got = store.resample("ticks", "1min")
    a0 = got.loc[(pd.Timestamp("2024-03-11 14:00"), "AAA.US")]
    assert (a0["open"], a0["high"], a0["low"], a0["close"]) == (10.00, 10.50, 9.80, 9.80)
    assert a0["volume"] == 500.0 and a0["trades"] == 3
    assert a0["vwap"] == pytest.approx((10.00 * 100 + 10.50 * 300 + 9.80 * 100) / 500)  # 10.26
    a1 = got.loc[(pd.Timestamp("2024-03-11 14:01"), "AAA.US")]
    assert (a1["open"], a1["close"], a1["volume"], a1["trades"]) == (10.10, 10.10, 200.0, 1)
    assert len(got) == 3


def test_asof_join_matches_merge_asof(store, bars):
    store.write("bars_1m", bars)
    left = pd.DataFrame({
        "datetime": pd.to_datetime(["2024-02-28 15:00:30", "2024-03-02 12:00", "2024-02-28 15:00:30",
                                    "2024-02-20", "2024-02-29 00:00:00"], format="ISO8601").as_unit("ns"),
        "symbol": ["AAA.US", "AAA.US", "EURUSD.GB", "BTCUSDT.BA", "BTCUSDT.BA"],
        "signal": [1, 2, 3, 4, 5],
    })
    got = store.asof_join(left, "bars_1m", columns=["close"])
    right = bars.reset_index()[["datetime", "symbol", "close"]].rename(columns={"datetime": "right_ts"})
    want = pd.merge_asof(left.sort_values("datetime"), right.sort_values("right_ts"), left_on="datetime",
                         right_on="right_ts", by="symbol").set_index(left.sort_values("datetime").index).sort_index()
    np.testing.assert_array_equal(got["signal"].to_numpy(), left["signal"].to_numpy())
    np.testing.assert_array_equal(got["close"].to_numpy(), want["close"].to_numpy())
    np.testing.assert_array_equal(got["right_ts"].to_numpy(), want["right_ts"].to_numpy())
    tol = store.asof_join(left, "bars_1m", columns=["close"], tolerance="1h")
    assert np.isnan(tol["close"].iloc[1])  # Saturday noon: Friday's bar is too old
    assert tol["close"].iloc[0] == got["close"].iloc[0]


def test_factors_table_is_long_and_keyed_by_factor(store):
    ts = pd.date_range("2024-03-11 14:00", periods=3, freq="1min").as_unit("ns").asi8
    frame = pd.DataFrame({"ts": np.repeat(ts, 2), "symbol": "AAA.US", "factor": ["mom", "rsi"] * 3,
                          "value": [0.1, 55.0, 0.2, 56.0, np.nan, 57.0]})
    store.write("factors", frame)
    store.write("factors", frame)
    got = store.read("factors")
    assert len(got) == 6 and list(got.columns) == ["factor", "value"]
    assert got["value"].isna().sum() == 1
    cs = store.cross_section("factors", at=pd.Timestamp(ts[-1]))
    assert sorted(cs["factor"]) == ["mom", "rsi"]


def test_prices_are_stored_at_their_precision_and_decoded_exactly(store):
    frame = {"ts": [pd.Timestamp("2024-03-11 14:00").value] * 3, "symbol": ["AAA.US", "EURUSD.GB", "BTCUSDT.BA"],
             "open": [170.1, 1.09876, 40123.12345678], "high": [170.129, 1.09876, 40123.12345678],
             "low": [170.1, 1.09876, 40123.12345678], "close": [170.1, 1.09876, 40123.12345678],
             "volume": [100.0, 5.0, 0.12345678]}
    store.write("bars_1m", frame)
    got = store.read("bars_1m").droplevel("datetime")
    assert got.loc["AAA.US", "high"] == 170.13  # rounded to the stock precision (2 decimals)
    assert got.loc["EURUSD.GB", "open"] == 1.09876
    assert got.loc["BTCUSDT.BA", "close"] == 40123.12345678
    assert got.loc["BTCUSDT.BA", "volume"] == 0.12345678


def test_bad_writes_are_rejected_whole(store, bars):
    store.write("bars_1m", bars.iloc[:10])
    bad = bars.iloc[10:20].copy()
    bad.iloc[3, bad.columns.get_loc("close")] = -1.0
    with pytest.raises(NormalizationError, match=r"close\[row 3\] = -1.0: negative"):
        store.write("bars_1m", bad)
    nan = bars.iloc[10:20].copy()
    nan.iloc[5, nan.columns.get_loc("open")] = np.nan
    with pytest.raises(NormalizationError, match=r"open\[row 5\]"):
        store.write("bars_1m", nan)
    with pytest.raises(ValueError, match="missing required column"):
        store.write("bars_1m", bars.iloc[10:20].drop(columns=["close"]))
    with pytest.raises(ValueError, match="unknown region"):
        store.write("bars_1m", {"ts": [1_700_000_000_000_000_000], "symbol": ["AAA.ZZ"], "open": [1.0],
                                "high": [1.0], "low": [1.0], "close": [1.0], "volume": [1.0]})
    with pytest.raises(ValueError, match="unknown history table"):
        store.write("bars_5m", bars)
    assert len(store.read("bars_1m")) == 10


def test_instruments_upsert(store):
    from pyplatform.data import make_universe

    uni = make_universe(6, seed=2)
    store.write_instruments(uni)
    store.write_instruments(uni[:2])
    got = store.instruments()
    assert sorted(got["symbol"]) == sorted(i.symbol for i in uni)
    assert set(got.columns) >= {"symbol", "asset_class", "sector"}


def test_open_store_uses_the_configured_data_dir(tmp_path):
    from pyplatform.config import get_settings
    from pyplatform.backends import open_store
    from pyplatform.store import EmbeddedStore

    s = open_store(get_settings(data_dir=tmp_path))
    assert isinstance(s, EmbeddedStore) and s.root == tmp_path / "history"


def test_many_appends_fold_small_segments_and_keep_the_base(tmp_path, bars):
    from pyplatform.store import EmbeddedStore

    st = EmbeddedStore(tmp_path / "h", max_segments=3, fsync=False, grace_s=0.0)
    march = bars[bars.index.get_level_values("datetime") >= pd.Timestamp("2024-03-01")]
    dt = march.index.get_level_values("datetime")
    cuts = pd.date_range("2024-03-01", "2024-03-06", periods=7)
    folded = 0
    for a, b in zip(cuts[:-1], cuts[1:]):
        before = st.manifest("bars_1m").partitions.get("year=2024/month=03", [])
        st.write("bars_1m", march[(dt >= a) & (dt < b)])
        files = st.manifest("bars_1m").partitions["year=2024/month=03"]
        assert len(files) <= 3
        if len(before) == 3:
            # the largest file survives an append untouched; the small ones were folded
            assert max(before, key=lambda f: f.rows).path in {f.path for f in files}
            folded += 1
    assert folded >= 2
    pd.testing.assert_frame_equal(st.read("bars_1m"), march, check_index_type=False, check_categorical=False)


def test_cross_section_far_after_the_data_is_the_last_bar(store, bars):
    store.write("bars_1m", bars)
    got = store.cross_section("bars_1m", at="2100-01-01")
    want = bars.reset_index().groupby("symbol").tail(1).set_index(["datetime", "symbol"]).sort_index()
    pd.testing.assert_frame_equal(got.sort_index(), want, check_index_type=False, check_categorical=False)
    assert store.cross_section("bars_1m", at="2000-01-01").empty


def test_row_groups_align_to_symbols():
    from pyplatform.store.writer import row_group_slices

    sym = pa.array(["A"] * 10 + ["B"] * 3 + ["C"] * 2 + ["D"] * 25 + ["E"])
    got = row_group_slices(sym, row_group_size=8, min_rows=4)
    # A (big) alone, split at 8; B+C (small) share one group; D split; E alone at the end
    assert got == [(0, 8), (8, 2), (10, 5), (15, 8), (23, 8), (31, 8), (39, 1), (40, 1)]
    assert sum(n for _, n in got) == len(sym)


def test_files_have_symbol_aligned_row_groups(store, bars):
    import pyarrow.parquet as pq

    store.write("bars_1m", bars)
    f = store.manifest("bars_1m").files()[-1]
    meta = pq.ParquetFile(store.table_dir("bars_1m") / f.path).metadata
    col = meta.schema.names.index("symbol")
    rows = pq.read_table(store.table_dir("bars_1m") / f.path, columns=["symbol"]).column("symbol").to_pandas()
    big = set(rows.value_counts()[lambda c: c >= store.row_group_size // 4].index)
    assert big  # forex and crypto have a month's worth of minutes here
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(col).statistics
        # a big symbol never shares a row group; small ones may share
        if stats.min in big or stats.max in big:
            assert stats.min == stats.max
