"""Day files (memory-mapped, time-major) answer whole-day and as-of queries exactly as pandas does.

Every expectation is computed with pandas from the frame that was written (the oracle is the
input, not the store), and the same queries are checked again after a write that changes
the day (the day file must be rebuilt, never served stale) and from a fresh store instance
(the file itself, memory-mapped, rather than the in-process memo).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pyplatform.store import EmbeddedStore
from cache_support import frames_equal as _eq, mapped as _mapped

DAY = pd.Timestamp("2024-03-01")


def _day(bars: pd.DataFrame, day: pd.Timestamp, symbols=None, columns=None) -> pd.DataFrame:
    dt = bars.index.get_level_values("datetime")
    keep = (dt >= day) & (dt < day + pd.Timedelta("1D"))
    if symbols is not None:
        keep &= bars.index.get_level_values("symbol").isin(symbols)
    out = bars.loc[keep]
    return out if columns is None else out[columns]


def _as_of(bars: pd.DataFrame, at: pd.Timestamp, columns=None) -> pd.DataFrame:
    upto = bars.loc[bars.index.get_level_values("datetime") <= at].reset_index()
    last = upto.sort_values(["symbol", "datetime"]).groupby("symbol", sort=True).tail(1)
    out = last.set_index(["datetime", "symbol"])
    return out if columns is None else out[columns]


@pytest.fixture(autouse=True)
def _build_at_once(monkeypatch):
    # these tests are about the files' answers: build on the first request (the admission
    # policy, building on the second, has its own test below)
    from pyplatform.store.daycache import DayCache

    init = DayCache.__init__

    def eager(self, *a, **k):
        init(self, *a, **k)
        self.admit_after = 0

    monkeypatch.setattr(DayCache, "__init__", eager)


def test_a_day_file_is_built_on_the_second_request(tmp_path, bars):
    from pyplatform.store.daycache import DayCache

    s = EmbeddedStore(tmp_path, fsync=False)
    s.days.admit_after = 1
    s.write("bars_1m", bars)
    want = _day(bars, DAY)
    _eq(s.cross_section("bars_1m", day=DAY), want)
    assert s.days.builds == 0 and not s.days.path("bars_1m", DAY.value).exists()
    _eq(s.cross_section("bars_1m", day=DAY), want)
    assert s.days.builds == 1 and s.days.path("bars_1m", DAY.value).exists()
    assert isinstance(s.days, DayCache)
    s.close()


def test_whole_day_from_the_day_file_equals_pandas(store, bars):
    store.write("bars_1m", bars)
    want = _day(bars, DAY)
    _eq(store.cross_section("bars_1m", day=DAY), want)
    assert store.days.builds == 1 and store.days.path("bars_1m", DAY.value).exists()
    _eq(store.cross_section("bars_1m", day=DAY), want)  # the memo
    assert store.days.builds == 1 and store.days.hits >= 1
    fresh = EmbeddedStore(store.root, fsync=False)
    _eq(fresh.cross_section("bars_1m", day=DAY), want)  # the memory-mapped file
    assert fresh.days.builds == 0 and fresh.days.hits == 1
    got = fresh.cross_section("bars_1m", day=DAY)
    assert got.index.is_monotonic_increasing
    fresh.close()


def test_day_frame_maps_the_file_without_copying(store, bars):
    store.write("bars_1m", bars)
    store.cross_section("bars_1m", day=DAY)
    frame = store.cross_section("bars_1m", day=DAY)
    assert store.days.hits >= 1
    for c in frame.columns:
        assert _mapped(frame[c].to_numpy()), c  # a view of a file mapping, not a copy


def test_subsets_and_unknown_columns(store, bars):
    store.write("bars_1m", bars)
    store.cross_section("bars_1m", day=DAY)  # builds the day file; the subsets below use it
    syms = ["EURUSD.GB", "AAA.US", "NOPE.US"]
    _eq(store.cross_section("bars_1m", day=DAY, symbols=syms, columns=["close", "volume"]),
        _day(bars, DAY, syms, ["close", "volume"]))
    assert store.cross_section("bars_1m", day=DAY, symbols=["NOPE.US"]).empty
    with pytest.raises(ValueError, match="no column 'nope'"):
        store.cross_section("bars_1m", day=DAY, columns=["nope"])


@pytest.mark.parametrize("at", ["2024-03-01 15:30", "2024-03-01 14:31:30", "2024-03-01 00:00",
                                "2024-03-02 12:00", "2024-03-04 03:00", "2100-01-01"])
def test_as_of_from_day_files_equals_pandas(store, bars, at):
    store.write("bars_1m", bars)
    at = pd.Timestamp(at)
    _eq(store.cross_section("bars_1m", at=at), _as_of(bars, at))
    _eq(store.cross_section("bars_1m", at=at, columns=["close"]), _as_of(bars, at, ["close"]))


def test_as_of_matches_the_parquet_query(store, bars):
    store.write("bars_1m", bars)
    off = EmbeddedStore(store.root, fsync=False, day_cache_days=0)
    for at in ["2024-03-01 15:30", "2024-03-02 12:00", "2024-03-05 21:10"]:
        _eq(store.cross_section("bars_1m", at=at), off.cross_section("bars_1m", at=at))
    assert off.days.builds == 0 and store.days.builds >= 1
    off.close()


def test_a_write_to_the_day_rebuilds_its_file(store, bars):
    store.write("bars_1m", bars)
    store.cross_section("bars_1m", day=DAY)
    row = _day(bars, DAY).iloc[[10]].copy()
    row["close"] = row["high"] = 777.0
    store.write("bars_1m", row)
    changed = bars.copy()
    changed.loc[row.index, ["close", "high"]] = 777.0
    before = store.days.builds
    _eq(store.cross_section("bars_1m", day=DAY), _day(changed, DAY))
    assert store.days.builds == before + 1  # the day's file was rebuilt, not served stale
    at = row.index[0][0] + pd.Timedelta("30s")
    got = store.cross_section("bars_1m", at=at)
    assert got.xs(row.index[0][1], level="symbol")["close"].iloc[0] == 777.0
    _eq(got, _as_of(changed, at))
    # another process's store instance sees the new rows too (the file lists its sources)
    fresh = EmbeddedStore(store.root, fsync=False)
    _eq(fresh.cross_section("bars_1m", day=DAY), _day(changed, DAY))
    fresh.close()


def test_a_torn_day_file_is_rebuilt(store, bars):
    store.write("bars_1m", bars)
    store.cross_section("bars_1m", day=DAY)
    path = store.days.path("bars_1m", DAY.value)
    path.write_bytes(path.read_bytes()[:1000])
    fresh = EmbeddedStore(store.root, fsync=False)
    _eq(fresh.cross_section("bars_1m", day=DAY), _day(bars, DAY))
    assert fresh.days.builds == 1
    fresh.close()


def test_day_files_are_bounded(tmp_path, bars):
    s = EmbeddedStore(tmp_path, fsync=False, day_cache_days=2)
    s.write("bars_1m", bars)
    for d in ["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01"]:
        _eq(s.cross_section("bars_1m", day=d), _day(bars, pd.Timestamp(d)))
    assert len(list((tmp_path / "bars_1m" / "_days").glob("*.arrow"))) == 2
    s.close()


def test_day_frames_are_writable_and_independent(store, bars):
    store.write("bars_1m", bars)
    want = _day(bars, DAY)
    a = store.cross_section("bars_1m", day=DAY)
    a.iloc[3, 2] = -5.0
    assert a.iloc[3, 2] == -5.0
    _eq(store.cross_section("bars_1m", day=DAY), want)
    _eq(store.cross_section("bars_1m", at=DAY + pd.Timedelta("23h")),
        _as_of(bars, DAY + pd.Timedelta("23h")))


def test_compact_warms_the_newest_full_session_day(tmp_path, bars):
    # The data ends on a Saturday (2024-03-02: only the 24/7 crypto symbol trades): the day a
    # whole-market read asks for is Friday, and compaction builds its file before any read.
    cut = bars.loc[bars.index.get_level_values("datetime") < pd.Timestamp("2024-03-03")]
    saturday = _day(cut, pd.Timestamp("2024-03-02"))
    assert len(saturday) and saturday.index.get_level_values("symbol").nunique() < 4  # the premise
    s = EmbeddedStore(tmp_path, fsync=False)
    s.days.admit_after = 1  # production admission (the autouse fixture builds at once)
    s.write("bars_1m", cut)
    assert not s.days.path("bars_1m", DAY.value).exists()  # a write alone builds nothing
    s.compact("bars_1m")
    assert s.days.path("bars_1m", DAY.value).exists()
    assert not s.days.path("bars_1m", pd.Timestamp("2024-03-02").value).exists()
    s.close()
    fresh = EmbeddedStore(tmp_path, fsync=False)
    fresh.days.admit_after = 1  # as in production: a cold day would not be built on its first read
    _eq(fresh.cross_section("bars_1m", day=DAY), _day(cut, DAY))
    assert fresh.days.hits == 1 and fresh.days.builds == 0  # the first read was served by the file
    assert fresh.warm_day_files(days=2) == [DAY, pd.Timestamp("2024-02-29")]
    assert fresh.warm_day_files("bars_1d") == []
    fresh.close()
    off = EmbeddedStore(tmp_path / "off", fsync=False, warm_days=0)
    off.write("bars_1m", cut)
    off.compact("bars_1m")
    assert not off.days.path("bars_1m", DAY.value).exists()
    off.close()
