"""Stream == batch: for every library factor and for random expressions, the stream runtime fed
row by row and in random batch sizes equals the batch runtime on the same rows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from helpers_factors import market
from pyplatform.factors import Binary, Call, Col, Num, Unary, compile_batch, compile_stream, load_library

LIB = load_library()
PARITY = settings(max_examples=12, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _feed_in_batches(expr, frame, sizes):
    sf = compile_stream(expr)
    out, i, k = [], 0, 0
    while i < len(frame):
        n = sizes[k % len(sizes)]
        out.append(sf.update(frame.iloc[i:i + n]))
        i, k = i + n, k + 1
    return np.concatenate(out) if out else np.zeros(0)


@PARITY
@given(seed=st.integers(0, 10_000), n_symbols=st.integers(1, 3), n_rows=st.integers(0, 70),
       nan_frac=st.sampled_from([0.0, 0.0, 0.1]), sizes=st.lists(st.integers(1, 40), min_size=1, max_size=5))
def test_library_factors_stream_equals_batch(seed, n_symbols, n_rows, nan_frac, sizes):
    frame = market(seed, n_symbols, n_rows, nan_frac)
    for f in LIB:
        expr = f.expr
        batch = compile_batch(expr)(frame).to_numpy()
        whole = compile_stream(expr).update(frame)
        chunked = _feed_in_batches(expr, frame, sizes)
        np.testing.assert_allclose(whole, batch, rtol=1e-7, atol=1e-9, equal_nan=True, err_msg=f.name)
        # the stream's state sequence does not depend on how rows are batched: bit-identical
        np.testing.assert_array_equal(chunked, whole, err_msg=f.name)


def test_library_factors_row_by_row():
    frame = market(5, 2, 60, 0.05)
    for f in LIB:
        sf = compile_stream(f.expr)
        rows = np.concatenate([sf.update(frame.iloc[i:i + 1]) for i in range(len(frame))])
        np.testing.assert_array_equal(rows, compile_stream(f.expr).update(frame), err_msg=f.name)
        np.testing.assert_allclose(rows, compile_batch(f.expr)(frame).to_numpy(), rtol=1e-7, atol=1e-9,
                                   equal_nan=True, err_msg=f.name)


# -- random expressions ---------------------------------------------------------------------------
# Division and comparisons only touch raw columns: comparing or dividing by two *computed* values
# that are equal in exact arithmetic would turn last-ulp rounding differences into 0 vs 1 or
# 0 vs 1e15, which says nothing about the runtimes.
_WIN1 = ["mavg", "msum", "mstd", "mvar", "mstdp", "mvarp", "mmax", "mmin", "mcount", "ema", "wma",
         "sma", "dema", "tema", "wilder", "zscore"]
_CUM = ["cumsum", "cumavg", "cummax", "cummin", "prev", "deltas", "abs", "sign"]


@st.composite
def series(draw, depth=3):
    if depth == 0 or draw(st.integers(0, 4)) == 0:
        return Col(draw(st.sampled_from(["close", "high", "low", "volume"])))
    kind = draw(st.integers(0, 7))
    x = draw(series(depth - 1))
    if kind <= 2:
        name = draw(st.sampled_from(_WIN1))
        args = [x, Num(float(draw(st.integers(2, 8))))]
        if name.startswith("m") and name not in ("mcount",) and draw(st.booleans()):
            args.append(Num(float(draw(st.integers(1, int(args[1].value))))))
        return Call(name, tuple(args))
    if kind == 3:
        return Call(draw(st.sampled_from(_CUM)), (x,))
    if kind == 4:
        return Binary(draw(st.sampled_from(["+", "-", "*"])), x, draw(series(depth - 1)))
    if kind == 5:
        col = Col(draw(st.sampled_from(["close", "volume"])))
        return Binary("/", x, col)
    if kind == 6:
        name = draw(st.sampled_from(["mcorr", "mbeta", "mrank", "move", "percentChange", "rsi", "iif"]))
        if name in ("mcorr", "mbeta"):
            # raw inputs only: correlations of nearly collinear computed series are ill-conditioned
            # (1 - r ~ 1e-6), so any two correct algorithms differ in the 6th digit
            x = Col(draw(st.sampled_from(["high", "low"])))
            return Call(name, (x, Col(draw(st.sampled_from(["close", "volume"]))), Num(float(draw(st.integers(3, 8))))))
        if name == "mrank":
            return Call(name, (x, Num(float(draw(st.integers(0, 1)))), Num(float(draw(st.integers(2, 8))))))
        if name == "iif":
            cond = Binary(draw(st.sampled_from(["<", ">="])), Col("close"), Col("high") if draw(st.booleans()) else Num(100.0))
            return Call("iif", (cond, x, Unary("-", x)))
        if name == "rsi":
            return Call("rsi", (Col("close"), Num(float(draw(st.integers(2, 8))))))
        return Call(name, (x, Num(float(draw(st.integers(1, 5))))))
    # multi-output / multi-input heads: draw the head and its argument shape together
    head = draw(st.sampled_from(["macd", "macdSignal", "macdHist", "bbUpper", "atr", "mvwap"]))
    if head.startswith("macd"):
        return Call(head, (x, Num(3.0), Num(6.0), Num(4.0)))
    if head == "bbUpper":
        return Call(head, (x, Num(5.0), Num(1.5)))
    if head == "atr":
        return Call(head, (Col("high"), Col("low"), Col("close"), Num(5.0)))
    return Call(head, (Col("close"), Col("volume"), Num(4.0)))


@settings(max_examples=80, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tree=series(), seed=st.integers(0, 1000), sizes=st.lists(st.integers(1, 25), min_size=1, max_size=4),
       nan_frac=st.sampled_from([0.0, 0.1]))
def test_random_expressions_stream_equals_batch(tree, seed, sizes, nan_frac):
    from pyplatform.factors import parse

    expr = parse(str(tree))
    frame = market(seed, 2, 45, nan_frac)
    batch = compile_batch(expr)(frame).to_numpy()
    whole = compile_stream(expr).update(frame)
    scale = np.nanmax(np.abs(batch)) if np.isfinite(batch).any() else 1.0
    np.testing.assert_allclose(whole, batch, rtol=1e-6, atol=1e-9 * max(scale, 1.0), equal_nan=True, err_msg=str(expr))
    np.testing.assert_array_equal(_feed_in_batches(expr, frame, sizes), whole, err_msg=str(expr))


@pytest.mark.parametrize("expr", ["ema(close, 5)", "mstd(close, 4)", "mmax(close, 3)", "cummax(close)"])
def test_warm_up_from_history_continues_exactly(expr):
    frame = market(21, 3, 60)
    history, live = frame.iloc[:90], frame.iloc[90:]
    sf = compile_stream(expr)
    sf.warm_up(history.set_index(["ts", "symbol"]))
    np.testing.assert_array_equal(sf.update(live), compile_stream(expr).update(frame)[90:])
