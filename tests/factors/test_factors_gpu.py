"""GPU batch factors: the array-module evaluator against the CPU batch runtime (the oracle).

The evaluator is written over an array module; here it runs with NumPy (the code path CuPy
runs on a GPU). Tests marked ``gpu`` run the CuPy path and skip only without a GPU / CuPy.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from pyplatform.data import generate_bars, generate_ticks
from pyplatform.factors import FUNCTIONS, compile_batch, load_library, parse
from pyplatform.factors.functions import FuncSpec, Param
from pyplatform.factors.tree import Call
from pyplatform.factors import gpu_ops
from pyplatform.factors.gpu import (
    GpuUnsupportedError, compute_factors_gpu, compute_library_gpu, panel_layout, select_array_module,
)


def _has_gpu() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


gpu = pytest.mark.skipif(not _has_gpu(), reason="no NVIDIA GPU / cupy")


@pytest.fixture(scope="module")
def bars():
    # stocks, forex and crypto: different session lengths, so the panel is ragged
    return generate_bars(5, "2024-01-02", "2024-01-06", freq="5min", seed=7)


@pytest.fixture(scope="module")
def ticks():
    return generate_ticks(3, "2024-01-03 14:30", "2024-01-03 15:00", seed=5, rate=0.5)


@pytest.fixture(scope="module")
def holey_bars(bars):
    """Bars with NULLs scattered through every column (and a leading run on one symbol)."""
    rng = np.random.default_rng(1)
    f = bars.copy()
    for c in f.columns:
        v = f[c].to_numpy(dtype=float, copy=True)
        v[rng.random(len(v)) < 0.04] = np.nan
        f[c] = v
    sym = f.index.get_level_values("symbol")
    first = np.flatnonzero(sym == sym[0])[:30]
    f.iloc[first, f.columns.get_loc("close")] = np.nan
    return f


def assert_matches(got: pd.Series | np.ndarray, ref: pd.Series, name: str) -> None:
    """Equal NULL positions; values within 1e-9 relative, plus an absolute floor of 1e-12 times
    the factor's largest magnitude on the same symbol and 8 ulps of 1.

    The floor is for values that are differences of nearly equal numbers (MACD of a 40,000
    price, ``x / y - 1``): both runtimes round their operands in the last bit, and the
    difference exposes it (2e-11 on a MACD of 0.0165 whose series reaches 167).
    """
    got, r = np.asarray(got, dtype=float), ref.to_numpy(dtype=float)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(r), err_msg=f"{name}: NULL positions differ")
    scale = pd.Series(np.abs(r)).groupby(ref.index.get_level_values("symbol")).transform("max").to_numpy()
    # plus 8 ulps of 1: a value near 0 that is a difference of operands near 1 (``x / y - 1``
    # of a slowly moving average, MACD of a 1.1 forex price) keeps a few ulps of 1 as error
    ok = np.isnan(r) | (np.abs(got - r) <= 1e-9 * np.abs(r) + 1e-12 * scale + 8 * np.finfo(float).eps)
    assert ok.all(), f"{name}: {int((~ok).sum())} value(s) differ, first at row {int(np.flatnonzero(~ok)[0])}: " \
                     f"{got[~ok][0]!r} vs {r[~ok][0]!r}"


def _library(kind: str):
    return [d for d in load_library() if d.input == kind]


def test_every_library_factor_matches_cpu_batch_on_bars(bars):
    defs = _library("bars")
    assert len(defs) >= 20
    out = compute_library_gpu(bars, device="cpu")
    assert list(out.columns) == [d.name for d in defs]
    assert out.index.equals(bars.index)
    assert out.attrs["array_module"] == "numpy"
    for d in defs:
        assert_matches(out[d.name], compile_batch(d.expr)(bars), d.name)


def test_every_library_factor_matches_cpu_batch_on_ticks(ticks):
    defs = _library("ticks")
    assert defs
    out = compute_library_gpu(ticks, device="cpu")
    assert list(out.columns) == [d.name for d in defs]
    for d in defs:
        assert_matches(out[d.name], compile_batch(d.expr)(ticks), d.name)


def test_library_factors_with_nulls_match_cpu_batch(holey_bars):
    defs = _library("bars")
    out = compute_library_gpu(holey_bars, names=[d.name for d in defs], device="cpu")
    for d in defs:
        assert_matches(out[d.name], compile_batch(d.expr)(holey_bars), d.name)


# every function of the language, with and without minPeriods, plus the operators. Discrete
# results of a value against its own moving average (``cross(close, mavg(close, 5))`` on flat
# prices) sit exactly on a tie that the last bit of rounding decides; no two summation orders
# agree there (see docs/gpu.md), so the discrete operators are exercised away from such ties.
OPERATOR_EXPRESSIONS = [
    "mavg(close, 5)", "mavg(close, 5, 2)", "msum(volume, 7)", "mcount(close, 4)", "mcount(close, 4, 3)",
    "mvar(close, 6)", "mvar(close, 6, 3)", "mstd(close, 6)", "mvarp(close, 6)", "mstdp(close, 6, 1)",
    "mmax(high, 9)", "mmin(low, 9, 4)", "mcorr(close, volume, 8)", "mbeta(close, open, 8, 3)",
    "mrank(close, true, 10)", "mrank(close, false, 10, 4)", "mvwap(close, volume, 12)", "zscore(close, 15)",
    "sma(close, 10)", "ema(close, 10)", "wilder(close, 7)", "wma(close, 6)", "dema(close, 8)", "tema(close, 5)",
    "rsi(close)", "rsi(close, 6)", "macd(close, 5, 13)", "macdSignal(close, 5, 13, 4)", "macdHist(close)",
    "bbUpper(close, 10, 1.5)", "bbMiddle(close)", "bbLower(close, 10)", "atr(high, low, close)",
    "atr(high, low, close, 5)", "cross(ema(close, 5), mavg(close, 10))", "prev(close)", "move(close, 3)", "deltas(close)",
    "ratios(close)", "percentChange(close, 4)", "cumsum(volume)", "cumavg(close)", "cummax(high)", "cummin(low)",
    "abs(deltas(close))", "log(close - open)", "sqrt(close - open)", "exp(deltas(close))", "sign(deltas(close))",
    "max(open, close)", "min(open, close)", "iif(close > open, high, low)",
    "close + open * 2 - high / low", "close / (open - open)", "-close",
    "(close > open) + (close >= open) + (close < open) + (close <= open) + (close == open) + (close != open)",
    "(close > open && volume > 100) + (close > open || volume > 100) + !(close > open)",
]


def test_operators_cover_the_whole_function_table():
    used = set()
    for text in OPERATOR_EXPRESSIONS:
        used |= {n.name for n in parse(text).tree.walk() if isinstance(n, Call)}
    assert set(FUNCTIONS) <= used, f"functions without a GPU-path test: {sorted(set(FUNCTIONS) - used)}"


@pytest.mark.parametrize("frame_name", ["bars", "holey_bars"])
def test_every_operator_matches_cpu_batch(frame_name, request):
    frame = request.getfixturevalue(frame_name)
    out = compute_factors_gpu(frame, {t: t for t in OPERATOR_EXPRESSIONS}, device="cpu")
    for text in OPERATOR_EXPRESSIONS:
        assert_matches(out[text], compile_batch(text)(frame), text)


def test_short_and_all_null_symbols_and_empty_frame():
    # histories shorter than every window (1 and 3 rows) and a symbol whose prices are all NULL
    rng = np.random.default_rng(4)
    parts = []
    for sym, n in [("A.US", 1), ("B.US", 3), ("C.US", 40), ("D.US", 25)]:
        c = 100 + np.cumsum(rng.normal(size=n))
        if sym == "D.US":
            c[:] = np.nan
        parts.append(pd.DataFrame({
            "datetime": pd.date_range("2024-01-01", periods=n, freq="1min"), "symbol": sym,
            "open": c + rng.normal(size=n) * 0.1, "high": c + 1, "low": c - 1, "close": c,
            "volume": rng.integers(1, 1000, n).astype(float)}))
    frame = pd.concat(parts).set_index(["datetime", "symbol"]).sort_index()
    out = compute_factors_gpu(frame, {t: t for t in OPERATOR_EXPRESSIONS}, device="cpu")
    for text in OPERATOR_EXPRESSIONS:
        assert_matches(out[text], compile_batch(text)(frame), text)
    empty = compute_factors_gpu(frame.iloc[:0], {"m": "mavg(close, 5)"}, device="cpu")
    assert empty.shape == (0, 1) and list(empty.columns) == ["m"]


def test_rows_out_of_order_and_columns_layout(bars):
    # the result follows the caller's row order, whatever it is (as compile_batch does)
    shuffled = bars.sample(frac=1.0, random_state=3)
    text = "ema(close, 10) - mavg(close, 20)"
    out = compute_factors_gpu(shuffled, {"f": text}, device="cpu")
    assert out.index.equals(shuffled.index)
    assert_matches(out["f"], compile_batch(text)(shuffled), text)
    layout = panel_layout(bars)
    counts = bars.index.get_level_values("symbol").value_counts()
    assert (layout.n_symbols, layout.n_times) == (len(counts), counts.max())


def test_small_window_chunks_give_the_same_results(holey_bars, monkeypatch):
    # long histories are processed in time chunks of the sliding-window view; force many chunks
    texts = ["mstd(close, 20)", "mmax(high, 14)", "mcorr(close, volume, 20)", "mrank(close, true, 20)", "wma(close, 9)"]
    monkeypatch.setitem(gpu_ops.WINDOW_CELLS, "numpy", 200)
    out = compute_factors_gpu(holey_bars, {t: t for t in texts}, device="cpu")
    for t in texts:
        assert_matches(out[t], compile_batch(t)(holey_bars), t)


# -- the flat-window and NULL rules, as in the batch runtime (docs/factors.md, "Flat windows") ----
FLAT_EXPRESSIONS = [
    "mstd(close, 20)", "mvar(close, 7)", "mstdp(close, 5)", "mvarp(close, 20, 3)", "zscore(close, 20)",
    "(close - bbLower(close, 20, 2)) / (bbUpper(close, 20, 2) - bbLower(close, 20, 2))",
    "mcorr(close, volume, 20)", "mbeta(close, volume, 7)", "mbeta(volume, close, 5)",
]


def _flat_frame() -> pd.DataFrame:
    """The issue's repro ([1, 2, 3] then 25 x 0.1) and flat runs of values whose sum rounds
    (0.3, 0.7, 123.456, 5.55), one interrupted by NULLs (shorter and longer than the windows),
    beside a volume that is flat on some stretches and not on others."""
    runs = {
        "A.US": [1.0, 2.0, 3.0] + [0.1] * 25,
        "B.US": [5.0, 4.0] + [0.3] * 30 + [0.7] * 30,
        "C.US": [1.0] + [123.456] * 12 + [np.nan] * 3 + [123.456] * 30 + [np.nan] * 25 + [5.55] * 22,
    }
    parts = []
    for k, (sym, close) in enumerate(runs.items()):
        n = len(close)
        volume = np.where(np.arange(n) % 40 < 25, 7.0, np.arange(n) + 1.0 + k)
        parts.append(pd.DataFrame({"datetime": pd.date_range("2024-01-01", periods=n, freq="1min"), "symbol": sym,
                                   "close": close, "volume": volume}))
    return pd.concat(parts).set_index(["datetime", "symbol"]).sort_index()


def test_flat_windows_have_spread_exactly_zero_and_follow_the_null_rule():
    frame = _flat_frame()
    out = compute_factors_gpu(frame, {t: t for t in FLAT_EXPRESSIONS}, device="cpu")
    for text in FLAT_EXPRESSIONS:
        ref = compile_batch(text)(frame).to_numpy()
        got = out[text].to_numpy()
        # NULL positions equal: a ratio over a flat window's exact 0 is NULL in both
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=f"{text}: NULL positions differ")
        zero = ref == 0
        np.testing.assert_array_equal(got[zero], 0.0, err_msg=f"{text}: a flat window's spread is not exactly 0")
        assert_matches(got, pd.Series(ref, index=frame.index), text)
    spread = out["mstd(close, 20)"].to_numpy()
    assert (spread == 0).sum() >= 40  # the shapes do reach flat windows
    assert np.isnan(out["zscore(close, 20)"].to_numpy()[27])  # the row 27


def test_window_sums_and_scans_against_direct_loops():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(3, 37))
    for n in (2, 5, 37, 50):
        got = gpu_ops.window_sums(np, v, n)
        ref = np.array([[v[s, max(0, t - n + 1): t + 1].sum() for t in range(37)] for s in range(3)])
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    a, b = rng.uniform(0, 1, size=(2, 41)), rng.normal(size=(2, 41))
    y, ref = gpu_ops.linear_scan(np, a, b), np.zeros((2, 41))
    for s in range(2):
        acc = 0.0
        for t in range(41):
            acc = a[s, t] * acc + b[s, t]
            ref[s, t] = acc
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    np.testing.assert_array_equal(gpu_ops.max_scan(np, b, 1), np.maximum.accumulate(b, axis=1))
    np.testing.assert_array_equal(gpu_ops.max_scan(np, b, -1), np.minimum.accumulate(b, axis=1))


def test_unsupported_function_names_itself(bars, monkeypatch):
    # a function added to the language (with its own primitive) but not to the GPU path
    spec = FuncSpec("mskew", (Param("X", "x"), Param("window", "win")), "moving skew",
                    lambda a: Call("_wskew", (a[0], a[1])))
    monkeypatch.setitem(FUNCTIONS, "mskew", spec)
    with pytest.raises(GpuUnsupportedError, match=r"'mskew'.*_wskew.*compile_batch"):
        compute_factors_gpu(bars, {"s": "close / mskew(close, 20)"}, device="cpu")
    assert issubclass(GpuUnsupportedError, NotImplementedError)


def test_missing_column_and_unknown_factor_are_named(bars):
    with pytest.raises(KeyError, match=r"'spread'.*\['ask', 'bid'\]"):
        compute_factors_gpu(bars, {"spread": "ask - bid"}, device="cpu")
    with pytest.raises(ValueError, match="unknown library factor.*'no_such_factor'"):
        compute_library_gpu(bars, names=["no_such_factor"], device="cpu")
    with pytest.raises(ValueError, match="device must be 'auto', 'gpu' or 'cpu', got 'tpu'"):
        select_array_module("tpu")


def test_gpu_device_without_cupy_is_a_clear_error(bars, monkeypatch):
    # as on a machine without CuPy, whatever this one has: ``import cupy`` raises ImportError
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(RuntimeError, match="device='gpu' needs CuPy and an NVIDIA GPU: cupy is not installed.*device='auto'"):
        compute_library_gpu(bars, device="gpu")
    xp, where = select_array_module("auto")
    assert xp is np and where.startswith("numpy (CPU; no GPU: cupy is not installed")
    out = compute_library_gpu(bars, names=["rsi_14"], device="auto")  # falls back, and says so
    assert out.attrs["array_module"] == "numpy" and "no GPU" in out.attrs["device"]


def test_bench_command_prints_both_paths_and_their_agreement():
    from typer.testing import CliRunner

    from pyplatform.cli.bench import app

    res = CliRunner().invoke(app, ["gpu-factors", "--symbols", "2", "--bars", "300", "--repeat", "1"])
    assert res.exit_code == 0, res.output
    assert "CPU batch runtime" in res.output and "array-module path, numpy" in res.output
    assert "within the tests' tolerance" in res.output
    if not _has_gpu():
        assert "GPU (CuPy) path not measured" in res.output


@pytest.mark.gpu
@gpu
def test_cupy_path_matches_cpu_batch(bars, holey_bars):
    for frame in (bars, holey_bars):
        out = compute_library_gpu(frame, device="gpu")
        assert out.attrs["array_module"] == "cupy"
        for d in _library("bars"):
            assert_matches(out[d.name], compile_batch(d.expr)(frame), d.name)
        ops_out = compute_factors_gpu(frame, {t: t for t in OPERATOR_EXPRESSIONS}, device="gpu")
        for text in OPERATOR_EXPRESSIONS:
            assert_matches(ops_out[text], compile_batch(text)(frame), text)
