"""Factor primitives over a panel ``[n_symbols, n_times]`` written against an array module ``xp``.

``xp`` is :mod:`numpy` or :mod:`cupy`; every function here uses only the API the two share
(ufuncs, ``where``, ``cumsum``, slicing, ``lib.stride_tricks.sliding_window_view``), so the code
that runs on an NVIDIA GPU is the code the CPU tests run. Each symbol is one row, left-aligned
(column ``t`` is the symbol's ``t``-th row in time order) and padded with NULL (NaN) on the
right, so a column index *is* the number of rows the symbol has seen: the warm-up rules of the
batch runtime (``pyplatform.factors.batch``) carry over unchanged.

Formulations, chosen to map to data-parallel kernels rather than per-row loops:

* moving sums and counts: block prefix + suffix sums (van Herk / Gil-Werman). Time is cut
  into blocks of the window length ``n``; a window ending at block offset ``j`` is the suffix of
  the previous block from ``j + 1`` plus the prefix of its own block through ``j``. Two
  ``cumsum`` calls, O(T) work whatever ``n``, and no subtraction of large running totals (a
  plain ``cumsum[t] - cumsum[t - n]`` loses digits over long histories and turns exact zeros
  into 1e-13 noise);
* moving variance / max / min / correlation / rank / WMA: a sliding-window view processed in
  time chunks of bounded size (two-pass statistics, as exact as the CPU batch runtime). The
  flat-window rule of the CPU runtimes holds here too (docs/factors.md, "Flat windows"): a
  window whose non-NULL values are all equal has spread exactly 0 -- the two-pass deviations
  from a rounded mean would leave ~1e-17 -- so ``zscore``, Bollinger %B and ``mcorr`` of a
  flat window are NULL as in batch and stream;
* the EMA family and cumulative max/min: a Hillis-Steele scan (``log2(T)`` whole-panel steps).
  The EMA is the linear recurrence ``y[t] = a[t] * y[t-1] + b[t]``, whose pairs compose
  associatively, so it needs ``log2(T)`` kernel launches instead of the ``T`` a loop over time
  would (each scan step does O(S * T) work; all multipliers are in [0, 1], so the scan is stable).
"""

from __future__ import annotations

import contextlib
import importlib

import numpy as np

__all__ = [
    "errstate", "shift", "window_sums", "windows", "first_valid", "wsum", "wvar", "wext", "wcov",
    "wrank", "wma", "ema", "cum", "linear_scan", "max_scan",
]

NAN = float("nan")
#: cells (symbols x chunk columns x window) of a sliding-window view materialised at once: a few
#: temporaries of this many float64 fit in a CPU cache-friendly budget / a GPU's memory, and
#: bigger chunks on a GPU mean fewer kernel launches
WINDOW_CELLS = {"numpy": 4_000_000, "cupy": 64_000_000}


def errstate(xp):
    """NumPy warns on NaN arithmetic that is intended here; CuPy never warns."""
    return np.errstate(all="ignore") if xp is np else contextlib.nullcontext()


def shift(xp, x, k: int):
    """``x`` ``k`` columns later (NULL for the first ``k`` columns)."""
    out = xp.full(x.shape, NAN)
    if k < x.shape[1]:
        out[:, k:] = x[:, : x.shape[1] - k]
    return out


def window_sums(xp, v, n: int):
    """Sum of the last ``n`` columns (``v`` holds no NULLs) by block prefix/suffix sums."""
    s, t = v.shape
    nb = -(-t // n)
    padded = xp.zeros((s, nb * n))
    padded[:, :t] = v
    blk = padded.reshape(s, nb, n)
    pre = xp.cumsum(blk, axis=2)
    suf = xp.flip(xp.cumsum(xp.flip(blk, axis=2), axis=2), axis=2)
    out = pre.copy()
    if nb > 1 and n > 1:
        out[:, 1:, : n - 1] += suf[:, :-1, 1:]
    return out.reshape(s, nb * n)[:, :t]


def windows(xp, x, n: int, cells: int | None = None):
    """Yield ``(lo, hi, W)``: ``W[s, i, j] = x[s, lo + i - n + 1 + j]``, NULL before column 0."""
    s, t = x.shape
    padded = xp.concatenate([xp.full((s, n - 1), NAN), x], axis=1)
    # imported by name: ``cupy.lib`` is not guaranteed to be loaded by ``import cupy``
    sliding = importlib.import_module(f"{xp.__name__}.lib.stride_tricks").sliding_window_view
    view = sliding(padded, n, axis=1)
    cells = cells or WINDOW_CELLS.get(xp.__name__, WINDOW_CELLS["numpy"])
    step = max(1, cells // max(1, s * n))
    for lo in range(0, t, step):
        hi = min(t, lo + step)
        yield lo, hi, view[:, lo:hi, :]


def first_valid(xp, v):
    """Column of each symbol's first non-NULL value, shape ``[S, 1]`` (``T`` if none)."""
    valid = ~xp.isnan(v)
    first = xp.argmax(valid.astype(xp.int8), axis=1)  # first maximum = first valid column
    return xp.where(valid.any(axis=1), first, v.shape[1])[:, None]


def _cols(xp, t: int):
    return xp.arange(t)[None, :]


def _ok(cnt, seen, n: int, minp: int, need: int):
    # the window rule shared with the CPU runtimes (see pyplatform.factors.functions)
    if minp > 0:
        return cnt >= max(minp, need)
    return (seen >= n) & (cnt >= need)


def wsum(xp, v, n: int, minp: int, mode: int, talib: bool):
    """Moving sum (mode 0), mean (1) or count (2); ``talib`` starts at the first non-NULL."""
    valid = ~xp.isnan(v)
    cnt = window_sums(xp, valid.astype(xp.float64), n)
    sm = window_sums(xp, xp.where(valid, v, 0.0), n)
    cols = _cols(xp, v.shape[1])
    start = first_valid(xp, v) if talib else 0
    ok = _ok(cnt, cols - start + 1, n, minp, 1)
    res = sm if mode == 0 else (sm / xp.maximum(cnt, 1.0) if mode == 1 else cnt)
    out = xp.where(ok, res, NAN)
    if talib:
        out = xp.where(cols < start, NAN, out)
    return out


def wvar(xp, v, n: int, minp: int, mode: int):
    """Moving var (0), std (1), population var (2), population std (3); two-pass per window."""
    ddof, need = (1.0, 2) if mode < 2 else (0.0, 1)
    valid = ~xp.isnan(v)
    cnt = window_sums(xp, valid.astype(xp.float64), n)
    mean = window_sums(xp, xp.where(valid, v, 0.0), n) / xp.maximum(cnt, 1.0)
    m2 = xp.empty(v.shape)
    for lo, hi, w in windows(xp, v, n):
        d = w - mean[:, lo:hi, None]
        d = xp.where(xp.isnan(d), 0.0, d)
        m2[:, lo:hi] = xp.where(_flat(xp, w), 0.0, (d * d).sum(axis=2))
    var = m2 / xp.maximum(cnt - ddof, 1.0)
    res = xp.sqrt(var) if mode in (1, 3) else var
    return xp.where(_ok(cnt, _cols(xp, v.shape[1]) + 1, n, minp, need), res, NAN)


def _flat(xp, w):
    """Per window of ``w`` ``[S, chunk, n]``: whether its non-NULL values are all equal (and
    there is one at least): its spread is then exactly 0 (the flat-window rule)."""
    nan = xp.isnan(w)
    return xp.where(nan, -xp.inf, w).max(axis=2) == xp.where(nan, xp.inf, w).min(axis=2)


def wext(xp, v, n: int, minp: int, sign: float):
    """Moving maximum (``sign`` > 0) or minimum, skipping NULLs."""
    cnt = window_sums(xp, (~xp.isnan(v)).astype(xp.float64), n)
    fill = -xp.inf if sign > 0 else xp.inf
    ext = xp.empty(v.shape)
    for lo, hi, w in windows(xp, v, n):
        f = xp.where(xp.isnan(w), fill, w)
        ext[:, lo:hi] = f.max(axis=2) if sign > 0 else f.min(axis=2)
    return xp.where(_ok(cnt, _cols(xp, v.shape[1]) + 1, n, minp, 1), ext, NAN)


def wcov(xp, a, b, n: int, minp: int, mode: int):
    """Moving Pearson correlation (mode 0) or OLS slope of ``a`` on ``b`` (mode 1), pairwise NULLs."""
    both = ~(xp.isnan(a) | xp.isnan(b))
    a, b = xp.where(both, a, NAN), xp.where(both, b, NAN)
    cnt = window_sums(xp, both.astype(xp.float64), n)
    c = xp.maximum(cnt, 1.0)
    ma = window_sums(xp, xp.where(both, a, 0.0), n) / c
    mb = window_sums(xp, xp.where(both, b, 0.0), n) / c
    res = xp.empty(a.shape)
    for (lo, hi, wa), (_, _, wb) in zip(windows(xp, a, n), windows(xp, b, n)):
        da = wa - ma[:, lo:hi, None]
        db = wb - mb[:, lo:hi, None]
        da, db = xp.where(xp.isnan(da), 0.0, da), xp.where(xp.isnan(db), 0.0, db)
        cab, caa, cbb = (da * db).sum(axis=2), (da * da).sum(axis=2), (db * db).sum(axis=2)
        # a flat side has no spread and no co-moment (as Welford's d = 0 in the CPU runtimes)
        fa, fb = _flat(xp, wa), _flat(xp, wb)
        caa, cbb, cab = xp.where(fa, 0.0, caa), xp.where(fb, 0.0, cbb), xp.where(fa | fb, 0.0, cab)
        if mode == 0:
            den = caa * cbb
            r = xp.where(den > 0, cab / xp.sqrt(xp.where(den > 0, den, 1.0)), NAN)
        else:
            r = xp.where(cbb > 0, cab / xp.where(cbb > 0, cbb, 1.0), NAN)
        res[:, lo:hi] = r
    return xp.where(_ok(cnt, _cols(xp, a.shape[1]) + 1, n, minp, 2), res, NAN)


def wrank(xp, v, n: int, minp: int, ascending: bool):
    """0-based rank of each value within its window (ties: min), NULL where the value is NULL."""
    valid = ~xp.isnan(v)
    cnt = window_sums(xp, valid.astype(xp.float64), n)
    rank = xp.empty(v.shape)
    for lo, hi, w in windows(xp, v, n):
        cur = v[:, lo:hi, None]
        rank[:, lo:hi] = (w < cur).sum(axis=2) if ascending else (w > cur).sum(axis=2)
    ok = _ok(cnt, _cols(xp, v.shape[1]) + 1, n, minp, 1) & valid
    return xp.where(ok, rank, NAN)


def wma(xp, v, n: int):
    """Linearly weighted moving average; NULL while the window holds any NULL."""
    weights = xp.arange(1, n + 1, dtype=xp.float64) / (n * (n + 1) / 2.0)
    out = xp.empty(v.shape)
    for lo, hi, w in windows(xp, v, n):
        out[:, lo:hi] = (w * weights).sum(axis=2)  # NaN propagates: any NULL gives NULL
    return out


def linear_scan(xp, a, b):
    """``y[t] = a[t] * y[t-1] + b[t]`` along axis 1 (``y[-1] = 0``) by a Hillis-Steele scan."""
    a, b = a.copy(), b.copy()
    t, step = a.shape[1], 1
    while step < t:
        # the right-hand sides are evaluated into temporaries before assignment (numpy and cupy)
        b[:, step:] = a[:, step:] * b[:, :-step] + b[:, step:]
        a[:, step:] = a[:, step:] * a[:, :-step]
        step *= 2
    return b


def max_scan(xp, x, sign: float):
    """Running maximum (``sign`` > 0) or minimum along axis 1 by a Hillis-Steele scan."""
    x = x.copy()
    op = xp.maximum if sign > 0 else xp.minimum
    t, step = x.shape[1], 1
    while step < t:
        x[:, step:] = op(x[:, step:], x[:, :-step])
        step *= 2
    return x


def ema(xp, v, n: int, mode: int):
    """EMA (mode 0, alpha 2/(n+1)) or Wilder smoothing (mode 1, alpha 1/n) as TA-Lib seeds them.

    The seed is the mean of a symbol's first ``n`` non-NULL values; NULL rows leave the state
    unchanged and give NULL (multiplier 1, addend 0 in the scan).
    """
    alpha = 2.0 / (n + 1.0) if mode == 0 else 1.0 / n
    valid = ~xp.isnan(v)
    cnt = xp.cumsum(valid.astype(xp.float64), axis=1)
    total = xp.cumsum(xp.where(valid, v, 0.0), axis=1)
    seed = valid & (cnt == n)
    seeded = cnt >= n
    after = seeded & valid & ~seed
    a = xp.where(after, 1.0 - alpha, xp.where(seed, 0.0, 1.0))
    b = xp.where(after, alpha * v, xp.where(seed, total / n, 0.0))
    y = linear_scan(xp, a, b)
    return xp.where(seeded & valid, y, NAN)


def cum(xp, v, mode: int):
    """Running sum (0), mean (1), max (2), min (3) of non-NULL values (NULL before the first)."""
    valid = ~xp.isnan(v)
    cnt = xp.cumsum(valid.astype(xp.float64), axis=1)
    if mode in (0, 1):
        acc = xp.cumsum(xp.where(valid, v, 0.0), axis=1)
        if mode == 1:
            acc = acc / xp.maximum(cnt, 1.0)
    else:
        sign = 1.0 if mode == 2 else -1.0
        acc = max_scan(xp, xp.where(valid, v, -xp.inf if sign > 0 else xp.inf), sign)
    return xp.where(cnt > 0, acc, NAN)
