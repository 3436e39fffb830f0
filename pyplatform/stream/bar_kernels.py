"""Vectorised kernels of the bar engine: lateness classification and partial-bar merging.

A *partial* is the aggregate of some ticks of one (symbol, window): first/last tick by
(event time, arrival sequence), high, low, volume, price*volume and count. Single ticks are
partials too, so merging new ticks into open windows and merging partials are one
operation: concatenate, group by (symbol id, window start), reduce.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["PARTIAL_FIELDS", "classify_late", "closed_bound", "combine_partials", "empty_partials"]

INT64_MIN = np.iinfo(np.int64).min

PARTIAL_FIELDS = {
    "sid": np.int64, "wstart": np.int64, "first_ts": np.int64, "first_seq": np.int64,
    "open": np.float64, "last_ts": np.int64, "last_seq": np.int64, "close": np.float64,
    "high": np.float64, "low": np.float64, "volume": np.float64, "pv": np.float64, "trades": np.int64,
    "max_seq": np.int64,  # newest arrival in the partial: orders partials by arrival for summing
}


def empty_partials() -> dict[str, np.ndarray]:
    return {k: np.empty(0, dtype=t) for k, t in PARTIAL_FIELDS.items()}


def closed_bound(watermark, size: int, delay: int):
    """Windows starting before the returned bound are closed once ``watermark`` is reached.

    Window ``[s, s+size)`` closes when ``watermark >= s + size + delay``; with ``s`` aligned
    to ``size`` that is ``s < floor((watermark - size - delay) / size) * size + size``.
    Works on scalars and arrays; ``INT64_MIN`` (nothing seen) maps to ``INT64_MIN``.
    """
    wm = np.asarray(watermark, dtype=np.int64)
    seen = wm != INT64_MIN
    safe = np.where(seen, wm, 0)
    bound = np.floor_divide(safe - size - delay, size) * size + size
    out = np.where(seen, bound, INT64_MIN)
    return out if out.ndim else int(out)


@numba.njit(cache=True, nogil=True)
def classify_late(sid, ts, wstart, watermark, closed, clock_closed, size, delay):  # pragma: no cover - compiled
    """Mark ticks whose window was already closed when they arrived; advance watermarks.

    One pass in arrival order so a batch gives exactly what feeding it row by row would:
    a tick is late if its window closed through an earlier tick of the same symbol (in this
    or an earlier batch), through ``closed`` (earlier emissions) or the clock.
    ``watermark`` (max event time per symbol) is updated in place.
    """
    n = sid.shape[0]
    late = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        s = sid[i]
        bound = closed[s]
        if clock_closed > bound:
            bound = clock_closed
        wm = watermark[s]
        if wm != INT64_MIN:
            b = ((wm - size - delay) // size) * size + size
            if b > bound:
                bound = b
        late[i] = wstart[i] < bound
        if ts[i] > wm:
            watermark[s] = ts[i]
    return late


@numba.njit(cache=True, nogil=True)
def _reduce_groups(starts, first_ts, first_seq, open_, last_ts, last_seq, close, high, low,
                   volume, pv, trades, max_seq):  # pragma: no cover - compiled
    g = starts.shape[0]
    n = first_ts.shape[0]
    o_fts = np.empty(g, np.int64); o_fseq = np.empty(g, np.int64); o_open = np.empty(g, np.float64)
    o_lts = np.empty(g, np.int64); o_lseq = np.empty(g, np.int64); o_close = np.empty(g, np.float64)
    o_high = np.empty(g, np.float64); o_low = np.empty(g, np.float64); o_vol = np.empty(g, np.float64)
    o_pv = np.empty(g, np.float64); o_tr = np.empty(g, np.int64); o_mseq = np.empty(g, np.int64)
    for k in range(g):
        a = starts[k]
        b = starts[k + 1] if k + 1 < g else n
        f, l = a, a
        hi, lo, vol, pvs, tr, ms = high[a], low[a], volume[a], pv[a], trades[a], max_seq[a]
        for i in range(a + 1, b):
            if first_ts[i] < first_ts[f] or (first_ts[i] == first_ts[f] and first_seq[i] < first_seq[f]):
                f = i
            if last_ts[i] > last_ts[l] or (last_ts[i] == last_ts[l] and last_seq[i] > last_seq[l]):
                l = i
            if high[i] > hi:
                hi = high[i]
            if low[i] < lo:
                lo = low[i]
            # Rows arrive sorted by arrival (max_seq), so this is the row-by-row summation
            # order whatever the batch boundaries were: sums are bit-identical.
            vol += volume[i]
            pvs += pv[i]
            tr += trades[i]
            if max_seq[i] > ms:
                ms = max_seq[i]
        o_fts[k] = first_ts[f]; o_fseq[k] = first_seq[f]; o_open[k] = open_[f]
        o_lts[k] = last_ts[l]; o_lseq[k] = last_seq[l]; o_close[k] = close[l]
        o_high[k] = hi; o_low[k] = lo; o_vol[k] = vol; o_pv[k] = pvs; o_tr[k] = tr; o_mseq[k] = ms
    return o_fts, o_fseq, o_open, o_lts, o_lseq, o_close, o_high, o_low, o_vol, o_pv, o_tr, o_mseq


def combine_partials(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Merge partials that share (sid, wstart); result sorted by (sid, wstart)."""
    n = p["sid"].shape[0]
    if n == 0:
        return p
    order = np.lexsort((p["max_seq"], p["wstart"], p["sid"]))
    s = {k: v[order] for k, v in p.items()}
    boundary = np.empty(n, dtype=bool)
    boundary[0] = True
    np.not_equal(s["sid"][1:], s["sid"][:-1], out=boundary[1:])
    boundary[1:] |= s["wstart"][1:] != s["wstart"][:-1]
    starts = np.flatnonzero(boundary)
    if starts.shape[0] == n:  # nothing to merge
        return s
    names = ("first_ts", "first_seq", "open", "last_ts", "last_seq", "close", "high", "low",
             "volume", "pv", "trades", "max_seq")
    reduced = _reduce_groups(starts, *(s[k] for k in names))
    out = {"sid": s["sid"][starts], "wstart": s["wstart"][starts]}
    out.update(zip(names, reduced))
    return out
