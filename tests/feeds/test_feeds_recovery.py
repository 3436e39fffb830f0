"""Gap recovery: the LMDB cache, crash/restart recovery, and REST K-line backfill."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from feeds_support import SYMBOLS, TOKEN, assert_complete_and_unique, feed_session, tick_multiset
from pyplatform.clock import SimClock
from pyplatform.config import get_settings
from pyplatform.feeds import RecentCache, RestClient, RestError, backfill_bars
from pyplatform.feeds.decoder import Decoded
from pyplatform.feeds.ingest import Ingestor
from pyplatform.feeds.schemas import DEPTH, QUOTES, TICKS, WIRE_TICKS
from pyplatform.feeds.simulator import SimulatorConfig, start_simulator
from pyplatform.stream import StreamTables


def wire(n: int, start_seq: int = 1, t0: int = 1_700_000_000_000_000_000, sym: str = "AAPL.US") -> pa.Table:
    seq = np.arange(start_seq, start_seq + n)
    return pa.Table.from_arrays([pa.array(t0 + seq * 1_000_000), pa.array([sym] * n), pa.array(100 + seq * 0.01),
                                 pa.array(np.full(n, 100.0)), pa.array(np.zeros(n, np.int8)),
                                 pa.array(np.full(n, np.nan)), pa.array(np.full(n, np.nan)), pa.array(seq)],
                                schema=WIRE_TICKS)


def decoded(t: pa.Table) -> Decoded:
    return Decoded(ticks=t, quotes=QUOTES.empty_table(), depth=DEPTH.empty_table())


def test_cache_keeps_the_window_and_survives_reopen(tmp_path):
    with RecentCache(tmp_path / "c", window_s=1.0) as c:
        ids = [c.put(wire(10, 1 + 10 * i, t0=i * 600_000_000)) for i in range(5)]  # batches 0.6 s apart
        assert ids == [1, 2, 3, 4, 5]
        everything, last = c.read()
        assert last == 5 and len(c) == 2  # only the last second is kept
        assert everything.column("seq").to_pylist() == list(range(31, 51))
    with RecentCache(tmp_path / "c", window_s=1.0) as c:  # a restart continues the ids
        assert c.put(wire(1, 99, t0=5 * 600_000_000)) == 6
        later, _ = c.read(after_id=5)
        assert later.column("seq").to_pylist() == [99]
        assert c.newest_ns() == 5 * 600_000_000 + 99 * 1_000_000


def test_crash_between_cache_and_table_is_recovered_exactly_once(tmp_path):
    with StreamTables(tmp_path / "stream", clock=SimClock()) as tables:
        ticks = tables.get_table("ticks", TICKS)
        with RecentCache(tmp_path / "cache") as cache:
            ing = Ingestor(ticks, cache=cache)
            ing.ingest(decoded(wire(20)))
            cache.put(wire(5, 21))  # the process dies here: cached, never appended
        assert ticks.next_offset == 20
    with StreamTables(tmp_path / "stream", clock=SimClock()) as tables:  # restart
        ticks = tables.get_table("ticks", TICKS)
        with RecentCache(tmp_path / "cache") as cache:
            ing = Ingestor(ticks, cache=cache)
            assert ing.recover() == 5
            assert ticks.read().column("price").to_pylist() == pytest.approx(list(100 + np.arange(1, 26) * 0.01))
            # what the server re-sends after the restart is recognised as already written
            result = ing.ingest(decoded(wire(10, 21)))
            assert result.duplicates == 5 and result.ticks == 5
            assert result.gaps and result.gaps[0].reason == "restart"
        with RecentCache(tmp_path / "cache") as cache:
            assert Ingestor(ticks, cache=cache).recover() == 0  # idempotent
        assert ticks.next_offset == 30


def test_untagged_table_is_compared_row_by_row(tmp_path):
    with StreamTables(None, clock=SimClock()) as tables:
        ticks = tables.get_table("ticks", TICKS)
        ticks.append(wire(8).select(TICKS.names))  # written by someone else, without tags
        with RecentCache(tmp_path / "cache") as cache:
            cache.put(wire(12))
            assert Ingestor(ticks, cache=cache).recover() == 4
        assert ticks.next_offset == 12


def test_restart_restores_the_cache_detects_the_gap_and_backfills_bars(tmp_path):
    async def go():
        sim = await start_simulator(SimulatorConfig(sessions=False, rate=2000, record=True, token=TOKEN))
        try:
            first = await feed_session(tmp_path, 0.7, sim=sim)  # in-memory tables: lost at "restart"
            sim.resume()
            await asyncio.sleep(0.5)  # the market moves on while the process is down
            second = await feed_session(tmp_path, 0.7, sim=sim)
        finally:
            await sim.stop()
        return first, second

    first, second = asyncio.run(go())
    assert first.error is None and second.error is None
    gap = second.client.stats.gaps[0]
    assert gap.reason == "restart"
    first_ticks = first.ticks()
    assert gap.start_ns == max(first_ticks.column("ts").to_pylist())
    assert gap.end_ns - gap.start_ns >= 400_000_000
    # the new table holds session 1 (from the cache) and session 2 (live), each tick once
    assert tick_multiset(second.ticks().slice(0, first_ticks.num_rows)).equals(tick_multiset(first_ticks))
    assert_complete_and_unique(second)
    # the gap's minutes were backfilled over REST, and they match the simulator's tape
    bars = pa.concat_tables(second.bars).to_pandas()
    assert set(bars["symbol"]) == set(SYMBOLS)
    minute = gap.start_ns - gap.start_ns % 60_000_000_000
    assert (bars["ts"] >= minute).all() and (bars["ts"] <= gap.end_ns).all()
    tape = second.sim.tape_history().to_pandas()
    aapl = tape[tape.symbol == "AAPL.US"]
    aapl = aapl[aapl.ts // 60_000_000_000 * 60_000_000_000 == minute]
    row = bars[(bars.symbol == "AAPL.US") & (bars.ts == minute)].iloc[0]
    # the minute was still running when it was fetched (just after the gap closed): its bar
    # covers at least the ticks up to the gap's end and at most the whole minute's
    upto = aapl[aapl.ts <= gap.end_ns]["price"]
    assert row["open"] == aapl["price"].iloc[0]
    assert upto.max() <= row["high"] <= aapl["price"].max()
    assert aapl["price"].min() <= row["low"] <= upto.min()


def test_rest_kline_against_the_simulator_and_into_the_history_store(tmp_path):
    async def go():
        sim = await start_simulator(SimulatorConfig(sessions=False, rate=3000, token=TOKEN))
        await asyncio.sleep(0.5)
        sim.pause()
        good = RestClient(sim.rest_url, TOKEN)
        bars = await asyncio.to_thread(good.kline, "BTCUSDT.BA", 1, 10)
        with pytest.raises(RestError, match="HTTP 401"):
            await asyncio.to_thread(RestClient(sim.rest_url, "wrong").kline, "BTCUSDT.BA")
        with pytest.raises(ValueError, match="kType"):
            good.kline("BTCUSDT.BA", 0)
        from pyplatform.backends import open_store

        store = open_store(get_settings(data_dir=tmp_path))
        now = sim.clock.now_ns()
        written = await asyncio.to_thread(backfill_bars, good, ["AAPL.US", "EURUSD.GB"], now - 60_000_000_000,
                                          now, lambda t: store.write("bars_1m", t))
        tape = sim.tape_history()
        await sim.stop()
        return bars, written, store.read("bars_1m", as_arrow=True), tape

    bars, written, stored, tape = asyncio.run(go())
    f = tape.to_pandas()
    f = f[f.symbol == "BTCUSDT.BA"]
    oracle = f.set_index(pd.to_datetime(f.ts))["price"].resample("1min").ohlc().dropna()
    got = bars.to_pandas()
    assert got["open"].tolist() == oracle["open"].tolist() and got["close"].tolist() == oracle["close"].tolist()
    assert got["ts"].tolist() == oracle.index.asi8.tolist()
    assert written.num_rows >= 2 and set(written.column("symbol").to_pylist()) == {"AAPL.US", "EURUSD.GB"}
    s = stored.to_pandas().sort_values(["symbol", "ts"]).reset_index(drop=True)
    w = written.to_pandas().sort_values(["symbol", "ts"]).reset_index(drop=True)
    assert s["close"].tolist() == w["close"].tolist() and s["ts"].tolist() == w["ts"].tolist()
