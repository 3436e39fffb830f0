"""compact() rolling closed years of month files into yearly files.

Every query answers the same before and after the roll-up; the yearly files keep the layout
(sorted by symbol, ts; symbol-aligned row groups); writes into a rolled year stay idempotent;
a writer killed during the roll-up leaves the store as it was, and the next compact finishes.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pyplatform.store import EmbeddedStore

SYMS = ["AAA.US", "BTCUSDT.BA", "EURUSD.GB", "ZZZ.US"]


def make_bars(start="2022-10-01", end="2024-02-20", every="3h", seed=3, symbols=SYMS) -> pd.DataFrame:
    """Bars of a few symbols every few hours over closed years and part of the newest."""
    rng = np.random.default_rng(seed)
    times = pd.date_range(start, end, freq=every, inclusive="left")
    frames = []
    for k, sym in enumerate(symbols):
        t = times[rng.random(len(times)) < 0.9]  # gaps, so symbols differ in rows
        dec = 5 if sym.endswith(".GB") else 8 if sym.endswith(".BA") else 2
        close = np.round(50.0 * (k + 1) * np.exp(np.cumsum(rng.normal(0, 0.01, len(t)))), dec)
        frames.append(pd.DataFrame({
            "datetime": t, "symbol": sym, "open": close, "high": close, "low": close, "close": close,
            "volume": np.round(rng.random(len(t)) * 1000, 3), "vwap": close, "trades": rng.integers(0, 50, len(t)),
        }))
    return pd.concat(frames).sort_values(["datetime", "symbol"]).set_index(["datetime", "symbol"])


def write_monthly(store: EmbeddedStore, frame: pd.DataFrame) -> None:
    """Write month by month (as a live writer would), then merge each month's segments."""
    dt = frame.index.get_level_values("datetime")
    for _, part in frame.groupby(dt.to_period("M")):
        store.write("bars_1m", part)
    store.compact("bars_1m", roll_up=False)


def answers(store: EmbeddedStore) -> dict[str, pd.DataFrame]:
    """Every query kind over ranges inside, across and outside the rolled years."""
    left = pd.DataFrame({"datetime": pd.to_datetime(["2023-03-05 10:17", "2022-12-31 23:59", "2024-01-02 05:00"]),
                         "symbol": ["AAA.US", "EURUSD.GB", "BTCUSDT.BA"]})
    return {
        "all": store.read("bars_1m"),
        "one": store.read("bars_1m", symbols=["EURUSD.GB"]),
        "two_across_years": store.read("bars_1m", symbols=["ZZZ.US", "AAA.US"], start="2022-12-15", end="2024-01-10"),
        "columns": store.read("bars_1m", symbols=["BTCUSDT.BA"], columns=["close", "volume"], start="2023-06-01"),
        "arrow": store.read("bars_1m", symbols=["AAA.US"], as_arrow=True).to_pandas(),
        "day_rolled": store.cross_section("bars_1m", day="2023-07-12"),
        "at_rolled": store.cross_section("bars_1m", at="2023-07-12 15:30"),
        "at_newest": store.cross_section("bars_1m", at="2024-02-19 15:30"),
        "resample": store.resample("bars_1m", "1D", symbols=["AAA.US", "EURUSD.GB"], start="2022-12-20", end="2023-01-10"),
        "asof": store.asof_join(left, "bars_1m", columns=["close"]),
    }


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert len(a[k]), k
        pd.testing.assert_frame_equal(a[k], b[k], obj=k)


def assert_layout(path) -> None:
    """Sorted by (symbol, ts); a row group holds one symbol unless symbols are too thin."""
    t = pq.read_table(path).to_pandas()
    assert list(t.columns[:2]) == ["ts", "symbol"]
    key = list(zip(t["symbol"], t["ts"]))
    assert key == sorted(key) and len(set(key)) == len(key)
    md = pq.ParquetFile(path).metadata
    for i in range(md.num_row_groups):
        st = md.row_group(i).column(1).statistics
        assert st.min == st.max, f"row group {i} mixes {st.min}..{st.max}"


@pytest.fixture
def data():
    return make_bars()


def open_store(root, **kw) -> EmbeddedStore:
    return EmbeddedStore(root, fsync=False, grace_s=0.0, row_group_size=512, **kw)


@pytest.mark.parametrize("rollup_rows", [2_000_000, 700])  # one batch; many symbol ranges
def test_rollup_keeps_every_answer_and_the_layout(tmp_path, data, rollup_rows):
    st = open_store(tmp_path / "h", rollup_rows=rollup_rows)
    write_monthly(st, data)
    before = answers(st)
    months = st.manifest("bars_1m").partitions
    assert "year=2023/month=07" in months
    assert st.compact("bars_1m") == 2  # 2022 and 2023 are closed; 2024 holds the newest row
    parts = sorted(st.manifest("bars_1m").partitions)
    assert parts == ["year=2022", "year=2023", "year=2024/month=01", "year=2024/month=02"]
    assert_same(before, answers(st))
    pd.testing.assert_frame_equal(st.read("bars_1m"), data, check_index_type=False, check_categorical=False)
    for f in st.manifest("bars_1m").partitions["year=2023"]:
        assert_layout(tmp_path / "h" / "bars_1m" / f.path)
    # superseded month files are deleted by the next writer once the grace period is over
    st.write("bars_1m", data.iloc[-3:])
    on_disk = {p.relative_to(tmp_path / "h" / "bars_1m").as_posix()
               for p in (tmp_path / "h" / "bars_1m").rglob("*.parquet")}
    man = st.manifest("bars_1m")
    assert on_disk <= {f.path for f in man.files()} | {p for p, _ in man.garbage}
    assert not [p for p in on_disk if p.startswith(("year=2022/", "year=2023/")) and "/month=" in p]
    assert st.compact("bars_1m") == 0  # idempotent: nothing left to do
    st.close()


def test_writes_into_a_rolled_year_stay_idempotent(tmp_path, data):
    st = open_store(tmp_path / "h")
    write_monthly(st, data)
    st.compact("bars_1m")
    dt = data.index.get_level_values("datetime")
    march = data[(dt >= "2023-03-01") & (dt < "2023-04-01")]
    # the same rows again: nothing duplicated, and they land in the yearly partition
    st.write("bars_1m", march)
    assert "year=2023/month=03" not in st.manifest("bars_1m").partitions
    pd.testing.assert_frame_equal(st.read("bars_1m"), data, check_index_type=False, check_categorical=False)
    # a changed row replaces the stored one
    changed = march.iloc[:1].assign(close=12345.5, high=12345.5)
    st.write("bars_1m", changed)
    got = st.read("bars_1m")
    assert len(got) == len(data) and got.loc[changed.index[0], "close"] == 12345.5
    # a new symbol in a rolled year is a new segment there; compact merges it into one file
    extra = make_bars("2023-05-01", "2023-05-20", symbols=["NEW.US"], seed=9)
    st.write("bars_1m", extra)
    assert len(st.manifest("bars_1m").partitions["year=2023"]) > 1
    expected = pd.concat([got, extra]).sort_index(level=["datetime", "symbol"])
    assert st.compact("bars_1m") == 1
    assert len(st.manifest("bars_1m").partitions["year=2023"]) == 1
    pd.testing.assert_frame_equal(st.read("bars_1m"), expected, check_index_type=False, check_categorical=False)
    assert_layout(tmp_path / "h" / "bars_1m" / st.manifest("bars_1m").partitions["year=2023"][0].path)
    st.close()


def test_rollup_of_factors_keeps_factor_order(tmp_path):
    st = open_store(tmp_path / "h")
    times = pd.date_range("2022-11-20", "2024-01-10", freq="7h")
    rows = []
    for f in ["mom", "alpha"]:
        for s in ["BBB.US", "AAA.US"]:
            rows.append(pd.DataFrame({"ts": times, "symbol": s, "factor": f,
                                      "value": np.arange(len(times), dtype=float) * (1 if f == "mom" else -1)}))
    frame = pd.concat(rows)
    for _, part in frame.groupby(frame["ts"].dt.to_period("M")):
        st.write("factors", part)
    before = st.read("factors")
    assert st.compact("factors") == 2
    assert sorted(st.manifest("factors").partitions)[:2] == ["year=2022", "year=2023"]
    pd.testing.assert_frame_equal(st.read("factors"), before)
    st.close()


CRASHER = """
import sys
from pyplatform.store import EmbeddedStore
EmbeddedStore(sys.argv[1], grace_s=0.0, row_group_size=512).compact("bars_1m")
"""


@pytest.mark.parametrize("crash_at", ["after_data", "before_rollup_manifest"])
def test_crash_during_rollup_leaves_a_consistent_store(tmp_path, data, crash_at):
    root = tmp_path / "h"
    st = open_store(root)
    write_monthly(st, data)
    before = answers(st)
    version = st.manifest("bars_1m").version
    env = dict(os.environ, PYPLATFORM_STORE_CRASH_AT=crash_at)
    proc = subprocess.run([sys.executable, "-c", CRASHER, str(root)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 137, proc.stderr
    # the first year's file was written but never published: the store is as before
    man = st.manifest("bars_1m")
    assert man.version == version and "year=2022" not in man.partitions
    on_disk = {p.relative_to(root / "bars_1m").as_posix() for p in (root / "bars_1m").rglob("*")
               if p.is_file() and "year=" in p.as_posix()}
    assert on_disk - {f.path for f in man.files()}, "the crashed roll-up left its unpublished file"
    assert_same(before, answers(st))
    # the next compact removes the leftover and finishes the roll-up
    assert st.compact("bars_1m") == 2
    assert_same(before, answers(st))
    on_disk = {p.relative_to(root / "bars_1m").as_posix() for p in (root / "bars_1m").rglob("*")
               if p.is_file() and "year=" in p.as_posix()}
    man = st.manifest("bars_1m")
    assert on_disk <= {f.path for f in man.files()} | {p for p, _ in man.garbage}
    st.close()
