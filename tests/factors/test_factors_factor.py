"""The parsed factor object and the composites' macros (issue 16 item 6)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from helpers_factors import market
from pyplatform.factors import (
    Factor, FactorEngine, FactorTypeError, compile_batch, compile_stream, load_library, parse, to_dolphindb,
)
from pyplatform.factors.functions import COMPOSITES, FUNCTIONS, expand
from pyplatform.factors.gpu import compute_factors_gpu
from pyplatform.factors.tree import Binary, Call, Col, Num

FACTORS = Path(__file__).resolve().parents[2] / "pyplatform" / "factors"


def test_parse_returns_a_checked_factor_with_what_the_layers_need():
    f = parse("zscore(close, 20) + mavg(volume, 5)")
    assert isinstance(f, Factor)
    assert f.text == str(f) == "zscore(close, 20) + mavg(volume, 5)"
    assert f.tree == Binary("+", Call("zscore", (Col("close"), Num(20))), Call("mavg", (Col("volume"), Num(5))))
    assert f.input_columns == ("close", "volume") and f.columns() == {"close", "volume"}
    assert f.lookback == 19
    # the lowered tree holds primitives only: _wsum (mean) and _wvar (sample std, mode 1)
    assert str(f.lowered) == ("(close - _wsum(close, 20, 0, 1, 0)) / _wvar(close, 20, 0, 1) "
                              "+ _wsum(volume, 5, 0, 1, 0)")
    assert parse(f.text) == f and parse(f.text) is f  # canonical, and parsed once per text
    assert hash(parse("mavg(close,5)")) == hash(parse("mavg(close, 5)"))


def test_columns_are_checked_for_text_and_for_a_factor_alike():
    f = parse("mavg(close, 5) / vol")
    with pytest.raises(FactorTypeError, match="unknown column 'vol'") as info:
        parse(f.text, columns={"close"})
    assert (info.value.line, info.value.column) == (1, 18)
    with pytest.raises(FactorTypeError, match="unknown column 'vol'"):
        FactorEngine({"x": f}, columns={"close", "volume"})


def test_every_runtime_takes_the_factor_text_or_tree_with_the_same_result():
    frame = market(3, 3, 70, nan_frac=0.05)
    text = "macdHist(close, 5, 13, 4) + zscore(volume, 8)"
    f = parse(text)
    ref = compile_batch(f)(frame).to_numpy()
    assert np.isfinite(ref).sum() > 50
    for form in (text, f.tree):
        np.testing.assert_array_equal(compile_batch(form)(frame).to_numpy(), ref)
    stream = compile_stream(f)
    assert stream.expr is f and stream.lookback == f.lookback
    np.testing.assert_array_equal(stream.update(frame), compile_stream(text).update(frame))
    eng = FactorEngine({"a": f, "b": text})
    assert eng._exprs["a"][0] is f  # a parsed factor is used as it is, not re-parsed
    out = eng.compute(frame)
    np.testing.assert_array_equal(out["a"], out["b"])
    np.testing.assert_allclose(out["a"], ref, rtol=1e-9, atol=1e-12, equal_nan=True)
    gpu = compute_factors_gpu(frame, {"a": f}, device="cpu")["a"].to_numpy()
    np.testing.assert_allclose(gpu, ref, rtol=1e-9, atol=1e-12, equal_nan=True)
    assert to_dolphindb(f) == to_dolphindb(text) == to_dolphindb(f.tree)


def test_library_definitions_give_their_parsed_factor():
    for d in load_library():
        assert isinstance(d.factor, Factor) and d.factor.tree == d.expr and d.lookback == d.factor.lookback


@pytest.mark.parametrize("text, expanded", [
    ("zscore(close, 7)", "(close - mavg(close, 7)) / mstd(close, 7)"),
    ("mvwap(price, volume, 9)", "msum(price * volume, 9) / msum(volume, 9)"),
    ("bbUpper(close)", "mavg(close, 20) + 2 * mstdp(close, 20)"),
    ("bbMiddle(close, 10)", "mavg(close, 10)"),
    ("bbLower(close, 10, 1.5)", "mavg(close, 10) - 1.5 * mstdp(close, 10)"),
    ("rsi(close)", "100 * wilder(iif(deltas(close) > 0, deltas(close), 0), 14) / (wilder(iif(deltas(close) > 0, "
                   "deltas(close), 0), 14) + wilder(iif(deltas(close) < 0, -deltas(close), 0), 14))"),
    ("macd(close)", "_emaAfter(close, 12, 14) - ema(close, 26)"),
    ("macdSignal(close, 5, 13, 4)", "ema(_emaAfter(close, 5, 8) - ema(close, 13), 4)"),
    ("macdHist(close)", "_emaAfter(close, 12, 14) - ema(close, 26) - ema(_emaAfter(close, 12, 14) - ema(close, 26), 9)"),
    ("atr(high, low, close)", "wilder(max(high - low, max(abs(high - prev(close)), abs(low - prev(close)))), 14)"),
    ("cross(a, b)", "iif(a - b > 0 && prev(a - b) <= 0, 1, iif(a - b < 0 && prev(a - b) >= 0, -1, 0))"),
    ("zscore(rsi(close, 3), 4)",
     "(100 * wilder(iif(deltas(close) > 0, deltas(close), 0), 3) / (wilder(iif(deltas(close) > 0, deltas(close), 0), "
     "3) + wilder(iif(deltas(close) < 0, -deltas(close), 0), 3)) - mavg(100 * wilder(iif(deltas(close) > 0, "
     "deltas(close), 0), 3) / (wilder(iif(deltas(close) > 0, deltas(close), 0), 3) + wilder(iif(deltas(close) < 0, "
     "-deltas(close), 0), 3)), 4)) / mstd(100 * wilder(iif(deltas(close) > 0, deltas(close), 0), 3) / "
     "(wilder(iif(deltas(close) > 0, deltas(close), 0), 3) + wilder(iif(deltas(close) < 0, -deltas(close), 0), 3)), 4)"),
])
def test_each_composite_expands_to_its_one_macro(text, expanded):
    # hand-written expansions: defaults filled in, constant arithmetic (slow - fast) folded
    f = parse(text)
    assert str(f.expanded) == expanded
    assert str(expand(f.tree)) == expanded


def test_every_composite_is_covered_and_expands_fully():
    covered = {"zscore", "mvwap", "bbUpper", "bbMiddle", "bbLower", "rsi", "macd", "macdSignal", "macdHist", "atr",
               "cross"}
    assert set(COMPOSITES) == covered  # a new composite needs a hand-written expansion above
    for name in COMPOSITES:
        spec = FUNCTIONS[name]
        args = ", ".join("close" if p.kind == "x" else "3" for p in spec.params if not p.optional)
        f = parse(f"{name}({args})")
        for node in f.expanded.walk():
            assert not (isinstance(node, Call) and node.name in COMPOSITES), (name, str(f.expanded))


def test_tree_module_does_not_import_the_function_table():
    # the look-back lives on the Factor, so the tree needs nothing from functions.py (the old
    # Expr.lookback property imported it lazily, a tree <-> functions cycle)
    mod = ast.parse((FACTORS / "tree.py").read_text())
    imported = {n.module for n in ast.walk(mod) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(mod) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.startswith("pyplatform")}, imported
