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


def combine_partials(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Merge partials that share (sid, wstart); result sorted by (sid, wstart)."""
    n = p["sid"].shape[0]
    if n == 0:
        return p
    sid, wstart = p["sid"], p["wstart"]
    by_first = np.lexsort((p["first_seq"], p["first_ts"], wstart, sid))
    s_sid, s_w = sid[by_first], wstart[by_first]
    boundary = np.empty(n, dtype=bool)
    boundary[0] = True
    np.not_equal(s_sid[1:], s_sid[:-1], out=boundary[1:])
    boundary[1:] |= s_w[1:] != s_w[:-1]
    starts = np.flatnonzero(boundary)
    if starts.shape[0] == n:  # nothing to merge: just the sorted partials
        return {k: v[by_first] for k, v in p.items()}
    ends = np.append(starts[1:], n) - 1
    # The same (sid, wstart) groups in the same order, sorted by last tick within each.
    by_last = np.lexsort((p["last_seq"], p["last_ts"], wstart, sid))
    out = {
        "sid": s_sid[starts], "wstart": s_w[starts],
        "first_ts": p["first_ts"][by_first][starts], "first_seq": p["first_seq"][by_first][starts],
        "open": p["open"][by_first][starts],
        "last_ts": p["last_ts"][by_last][ends], "last_seq": p["last_seq"][by_last][ends],
        "close": p["close"][by_last][ends],
        "high": np.maximum.reduceat(p["high"][by_first], starts),
        "low": np.minimum.reduceat(p["low"][by_first], starts),
        "volume": np.add.reduceat(p["volume"][by_first], starts),
        "pv": np.add.reduceat(p["pv"][by_first], starts),
        "trades": np.add.reduceat(p["trades"][by_first], starts),
    }
    return out
