"""Hostile input is bounded (issue 16, item 5): finite ASCII numbers, nesting depth and size
checked before any recursion, windows capped by stream state memory, O(rows) batch windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pyplatform.factors import FactorSyntaxError, FactorTypeError, compile_batch, compile_stream, parse
from pyplatform.factors.limits import MAX_DEPTH, MAX_NODES, MAX_STATE_BYTES, MAX_TEXT_CHARS


@pytest.mark.parametrize("text, col", [("mavg(close, 1e400)", 13), ("close * 1e400", 9), ("close + 1e309", 9)])
def test_numbers_beyond_float64_are_syntax_errors(text, col):
    with pytest.raises(FactorSyntaxError) as exc:
        parse(text)
    assert "float64" in exc.value.reason and exc.value.column == col


def test_largest_finite_numbers_still_parse():
    assert parse("close * 1e308").tree.right.value == 1e308
    assert parse(str(parse("close * 1.5e300"))) == parse("close * 1.5e300")  # canonical 1.5e+300


@pytest.mark.parametrize("text", ["mavg(close, ２０)", "mavg(close, ٢٠)", "close * ５", "close + 1e٣"])
def test_only_ascii_digits_are_numbers(text):
    with pytest.raises(FactorSyntaxError, match="unexpected"):
        parse(text)


def _nested_abs(k: int) -> str:
    return "abs(" * k + "close" + ")" * k


@pytest.mark.parametrize("text", [
    _nested_abs(250),
    "mavg(" * 300 + "close" + ", 5)" * 300,
    "-" * 5_000 + "close",                      # within the text limit: the depth limit answers
    " + ".join(["close"] * 600),
])
def test_deep_input_is_a_syntax_error_not_a_recursion_error(text):
    with pytest.raises(FactorSyntaxError, match="nesting deeper than 100"):
        parse(text)


def test_ten_thousand_unary_minus_hits_the_text_limit():
    with pytest.raises(FactorSyntaxError, match=f"limit is {MAX_TEXT_CHARS:,}"):
        parse("-" * 10_000 + "close")


def test_depth_limit_is_exact_and_the_deepest_allowed_tree_runs_everywhere():
    assert MAX_DEPTH == 100
    text = _nested_abs(MAX_DEPTH - 1)             # 99 calls + the column: depth 100
    with pytest.raises(FactorSyntaxError):
        parse(_nested_abs(MAX_DEPTH))
    e = parse(text)
    assert parse(str(e)) == e
    frame = pd.DataFrame({"symbol": ["A.US"] * 3, "ts": [0, 1, 2], "close": [-1.0, 2.0, -3.0]})
    np.testing.assert_array_equal(compile_batch(e)(frame).to_numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(compile_stream(e).update(frame), [1.0, 2.0, 3.0])


def test_tree_size_limit():
    # 30 groups of a 50-term sum: depth 80 (fine) but 2,999 nodes
    text = " + ".join("(" + " + ".join(["c"] * 50) + ")" for _ in range(30))
    assert len(text) < MAX_TEXT_CHARS
    with pytest.raises(FactorSyntaxError, match=f"more than {MAX_NODES} terms"):
        parse(text)
    parse(" + ".join("(" + " + ".join(["c"] * 50) + ")" for _ in range(10)))  # 999 nodes


def test_window_limit_follows_from_state_memory():
    # mmax keeps 5 + 3n floats per symbol: the largest n within 2 MiB is (262144 - 5) // 3
    assert MAX_STATE_BYTES == 2 << 20
    biggest = (MAX_STATE_BYTES // 8 - 5) // 3
    assert biggest == 87_379
    parse(f"mmax(close, {biggest})")
    with pytest.raises(FactorTypeError) as exc:
        parse(f"mmax(close, {biggest + 1})")
    assert "MiB of stream state per symbol" in exc.value.reason and f"at most {biggest:,}" in exc.value.reason
    with pytest.raises(FactorTypeError, match="at most 87,379"):
        parse("mmax(close, 102400)")
    # mcorr keeps 11 + 5n floats plus a flag bit per slot: 5 * 52263 + 817 + 11 = 262,143
    parse("mcorr(close, volume, 52263)")
    with pytest.raises(FactorTypeError, match="at most 52,263"):
        parse("mcorr(close, volume, 52264)")
    # sums keep 6 + 2n floats and shifts 2 + n: DolphinDB's 102,400 cap applies first
    parse("mavg(close, 102400)")
    parse("move(close, 102400)")
    with pytest.raises(FactorTypeError, match="from 1 to 102400"):
        parse("move(close, 102401)")


def test_batch_windows_longer_than_a_symbol_are_computed_in_linear_time():
    # 70,000 rows with windows of 40,000-60,000 rows: materialising the windows would be
    # ~3e9 cells; the block prefix/suffix runtime is O(rows). pandas is the oracle.
    rng = np.random.default_rng(8)
    close = 100 + np.cumsum(rng.standard_normal(70_000))
    frame = pd.DataFrame({"symbol": "A.US", "ts": np.arange(70_000), "close": close})
    s = pd.Series(close)
    for expr, ref in [("mavg(close, 60000)", s.rolling(60_000).mean()),
                      ("mmax(close, 40000)", s.rolling(40_000).max()),
                      ("mstd(close, 40000)", s.rolling(40_000).std())]:
        got = compile_batch(expr)(frame).to_numpy()
        np.testing.assert_allclose(got, ref.to_numpy(), rtol=1e-9, equal_nan=True, err_msg=expr)
