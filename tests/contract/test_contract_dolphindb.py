"""Contract cases for what only the DolphinDB backend does, each compared with the embedded
backend (or the batch runtime) on the same input.

The library-factor case runs on every backend: on the embedded one it checks the stream
runtime against the batch runtime; on a server it checks the reactive engine's output (the
``wilder`` factors and the NULL-guarded metacode included). The rest need a server and skip
without ``PYPLATFORM_DOLPHINDB_URI``; they are written for the first contact with one.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pyarrow as pa

from pyplatform.clock import SimClock
from pyplatform.domain.schemas import BARS, SIGNALS, TICKS

MIN = 60_000_000_000
T0 = pd.Timestamp("2024-03-04 09:30:00").value
SYMS = ["AAPL.US", "MSFT.US"]


def _bars(n: int, seed: int = 5, null_high_at: int | None = 40) -> pa.Table:
    rng = np.random.default_rng(seed)
    rows = []
    for k, sym in enumerate(SYMS):
        close = 100 + 20 * k + np.cumsum(rng.normal(0, 0.3, n))
        spread = np.abs(rng.normal(0.2, 0.05, n))
        high, low = close + spread, close - spread
        if null_high_at is not None and k == 0:
            high = high.copy()
            high[null_high_at] = np.nan  # a NULL input: the metacode's NULL rules must match Python's
        rows.append(pd.DataFrame({"ts": T0 + np.arange(n, dtype=np.int64) * MIN, "symbol": sym,
                                  "open": close - 0.05, "high": high, "low": low, "close": close,
                                  "volume": rng.integers(1, 500, n) * 1.0, "vwap": close,
                                  "trades": rng.integers(1, 20, n).astype(np.int32)}))
    frame = pd.concat(rows).sort_values("ts", kind="stable").reset_index(drop=True)
    return pa.Table.from_pandas(frame, schema=BARS, preserve_index=False)


def _wide(long: pd.DataFrame) -> pd.DataFrame:
    return long.pivot_table(index=["ts", "symbol"], columns="factor", values="value", dropna=False).reset_index()


def test_every_library_bar_factor_matches_the_batch_runtime(library_backend):
    from pyplatform.factors import compile_batch, load_library

    bars = _bars(80)
    defs = {d.name: d for d in load_library() if d.input == "bars"}
    got = _wide(library_backend.bars_to_factors(bars)).sort_values(["symbol", "ts"]).reset_index(drop=True)
    frame = bars.to_pandas()
    frame = frame.assign(datetime=pd.to_datetime(frame.ts)).set_index(["datetime", "symbol"]).sort_index()
    assert len(got) == len(frame)
    for name, d in defs.items():
        oracle = compile_batch(d.expr)(frame)
        oracle = oracle.reset_index().rename(columns={0: "v"}) if isinstance(oracle, pd.Series) else oracle
        oracle = oracle.sort_values(["symbol", "datetime"]).reset_index(drop=True)
        mine = got[name].to_numpy(dtype=float)
        want = oracle.iloc[:, -1].to_numpy(dtype=float)
        np.testing.assert_allclose(mine, want, rtol=1e-7, atol=1e-9, equal_nan=True, err_msg=name)


def _check_against_batch(backend, bars: pa.Table) -> None:
    from pyplatform.factors import compile_batch, parse

    got = _wide(backend.bars_to_factors(bars)).sort_values(["symbol", "ts"]).reset_index(drop=True)
    frame = bars.to_pandas()
    frame = frame.assign(datetime=pd.to_datetime(frame.ts)).set_index(["datetime", "symbol"]).sort_index()
    assert len(got) == len(frame)
    for name, text in backend.factors.items():
        oracle = compile_batch(parse(text))(frame).reset_index().sort_values(["symbol", "datetime"])
        np.testing.assert_allclose(got[name].to_numpy(dtype=float), oracle.iloc[:, -1].to_numpy(dtype=float),
                                   rtol=1e-7, atol=1e-9, equal_nan=True, err_msg=name)


def test_null_and_type_rules_of_the_metacode_match_the_batch_runtime(null_rules_backend):
    """==, !=, ||, &&, !, binary max/min, -(-x), iif with an integer branch and MACD, on
    bars with a NULL high and rows where close == open: a server must give what Python gives."""
    bars = _bars(40, null_high_at=30).to_pandas()
    bars.loc[bars.index[::7], "open"] = bars.loc[bars.index[::7], "close"]  # some close == open rows
    _check_against_batch(null_rules_backend, pa.Table.from_pandas(bars, schema=BARS, preserve_index=False))


# ---------------------------------------------------------------- server-only cases
def _ticks(n: int, same_ms_pairs: bool = True) -> pa.Table:
    ts = T0 + np.arange(n, dtype=np.int64) * 250_000_000
    if same_ms_pairs:
        ts[1::2] = ts[0::2][: len(ts[1::2])] + 400  # two ticks in one millisecond (400 ns apart)
    price = 100 + np.arange(n) * 0.01
    return pa.table({"ts": ts, "symbol": ["AAPL.US"] * n, "price": price, "volume": np.ones(n),
                     "side": pa.array(np.ones(n, np.int8)), "bid": price - 0.01, "ask": price + 0.01}, schema=TICKS)


def _until(fn, timeout: float = 30.0, what: str = "rows"):
    """Poll ``fn()`` until it returns a truthy value; AssertionError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not arrive within {timeout:g} s")
        time.sleep(0.2)


def _embedded_stream(tmp_path, name, schema, batch) -> pa.Table:
    from pyplatform.stream import StreamTable

    t = StreamTable(name, schema, directory=tmp_path / "embedded_streams", clock=SimClock())
    try:
        t.append(batch)
        return t.read(0)
    finally:
        t.close()


def test_tick_writer_rows_reach_the_stream_table(server_backend, tmp_path):
    from pyplatform.dolphindb.ingest import TickWriter

    ticks = _ticks(20)
    tw = TickWriter(server_backend.target, server_backend.config, batch_size=8, throttle_s=0.05, threads=1)
    tw.write(ticks)
    tw.flush()
    assert tw.pending == []
    got = _until(lambda: (lambda t: t if t.num_rows >= 20 else None)(server_backend.read_stream("ticks", TICKS, 0)),
                 what="ticks in the stream table")
    want = _embedded_stream(tmp_path, "ticks", TICKS, ticks)
    # TIMESTAMP keeps milliseconds: the embedded rows floored to ms are the oracle
    assert got.column("ts").to_pylist() == [t // 1_000_000 * 1_000_000 for t in want.column("ts").to_pylist()]
    np.testing.assert_allclose(got.column("price").to_numpy(), want.column("price").to_numpy())


def test_nanosecond_ticks_round_trip_and_reach_the_dfs_table(server_backend_ns, tmp_path):
    from pyplatform.config import Settings
    from pyplatform.backends import open_store

    ticks = _ticks(10)  # pairs 400 ns apart: distinct rows under NANOTIMESTAMP
    server_backend_ns.append("ticks", TICKS, ticks)
    got = server_backend_ns.read_stream("ticks", TICKS, 0)
    assert got.column("ts").to_pylist() == ticks.column("ts").to_pylist()
    embedded = open_store(Settings(data_dir=tmp_path / "emb"))
    embedded.write("ticks", ticks.to_pandas())
    want = embedded.read("ticks")
    dfs = _until(lambda: (lambda f: f if len(f) >= len(want) else None)(server_backend_ns.store.read("ticks")),
                 what="ticks in dfs://.../ticks (stream -> DFS writer)")
    assert (dfs.index.get_level_values("datetime") == want.index.get_level_values("datetime")).all()
    np.testing.assert_allclose(dfs["price"].to_numpy(), want["price"].to_numpy())


def test_stream_to_dfs_writer_persists_the_bars(server_backend, tmp_path):
    from pyplatform.config import Settings
    from pyplatform.backends import open_store

    ticks = _ticks(40, same_ms_pairs=False)
    closing = pa.table({"ts": [T0 + 11 * MIN], "symbol": ["AAPL.US"], "price": [1.0], "volume": [1.0],
                        "side": pa.array([1], pa.int8()), "bid": [1.0], "ask": [1.0]}, schema=TICKS)
    bars = server_backend.ticks_to_bars(pa.concat_tables([ticks, closing])).to_pandas()
    embedded = open_store(Settings(data_dir=tmp_path / "emb"))
    embedded.write("bars_1m", bars)
    want = embedded.read("bars_1m")
    dfs = _until(lambda: (lambda f: f if len(f) >= len(want) else None)(server_backend.store.read("bars_1m")),
                 what="bars in dfs://.../bars_1m")
    for c in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(dfs[c].to_numpy(), want[c].to_numpy(), err_msg=c)


def test_daily_bars_are_utc_midnight_windows_like_the_embedded_resample(server_backend, tmp_path):
    from pyplatform.config import Settings
    from pyplatform.backends import open_store

    day = 86_400 * 1_000_000_000
    d0 = pd.Timestamp("2024-03-04").value
    ts = np.concatenate([d0 + 10 * 3600 * 10**9 + np.arange(5) * MIN, d0 + day + 3 * 3600 * 10**9 + np.arange(5) * MIN,
                         [d0 + 2 * day + 60 * MIN]])  # the third day's bar closes the second day
    close = 50 + np.arange(len(ts), dtype=float)
    bars = pa.Table.from_pandas(pd.DataFrame({"ts": ts, "symbol": "AAPL.US", "open": close, "high": close + 1,
                                              "low": close - 1, "close": close, "volume": 2.0, "vwap": close,
                                              "trades": np.int32(1)}), schema=BARS, preserve_index=False)
    server_backend.append("bars_1m", BARS, bars)
    got = server_backend._wait_rows("bars_1d", 0, expect=2)
    got_ts = pd.to_datetime(got["ts"]).to_numpy().astype("datetime64[ns]").astype(np.int64).tolist()
    embedded = open_store(Settings(data_dir=tmp_path / "emb"))
    embedded.write("bars_1m", bars.to_pandas())
    want = embedded.resample("bars_1m", "1D")
    assert got_ts == want.index.get_level_values("datetime").asi8.tolist()[:2] == [d0, d0 + day]
    np.testing.assert_allclose(got["close"].to_numpy()[:2], want["close"].to_numpy()[:2])


def test_a_days_bar_is_emitted_after_the_day_ends_without_a_later_bar(make_server_backend, tmp_path):
    """Item 5: forceTriggerSessionEndTime closes the day's window after midnight (here a past
    day, so the wall clock is long past it) although no bar of a later day arrives; the window
    starts at UTC midnight although the first bar is at 10:17 (roundTime would give 10:00)."""
    from pyplatform.config import Settings
    from pyplatform.backends import open_store

    backend = make_server_backend(daily_bar_close_after_ms=1_000)
    d0 = pd.Timestamp("2024-03-05").value
    ts = d0 + (10 * 60 + 17) * MIN + np.arange(4) * MIN
    close = 20 + np.arange(len(ts), dtype=float)
    bars = pa.Table.from_pandas(pd.DataFrame({"ts": ts, "symbol": "MSFT.US", "open": close, "high": close + 1,
                                              "low": close - 1, "close": close, "volume": 3.0, "vwap": close,
                                              "trades": np.int32(2)}), schema=BARS, preserve_index=False)
    backend.append("bars_1m", BARS, bars)
    got = backend._wait_rows("bars_1d", 0, expect=1)
    embedded = open_store(Settings(data_dir=tmp_path / "emb"))
    embedded.write("bars_1m", bars.to_pandas())
    want = embedded.resample("bars_1m", "1D")
    got_ts = pd.to_datetime(got["ts"]).to_numpy().astype("datetime64[ns]").astype(np.int64).tolist()
    assert got_ts == want.index.get_level_values("datetime").asi8.tolist() == [d0]
    for c in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(got[c].to_numpy(), want[c].to_numpy(), err_msg=c)


def test_signal_subscriber_delivers_appended_signals_once_in_order(server_backend, tmp_path):
    from pyplatform.dolphindb.subscriber import OffsetBook, SignalSubscriber

    seen: list[pa.Table] = []
    sub = SignalSubscriber(server_backend.target, seen.append, OffsetBook(tmp_path / "offsets.json"),
                           action="ct_risk", config=server_backend.config, batch_size=1, throttle_s=0.05)
    start = sub.start()
    try:
        n = 3
        batch = pa.table({"ts": T0 + np.arange(n, dtype=np.int64) * 1_000_000, "symbol": ["AAPL.US"] * n,
                          "strategy": ["s"] * n, "direction": pa.array([1, -1, 1], pa.int8()),
                          "strength": [0.5, 0.25, 1.0], "reason": ["r"] * n, "factors": ["{}"] * n}, schema=SIGNALS)
        server_backend.append("signals", SIGNALS, batch)
        _until(lambda: sum(t.num_rows for t in seen) >= n, what="signals delivered to the subscriber")
    finally:
        sub.stop()
    got = pa.concat_tables(seen)
    want = _embedded_stream(tmp_path, "signals", SIGNALS, batch)
    assert got.column("ts").to_pylist() == want.column("ts").to_pylist()
    assert got.column("strength").to_pylist() == want.column("strength").to_pylist()
    assert sub.book.get("ct_risk") == start + n


def test_bar_engine_restart_resumes_from_its_snapshot(make_server_backend):
    """Drop the engines and subscriptions (streams kept), deploy again: the bar engine
    restores its snapshot and resumes at getSnapshotMsgId + 1, so the bars after the restart
    are what one uninterrupted embedded engine gives for the same ticks."""
    from pyplatform.stream.bar_engine import BarEngine

    backend = make_server_backend(snapshot_interval=1)
    ticks = _ticks(48, same_ms_pairs=False)  # 12 minutes at 4 ticks a minute
    first, second = ticks.slice(0, 20), ticks.slice(20)
    backend.ticks_to_bars(first)
    backend.deployer.undeploy()  # 90 + 91: subscriptions and engines gone, stream tables and snapshots kept
    backend.deployer.deploy()
    closing = pa.table({"ts": [T0 + 13 * MIN], "symbol": ["AAPL.US"], "price": [1.0], "volume": [1.0],
                        "side": pa.array([1], pa.int8()), "bid": [1.0], "ask": [1.0]}, schema=TICKS)
    after = backend.ticks_to_bars(pa.concat_tables([second, closing])).to_pandas()
    oracle = BarEngine("1min").feed(pa.concat_tables([ticks, closing])).to_pandas()
    oracle = oracle[oracle.ts.isin(after.ts)]
    assert len(after) == len(oracle) > 0
    np.testing.assert_allclose(after.sort_values("ts")[["open", "high", "low", "close", "volume"]].to_numpy(),
                               oracle.sort_values("ts")[["open", "high", "low", "close", "volume"]].to_numpy())


def test_sessions_are_fixed_utc_hours_across_a_dst_change(make_server_backend):
    """Sessions are UTC hours with no DST (docs/dolphindb.md, item 6): after the US switch to
    summer time (2024-03-10) the 13:35 UTC tick -- 09:35 in New York -- is outside 14:30-21:00."""
    backend = make_server_backend(sessions=(("14:30:00", "21:00:00"),), session_timezone="UTC")
    at = [pd.Timestamp(x).value for x in ("2024-03-08 14:35", "2024-03-08 14:37", "2024-03-11 13:35",
                                          "2024-03-11 14:35", "2024-03-11 14:37")]
    price = [10.0, 11.0, 12.0, 13.0, 14.0]
    ticks = pa.table({"ts": at, "symbol": ["AAPL.US"] * 5, "price": price, "volume": [1.0] * 5,
                      "side": pa.array([1] * 5, pa.int8()), "bid": price, "ask": price}, schema=TICKS)
    got = backend.ticks_to_bars(ticks, expect=3).to_pandas().sort_values("ts")
    frame = ticks.to_pandas().assign(dt=lambda d: pd.to_datetime(d.ts))
    tod = frame.dt - frame.dt.dt.normalize()
    inside = frame[(tod >= pd.Timedelta("14:30:00")) & (tod < pd.Timedelta("21:00:00"))]
    oracle = inside.set_index("dt").price.resample("1min").agg(["first", "count"]).query("count > 0")
    # 3/8 14:35, 3/8 14:37, 3/11 14:35 (closed by the 14:37 tick); never 3/11 13:35
    assert got.ts.tolist()[:3] == [t.value for t in oracle.index[:3]]
    assert got.open.tolist()[:3] == oracle["first"].tolist()[:3]
    assert pd.Timestamp("2024-03-11 13:35").value not in got.ts.tolist()


# ---------------------------------------------------------------- partition sizing (issue 15 item 12)
def _partitions(backend, table: str) -> pd.DataFrame:
    """One row per TSDB partition (chunk) of ``table`` on the node, with its distinct sort
    keys: ``getTSDBDataStat`` lists the chunks, ``getTSDBSortKeyEntry`` their sort-key
    entries (on-disk only, hence ``flushTSDBCache`` first; both per node, so run this on a
    single node or the data node holding the chunks)."""
    from pyplatform.dolphindb import schema as dschema

    db, name, _ = dschema.DFS[table]
    path = f"dfs://{backend.config.prefix}_{db}"
    return backend.session.run(
        "flushTSDBCache()\n"
        f'ppChunks = exec distinct chunkId from getTSDBDataStat("{path}", "{name}")\n'
        f'select nunique(key) as keys from getTSDBSortKeyEntry(ppChunks, "{name}") group by chunkId')


def _frame_equal_to_embedded(tmp_path, table: str, data: pd.DataFrame, got: pd.DataFrame) -> None:
    from pyplatform.backends import open_store
    from pyplatform.config import Settings

    embedded = open_store(Settings(data_dir=tmp_path / "emb"))
    embedded.write(table, data)
    want = embedded.read(table)
    assert got.index.equals(want.index)
    for c in want.columns:
        np.testing.assert_allclose(got[c].to_numpy(dtype=float), want[c].to_numpy(dtype=float), err_msg=c)


def test_factor_partitions_keep_at_most_1000_sort_keys(make_server_backend, tmp_path):
    """200 symbols x 32 factors = 6,400 (symbol, factor) pairs in ONE partition a day
    (factor_hash_buckets=1): sortKeyMappingFunction=[hashBucket{, 50}, hashBucket{, 20}]
    must keep each partition at <= 1,000 sort keys; the values read back equal the
    embedded store's."""
    backend = make_server_backend(factor_hash_buckets=1)
    syms = [f"S{i:03d}.US" for i in range(200)]
    names = [f"f{j:02d}" for j in range(32)]
    days = [pd.Timestamp("2024-03-04 15:00").value, pd.Timestamp("2024-03-05 15:00").value]
    rng = np.random.default_rng(7)
    data = pd.DataFrame([(t, s, f) for t in days for s in syms for f in names], columns=["ts", "symbol", "factor"])
    data["value"] = rng.normal(size=len(data))
    backend.store.write("factors", data)
    parts = _partitions(backend, "factors")
    assert len(parts) == 2  # one VALUE day x one HASH bucket per day
    assert (parts["keys"] <= 1_000).all() and (parts["keys"] > 50).all(), parts
    _frame_equal_to_embedded(tmp_path, "factors", data, backend.store.read("factors"))


def test_minute_bars_of_two_months_are_two_partitions_and_daily_bars_one_per_year(server_backend, tmp_path):
    """One symbol, one 1-minute bar a day for 45 days (January and February): VALUE month x
    HASH gives 2 partitions where the VALUE-day layout gave 45; four daily bars around New
    Year are 2 yearly RANGE partitions. Both read back equal to the embedded store."""
    ts = pd.Timestamp("2024-01-10 14:30").value + np.arange(45, dtype=np.int64) * 86_400_000_000_000
    bars = pd.DataFrame({"ts": ts, "symbol": "AAPL.US", "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5,
                         "volume": 100.0, "vwap": 10.2, "trades": np.int32(3)})
    server_backend.store.write("bars_1m", bars)
    parts = _partitions(server_backend, "bars_1m")
    assert len(parts) == 2 and (parts["keys"] == 1).all(), parts
    _frame_equal_to_embedded(tmp_path / "m", "bars_1m", bars, server_backend.store.read("bars_1m"))
    days = pd.to_datetime(["2023-12-28", "2023-12-29", "2024-01-02", "2024-01-03"]).as_unit("ns").asi8
    daily = bars.iloc[:4].assign(ts=days)
    server_backend.store.write("bars_1d", daily)
    assert len(_partitions(server_backend, "bars_1d")) == 2
    _frame_equal_to_embedded(tmp_path / "d", "bars_1d", daily, server_backend.store.read("bars_1d"))
