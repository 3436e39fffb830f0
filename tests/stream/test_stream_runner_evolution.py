"""A runner whose factor engine gains and loses factors mid-run, and restarts exactly."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pyplatform.clock import SimClock
from pyplatform.domain.schemas import BARS, factor_schema
from pyplatform.factors import FactorEngine
from pyplatform.stream import EngineRunner, StreamTable

S = 1_000_000_000
BASE = {"ma3": "mavg(close, 3)", "ret1": "close / prev(close) - 1"}
NEW = ("mx4", "mmax(high, 4)")


def _bars(n: int, start: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed + start)
    close = 100 + rng.normal(0, 1, n).cumsum()
    return {"ts": (np.arange(start, start + n, dtype=np.int64) // 3) * 60 * S,
            "symbol": np.array(["AAPL.US", "MSFT.US", "EURUSD.GB"])[np.arange(start, start + n) % 3],
            "open": close, "high": close + 1, "low": close - 1, "close": close,
            "volume": np.full(n, 10.0), "vwap": close, "trades": np.ones(n, np.int64)}


def _open(d, checkpoint_rows=10):
    bars = StreamTable("bars", BARS, d, clock=SimClock())
    out = StreamTable("factors", factor_schema(list(BASE)), d, clock=SimClock())
    runner = EngineRunner(FactorEngine(dict(BASE)), bars, out, "factors", state_dir=d / "state",
                          batch_size=7, checkpoint_rows=checkpoint_rows)
    return bars, out, runner


class Crash(Exception):
    pass


def test_added_factor_reaches_the_table_and_removed_one_goes_null(tmp_path):
    bars, out, runner = _open(tmp_path)
    bars.append(_bars(30, 0))
    runner.run_until_idle()
    runner.engine.add_factor(*NEW)
    runner.step()  # the runner notices the new column before feeding anything
    assert out.schema.names == ["ts", "symbol", "ma3", "ret1", "mx4"]
    bars.append(_bars(30, 30))
    runner.run_until_idle()
    got = out.read()
    assert got.num_rows == 60
    mx4 = got.column("mx4").to_numpy(zero_copy_only=False)
    assert np.isnan(mx4[:30].astype(float)).all()
    # oracle: a fresh engine holding only the new factor, fed the rows after the add
    ref = FactorEngine(dict([NEW])).feed(bars.read(30, 60))
    np.testing.assert_allclose(mx4[30:].astype(float), ref.column("mx4").to_numpy(zero_copy_only=False),
                               equal_nan=True)
    assert not np.isnan(mx4[30:].astype(float)).all()
    runner.engine.remove_factor("ma3")
    bars.append(_bars(9, 60))
    runner.run_until_idle()
    tail = out.read(60)
    assert tail.num_rows == 9 and tail.column("ma3").null_count == 9
    assert tail.column("mx4").null_count == 0
    runner.close()


@pytest.mark.parametrize("crash", ["after_output", "before_first_step"])
def test_factor_added_mid_run_then_restart_equals_the_uninterrupted_run(tmp_path, crash):
    def feed_and_add(d, die):
        bars, out, runner = _open(d)
        bars.append(_bars(25, 0))
        runner.run_until_idle()
        runner.engine.add_factor(*NEW)
        if die == "before_first_step":
            # the process dies right after the change was noticed (checkpointed), before any rows
            runner._follow_engine()
            return bars, out, runner
        bars.append(_bars(40, 25))
        runner.step()
        runner.step()
        if die == "after_output":
            # the next periodic checkpoint fails: output written, checkpoint not
            runner._checkpoint = lambda *a, **k: (_ for _ in ()).throw(Crash())
            with pytest.raises(Crash):
                runner.run_until_idle()
        return bars, out, runner

    # reference: one uninterrupted run
    bars, out, runner = feed_and_add(tmp_path / "ref", None)
    runner.run_until_idle()
    bars.append(_bars(20, 65))
    runner.run_until_idle()
    want = out.read()

    d = tmp_path / "run"
    bars, out, runner = feed_and_add(d, crash)
    bars.close()
    out.close()
    # a new process builds the engine with the base factors only; the checkpoint brings the new one back
    bars, out, runner = _open(d)
    assert "mx4" in runner.engine.factors and out.schema.names[-1] == "mx4"
    if crash == "before_first_step":
        bars.append(_bars(40, 25))
    bars.append(_bars(20, 65))
    runner.run_until_idle()
    got = out.read()
    assert got.num_rows == want.num_rows == 85
    assert got.select(["ts", "symbol", "offset"]).equals(want.select(["ts", "symbol", "offset"]))
    for name in ("ma3", "ret1", "mx4"):
        np.testing.assert_allclose(got.column(name).to_numpy(zero_copy_only=False).astype(float),
                                   want.column(name).to_numpy(zero_copy_only=False).astype(float),
                                   rtol=1e-12, equal_nan=True)
    # null for the 25 rows before the add, then 3 warm-up rows per symbol (window 4, 3 symbols)
    assert got.column("mx4").slice(0, 25).null_count == 25
    assert got.column("mx4").null_count == 25 + 3 * 3
    runner.close()


def test_runner_still_refuses_a_missing_required_column(tmp_path):
    class Broken:
        schema = pa.schema([("ts", pa.int64()), ("symbol", pa.string())])

        def feed(self, batch):
            return pa.table({"ts": batch.column("ts")})  # forgot symbol

    bars = StreamTable("bars", BARS, tmp_path, clock=SimClock())
    out = StreamTable("o", Broken.schema, tmp_path, clock=SimClock())
    runner = EngineRunner(Broken(), bars, out, "o")
    bars.append(_bars(3, 0))
    with pytest.raises(Exception, match="symbol"):
        runner.step()
    assert out.next_offset == 0
