"""Exactness at the numerical edges (issue 16, items 1-4), batch and stream alike.

Expected values are hand-written or come from independent oracles: ``fractions.Fraction`` /
``math.fsum`` (exact sums and variances), pandas, TA-Lib. The property tests generate the shapes
that break running sums -- flat runs, exact zeros, 12-orders-of-magnitude jumps, NULL runs longer
than the window -- and require batch == stream == the exact reference within a bound that only
depends on the values *inside* the window.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers_factors import single
from pyplatform.factors import compile_batch, compile_stream, load_library

N = np.nan
EPS = np.finfo(float).eps
LIB = {f.name: f.expression for f in load_library()}


def _both(expr: str, **cols) -> list[np.ndarray]:
    b, s = single(expr, **cols)
    return [b, s]


# -- item 1: flat windows have spread exactly 0 ----------------------------------------------------
FLAT = [1.0, 2.0, 3.0] + [0.1] * 25


def test_zscore_of_a_flat_window_is_null_in_both_runtimes():
    # rows 22..27: the 20-row window holds only 0.1 -> pandas std is 0 -> x / 0 is NULL
    assert (pd.Series(FLAT).rolling(20).std().to_numpy()[22:] == 0).all()
    for out in _both("zscore(close, 20)", close=FLAT):
        assert np.isnan(out[:19]).all()
        assert np.isfinite(out[19:22]).all()
        assert np.isnan(out[22:]).all(), out[22:]
    for out in _both("mstd(close, 20)", close=FLAT) + _both("mvarp(close, 20)", close=FLAT):
        assert (out[22:] == 0.0).all(), out[22:]


def test_flat_window_mean_and_sum_are_the_value_up_to_rounding():
    # only the spread is exact by rule; sums carry the rounding of adding 20 copies of 0.1
    for out in _both("mavg(close, 20)", close=FLAT):
        np.testing.assert_allclose(out[22:], 0.1, rtol=20 * EPS, atol=0)
    for out in _both("msum(close, 20)", close=FLAT):
        np.testing.assert_allclose(out[22:], float(Fraction(0.1) * 20), rtol=20 * EPS, atol=0)


def test_bollinger_percent_b_of_a_flat_window_is_null():
    for out in _both(LIB["bb_percent_b_20"], close=FLAT):
        assert np.isfinite(out[19:22]).all()
        assert np.isnan(out[22:]).all(), out[22:]


def test_mcorr_and_mbeta_with_a_flat_side_are_null():
    other = np.arange(28.0)
    for expr in ("mcorr(close, volume, 20)", "mbeta(volume, close, 20)"):
        for out in _both(expr, close=FLAT, volume=other):
            assert np.isnan(out[22:]).all(), (expr, out[22:])
            assert np.isfinite(out[19:22]).all(), expr


# -- item 2: sums over exact zeros are exactly 0 ---------------------------------------------------
ZEROS = [0.09, 0.24, 0.8, 0.58, 0.09, 0.43, 0.48, 0, 0, 0, 0, 0, 0]


def test_msum_over_exact_zeros_is_exactly_zero():
    want = [N] * 4 + [math.fsum(ZEROS[i - 4:i + 1]) for i in range(4, 13)]
    assert want[11] == 0.0 and want[12] == 0.0
    for out in _both("msum(close, 5)", close=ZEROS):
        np.testing.assert_allclose(out, want, rtol=1e-15, atol=0)
        assert out[11] == 0.0 and out[12] == 0.0
    for out in _both("1 / msum(close, 5)", close=ZEROS):
        assert np.isnan(out[11:]).all()  # division by an exact zero is NULL
    for out in _both("sign(msum(close, 5))", close=ZEROS):
        assert list(out[10:]) == [1.0, 0.0, 0.0]


def test_amihud_is_never_negative_and_exactly_zero_on_flat_prices():
    close = [10.0, 11.0, 10.5, 12.0, 11.0] + [11.0] * 25
    for out in _both(LIB["amihud_20"], close=close, volume=[1000.0] * 30):
        ok = out[~np.isnan(out)]
        assert (ok >= 0).all(), ok
        assert (out[25:] == 0.0).all(), out[25:]


# -- item 3: no cancellation error after a large value leaves the window ---------------------------
def _exact_std(vals, ddof=1) -> float:
    fr = [Fraction(v) for v in vals if not math.isnan(v)]
    mean = sum(fr) / len(fr)
    return math.sqrt(float(sum((v - mean) ** 2 for v in fr) / (len(fr) - ddof)))


@pytest.mark.parametrize("lead", [8, 11, 13])
def test_mstd_after_a_jump_of_twelve_orders_of_magnitude(lead):
    rng = np.random.default_rng(3)
    x = [1e12] * lead + list(1 + 0.01 * rng.standard_normal(30))
    for expr, ddof in (("mstd(close, 8)", 1), ("mstdp(close, 8)", 0)):
        want = [_exact_std(x[i - 7:i + 1], ddof) for i in range(7, len(x))]
        for out in _both(expr, close=x):
            np.testing.assert_allclose(out[7:], want, rtol=1e-9, atol=0, err_msg=expr)
            assert (out[15:] > 0.001).all()  # the true value (~0.01), not a cancelled 0


def test_one_bad_tick_leaves_no_error_behind():
    rng = np.random.default_rng(4)
    x = list(100 + rng.standard_normal(60))
    x[20] = 1e5
    want = [_exact_std(x[i - 9:i + 1]) for i in range(9, 60)]
    for out in _both("mstd(close, 10)", close=x):
        np.testing.assert_allclose(out[9:], want, rtol=1e-10, atol=0)
    # the same through mvar / mcorr / wma windows that contain the tick and then lose it
    y = list(rng.standard_normal(60))
    corr = [np.corrcoef(x[i - 9:i + 1], y[i - 9:i + 1])[0, 1] for i in range(30, 60)]
    for out in _both("mcorr(close, volume, 10)", close=x, volume=y):
        np.testing.assert_allclose(out[30:], corr, rtol=1e-9)
    wma = talib.WMA(np.asarray(x), 10)
    for out in _both("wma(close, 10)", close=x):
        np.testing.assert_allclose(out[31:], wma[31:], rtol=1e-12)


# -- item 4: a NULL close blanks only its own row in MACD ------------------------------------------
def test_macd_after_a_null_matches_talib_on_the_series_without_it():
    rng = np.random.default_rng(5)
    x = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 120)))
    x[40] = np.nan
    kept = np.flatnonzero(~np.isnan(x))
    line, signal, hist = talib.MACD(x[kept], 12, 26, 9)
    for expr, ref in (("macd(close)", line), ("macdSignal(close)", signal), ("macdHist(close)", hist)):
        want = np.full(len(x), np.nan)
        want[kept] = ref
        for out in _both(expr, close=x):
            # TA-Lib starts all three outputs where the signal line starts (row 33 here)
            have = ~np.isnan(want)
            np.testing.assert_allclose(out[have], want[have], rtol=1e-9, atol=1e-12, err_msg=expr)
            assert np.isnan(out[40]), expr
    # only row 40 is NULL among the rows where the MACD line is defined
    for out in _both("macd(close)", close=x):
        assert list(np.flatnonzero(np.isnan(out[25:])) + 25) == [40]


# -- property tests: batch == stream == exact reference -------------------------------------------
SCALES = [1e-7, 0.1, 1.0, 100.0, 1e12]


@st.composite
def edge_series(draw, max_len=36):
    """Segments of flat runs, exact zeros, NULL runs (up to 10 rows, longer than the windows)
    and noise at scales 12 orders of magnitude apart."""
    out: list[float] = []
    while len(out) < draw(st.integers(4, max_len)):
        kind = draw(st.sampled_from(["flat", "zeros", "nulls", "noise", "jump"]))
        k = draw(st.integers(1, 10))
        if kind == "flat":
            out += [draw(st.sampled_from([0.1, 3.0, -2.5, 1e12, 1e-7]))] * k
        elif kind == "zeros":
            out += [0.0] * k
        elif kind == "nulls":
            out += [N] * k
        elif kind == "jump":
            out += [draw(st.sampled_from([1e12, -1e12, 1e5]))]
        else:
            scale = draw(st.sampled_from(SCALES))
            out += [scale * draw(st.integers(-1000, 1000)) / 7 for _ in range(k)]
    return out


def _windows(x: list[float], n: int):
    for i in range(len(x)):
        if i < n - 1:
            yield i, None
        else:
            yield i, [v for v in x[i - n + 1:i + 1] if not math.isnan(v)]


def _check_sums(x, n, mean: bool, got: np.ndarray, label: str) -> None:
    for i, w in _windows(x, n):
        if not w:
            assert np.isnan(got[i]), (label, i)
            continue
        exact = sum(Fraction(v) for v in w)
        if mean:
            exact /= len(w)
        if all(v == 0 for v in w):  # sums over exact zeros are exactly 0
            assert got[i] == 0.0, (label, i, got[i])
            continue
        # recursive summation bound, over the values inside the window only
        bound = 2 * n * EPS * math.fsum(abs(v) for v in w) / (len(w) if mean else 1)
        assert abs(Fraction(got[i]) - exact) <= Fraction(bound), (label, i, got[i], float(exact))


def _check_var(x, n, ddof: int, std: bool, got: np.ndarray, label: str) -> None:
    for i, w in _windows(x, n):
        if w is None or len(w) < 1 + ddof:
            assert np.isnan(got[i]), (label, i)
            continue
        fr = [Fraction(v) for v in w]
        mu = sum(fr) / len(fr)
        exact = sum((v - mu) ** 2 for v in fr) / (len(fr) - ddof)
        if len(set(w)) == 1:
            assert got[i] == 0.0, (label, i, got[i])
            continue
        var = Fraction(got[i]) ** 2 if std else Fraction(got[i])
        # relative error, plus a floor set by the largest value *in the window*
        bound = Fraction(1e-9) * exact + Fraction(64 * n * EPS) * Fraction(max(abs(v) for v in w)) ** 2
        assert abs(var - exact) <= bound, (label, i, got[i], float(exact))


EDGE = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _run_two_symbols(expr: str, a: list[float], b: list[float], cols=("close",), sizes=(3, 1, 7)):
    """Batch and stream (whole, and in uneven batches) over two interleaved symbols."""
    m = max(len(a), len(b))
    pa_, pb_ = a + [N] * (m - len(a)), b + [N] * (m - len(b))
    frame = pd.DataFrame({"ts": np.repeat(np.arange(m), 2), "symbol": np.tile(["A.US", "B.US"], m)})
    for c in cols:
        frame[c] = np.ravel(np.column_stack([pa_, pb_])) if c == cols[0] else np.ravel(np.column_stack([pb_, pa_]))
    batch = compile_batch(expr)(frame).to_numpy()
    whole = compile_stream(expr).update(frame)
    sf, parts, i, k = compile_stream(expr), [], 0, 0
    while i < len(frame):
        parts.append(sf.update(frame.iloc[i:i + sizes[k % len(sizes)]]))
        i, k = i + sizes[k % len(sizes)], k + 1
    np.testing.assert_array_equal(np.concatenate(parts), whole, err_msg=expr)
    return {"A": (batch[0::2], whole[0::2], pa_), "B": (batch[1::2], whole[1::2], pb_)}


@EDGE
@given(a=edge_series(), b=edge_series(), n=st.integers(2, 6))
def test_moving_sums_and_means_are_exact_at_the_edges(a, b, n):
    for fn, mean in (("msum", False), ("mavg", True)):
        res = _run_two_symbols(f"{fn}(close, {n})", a, b)
        for sym, (batch, stream, x) in res.items():
            for label, got in (("batch", batch), ("stream", stream)):
                _check_sums(x, n, mean, got, f"{fn} {label} {sym}")


@EDGE
@given(a=edge_series(), b=edge_series(), n=st.integers(2, 6))
def test_moving_variances_are_exact_at_the_edges(a, b, n):
    for fn, ddof, std in (("mvar", 1, False), ("mstd", 1, True), ("mvarp", 0, False), ("mstdp", 0, True)):
        res = _run_two_symbols(f"{fn}(close, {n})", a, b)
        for sym, (batch, stream, x) in res.items():
            for label, got in (("batch", batch), ("stream", stream)):
                _check_var(x, n, ddof, std, got, f"{fn} {label} {sym}")


@EDGE
@given(a=edge_series(), b=edge_series(), n=st.integers(2, 6))
def test_moving_extremes_counts_and_correlation_at_the_edges(a, b, n):
    res = _run_two_symbols(f"mmax(close, {n}) - mmin(close, {n})", a, b)
    for sym, (batch, stream, x) in res.items():
        for i, w in _windows(x, n):
            want = (max(w) - min(w)) if w else N
            np.testing.assert_array_equal([batch[i], stream[i]], [want, want], err_msg=f"{sym} {i}")
    res = _run_two_symbols(f"mcount(close, {n})", a, b)
    for sym, (batch, stream, x) in res.items():
        want = [float(sum(not math.isnan(v) for v in x[max(0, i - n + 1):i + 1])) for i in range(len(x))]
        want = [w if w >= 1 else N for w in want]
        np.testing.assert_array_equal(batch, want)
        np.testing.assert_array_equal(stream, want)
    # correlation: a flat side (or fewer than two pairs) is NULL in both runtimes
    res = _run_two_symbols(f"mcorr(close, volume, {n})", a, b, cols=("close", "volume"))
    for sym, (batch, stream, x) in res.items():
        y = res["B" if sym == "A" else "A"][2]
        for i in range(n - 1, len(x)):
            pairs = [(p, q) for p, q in zip(x[i - n + 1:i + 1], y[i - n + 1:i + 1])
                     if not (math.isnan(p) or math.isnan(q))]
            if len(pairs) < 2 or len({p for p, _ in pairs}) == 1 or len({q for _, q in pairs}) == 1:
                assert np.isnan(batch[i]) and np.isnan(stream[i]), (sym, i, pairs, batch[i], stream[i])
