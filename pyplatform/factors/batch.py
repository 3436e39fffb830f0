"""The batch runtime: a factor tree evaluated vectorised over a history frame, per symbol.

Independent of the stream runtime on purpose (the parity tests compare the two): moving
windows are computed directly from materialised windows (exact two-pass statistics), the EMA
family with pandas' ``ewm`` after seeding, cumulative functions with pandas group-by.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from pyplatform.factors.functions import lower
from pyplatform.factors.parser import parse
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


def compile_batch(expr: Expr | str) -> Callable[[pd.DataFrame], pd.Series]:
    """Compile a factor for research over history.

    Parameters
    ----------
    expr : Expr or str
        A parsed tree or the text of one.

    Returns
    -------
    callable
        ``f(frame) -> pd.Series`` aligned to ``frame`` (same index, same row order), computed
        per symbol in time order. Missing input columns raise ``KeyError`` naming them.
    """
    tree = parse(expr) if isinstance(expr, str) else expr
    low = lower(tree)
    cols = sorted(tree.columns())

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
        return getattr(self, name)(*node.args)

    # -- helpers ----------------------------------------------------------------------------
    def _first_valid(self, x: np.ndarray) -> np.ndarray:
        """Per row: index of the first non-NULL value of its symbol (n if none)."""
        cand = np.where(np.isnan(x), self.n, self.rows)
        starts = np.unique(self.gstart)
        first = np.minimum.reduceat(cand, starts) if self.n else cand
        return first[self.gid]

    def _windows(self, x: np.ndarray, n: int, start: np.ndarray):
        """Yield (lo, hi, W) with W[i, j] = x[lo+i-n+1+j], NULL before ``start`` of the row."""
        step = max(1, _WINDOW_CELLS // max(n, 1))
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

    def _wsum(self, x: Expr, n: Num, minp: Num, mode: Num, talib: Num) -> np.ndarray:
        v, n, minp = self.eval(x), int(n.value), int(minp.value)
        start = self._first_valid(v) if talib.value else self.gstart
        out = np.full(self.n, np.nan)
        for lo, hi, w in self._windows(v, n, start):
            cnt = np.sum(~np.isnan(w), axis=1)
            sm = np.nansum(w, axis=1)
            seen = self.rows[lo:hi] - start[lo:hi] + 1
            ok = self._ok(cnt, seen, n, minp, 1)
            res = sm if mode.value == 0 else (sm / np.maximum(cnt, 1) if mode.value == 1 else cnt.astype(float))
            out[lo:hi] = np.where(ok, res, np.nan)
        if talib.value:
            out[self.rows < start] = np.nan
        return out

    def _wvar(self, x: Expr, n: Num, minp: Num, mode: Num) -> np.ndarray:
        v, n, minp, mode = self.eval(x), int(n.value), int(minp.value), int(mode.value)
        ddof, need = (1, 2) if mode < 2 else (0, 1)
        out = np.full(self.n, np.nan)
        for lo, hi, w in self._windows(v, n, self.gstart):
            cnt = np.sum(~np.isnan(w), axis=1)
            mean = np.nansum(w, axis=1) / np.maximum(cnt, 1)
            m2 = np.nansum((w - mean[:, None]) ** 2, axis=1)
            var = m2 / np.maximum(cnt - ddof, 1)
            res = np.sqrt(var) if mode in (1, 3) else var
            out[lo:hi] = np.where(self._ok(cnt, self.rows[lo:hi] - self.gstart[lo:hi] + 1, n, minp, need), res, np.nan)
        return out

    def _wext(self, x: Expr, n: Num, minp: Num, sign: Num) -> np.ndarray:
        v, n, minp = self.eval(x), int(n.value), int(minp.value)
        out = np.full(self.n, np.nan)
        for lo, hi, w in self._windows(v, n, self.gstart):
            cnt = np.sum(~np.isnan(w), axis=1)
            filled = np.where(np.isnan(w), -np.inf if sign.value > 0 else np.inf, w)
            res = filled.max(axis=1) if sign.value > 0 else filled.min(axis=1)
            out[lo:hi] = np.where(self._ok(cnt, self.rows[lo:hi] - self.gstart[lo:hi] + 1, n, minp, 1), res, np.nan)
        return out

    def _wcov(self, a: Expr, b: Expr, n: Num, minp: Num, mode: Num) -> np.ndarray:
        va, vb, n, minp = self.eval(a), self.eval(b), int(n.value), int(minp.value)
        both = ~(np.isnan(va) | np.isnan(vb))
        va, vb = np.where(both, va, np.nan), np.where(both, vb, np.nan)
        out = np.full(self.n, np.nan)
        gen_b = self._windows(vb, n, self.gstart)
        for (lo, hi, wa), (_, _, wb) in zip(self._windows(va, n, self.gstart), gen_b):
            cnt = np.sum(~np.isnan(wa), axis=1)
            c = np.maximum(cnt, 1)
            da = wa - (np.nansum(wa, axis=1) / c)[:, None]
            db = wb - (np.nansum(wb, axis=1) / c)[:, None]
            cab, caa, cbb = np.nansum(da * db, axis=1), np.nansum(da * da, axis=1), np.nansum(db * db, axis=1)
            if mode.value == 0:
                den = caa * cbb
                res = np.where(den > 0, cab / np.sqrt(np.where(den > 0, den, 1.0)), np.nan)
            else:
                res = np.where(cbb > 0, cab / np.where(cbb > 0, cbb, 1.0), np.nan)
            out[lo:hi] = np.where(self._ok(cnt, self.rows[lo:hi] - self.gstart[lo:hi] + 1, n, minp, 2), res, np.nan)
        return out

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

    def _ema(self, x: Expr, n: Num, mode: Num) -> np.ndarray:
        v, n = self.eval(x), int(n.value)
        alpha = 2.0 / (n + 1.0) if mode.value == 0 else 1.0 / n
        valid = ~np.isnan(v)
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
