"""ticks -> bar engine -> bars -> factor engine -> factors, restarted mid-way, equals one run."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pyplatform.clock import SimClock
from pyplatform.domain.schemas import BARS, TICKS, factor_schema
from pyplatform.factors import FactorEngine
from pyplatform.stream import EngineRunner, Pipeline, StreamTable
from pyplatform.stream.bar_engine import BarEngine

S = 1_000_000_000
FACTORS = {"ma3": "mavg(close, 3)", "ret1": "close / prev(close) - 1", "vw": "msum(vwap * volume, 3) / msum(volume, 3)"}


def _ticks(n, seed):
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(0, 1200, n)).astype(np.int64) * S + seed * 1200 * S
    return {"ts": ts, "symbol": np.array(["AAPL.US", "MSFT.US", "EURUSD.GB"])[rng.integers(0, 3, n)],
            "price": 100 + rng.normal(0, 1, n).cumsum(), "volume": rng.integers(1, 9, n).astype(float),
            "side": np.ones(n, np.int8), "bid": np.zeros(n), "ask": np.zeros(n)}


def _pipeline(d, batch):
    ticks = StreamTable("ticks", TICKS, d, clock=SimClock())
    bars = StreamTable("bars", BARS, d, clock=SimClock())
    factors = StreamTable("factors", factor_schema(list(FACTORS)), d, clock=SimClock())
    pipe = Pipeline([
        EngineRunner(BarEngine("1min"), ticks, bars, "bars", state_dir=d / "state", batch_size=batch,
                     checkpoint_rows=150, pass_offset=False),
        EngineRunner(FactorEngine(dict(FACTORS)), bars, factors, "factors", state_dir=d / "state",
                     batch_size=max(1, batch // 10), checkpoint_rows=15),
    ])
    return (ticks, bars, factors), pipe


def _sorted(t: pa.Table) -> pa.Table:
    return t.drop_columns(["offset"]).sort_by([("ts", "ascending"), ("symbol", "ascending")])


class Crash(Exception):
    pass


def test_bar_and_factor_pipeline_restart_equals_uninterrupted_run(tmp_path):
    (ticks, bars, factors), pipe = _pipeline(tmp_path / "ref", 64)
    for seed in range(3):
        ticks.append(_ticks(400, seed))
        pipe.run_until_idle()
    want = _sorted(factors.read())
    assert want.num_rows > 40 and want.num_rows == bars.next_offset

    d = tmp_path / "run"
    tables, pipe = _pipeline(d, 64)
    tables[0].append(_ticks(400, 0))
    pipe.run_until_idle()
    tables[0].append(_ticks(400, 1))
    factor_runner = pipe.runners[1]
    factor_runner._checkpoint = lambda *a, **k: (_ for _ in ()).throw(Crash())  # dies after writing output
    with pytest.raises(Crash):
        pipe.run_until_idle()
    for t in tables:
        t.close()
    tables, pipe = _pipeline(d, 37)  # a new process with other batch sizes
    tables[0].append(_ticks(400, 2))
    pipe.run_until_idle()
    got = _sorted(tables[2].read())
    assert got.num_rows == want.num_rows
    assert got.select(["ts", "symbol"]).equals(want.select(["ts", "symbol"]))
    for name in FACTORS:
        np.testing.assert_allclose(got.column(name).to_numpy(zero_copy_only=False),
                                   want.column(name).to_numpy(zero_copy_only=False), rtol=1e-12, equal_nan=True)
