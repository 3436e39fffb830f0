"""Symbol files (memory-mapped, decoded) answer one-symbol reads exactly as pandas does.

Expectations are slices of the frame that was written; each check is repeated from a fresh
store instance (the mapped file, not the in-process memo) and after a write (rebuilt, never
stale).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pyplatform.store import EmbeddedStore
from cache_support import frames_equal as _eq, mapped as _mapped


def _one(bars, sym, start=None, end=None, columns=None):
    dt = bars.index.get_level_values("datetime")
    keep = bars.index.get_level_values("symbol") == sym
    if start is not None:
        keep &= dt >= pd.Timestamp(start)
    if end is not None:
        keep &= dt < pd.Timestamp(end)
    out = bars.loc[keep]
    return out if columns is None else out[columns]


@pytest.fixture
def warm(store, bars):
    store.write("bars_1m", bars)
    for sym in ("AAA.US", "BTCUSDT.BA"):
        store.read("bars_1m", symbols=[sym])  # first request: Parquet only
        store.read("bars_1m", symbols=sym)  # second: builds the symbol file
    assert store.symbol_files.builds == 2
    return store


def test_one_symbol_from_its_file_equals_pandas(warm, bars):
    for sym in ("AAA.US", "BTCUSDT.BA"):
        _eq(warm.read("bars_1m", symbols=[sym]), _one(bars, sym))
        _eq(warm.read("bars_1m", symbols=[sym], start="2024-02-29 15:00", end="2024-03-04 10:00",
                      columns=["close", "trades"]),
            _one(bars, sym, "2024-02-29 15:00", "2024-03-04 10:00", ["close", "trades"]))
        _eq(warm.read("bars_1m", symbols=[sym], start="2030-01-01"), _one(bars, sym, "2030-01-01"))
    fresh = EmbeddedStore(warm.root, fsync=False)
    _eq(fresh.read("bars_1m", symbols=["AAA.US"]), _one(bars, "AAA.US"))
    assert fresh.symbol_files.builds == 0 and fresh.symbol_files.hits == 1
    fresh.close()


def test_frame_is_views_of_the_mapped_file(warm):
    frame = warm.read("bars_1m", symbols=["AAA.US"])
    for c in frame.columns:
        assert _mapped(frame[c].to_numpy()), c  # a view of a file mapping, not a copy


def test_unknown_symbol_arrow_and_bad_column_take_the_parquet_path(warm, bars):
    assert warm.read("bars_1m", symbols=["NOPE.US"]).empty
    t = warm.read("bars_1m", symbols=["AAA.US"], as_arrow=True)
    assert t.schema.names[0] == "ts" and t.num_rows == len(_one(bars, "AAA.US"))
    with pytest.raises(ValueError, match="no column 'nope'"):
        warm.read("bars_1m", symbols=["AAA.US"], columns=["nope"])


def test_any_write_rebuilds_and_a_torn_file_is_rebuilt(warm, bars):
    row = _one(bars, "AAA.US").iloc[[7]].copy()
    row["close"] = row["high"] = 555.0
    warm.write("bars_1m", row)
    changed = bars.copy()
    changed.loc[row.index, ["close", "high"]] = 555.0
    _eq(warm.read("bars_1m", symbols=["AAA.US"]), _one(changed, "AAA.US"))
    path = warm.symbol_files.path("bars_1m", "AAA.US")
    path.write_bytes(path.read_bytes()[:500])
    fresh = EmbeddedStore(warm.root, fsync=False)
    fresh.symbol_files.admit_after = 0
    _eq(fresh.read("bars_1m", symbols=["AAA.US"]), _one(changed, "AAA.US"))
    assert fresh.symbol_files.builds == 1
    fresh.close()


def test_symbol_files_are_bounded_and_can_be_off(tmp_path, bars):
    s = EmbeddedStore(tmp_path, fsync=False, symbol_cache_symbols=1)
    s.symbol_files.admit_after = 0
    s.write("bars_1m", bars)
    for sym in ("AAA.US", "BBB.US", "EURUSD.GB"):
        _eq(s.read("bars_1m", symbols=[sym]), _one(bars, sym))
    assert len(list((tmp_path / "bars_1m" / "_symbols").glob("*.arrow"))) == 1
    assert s.disk_usage().loc["bars_1m", "cache_bytes"] > 0
    off = EmbeddedStore(tmp_path / "off", fsync=False, symbol_cache_symbols=0)
    off.write("bars_1m", bars)
    for _ in range(3):
        _eq(off.read("bars_1m", symbols=["AAA.US"]), _one(bars, "AAA.US"))
    assert not (tmp_path / "off" / "bars_1m" / "_symbols").exists()
    s.close()
    off.close()


def test_frames_are_writable_and_independent(warm, bars):
    want = _one(bars, "AAA.US")
    a = warm.read("bars_1m", symbols=["AAA.US"])
    a.iloc[0, 0] = -1.0  # in place, as users do
    a.fillna(0, inplace=True)
    assert a.iloc[0, 0] == -1.0
    _eq(warm.read("bars_1m", symbols=["AAA.US"]), want)  # the next reader sees the file, not a's write
    fresh = EmbeddedStore(warm.root, fsync=False)
    _eq(fresh.read("bars_1m", symbols=["AAA.US"]), want)  # nor does the file change
    fresh.close()
