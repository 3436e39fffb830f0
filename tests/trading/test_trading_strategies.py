"""Strategies: crossover semantics against a pandas oracle, no look-ahead, the other two strategies."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyplatform.domain import Direction
from pyplatform.domain.schemas import SIGNALS
from pyplatform.strategies import DualMACrossover, Momentum, ZScoreMeanReversion, build, signals_to_batch
from pyplatform.strategies.run import factor_rows, run_over_history


def bars(n=200, symbols=("A.US", "B.US"), seed=1):
    rng = np.random.default_rng(seed)
    idx = pd.MultiIndex.from_product([pd.date_range("2024-01-02 14:30", periods=n, freq="min"), list(symbols)],
                                     names=["datetime", "symbol"])
    steps = rng.normal(0, 0.01, size=(n, len(symbols)))
    close = 100 * np.exp(np.cumsum(steps, axis=0)).ravel()
    return pd.DataFrame({"close": close}, index=idx)


def test_crossover_matches_pandas_oracle_and_never_repeats():
    b = bars()
    strat = DualMACrossover(fast=5, slow=20)
    got = run_over_history([strat], b)
    expected = []
    for sym, g in b["close"].groupby(level="symbol"):
        fast, slow = g.rolling(5).mean(), g.rolling(20).mean()
        d = np.sign(fast - slow).replace(0, np.nan).ffill()
        prev = d.shift(1)
        cross = d[(d != prev) & prev.notna() & d.notna()]
        expected += [(int(t.value), sym, int(v)) for (t, _), v in cross.items()]
    assert sorted((s.ts, s.symbol, int(s.direction)) for s in got) == sorted(expected)
    assert len(expected) > 4
    for sym in ("A.US", "B.US"):  # golden and death crosses alternate: no repeated trigger
        dirs = [int(s.direction) for s in got if s.symbol == sym]
        assert all(a != b for a, b in zip(dirs, dirs[1:]))
    golden = next(s for s in got if s.direction is Direction.LONG)
    assert golden.reason.startswith("golden cross") and set(golden.factors) == {"ma_cross_fast", "ma_cross_slow"}


_CACHE = {}


def _rows(strat, n=120, seed=3):
    key = (strat.KIND, tuple(sorted(strat.params.items())), n, seed)
    if key not in _CACHE:
        _CACHE[key] = factor_rows([strat], bars(n, seed=seed))
    return _CACHE[key]


@pytest.mark.parametrize("make", [lambda: DualMACrossover(fast=3, slow=8), lambda: ZScoreMeanReversion(window=10, entry=1.5),
                                  lambda: Momentum(window=5, threshold=0.01)])
def test_row_by_row_equals_whole_batch(make):
    rows = _rows(make())
    whole = make().on_batch(rows)
    one = make()
    singles = [s for i in range(len(rows)) for s in one.on_batch(rows.iloc[i:i + 1])]
    assert whole == singles and whole


@settings(max_examples=25, deadline=None)
@given(st.integers(30, 230), st.integers(0, 10_000))
def test_no_look_ahead_future_rows_cannot_change_past_signals(cut, seed):
    rows = _rows(DualMACrossover(fast=3, slow=8), seed=seed % 3)
    cut -= cut % 2  # two symbols per timestamp: cut between timestamps
    past = rows.iloc[:cut]
    future = rows.iloc[cut:].copy()
    future[["ma_cross_fast", "ma_cross_slow"]] = np.random.default_rng(seed).normal(100, 5, (len(future), 2))
    a = DualMACrossover(fast=3, slow=8).on_batch(pd.concat([past, rows.iloc[cut:]]))
    b = DualMACrossover(fast=3, slow=8).on_batch(pd.concat([past, future]))
    t_cut = past["ts"].iloc[-1] if len(past) else -1
    assert [s for s in a if s.ts <= t_cut] == [s for s in b if s.ts <= t_cut]


def test_zscore_hysteresis():
    s = ZScoreMeanReversion(window=20, entry=2.0, exit=0.5)
    z = np.array([0.0, -1.9, -2.0, -1.0, -0.6, -0.5, 0.3, 2.5, 2.6, 0.4])
    rows = {"ts": np.arange(10), "symbol": np.array(["A.US"] * 10), "zscore_z": z}
    sig = s.on_batch(rows)
    assert [(int(x.ts), int(x.direction)) for x in sig] == [(2, 1), (5, 0), (7, -1), (9, 0)]
    assert "oversold" in sig[0].reason


def test_momentum_thresholds():
    s = Momentum(window=5, threshold=0.02)
    roc = np.array([np.nan, 0.0, 0.02, 0.021, 0.03, -0.01, -0.0201])
    sig = s.on_batch({"ts": np.arange(7), "symbol": np.array(["A.US"] * 7), "momentum_roc": roc})
    assert [(int(x.ts), int(x.direction)) for x in sig] == [(3, 1), (5, 0), (6, -1)]


def test_factor_expressions_and_config():
    s = build({"kind": "zscore", "name": "mr", "params": {"window": 30}})
    assert s.factors() == {"mr_z": "(close - mavg(close, 30)) / mstd(close, 30)"}
    with pytest.raises(ValueError, match="fast < slow"):
        DualMACrossover(fast=20, slow=5)
    with pytest.raises(ValueError, match="unknown parameter"):
        DualMACrossover(speed=3)
    with pytest.raises(ValueError, match="unknown strategy kind"):
        build({"kind": "astrology"})
    with pytest.raises(KeyError, match="ma_cross_fast"):
        DualMACrossover().on_batch({"ts": np.arange(2), "symbol": np.array(["A.US"] * 2)})


def test_signals_batch_schema():
    sig = run_over_history([DualMACrossover(fast=5, slow=20)], bars())
    batch = signals_to_batch(sig)
    assert batch.schema == SIGNALS and batch.num_rows == len(sig)
    assert json.loads(batch.column("factors")[0].as_py()).keys() == {"ma_cross_fast", "ma_cross_slow"}
