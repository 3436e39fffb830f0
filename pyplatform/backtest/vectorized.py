"""Vectorised fast path for research sweeps: the dual moving-average crossover over a grid.

Semantics are those of the event-driven backtest with realism switched off, so the two
agree (tested):

* ``ma_w`` is DolphinDB's ``mavg(close, w)``: NULL for the first ``w - 1`` bars;
* a golden cross at bar ``t`` is ``fast[t] > slow[t]`` and ``fast[t-1] <= slow[t-1]``, a death
  cross the mirror image (the factor language's ``cross(fast, slow)``); no repeated triggers;
* a signal at bar ``t``'s close is filled at bar ``t+1``'s open (never the same bar's close);
* long-only, fully invested while long, no fees or slippage.

Each (fast, slow) pair is evaluated by one compiled pass over the bars that keeps running
statistics (equity, peak, drawdown, sums of returns), so memory is O(pairs), not
O(pairs x bars), and 12 years of minute bars per symbol sweep in well under a second.
"""

from __future__ import annotations

import itertools

import numba as nb
import numpy as np
import pandas as pd

__all__ = ["moving_averages", "fixed_point_scale", "window_sums", "dual_ma_positions", "dual_ma_returns",
           "sweep_dual_ma"]


@nb.njit(cache=True, inline="always")
def _neumaier_add(s, comp, v):
    """``s + v`` with the rounding error of the addition accumulated in ``comp`` (Neumaier)."""
    y = s + v
    if abs(s) >= abs(v):
        comp += (s - y) + v
    else:
        comp += (v - y) + s
    return y, comp


@nb.njit(cache=True)
def _rolling_mean(x, w, out):
    """``mavg(x, w)`` into ``out`` (NaN warm-up): a running sum with Neumaier compensation for
    the values entering and leaving the window, and an exact answer for a constant window.

    A prefix-sum difference (``cumsum[t] - cumsum[t - w]``) cancels catastrophically once the
    running total is large (12 years of minute closes of a $50,000 coin reach 1e11), and it
    turns a flat stretch -- where the fast and the slow MA are *exactly* equal -- into a
    spurious crossing at the last bit. The compensated sum stays within an ulp or two of the
    exact mean, and a window of identical values returns that value itself, as pandas'
    ``rolling().mean()`` does."""
    n = len(x)
    s = 0.0
    comp = 0.0
    same = 0
    for t in range(n):
        v = x[t]
        if t > 0 and v == x[t - 1]:
            same += 1
        else:
            same = 1
        s, comp = _neumaier_add(s, comp, v)
        if t >= w:
            s, comp = _neumaier_add(s, comp, -x[t - w])  # the value leaving the window
        if t >= w - 1:
            out[t] = v if same >= w else (s + comp) / w


def moving_averages(close: np.ndarray, windows) -> np.ndarray:
    """``mavg(close, w)`` for each window as rows of a [len(windows), n] array (NaN warm-up).

    Accurate to an ulp or two of the exact window mean however long the series, and exact on
    a window of identical values (see ``_rolling_mean``), so a tie between two averages is a
    tie here as it is in exact arithmetic and in pandas.
    """
    close = np.ascontiguousarray(close, np.float64)
    out = np.full((len(windows), len(close)), np.nan)
    for i, w in enumerate(windows):
        if int(w) < 1:
            raise ValueError(f"moving average window must be >= 1, got {w}")
        if w <= len(close):
            _rolling_mean(close, int(w), out[i])
    return out


_MAX_DECIMALS = 8  # crypto's precision, the finest of the asset classes
_INT_LIMIT = 2 ** 62  # |window weight x window sum| must stay below this in int64


def fixed_point_scale(close: np.ndarray, max_window: int) -> int | None:
    """``10**d`` for the fewest decimals ``d <= 8`` that represent every price exactly, or
    None when no such ``d`` exists or the integer window sums could overflow.

    Prices on the platform carry their asset class's precision (stocks 2, forex 5, crypto
    8 decimals), so their window sums are integers in units of ``10**-d`` and two moving
    averages can be compared exactly: ``mavg(x, f) > mavg(x, s)`` iff ``s * sum_f > f * sum_s``.
    """
    c = np.asarray(close, np.float64)
    if not len(c) or not np.isfinite(c).all():
        return None
    top = float(np.abs(c).max())
    for d in range(_MAX_DECIMALS + 1):
        scale = 10 ** d
        if top * scale * max_window * max_window >= _INT_LIMIT:
            return None
        k = np.round(c * scale)
        if np.array_equal(k / scale, c):  # the nearest double to each k / 10**d is the price
            return scale
    return None


def window_sums(close: np.ndarray, windows, scale: int) -> np.ndarray:
    """Exact ``msum(close * scale, w)`` in int64 for each window (rows; 0 in the warm-up).

    A prefix sum of int64 wraps on overflow, but differences of wrapped prefix sums are exact
    modulo 2**64, and a window's own sum fits (``fixed_point_scale`` checks it), so the result
    is exact however long the series.
    """
    k = np.round(np.asarray(close, np.float64) * scale).astype(np.int64)
    c = np.concatenate([np.zeros(1, np.int64), np.cumsum(k)])
    out = np.zeros((len(windows), len(k)), np.int64)
    for i, w in enumerate(windows):
        if w <= len(k):
            out[i, w - 1:] = c[w:] - c[:-w]
    return out


@nb.njit(cache=True)
def _sign(sums, ma, i, j, wi, wj, t, exact):
    """Sign of ``mavg_i - mavg_j`` at bar ``t``: exact on integer sums, else on the means."""
    if exact:  # int64 throughout (a float would round a large difference; its sign would survive,
        d = wj * sums[i, t] - wi * sums[j, t]  # but keeping one type per variable keeps numba honest)
        return 1 if d > 0 else (-1 if d < 0 else 0)
    x = ma[i, t] - ma[j, t]
    return 1 if x > 0 else (-1 if x < 0 else 0)


@nb.njit(cache=True)
def _positions(sums, ma, wf, ws, exact, n):
    pos = np.zeros(n, np.int8)  # position decided at bar t's close
    cur = 0
    first = max(wf, ws)  # both averages defined from bar first - 1: a cross needs t - 1 >= that
    if first >= n:
        return pos
    g0 = _sign(sums, ma, 0, 1, wf, ws, first - 1, exact)
    for t in range(first, n):
        g1 = _sign(sums, ma, 0, 1, wf, ws, t, exact)
        if cur == 0 and g1 > 0 and g0 <= 0:
            cur = 1
        elif cur == 1 and g1 < 0 and g0 >= 0:
            cur = 0
        pos[t] = cur
        g0 = g1
    return pos


def _crossing_inputs(close: np.ndarray, windows):
    """What the crossing kernels read: exact integer window sums when the prices are
    fixed-point decimals (then the float means are not needed), else the float means."""
    close = np.ascontiguousarray(close, np.float64)
    scale = fixed_point_scale(close, max(windows))
    if scale is not None:
        return np.zeros((len(windows), 1)), window_sums(close, windows, scale), True
    return moving_averages(close, windows), np.zeros((len(windows), 1), np.int64), False


def dual_ma_positions(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """Target position (0/1) decided at each bar's close.

    Crossings are decided exactly when the prices are fixed-point decimals (the platform's
    prices are), so a tie of the two averages is a tie -- not a cross decided by the last bit
    of a floating-point sum, which different summation orders round differently.
    """
    ma, sums, exact = _crossing_inputs(close, [fast, slow])
    return _positions(sums, ma, int(fast), int(slow), exact, len(close))


@nb.njit(cache=True)
def _bar_returns(open_, close, pos):
    """Per-bar strategy return when a position decided at t's close fills at t+1's open."""
    n = len(close)
    r = np.zeros(n)
    for t in range(1, n):
        held_prev = pos[t - 2] if t >= 2 else 0  # position held during bar t-1
        held = pos[t - 1]                          # position held from bar t's open
        if held and held_prev:
            r[t] = close[t] / close[t - 1] - 1.0
        elif held and not held_prev:
            r[t] = close[t] / open_[t] - 1.0
        elif held_prev and not held:
            r[t] = open_[t] / close[t - 1] - 1.0
    return r


def dual_ma_returns(open_: np.ndarray, close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """Per-bar returns of the crossover strategy (realism off)."""
    pos = dual_ma_positions(close, fast, slow)
    return _bar_returns(np.asarray(open_, np.float64), np.asarray(close, np.float64), pos)


@nb.njit(cache=True)
def _grid(open_, close, ma, sums, wins, exact, pairs, out):
    n = len(close)
    for k in range(pairs.shape[0]):
        fi, si = pairs[k, 0], pairs[k, 1]
        wf, ws = wins[fi], wins[si]
        first = max(wf, ws)
        g0 = _sign(sums, ma, fi, si, wf, ws, first - 1, exact) if first < n else 0
        cur, prev_held, held = 0, 0, 0
        eq, peak, mdd, s1, s2, trades, exposure = 1.0, 1.0, 0.0, 0.0, 0.0, 0, 0
        for t in range(1, n):
            # returns of bar t from the position held during it (decided at t-1's close)
            held_prev = prev_held
            held = cur
            r = 0.0
            if held and held_prev:
                r = close[t] / close[t - 1] - 1.0
            elif held and not held_prev:
                r = close[t] / open_[t] - 1.0
                trades += 1
            elif held_prev and not held:
                r = open_[t] / close[t - 1] - 1.0
            exposure += held
            eq *= 1.0 + r
            if eq > peak:
                peak = eq
            dd = eq / peak - 1.0
            if dd < mdd:
                mdd = dd
            s1 += r
            s2 += r * r
            prev_held = held
            # decide at bar t's close (both averages defined at t - 1 and t)
            if t >= first:
                g1 = _sign(sums, ma, fi, si, wf, ws, t, exact)
                if cur == 0 and g1 > 0 and g0 <= 0:
                    cur = 1
                elif cur == 1 and g1 < 0 and g0 >= 0:
                    cur = 0
                g0 = g1
        m = n - 1
        mean = s1 / m
        var = (s2 - m * mean * mean) / (m - 1) if m > 1 else 0.0
        out[k, 0] = eq - 1.0
        out[k, 1] = mean / np.sqrt(var) if var > 0 else np.nan
        out[k, 2] = mdd
        out[k, 3] = trades
        out[k, 4] = exposure / m


_FREQ_NS = {"1d": 86_400_000_000_000, "1D": 86_400_000_000_000, "D": 86_400_000_000_000,
            "1min": 60_000_000_000, "1m": 60_000_000_000}


def _bar_ns(g: pd.DataFrame, freq: str | None) -> int:
    if freq is not None:
        if freq not in _FREQ_NS:
            raise ValueError(f"sweep_dual_ma: freq must be one of {sorted(_FREQ_NS)}, got {freq!r}")
        return _FREQ_NS[freq]
    ts = g.index.get_level_values("datetime").to_numpy(dtype="datetime64[ns]").astype(np.int64)
    gaps = np.diff(np.unique(ts))
    # the commonest spacing is the bar width (overnight and weekend gaps are rarer)
    if not len(gaps):
        return _FREQ_NS["1d"]
    vals, counts = np.unique(gaps, return_counts=True)
    return int(vals[np.argmax(counts)])


def sweep_dual_ma(bars: pd.DataFrame, fast_windows, slow_windows, periods_per_year: float | None = None,
                  freq: str | None = None) -> pd.DataFrame:
    """Evaluate every (fast < slow) pair on every symbol.

    Parameters
    ----------
    bars : DataFrame
        Indexed by (datetime, symbol) with ``open`` and ``close`` columns.
    fast_windows, slow_windows : iterables of int
    periods_per_year : float, optional
        Annualisation of the Sharpe ratio for every symbol. By default each symbol's own
        calendar (:func:`pyplatform.backtest.annualisation.periods_per_year`: a stock's
        daily bars 252 a year, a crypto pair's minute bars 525,600).
    freq : {"1d", "1min"}, optional
        Bar width for that default; inferred from the commonest spacing of each symbol's
        timestamps when not given.

    Returns
    -------
    DataFrame
        One row per (symbol, fast, slow): total_return, sharpe (annualised), max_drawdown,
        trades (positions opened -- entries that filled, whether closed by the end or not:
        the backtest's ``n_trades`` counts the same), exposure.
    """
    from pyplatform.backtest.annualisation import periods_per_year as calendar_ppy

    windows = sorted(set(fast_windows) | set(slow_windows))
    widx = {w: i for i, w in enumerate(windows)}
    pairs = np.array([(widx[f], widx[s]) for f, s in itertools.product(fast_windows, slow_windows) if f < s], np.int64)
    if len(pairs) == 0:
        raise ValueError("no (fast, slow) pair with fast < slow")
    rows = []
    for sym, g in bars.groupby(level="symbol", sort=True):
        o = g["open"].to_numpy(np.float64)
        c = g["close"].to_numpy(np.float64)
        ma, sums, exact = _crossing_inputs(c, windows)
        out = np.empty((len(pairs), 5))
        _grid(o, c, ma, sums, np.asarray(windows, np.int64), exact, pairs, out)
        df = pd.DataFrame(out, columns=["total_return", "sharpe", "max_drawdown", "trades", "exposure"])
        ppy = periods_per_year if periods_per_year is not None else calendar_ppy([sym], _bar_ns(g, freq))
        df["sharpe"] *= np.sqrt(ppy)
        df.insert(0, "slow", [windows[p[1]] for p in pairs])
        df.insert(0, "fast", [windows[p[0]] for p in pairs])
        df.insert(0, "symbol", sym)
        rows.append(df)
    res = pd.concat(rows, ignore_index=True)
    res["trades"] = res["trades"].astype(int)
    return res.set_index(["symbol", "fast", "slow"])
