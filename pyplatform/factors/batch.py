"""The batch runtime: a factor tree evaluated vectorised over a history frame, per symbol.

Written separately from the stream runtime (the parity tests compare the two, and both
against exact references). Moving windows are O(rows) whatever the window: each symbol's rows
are cut into blocks of ``n`` rows, and a window ending at offset ``o`` of block ``b`` is the
prefix of block ``b`` up to ``o`` joined with the suffix of block ``b - 1`` after ``o``
(van Herk / Gil-Werman). Prefix and suffix aggregates only ever *add* values that are in the
window, so nothing is subtracted and a large value leaving the window leaves no cancellation
error behind. Sums, counts, maxima and minima use pandas' group-by cumulative functions;
variances and co-moments use Welford prefixes/suffixes merged with Chan's formula (numba).
A flat window (all non-NULL values equal) has spread exactly 0 (Welford adds ``d = 0``).
``mrank`` and ``wma`` materialise windows (at most as wide as the longest symbol).
The EMA family uses pandas' ``ewm`` after seeding, cumulative functions pandas group-by.
"""

from __future__ import annotations

import math
from typing import Callable

import numba as nb
import numpy as np
import pandas as pd

from pyplatform.factors.factor import Factor, as_factor
from pyplatform.factors.primitives import PRIMITIVES
from pyplatform.factors.tree import Binary, Call, Col, Expr, Num, Unary

__all__ = ["compile_batch", "evaluate_sorted", "frame_layout", "binary_op"]

_WINDOW_CELLS = 2_000_000  # rows x window materialised at once


def frame_layout(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row order (by symbol, then time, then position) and the symbol codes of ``frame``.

    Accepts a frame indexed by ``(datetime, symbol)`` or with ``symbol`` and ``ts``/``datetime``
    columns; a frame without symbols is one symbol.
    """
    n = len(frame)
    idx = frame.index
    names = list(idx.names) if isinstance(idx, pd.MultiIndex) else [idx.name]
    if "symbol" in frame.columns:
        sym = frame["symbol"].to_numpy()
    elif "symbol" in names:
        sym = idx.get_level_values("symbol").to_numpy()
    else:
        sym = np.zeros(n, dtype=np.int64)
    time = None
    for t in ("ts", "datetime"):
        if t in frame.columns:
            time = frame[t].to_numpy()
            break
        if t in names:
            time = idx.get_level_values(t).to_numpy()
            break
    codes = pd.factorize(sym)[0]
    keys = (np.arange(n), codes) if time is None else (np.arange(n), time, codes)
    return np.lexsort(keys), codes


def compile_batch(expr: Factor | Expr | str) -> Callable[[pd.DataFrame], pd.Series]:
    """Compile a factor for research over history.

    Parameters
    ----------
    expr : Factor, Expr or str
        A parsed factor (:func:`pyplatform.factors.parse`), a tree, or text (parsed here).

    Returns
    -------
    callable
        ``f(frame) -> pd.Series`` aligned to ``frame`` (same index, same row order), computed
        per symbol in time order. Missing input columns raise ``KeyError`` naming them.
    """
    tree = as_factor(expr)
    low = tree.lowered
    cols = list(tree.input_columns)

    def run(frame: pd.DataFrame) -> pd.Series:
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise KeyError(f"factor {str(tree)!r} needs column(s) {missing}; frame has {list(frame.columns)}")
        order, codes = frame_layout(frame)
        data = {c: frame[c].to_numpy(dtype=np.float64, na_value=np.nan)[order] for c in cols}
        vals = evaluate_sorted(low, data, codes[order])
        out = np.empty(len(frame))
        out[order] = vals
        return pd.Series(out, index=frame.index, name=str(tree))

    run.__doc__ = f"Batch runtime of {str(tree)!r}."
    return run


def evaluate_sorted(low: Expr, data: dict[str, np.ndarray], codes: np.ndarray) -> np.ndarray:
    """Evaluate a lowered tree over columns already sorted by (symbol, time)."""
    n = len(codes)
    gid = np.zeros(n, dtype=np.int64)
    if n:
        gid[1:] = np.cumsum(codes[1:] != codes[:-1])
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if n else np.zeros(0, dtype=np.int64)
    ctx = _Ctx(n, gid, starts[gid] if n else np.zeros(0, dtype=np.int64), data)
    with np.errstate(all="ignore"):
        return ctx.eval(low)


class _Ctx:
    def __init__(self, n: int, gid: np.ndarray, gstart: np.ndarray, data: dict[str, np.ndarray]):
        self.n, self.gid, self.gstart, self.data = n, gid, gstart, data
        self.rows = np.arange(n)
        self.memo: dict[str, np.ndarray] = {}
        self.maxlen = int(np.max(np.bincount(gid))) if n else 0  # longest symbol

    def eval(self, node: Expr) -> np.ndarray:
        key = str(node)
        if key not in self.memo:
            self.memo[key] = self._eval(node)
        return self.memo[key]

    # -- element-wise ----------------------------------------------------------------------
    def _eval(self, node: Expr) -> np.ndarray:
        if isinstance(node, Num):
            return np.full(self.n, node.value)
        if isinstance(node, Col):
            return self.data[node.name]
        if isinstance(node, Unary):
            a = self.eval(node.operand)
            return -a if node.op == "-" else np.where(np.isnan(a), np.nan, (a == 0).astype(float))
        if isinstance(node, Binary):
            return binary_op(node.op, self.eval(node.left), self.eval(node.right))
        assert isinstance(node, Call)
        name = node.name
        if not name.startswith("_"):
            a = [self.eval(x) for x in node.args]
            if name == "iif":
                return np.where(np.isnan(a[0]), np.nan, np.where(a[0] != 0, a[1], a[2]))
            if name == "max":
                return np.maximum(a[0], a[1])
            if name == "min":
                return np.minimum(a[0], a[1])
            x = a[0]
            return {
                "abs": np.abs, "sign": np.sign, "exp": np.exp,
                "log": lambda v: np.where(v > 0, np.log(np.where(v > 0, v, 1.0)), np.nan),
                "sqrt": lambda v: np.where(v >= 0, np.sqrt(np.where(v >= 0, v, 0.0)), np.nan),
            }[name](x)
        return getattr(self, PRIMITIVES[name].batch)(*node.args)

    # -- helpers ----------------------------------------------------------------------------
    def _first_valid(self, x: np.ndarray) -> np.ndarray:
        """Per row: index of the first non-NULL value of its symbol (n if none)."""
        cand = np.where(np.isnan(x), self.n, self.rows)
        starts = np.unique(self.gstart)
        first = np.minimum.reduceat(cand, starts) if self.n else cand
        return first[self.gid]

    def _windows(self, x: np.ndarray, n: int, start: np.ndarray):
        """Yield (lo, hi, W) with W[i, j] = x[lo+i-m+1+j], NULL before ``start`` of the row;
        ``m = min(n, longest symbol)``: older cells would all be before the symbol's start."""
        n = max(1, min(n, self.maxlen))
        step = max(1, _WINDOW_CELLS // n)
        offs = np.arange(n) - (n - 1)
        for lo in range(0, self.n, step):
            hi = min(self.n, lo + step)
            idx = self.rows[lo:hi, None] + offs[None, :]
            w = x[np.maximum(idx, 0)]
            w[idx < start[lo:hi, None]] = np.nan
            yield lo, hi, w

    def _ok(self, cnt, seen, n, minp, need):
        if minp > 0:
            return cnt >= max(minp, need)
        return (seen >= n) & (cnt >= need)

    # -- primitives -------------------------------------------------------------------------
    def _move(self, x: Expr, k: Num) -> np.ndarray:
        v, k = self.eval(x), int(k.value)
        src = self.rows - k
        return np.where(src >= self.gstart, v[np.maximum(src, 0)], np.nan)

    def _blocks(self, n: int, start: np.ndarray):
        """Block layout of windows of ``n`` rows: (key, older, p) where ``key`` numbers the
        blocks (rows before ``start`` get their own), ``older[i]`` is the first row of the
        window's part in the previous block (-1 when the window lies in one block) and
        ``p = row - start``."""
        p = self.rows - start
        blk = np.where(p < 0, -1, p // max(n, 1))
        key = self.gid * (self.maxlen // max(n, 1) + 2) + blk + 1
        off = p - blk * n
        older = np.where((p >= n) & (off < n - 1), self.rows - n + 1, -1)
        return key, older, p

    @staticmethod
    def _pre_suf(v: np.ndarray, key: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative ``how`` (cumsum/cummax/cummin) of ``v`` within each block, forwards
        (prefix) and backwards (suffix)."""
        pre = getattr(pd.Series(v).groupby(key, sort=False), how)().to_numpy()
        suf = getattr(pd.Series(v[::-1]).groupby(key[::-1], sort=False), how)().to_numpy()[::-1]
        return pre, suf

    def _join(self, pre: np.ndarray, suf: np.ndarray, older: np.ndarray, fn, empty: float) -> np.ndarray:
        has = older >= 0
        return fn(pre, np.where(has, suf[np.maximum(older, 0)], empty))

    def _extremes(self, v: np.ndarray, key: np.ndarray, older: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Window maximum and minimum of the non-NULL values (-inf/+inf for none)."""
        nan = np.isnan(v)
        hi = self._join(*self._pre_suf(np.where(nan, -np.inf, v), key, "cummax"), older, np.maximum, -np.inf)
        lo = self._join(*self._pre_suf(np.where(nan, np.inf, v), key, "cummin"), older, np.minimum, np.inf)
        return hi, lo

    def _wsum(self, x: Expr, n: Num, minp: Num, mode: Num, talib: Num) -> np.ndarray:
        v, n, minp, mode = self.eval(x), int(n.value), int(minp.value), int(mode.value)
        start = self._first_valid(v) if talib.value else self.gstart
        key, older, p = self._blocks(n, start)
        valid = ~np.isnan(v)
        cnt = self._join(*self._pre_suf(valid.astype(np.float64), key, "cumsum"), older, np.add, 0.0)
        sm = self._join(*self._pre_suf(np.where(valid, v, 0.0), key, "cumsum"), older, np.add, 0.0)
        if mode == 2:
            res = cnt
        elif mode == 0:
            res = sm
        else:
            res = sm / np.maximum(cnt, 1)
        out = np.where(self._ok(cnt, p + 1, n, minp, 1), res, np.nan)
        out[p < 0] = np.nan
        return out

    def _wvar(self, x: Expr, n: Num, minp: Num, mode: Num) -> np.ndarray:
        v, n, minp, mode = self.eval(x), int(n.value), int(minp.value), int(mode.value)
        ddof, need = (1, 2) if mode < 2 else (0, 1)
        key, older, p = self._blocks(n, self.gstart)
        cnt, m2, _, _ = _block_moments(v, v, key, older)
        var = m2 / np.maximum(cnt - ddof, 1)
        res = np.sqrt(var) if mode in (1, 3) else var
        return np.where(self._ok(cnt, p + 1, n, minp, need), res, np.nan)

    def _wext(self, x: Expr, n: Num, minp: Num, sign: Num) -> np.ndarray:
        v, n, minp = self.eval(x), int(n.value), int(minp.value)
        key, older, p = self._blocks(n, self.gstart)
        cnt = self._join(*self._pre_suf((~np.isnan(v)).astype(np.float64), key, "cumsum"), older, np.add, 0.0)
        hi, lo = self._extremes(v, key, older)
        return np.where(self._ok(cnt, p + 1, n, minp, 1), hi if sign.value > 0 else lo, np.nan)

    def _wcov(self, a: Expr, b: Expr, n: Num, minp: Num, mode: Num) -> np.ndarray:
        va, vb, n, minp = self.eval(a), self.eval(b), int(n.value), int(minp.value)
        both = ~(np.isnan(va) | np.isnan(vb))
        va, vb = np.where(both, va, np.nan), np.where(both, vb, np.nan)
        key, older, p = self._blocks(n, self.gstart)
        cnt, caa, cbb, cab = _block_moments(va, vb, key, older)
        if mode.value == 0:
            den = caa * cbb
            res = np.where(den > 0, cab / np.sqrt(np.where(den > 0, den, 1.0)), np.nan)
        else:
            res = np.where(cbb > 0, cab / np.where(cbb > 0, cbb, 1.0), np.nan)
        return np.where(self._ok(cnt, p + 1, n, minp, 2), res, np.nan)

    def _wrank(self, x: Expr, n: Num, minp: Num, ascending: Num) -> np.ndarray:
        v, n, minp = self.eval(x), int(n.value), int(minp.value)
        out = np.full(self.n, np.nan)
        for lo, hi, w in self._windows(v, n, self.gstart):
            cur = v[lo:hi, None]
            cnt = np.sum(~np.isnan(w), axis=1)
            rank = np.sum(w < cur, axis=1) if ascending.value else np.sum(w > cur, axis=1)
            ok = self._ok(cnt, self.rows[lo:hi] - self.gstart[lo:hi] + 1, n, minp, 1) & ~np.isnan(v[lo:hi])
            out[lo:hi] = np.where(ok, rank, np.nan)
        return out

    def _ema(self, x: Expr, n: Num, mode: Num, skip: Num | None = None) -> np.ndarray:
        v, n = self.eval(x), int(n.value)
        alpha = 2.0 / (n + 1.0) if mode.value == 0 else 1.0 / n
        valid = ~np.isnan(v)
        if skip is not None and skip.value:  # the first `skip` non-NULL values are not observations
            valid &= _group_cumsum(valid.astype(np.float64), self.gid) > skip.value
            v = np.where(valid, v, np.nan)
        vz = np.where(valid, v, 0.0)
        # running count / sum of valid values within each symbol
        cnt = _group_cumsum(valid.astype(np.float64), self.gid)
        sm = _group_cumsum(vz, self.gid)
        seed_rows = valid & (cnt == n)
        seeded = _group_cumsum(seed_rows.astype(np.float64), self.gid) > 0
        z = np.where(seeded & valid, v, np.nan)
        z[seed_rows] = sm[seed_rows] / n
        ew = (pd.Series(z).groupby(self.gid, sort=False)
              .ewm(alpha=alpha, adjust=False, ignore_na=True).mean().to_numpy())
        return np.where(seeded & valid, ew, np.nan)

    def _wma(self, x: Expr, n: Num) -> np.ndarray:
        v, n = self.eval(x), int(n.value)
        if n > self.maxlen:  # no symbol has a full window
            return np.full(self.n, np.nan)
        weights = np.arange(1, n + 1, dtype=np.float64) / (n * (n + 1) / 2.0)
        out = np.full(self.n, np.nan)
        for lo, hi, w in self._windows(v, n, self.gstart):
            out[lo:hi] = w @ weights  # any NULL (or a window not yet full) gives NULL
        return out

    def _cum(self, x: Expr, mode: Num) -> np.ndarray:
        v, mode = self.eval(x), int(mode.value)
        s = pd.Series(v)
        g = s.groupby(self.gid, sort=False)
        if mode in (0, 1):
            acc = g.cumsum()
        else:
            acc = g.cummax() if mode == 2 else g.cummin()
        acc = acc.groupby(self.gid, sort=False).ffill().to_numpy()
        if mode == 1:
            acc = acc / _group_cumsum((~np.isnan(v)).astype(np.float64), self.gid)
        return acc


@nb.njit(cache=True)
def _welford_runs(a, b, key, step):
    """Rows of (count, mean a, mean b, M2 a, M2 b, co-moment) accumulated within each block,
    forwards (``step`` 1: prefixes) or backwards (``step`` -1: suffixes)."""
    m = a.shape[0]
    out = np.zeros((6, m))
    c = ma = mb = caa = cbb = cab = 0.0
    for t in range(m):
        i = t if step == 1 else m - 1 - t
        j = i - step
        if j < 0 or j >= m or key[j] != key[i]:  # a block starts: reset
            c = ma = mb = caa = cbb = cab = 0.0
        x, y = a[i], b[i]
        if not (math.isnan(x) or math.isnan(y)):
            c += 1
            dx = x - ma
            ma += dx / c
            dy = y - mb
            mb += dy / c
            caa += dx * (x - ma)
            cbb += dy * (y - mb)
            cab += dx * (y - mb)
        out[0, i], out[1, i], out[2, i], out[3, i], out[4, i], out[5, i] = c, ma, mb, caa, cbb, cab
    return out


@nb.njit(cache=True)
def _block_moments(a, b, key, older):
    """Per row: (count, M2 of a, M2 of b, co-moment) of the non-NULL pairs in its window.

    Welford prefixes (forwards) and suffixes (backwards) within each block, merged with Chan
    et al.'s pairwise formula where a window spans two blocks; see the module doc.
    """
    m = a.shape[0]
    P = _welford_runs(a, b, key, 1)
    Q = _welford_runs(a, b, key, -1)
    cnt, raa, rbb, rab = P[0].copy(), P[3].copy(), P[4].copy(), P[5].copy()
    for i in range(m):
        k = older[i]
        if k < 0 or Q[0, k] == 0:
            continue
        fn, bn = Q[0, k], P[0, i]
        if bn == 0:
            cnt[i], raa[i], rbb[i], rab[i] = fn, Q[3, k], Q[4, k], Q[5, k]
            continue
        tot = fn + bn
        da = P[1, i] - Q[1, k]
        db = P[2, i] - Q[2, k]
        w = fn * bn / tot
        cnt[i] = tot
        raa[i] = Q[3, k] + P[3, i] + da * da * w
        rbb[i] = Q[4, k] + P[4, i] + db * db * w
        rab[i] = Q[5, k] + P[5, i] + da * db * w
    return cnt, raa, rbb, rab


def _group_cumsum(v: np.ndarray, gid: np.ndarray) -> np.ndarray:
    return pd.Series(v).groupby(gid, sort=False).cumsum().to_numpy()


def binary_op(op: str, a, b, xp=np):
    """An infix operator with the language's NULL rules, on NumPy arrays (or CuPy with ``xp``).

    Division by zero is NULL; comparisons and logic with a NULL operand are NULL.
    """
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return xp.where(b == 0, np.nan, a / xp.where(b == 0, 1.0, b))
    res = {
        "<": lambda: a < b, "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b,
        "==": lambda: a == b, "!=": lambda: a != b,
        "&&": lambda: (a != 0) & (b != 0), "||": lambda: (a != 0) | (b != 0),
    }[op]()
    return xp.where(xp.isnan(a) | xp.isnan(b), np.nan, res.astype(xp.float64))
