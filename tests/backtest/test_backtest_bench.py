"""``pyplatform bench backtest``: the --quick form runs, and its pandas loop and the vectorised
dual MA decide crossings the way exact arithmetic does (hand-computed cases)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pyplatform.bench.backtest import pandas_loop_dual_ma
from pyplatform.backtest.vectorized import (dual_ma_positions, dual_ma_returns, fixed_point_scale, moving_averages,
                                            sweep_dual_ma)


def test_bench_backtest_quick_runs_and_prints_every_path():
    from pyplatform.cli.bench import app

    res = CliRunner().invoke(app, ["backtest", "--quick"])
    assert res.exit_code == 0, res.output
    for row in ("pandas loop", "signals", "frictionless", "realistic", "vectorised sweep"):
        assert row in res.output, res.output


def _frame(opens, closes, symbol="EURUSD.GB"):
    idx = pd.MultiIndex.from_arrays([pd.date_range("2024-01-02", periods=len(closes), freq="min"),
                                     [symbol] * len(closes)], names=["datetime", "symbol"])
    return pd.DataFrame({"open": opens, "close": closes}, index=idx)


def _exact_positions(closes, fast, slow):
    """The crossover rules in exact rational arithmetic on the decimal prices (hand oracle)."""
    q = [Fraction(str(c)) for c in closes]  # the decimal as written, not the nearest double
    pos, cur = [], 0
    for t in range(len(q)):
        if t >= slow:
            d1 = sum(q[t - fast + 1:t + 1]) / fast - sum(q[t - slow + 1:t + 1]) / slow
            d0 = sum(q[t - fast:t]) / fast - sum(q[t - slow:t]) / slow
            if cur == 0 and d1 > 0 and d0 <= 0:
                cur = 1
            elif cur == 1 and d1 < 0 and d0 >= 0:
                cur = 0
        pos.append(cur)
    return np.array(pos)


# Like the EURUSD window that crashed the bench (1 of 5,000 returns: 0.0 vs -9.03e-6): at the
# last bar the 2- and 4-bar means are *equal* in decimals (1.107025 each), and pandas' float
# rolling means put the fast one above the slow one -- a golden cross exact arithmetic does
# not have.
TIE = [1.10689, 1.10702, 1.10689, 1.10697, 1.10706, 1.10709, 1.10702, 1.10703, 1.10694, 1.10711]


def _float_positions(c, fast, slow):
    """The same rules on pandas' float rolling means (what the bench's loop used to do)."""
    f, s = pd.Series(c).rolling(fast).mean().to_numpy(), pd.Series(c).rolling(slow).mean().to_numpy()
    pos, cur = [], 0
    for t in range(len(c)):
        if t >= slow:
            if cur == 0 and f[t] > s[t] and f[t - 1] <= s[t - 1]:
                cur = 1
            elif cur == 1 and f[t] < s[t] and f[t - 1] >= s[t - 1]:
                cur = 0
        pos.append(cur)
    return np.array(pos)


def test_a_tie_of_the_averages_is_not_a_cross():
    # hand computation, fast 2 / slow 4: (fast, slow) means at bar 4 (1.25, 1.3), bar 5
    # (1.35, 1.3): golden cross at 5; bars 9 and 10 (1.5, 1.5): a tie, no death cross;
    # bar 11 (1.45, 1.475): death cross (the tie before counts as "at or above")
    c = np.array([1.5, 1.4, 1.3, 1.2, 1.3, 1.4, 1.5, 1.5, 1.5, 1.5, 1.5, 1.4])
    want = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0]
    assert _exact_positions(c, 2, 4).tolist() == want
    np.testing.assert_array_equal(dual_ma_positions(c, 2, 4), want)
    np.testing.assert_array_equal(pandas_loop_dual_ma(_frame(c, c), 2, 4).to_numpy(), dual_ma_returns(c, c, 2, 4))


def test_up_through_a_tie_and_down_again_hand_computed():
    # fast 2 / slow 3 over 1.00, 0.99, 0.98, 0.98, 0.98, 1.01, 1.02, 0.95:
    # means (fast, slow) at bar 3: (0.98, 0.983..), bar 4: (0.98, 0.98) tie, bar 5: (0.995, 0.99)
    # -> golden at 5 (tie before counts as "at or below"); bar 7: (0.985, 0.993..) -> death at 7
    c = np.array([1.00, 0.99, 0.98, 0.98, 0.98, 1.01, 1.02, 0.95])
    assert _exact_positions(c, 2, 3).tolist() == [0, 0, 0, 0, 0, 1, 1, 0]
    np.testing.assert_array_equal(dual_ma_positions(c, 2, 3), [0, 0, 0, 0, 0, 1, 1, 0])
    b = _frame(c, c)
    np.testing.assert_array_equal(pandas_loop_dual_ma(b, 2, 3).to_numpy(), dual_ma_returns(c, c, 2, 3))


def test_pandas_float_means_break_the_tie_the_exact_paths_keep():
    c = np.array(TIE)
    q = [Fraction(str(x)) for x in TIE]
    assert sum(q[-2:]) / 2 == sum(q[-4:]) / 4  # a tie in decimals
    exact = _exact_positions(c, 2, 4)
    assert exact.tolist() == [0, 0, 0, 0, 1, 1, 1, 0, 0, 0]
    assert _float_positions(c, 2, 4)[-1] == 1  # the float means see a golden cross at the tie
    np.testing.assert_array_equal(dual_ma_positions(c, 2, 4), exact)
    o = np.concatenate([[c[0]], c[:-1]])
    np.testing.assert_array_equal(pandas_loop_dual_ma(_frame(o, c), 2, 4).to_numpy(), dual_ma_returns(o, c, 2, 4))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loop_equals_vectorised_on_many_tie_prone_series(seed):
    # prices on a coarse tick grid (many exact ties between the averages)
    rng = np.random.default_rng(seed)
    c = np.round(1.1 + np.cumsum(rng.integers(-1, 2, 3000)) * 1e-5, 5)
    o = np.concatenate([[c[0]], c[:-1]])
    b = _frame(o, c)
    ref = dual_ma_returns(o, c, 5, 20)
    np.testing.assert_array_equal(pandas_loop_dual_ma(b, 5, 20).to_numpy(), ref)
    np.testing.assert_array_equal(dual_ma_positions(c, 5, 20)[:400], _exact_positions(c[:400], 5, 20))


def test_moving_average_is_accurate_on_long_large_series():
    # 50,000 prices near $60,000: a prefix-sum difference loses ~1e4 ulps here
    rng = np.random.default_rng(4)
    c = np.round(60_000 + np.cumsum(rng.normal(0, 5, 50_000)), 2)
    ma = moving_averages(c, [5])[0]
    q = [Fraction(x) for x in c[-200:]]
    exact = np.array([float(sum(q[i - 4:i + 1]) / 5) for i in range(4, 200)])
    np.testing.assert_array_max_ulp(ma[-196:], exact, maxulp=2)
    # a flat window is its value exactly
    flat = np.array([3.3] * 10)
    assert (moving_averages(flat, [4])[0][3:] == 3.3).all()


def test_fixed_point_scale():
    assert fixed_point_scale(np.array([1.10708, 1.1]), 20) == 100_000
    assert fixed_point_scale(np.array([101.25, 99.0]), 20) == 100
    assert fixed_point_scale(np.array([1 / 3]), 20) is None
    assert fixed_point_scale(np.array([1e14]), 500) is None  # integer window sums would overflow


def test_sweep_uses_the_exact_crossings():
    c = np.array(TIE * 3)
    o = np.concatenate([[c[0]], c[:-1]])
    res = sweep_dual_ma(_frame(o, c), [2], [4], periods_per_year=252)
    r = dual_ma_returns(o, c, 2, 4)
    assert res.loc[("EURUSD.GB", 2, 4), "total_return"] == pytest.approx(np.prod(1 + r) - 1, abs=1e-15)
