"""Replay from history into the tick table: clock-driven schedule (SimClock) and the CLI."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from pyplatform.clock import SimClock
from pyplatform.domain.schemas import BARS, TICKS
from pyplatform.feeds.replay import bars_to_ticks, release_times, replay
from pyplatform.stream import StreamTable, StreamTables

T0 = pd.Timestamp("2024-03-05 15:00").value


def ticks(n=500, seed=0) -> pa.Table:
    rng = np.random.default_rng(seed)
    ts = T0 + np.sort(rng.integers(0, 60 * 10**9, n))  # one minute of market
    return pa.Table.from_arrays([pa.array(ts), pa.array(rng.choice(["A.US", "B.US"], n)),
                                 pa.array(np.round(rng.uniform(10, 11, n), 2)), pa.array(np.full(n, 100.0)),
                                 pa.array(np.zeros(n, np.int8)), pa.array(np.full(n, np.nan)),
                                 pa.array(np.full(n, np.nan))], schema=TICKS)


class RecordingTable(StreamTable):
    """A real stream table that also notes the clock at each append."""

    def __init__(self, clock):
        super().__init__("ticks", TICKS, clock=clock)
        self.sim_clock, self.appended_at = clock, []

    def append(self, batch, **kw):
        self.appended_at += [self.sim_clock.now_ns()] * batch.num_rows
        return super().append(batch, **kw)


@pytest.mark.parametrize("speed", [1.0, 10.0, 60.0])
def test_replay_at_n_times_real_time_on_a_sim_clock(speed):
    rows = ticks()
    clock = SimClock(1_000 * 10**9)
    start = clock.now_ns()

    async def sleep(seconds):
        clock.advance(max(int(seconds * 1e9), 1))

    table = RecordingTable(clock)
    result = asyncio.run(replay(rows, table, clock, speed, sleep=sleep))
    assert result.rows == rows.num_rows and table.next_offset == rows.num_rows
    got = table.read()
    assert got.column("ts").to_pylist() == rows.column("ts").to_pylist()
    due = start + (rows.column("ts").to_numpy() - rows.column("ts")[0].as_py()) / speed
    at = np.asarray(table.appended_at)
    assert (at >= due - 1).all() and (at - due).max() < 2  # on time to the nanosecond
    assert at[-1] - start == pytest.approx((rows.column("ts")[-1].as_py() - T0 - (rows.column("ts")[0].as_py() - T0)) / speed, abs=2)


def test_as_fast_as_possible_batches_and_keeps_order():
    rows = ticks(2000).take(pa.array(np.random.default_rng(1).permutation(2000)))  # unsorted input
    table = StreamTable("ticks", TICKS, clock=SimClock())
    result = asyncio.run(replay(rows, table, SimClock(0), None, max_batch=300))
    assert result.batches == 7 and table.next_offset == 2000
    assert (np.diff(table.read().column("ts").to_numpy()) >= 0).all()
    with pytest.raises(ValueError, match="speed must be > 0"):
        release_times(np.array([1]), -2.0, 0)


def test_bars_become_four_ticks_in_a_plausible_path():
    bars = pa.Table.from_pylist([
        {"ts": T0, "symbol": "A.US", "open": 10.0, "high": 12.0, "low": 9.0, "close": 11.0, "volume": 400.0,
         "vwap": 10.5, "trades": 4},
        {"ts": T0 + 60 * 10**9, "symbol": "A.US", "open": 11.0, "high": 11.5, "low": 8.0, "close": 9.0,
         "volume": 80.0, "vwap": 9.5, "trades": 2}], schema=BARS)
    t = bars_to_ticks(bars).to_pandas()
    assert t["price"].tolist() == [10.0, 9.0, 12.0, 11.0, 11.0, 11.5, 8.0, 9.0]  # up bar: low first
    assert t["volume"].tolist() == [100.0] * 4 + [20.0] * 4
    assert (t["ts"].diff().dropna() == 15 * 10**9).all()


def test_replay_cli_from_the_history_store(tmp_path, monkeypatch):
    from pyplatform.cli.replay import app
    from pyplatform.config import get_settings, reset_settings_cache
    from pyplatform.backends import open_store

    monkeypatch.setenv("PYPLATFORM_DATA_DIR", str(tmp_path))
    reset_settings_cache()
    try:
        rows = ticks(300)
        open_store(get_settings()).write("ticks", rows)
        res = CliRunner().invoke(app, ["--speed", "0", "--no-progress", "--symbols", "A.US"], env={"COLUMNS": "300"})
        assert res.exit_code == 0, res.output
        assert "replayed" in res.output
        with StreamTables(tmp_path / "stream", clock=SimClock()) as tables:
            got = tables.get_table("ticks").read().to_pandas()
        exp = rows.to_pandas()
        exp = exp[exp.symbol == "A.US"]
        assert got["ts"].tolist() == exp["ts"].tolist() and got["price"].tolist() == exp["price"].tolist()
        bad = CliRunner().invoke(app, ["--source", "quotes", "--no-progress"], env={"COLUMNS": "300"})
        assert bad.exit_code != 0 and "source must be" in bad.output
    finally:
        reset_settings_cache()


def test_replay_needs_a_clock():
    with pytest.raises(TypeError):
        replay(ticks(3), StreamTable("ticks", TICKS, clock=SimClock()))  # no silent wall time
