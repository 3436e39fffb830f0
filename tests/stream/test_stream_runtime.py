"""Engine runner: wiring, acks after durable output, exactly-once output across crashes."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from stream_engines import RUNNING, RunningVolume
from stream_helpers import make_ticks

from pyplatform.clock import SimClock
from pyplatform.domain.schemas import BARS, TICKS
from pyplatform.stream import StreamTable
from pyplatform.stream.bar_engine import BarEngine
from pyplatform.stream.runtime import EngineRunner, Pipeline

REPO = Path(__file__).resolve().parents[2]
S = 1_000_000_000


def fill(table, n_batches=30, rows=37):
    for i in range(n_batches):
        table.append(make_ticks(rows, rows * i))


def reference_output(n_batches=30, rows=37) -> pa.Table:
    src = StreamTable("ticks", TICKS, clock=SimClock())
    fill(src, n_batches, rows)
    out = StreamTable("out", RUNNING, clock=SimClock())
    EngineRunner(RunningVolume(), src, out, "ref", batch_size=1000).run_until_idle()
    return out.read().drop_columns(["offset"])


def test_runner_feeds_appends_and_acks(tmp_path):
    src = StreamTable("ticks", TICKS, tmp_path, clock=SimClock())
    out = StreamTable("out", RUNNING, tmp_path, clock=SimClock())
    fill(src)
    r = EngineRunner(RunningVolume(), src, out, "running", state_dir=tmp_path / "state", batch_size=50)
    assert r.run_until_idle() == src.next_offset
    assert src.acked("running") == src.next_offset - 1
    assert out.read().drop_columns(["offset"]).equals(reference_output())
    # The last row per symbol holds the whole volume of that symbol.
    rows = src.read().to_pandas()
    final = out.read().to_pandas().groupby("symbol").last()
    assert final.total.to_dict() == rows.groupby("symbol").volume.sum().to_dict()


def _open(tmp_path):
    src = StreamTable("ticks", TICKS, tmp_path, clock=SimClock())
    out = StreamTable("out", RUNNING, tmp_path, clock=SimClock())
    return src, out


class Crash(Exception):
    pass


@pytest.mark.parametrize("crash_at", [1, 2, 5])
def test_restart_after_crash_between_output_and_checkpoint_has_no_gaps_or_duplicates(tmp_path, crash_at):
    src, out = _open(tmp_path)
    fill(src)
    r = EngineRunner(RunningVolume(), src, out, "running", state_dir=tmp_path / "s", batch_size=23,
                     checkpoint_rows=100)
    calls = {"n": 0}
    real = r._checkpoint

    def crashing(*a, **k):
        calls["n"] += 1
        if calls["n"] == crash_at:  # output already appended + fsynced, checkpoint not written
            raise Crash()
        return real(*a, **k)
    r._checkpoint = crashing
    with pytest.raises(Crash):
        r.run_until_idle()
    assert out.next_offset > 0
    src.close(), out.close()
    src, out = _open(tmp_path)  # a new process: fresh objects from disk
    r2 = EngineRunner(RunningVolume(), src, out, "running", state_dir=tmp_path / "s", batch_size=41,
                      checkpoint_rows=100)
    assert r2.replayed_rows > 0  # it had to re-feed input whose output was already written
    r2.run_until_idle()
    assert out.read().drop_columns(["offset"]).equals(reference_output())


def test_restart_resumes_and_keeps_consuming_new_input(tmp_path):
    src, out = _open(tmp_path)
    fill(src, n_batches=10)
    r = EngineRunner(RunningVolume(), src, out, "running", state_dir=tmp_path / "s", batch_size=16)
    r.run_until_idle()
    r.close()
    for i in range(10, 30):
        src.append(make_ticks(37, 37 * i))
    src.close(), out.close()
    src, out = _open(tmp_path)
    r = EngineRunner(RunningVolume(), src, out, "running", state_dir=tmp_path / "s", batch_size=64)
    assert r.replayed_rows == 0
    r.run_until_idle()
    assert out.read().drop_columns(["offset"]).equals(reference_output())


def test_outputs_without_checkpoint_are_refused(tmp_path):
    src, out = _open(tmp_path)
    out.append({"ts": [1], "symbol": ["A"], "total": [1.0], "n": [1]})
    with pytest.raises(RuntimeError, match="refusing to write them twice"):
        EngineRunner(RunningVolume(), src, out, "running", state_dir=tmp_path / "s")


_CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {here!r})
    from stream_engines import RUNNING, RunningVolume
    from pyplatform.clock import SimClock
    from pyplatform.domain.schemas import TICKS
    from pyplatform.stream import StreamTable
    from pyplatform.stream.runtime import EngineRunner
    src = StreamTable("ticks", TICKS, {d!r}, clock=SimClock())
    out = StreamTable("out", RUNNING, {d!r}, clock=SimClock())
    r = EngineRunner(RunningVolume(), src, out, "running", state_dir={state!r}, batch_size=7,
                     checkpoint_rows=40)
    print("ready", flush=True)
    while r.step():
        pass
    print("done", flush=True)
""")


def test_killed_runner_process_restarts_to_exactly_the_uninterrupted_output(tmp_path):
    src, out = _open(tmp_path)
    fill(src)
    src.close(), out.close()
    code = _CHILD.format(here=str(Path(__file__).parent), d=str(tmp_path), state=str(tmp_path / "s"))
    kills = 0
    for delay in (0.4, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay * np.random.default_rng(kills).uniform(0.05, 0.3))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    src, out = _open(tmp_path)
    assert kills >= 1 and out.next_offset < src.next_offset, "the child finished before any kill"
    EngineRunner(RunningVolume(), src, out, "running", state_dir=tmp_path / "s", batch_size=7).run_until_idle()
    assert out.read().drop_columns(["offset"]).equals(reference_output())


def _tick_rows(n, seed=0):
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(0, 600, n)) * S + rng.integers(-20, 1, n) * S  # some arrive late
    ts = np.maximum(ts, 0)
    return {"ts": ts, "symbol": np.array(["A.US", "B.US", "C.US"])[rng.integers(0, 3, n)],
            "price": 100 + rng.normal(0, 1, n), "volume": rng.integers(1, 9, n).astype(float),
            "side": np.ones(n, np.int8), "bid": np.full(n, 99.0), "ask": np.full(n, 101.0)}


def _bars_pipeline(tmp_path, batch_size=13):
    ticks = StreamTable("ticks", TICKS, tmp_path, clock=SimClock())
    bars = StreamTable("bars", BARS, tmp_path, clock=SimClock())
    late = StreamTable("late", TICKS, tmp_path, clock=SimClock())
    runner = EngineRunner(BarEngine("1min", accepted_delay=5 * S), ticks, bars, "bars_1m",
                          state_dir=tmp_path / "state", batch_size=batch_size, checkpoint_rows=60,
                          side_outputs={"late": late}, pass_offset=False)
    return ticks, bars, late, runner


def test_bar_pipeline_with_clock_and_late_side_output_survives_crashes(tmp_path):
    data = _tick_rows(900)
    # Uninterrupted run.
    ticks, bars, late, r = _bars_pipeline(tmp_path / "ref")
    ticks.append(data)
    r.run_until_idle()
    r.on_clock(700 * S)
    later = _tick_rows(200, seed=1)
    later["ts"] = later["ts"] + 600 * S  # some still fall into windows the clock closed: late
    ticks.append(later)
    r.run_until_idle()
    want_bars, want_late = bars.read().drop_columns(["offset"]), late.read().drop_columns(["offset"])
    assert want_late.num_rows > 0
    # The same work, crashing after the clock's output is checkpointed but before it is appended,
    # and again after some output was appended but before the next checkpoint.
    d = tmp_path / "run"
    ticks, bars, late, r = _bars_pipeline(d)
    ticks.append(data)
    r.run_until_idle()
    real_append = bars.append
    bars.append = lambda *a, **k: (_ for _ in ()).throw(Crash())
    with pytest.raises(Crash):
        r.on_clock(700 * S)
    bars.append = real_append
    for t in (ticks, bars, late):
        t.close()
    ticks, bars, late, r = _bars_pipeline(d, batch_size=29)
    ticks.append(later)
    r._checkpoint = lambda *a, **k: (_ for _ in ()).throw(Crash())
    with pytest.raises(Crash):
        r.run_until_idle()
    for t in (ticks, bars, late):
        t.close()
    ticks, bars, late, r = _bars_pipeline(d, batch_size=5)
    r.run_until_idle()
    # Different batch sizes may interleave symbols' bars differently; the rows are the same.
    key = [("ts", "ascending"), ("symbol", "ascending")]
    got = bars.read().drop_columns(["offset"])
    assert got.num_rows == want_bars.num_rows
    assert got.sort_by(key).equals(want_bars.sort_by(key))
    assert late.read().drop_columns(["offset"]).equals(want_late)


def test_pipeline_chains_runners_and_runs_in_a_thread(tmp_path):
    ticks = StreamTable("ticks", TICKS, clock=SimClock())
    bars = StreamTable("bars", BARS, clock=SimClock())
    running = StreamTable("running", RUNNING, clock=SimClock())
    bar_runner = EngineRunner(BarEngine("1s"), ticks, bars, "bars", pass_offset=False)
    vol_runner = EngineRunner(RunningVolume(), bars, running, "vol")
    pipe = Pipeline([bar_runner, vol_runner])
    ticks.append(_tick_rows(300))
    pipe.run_until_idle()
    assert running.next_offset == bars.next_offset > 0
    pipe.start()
    ticks.append(_tick_rows(300, seed=3))
    deadline = time.monotonic() + 10
    while bar_runner.rows_in < 600 and time.monotonic() < deadline:
        time.sleep(0.01)
    pipe.close()
    assert bar_runner.rows_in == 600 and bar_runner.error is None


def test_engine_error_stops_at_the_batch_without_skipping_it():
    src = StreamTable("ticks", TICKS, clock=SimClock())
    bars = StreamTable("bars", BARS, clock=SimClock())
    r = EngineRunner(BarEngine("1s"), src, bars, "bars", pass_offset=False, batch_size=4)
    good = _tick_rows(4)
    bad = _tick_rows(4, seed=2)
    bad["price"][2] = np.nan
    src.append(good)
    src.append(bad)
    assert r.step() == 4
    with pytest.raises(ValueError, match="'price' is not finite .* at row 2"):
        r.step()
    assert r._sub.position == 4 and src.acked("bars") == 3  # the bad batch is neither skipped nor acked


def test_filtered_runner_with_offsets_passed_restarts_exactly(tmp_path):
    def build(d, batch):
        ticks = StreamTable("ticks", TICKS, d, clock=SimClock())
        bars = StreamTable("bars", BARS, d, clock=SimClock())
        late = StreamTable("late", TICKS, d, clock=SimClock())
        r = EngineRunner(BarEngine("1min"), ticks, bars, "ab", state_dir=d / "s", batch_size=batch,
                         checkpoint_rows=10_000, filter={"symbol": ["A.US", "B.US"]},
                         side_outputs={"late": late})  # offsets passed: the engine tracks its input offset
        return ticks, bars, late, r

    data = _tick_rows(600)
    ticks, bars, late, r = build(tmp_path / "ref", 50)
    ticks.append(data)
    r.run_until_idle()
    want_bars, want_late = bars.read(), late.read()
    assert set(want_bars.column("symbol").to_pylist()) == {"A.US", "B.US"} and want_late.num_rows > 0
    last_ab = int(np.flatnonzero(np.isin(data["symbol"], ["A.US", "B.US"]))[-1])
    assert r.engine.input_offset == last_ab + 1  # the offset after the last row it was fed

    d = tmp_path / "run"
    ticks, bars, late, r = build(d, 50)
    ticks.append(data)
    r._checkpoint = lambda *a, **k: (_ for _ in ()).throw(Crash())
    r.checkpoint_rows = 300  # crash at the first periodic checkpoint, after output was written
    with pytest.raises(Crash):
        r.run_until_idle()
    for t in (ticks, bars, late):
        t.close()
    ticks, bars, late, r = build(d, 71)
    assert r.replayed_rows > 0
    r.run_until_idle()
    key = [("ts", "ascending"), ("symbol", "ascending")]
    assert bars.read().drop_columns(["offset"]).sort_by(key).equals(want_bars.drop_columns(["offset"]).sort_by(key))
    assert late.read().drop_columns(["offset"]).equals(want_late.drop_columns(["offset"]))


def test_restart_behind_an_earlier_ack_does_not_fail(tmp_path):
    # Steps that emit nothing leave no tag, so after a crash the runner may resume before
    # rows it had already acked; it must carry on, not trip over the forward-only ack.
    def build():
        ticks = StreamTable("ticks", TICKS, tmp_path, clock=SimClock())
        bars = StreamTable("bars", BARS, tmp_path, clock=SimClock())
        return ticks, bars, EngineRunner(BarEngine("1min"), ticks, bars, "b", state_dir=tmp_path / "s",
                                         batch_size=100, checkpoint_rows=10_000, pass_offset=False)
    ticks, bars, r = build()
    ticks.append(_tick_rows(400))
    quiet = _tick_rows(200, seed=5)
    quiet["ts"] = np.sort(quiet["ts"]) % (60 * S) + 660 * S  # all in one window: the last steps emit nothing
    ticks.append(quiet)
    r.run_until_idle()
    assert ticks.acked("b") == 599 and bars.last_tag is not None and bars.last_tag < 600
    for t in (ticks, bars):
        t.close()
    ticks, bars, r = build()
    r.batch_size = 7
    r._sub.batch_size = 7
    before = bars.next_offset
    r.run_until_idle()
    assert bars.next_offset == before and ticks.acked("b") == 599


def test_runner_thread_passes_the_clock_to_close_quiet_windows(tmp_path):
    from pyplatform.clock import SimClock

    ticks = StreamTable("ticks", TICKS, clock=SimClock())
    bars = StreamTable("bars", BARS, clock=SimClock())
    clock = SimClock(0)
    r = EngineRunner(BarEngine("1min"), ticks, bars, "bars", state_dir=tmp_path, pass_offset=False,
                     clock=clock, clock_interval_s=0.02)
    r.start()
    ticks.append(_tick_rows(100))  # 0..600 s; the last window of each symbol waits for a later tick
    deadline = time.monotonic() + 10
    while r.rows_in < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    n_by_ticks = bars.next_offset
    clock.set(2_000 * S)  # time passes with no ticks at all
    while bars.next_offset == n_by_ticks and time.monotonic() < deadline:
        time.sleep(0.01)
    r.close()
    assert r.error is None and bars.next_offset > n_by_ticks
    assert bars.read().column("ts").to_numpy().max() == 540 * S  # the quiet last window came out


def test_clock_calls_that_change_nothing_write_no_checkpoint(tmp_path):
    ticks = StreamTable("ticks", TICKS, clock=SimClock())
    bars = StreamTable("bars", BARS, clock=SimClock())
    r = EngineRunner(BarEngine("1min"), ticks, bars, "bars", state_dir=tmp_path, pass_offset=False)
    ticks.append(_tick_rows(100))
    r.run_until_idle()
    r.on_clock(30 * S)  # the first clock ever does change state (windows before 0 s are closed)
    calls = []
    real = r._checkpoint
    r._checkpoint = lambda *a, **k: (calls.append(a), real(*a, **k))
    for _ in range(5):
        r.on_clock(30 * S)  # window ends + delay are all later: nothing changes
    assert calls == []
    assert r.on_clock(2_000 * S) > 0 and len(calls) == 1  # closes the open windows: one write-ahead checkpoint
    r.on_clock(2_000 * S)
    assert len(calls) == 1
