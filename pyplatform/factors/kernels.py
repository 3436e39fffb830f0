"""The stream runtime's compiled kernel: one numba function that runs a factor *program*
(a list of instructions over registers) on a micro-batch, with per-symbol state.

Why a small virtual machine instead of one numba function per factor: factors are added and
removed while the engine runs and random expressions are compiled in tests; generating and
JIT-compiling code per expression would cost seconds each. The VM is compiled once (and cached
on disk); a program is just an integer array, so building one is instant, and a whole batch for
all factors is a single call with no per-row Python.

Instructions run column-at-a-time: each reads its operand registers for all rows of the batch
and writes its output register. Stateful instructions walk the rows in order, keyed by the
row's symbol id into the instruction's own ``[symbols, width]`` block of the flat state; every state update is O(1) amortised
(running sums with a periodic exact re-sum, Welford updates, monotonic deques), except
``_wrank`` which is O(window) per row. All state is float64 and zero-initialised, so adding a
symbol is appending a zero row.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["run_program", "state_width", "OPCODES"]

OPCODES = {
    "const": 0, "neg": 1, "not": 2, "abs": 3, "log": 4, "sqrt": 5, "sign": 6, "exp": 7,
    "+": 10, "-": 11, "*": 12, "/": 13, "<": 14, "<=": 15, ">": 16, ">=": 17, "==": 18, "!=": 19,
    "&&": 20, "||": 21, "max": 22, "min": 23, "iif": 30,
    "_move": 40, "_wsum": 41, "_wvar": 42, "_wext": 43, "_wcov": 44, "_wrank": 45, "_ema": 46,
    "_wma": 47, "_cum": 48,
}

NAN = np.nan


def state_width(op: str, n: int) -> int:
    """Floats of per-symbol state an instruction needs (``n``: window or steps)."""
    return {
        "_move": 2 + n, "_wsum": 5 + n, "_wvar": 7 + n, "_wext": 5 + 3 * n, "_wcov": 12 + 2 * n,
        "_wrank": 2 + n, "_ema": 4, "_wma": 5 + n, "_cum": 3,
    }.get(op, 0)


@nb.njit(cache=True, inline="always")
def _ok(cnt, seen, n, minp, need):
    if minp > 0:
        return cnt >= max(minp, need)
    return seen >= n and cnt >= need


@nb.njit(cache=True)
def _move(x, sid, S, o, k, out):
    for i in range(x.shape[0]):
        s = sid[i]
        pos = int(S[s, o])
        seen = S[s, o + 1]
        out[i] = S[s, o + 2 + pos] if seen >= k else NAN
        S[s, o + 2 + pos] = x[i]
        pos += 1
        if pos == k:
            pos = 0
        S[s, o] = pos
        S[s, o + 1] = seen + 1


@nb.njit(cache=True)
def _wsum(x, sid, S, o, n, minp, mode, talib, out):
    for i in range(x.shape[0]):
        s = sid[i]
        v = x[i]
        seen = S[s, o + 1]
        if talib and seen == 0 and math.isnan(v):
            out[i] = NAN
            continue
        pos = int(S[s, o])
        cnt = S[s, o + 2]
        sm = S[s, o + 3]
        r = o + 5
        if seen >= n:
            old = S[s, r + pos]
            if not math.isnan(old):
                cnt -= 1
                sm -= old
        S[s, r + pos] = v
        if not math.isnan(v):
            cnt += 1
            sm += v
        pos += 1
        seen += 1
        if pos == n:  # exact re-sum once per window: bounds the drift of add/subtract
            pos = 0
            sm = 0.0
            for j in range(n):
                w = S[s, r + j]
                if not math.isnan(w):
                    sm += w
        if cnt == 0:
            sm = 0.0
        S[s, o] = pos
        S[s, o + 1] = seen
        S[s, o + 2] = cnt
        S[s, o + 3] = sm
        if not _ok(cnt, seen, n, minp, 1):
            out[i] = NAN
        elif mode == 0:
            out[i] = sm
        elif mode == 1:
            out[i] = sm / cnt
        else:
            out[i] = cnt


@nb.njit(cache=True)
def _wvar(x, sid, S, o, n, minp, mode, out):
    ddof = 1.0 if mode < 2 else 0.0
    need = 2 if mode < 2 else 1
    for i in range(x.shape[0]):
        s = sid[i]
        v = x[i]
        pos = int(S[s, o])
        seen = S[s, o + 1]
        cnt = S[s, o + 2]
        mean = S[s, o + 3]
        m2 = S[s, o + 4]
        run = S[s, o + 5]   # how many of the latest non-NULL values are equal to the last one
        last = S[s, o + 6]
        r = o + 7
        if seen >= n:
            old = S[s, r + pos]
            if not math.isnan(old):
                if cnt <= 1:
                    cnt, mean, m2 = 0.0, 0.0, 0.0
                else:
                    d = old - mean
                    mean -= d / (cnt - 1)
                    m2 -= d * (old - mean)
                    cnt -= 1
        S[s, r + pos] = v
        if not math.isnan(v):
            cnt += 1
            d = v - mean
            mean += d / cnt
            m2 += d * (v - mean)
            run = run + 1 if (run > 0 and v == last) else 1.0
            last = v
        pos += 1
        seen += 1
        if pos == n:  # exact two-pass recomputation once per window
            pos = 0
            c, sm = 0.0, 0.0
            for j in range(n):
                w = S[s, r + j]
                if not math.isnan(w):
                    c += 1
                    sm += w
            mean = sm / c if c > 0 else 0.0
            m2 = 0.0
            for j in range(n):
                w = S[s, r + j]
                if not math.isnan(w):
                    m2 += (w - mean) * (w - mean)
            cnt = c
        if cnt > 0 and run >= cnt:  # all values in the window are equal: exactly zero spread
            mean = last
            m2 = 0.0
        if m2 < 0:
            m2 = 0.0
        S[s, o] = pos
        S[s, o + 1] = seen
        S[s, o + 2] = cnt
        S[s, o + 3] = mean
        S[s, o + 4] = m2
        S[s, o + 5] = run
        S[s, o + 6] = last
        if not _ok(cnt, seen, n, minp, need):
            out[i] = NAN
        else:
            var = m2 / (cnt - ddof)
            out[i] = math.sqrt(var) if (mode == 1 or mode == 3) else var


@nb.njit(cache=True)
def _wext(x, sid, S, o, n, minp, sign, out):
    for i in range(x.shape[0]):
        s = sid[i]
        v = x[i]
        t = S[s, o]
        head = int(S[s, o + 1])
        size = int(S[s, o + 2])
        cnt = S[s, o + 3]
        slot = int(S[s, o + 4])  # t modulo n, kept as a wrapping counter (no division per row)
        fl = o + 5
        qi = fl + n
        qv = qi + n
        while size > 0 and S[s, qi + head] <= t - n:  # expired from the front
            head += 1
            if head == n:
                head = 0
            size -= 1
        if t >= n:
            cnt -= S[s, fl + slot]
        if math.isnan(v):
            S[s, fl + slot] = 0.0
        else:
            S[s, fl + slot] = 1.0
            cnt += 1
            while size > 0:  # drop dominated values from the back
                back = head + size - 1
                if back >= n:
                    back -= n
                if sign * S[s, qv + back] <= sign * v:
                    size -= 1
                else:
                    break
            tail = head + size
            if tail >= n:
                tail -= n
            S[s, qi + tail] = t
            S[s, qv + tail] = v
            size += 1
        t += 1
        slot += 1
        if slot == n:
            slot = 0
        S[s, o] = t
        S[s, o + 1] = head
        S[s, o + 2] = size
        S[s, o + 3] = cnt
        S[s, o + 4] = slot
        out[i] = S[s, qv + head] if (size > 0 and _ok(cnt, t, n, minp, 1)) else NAN


@nb.njit(cache=True)
def _wcov(a, b, sid, S, o, n, minp, mode, out):
    for i in range(a.shape[0]):
        s = sid[i]
        va, vb = a[i], b[i]
        pos = int(S[s, o])
        seen = S[s, o + 1]
        cnt = S[s, o + 2]
        ma, mb = S[s, o + 3], S[s, o + 4]
        caa, cbb, cab = S[s, o + 5], S[s, o + 6], S[s, o + 7]
        run_a, last_a, run_b, last_b = S[s, o + 8], S[s, o + 9], S[s, o + 10], S[s, o + 11]
        ra = o + 12
        rb = ra + n
        if seen >= n:
            oa, ob = S[s, ra + pos], S[s, rb + pos]
            if not (math.isnan(oa) or math.isnan(ob)):
                if cnt <= 1:
                    cnt, ma, mb, caa, cbb, cab = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
                else:
                    c1 = cnt - 1
                    da = oa - ma
                    db = ob - mb
                    ma -= da / c1
                    mb -= db / c1
                    caa -= da * (oa - ma)
                    cbb -= db * (ob - mb)
                    cab -= da * (ob - mb)
                    cnt = c1
        S[s, ra + pos] = va
        S[s, rb + pos] = vb
        if not (math.isnan(va) or math.isnan(vb)):
            cnt += 1
            da = va - ma
            ma += da / cnt
            db = vb - mb
            mb += db / cnt
            caa += da * (va - ma)
            cbb += db * (vb - mb)
            cab += da * (vb - mb)
            run_a = run_a + 1 if (run_a > 0 and va == last_a) else 1.0
            run_b = run_b + 1 if (run_b > 0 and vb == last_b) else 1.0
            last_a, last_b = va, vb
        pos += 1
        seen += 1
        if pos == n:  # exact two-pass recomputation once per window
            pos = 0
            c, sa, sb = 0.0, 0.0, 0.0
            for j in range(n):
                wa, wb = S[s, ra + j], S[s, rb + j]
                if not (math.isnan(wa) or math.isnan(wb)):
                    c += 1
                    sa += wa
                    sb += wb
            ma = sa / c if c > 0 else 0.0
            mb = sb / c if c > 0 else 0.0
            caa, cbb, cab = 0.0, 0.0, 0.0
            for j in range(n):
                wa, wb = S[s, ra + j], S[s, rb + j]
                if not (math.isnan(wa) or math.isnan(wb)):
                    caa += (wa - ma) * (wa - ma)
                    cbb += (wb - mb) * (wb - mb)
                    cab += (wa - ma) * (wb - mb)
            cnt = c
        if cnt > 0 and run_a >= cnt:  # constant window: exactly zero (co)variance
            ma, caa, cab = last_a, 0.0, 0.0
        if cnt > 0 and run_b >= cnt:
            mb, cbb, cab = last_b, 0.0, 0.0
        S[s, o + 8], S[s, o + 9], S[s, o + 10], S[s, o + 11] = run_a, last_a, run_b, last_b
        S[s, o] = pos
        S[s, o + 1] = seen
        S[s, o + 2] = cnt
        S[s, o + 3], S[s, o + 4] = ma, mb
        S[s, o + 5], S[s, o + 6], S[s, o + 7] = caa, cbb, cab
        if not _ok(cnt, seen, n, minp, 2):
            out[i] = NAN
        elif mode == 0:
            den = caa * cbb
            out[i] = cab / math.sqrt(den) if den > 0 else NAN
        else:
            out[i] = cab / cbb if cbb > 0 else NAN


@nb.njit(cache=True)
def _wrank(x, sid, S, o, n, minp, ascending, out):
    for i in range(x.shape[0]):
        s = sid[i]
        v = x[i]
        pos = int(S[s, o])
        seen = S[s, o + 1]
        r = o + 2
        S[s, r + pos] = v
        pos += 1
        if pos == n:
            pos = 0
        seen += 1
        S[s, o] = pos
        S[s, o + 1] = seen
        if math.isnan(v):
            out[i] = NAN
            continue
        m = int(min(seen, n))
        cnt = 0.0
        rank = 0.0
        for j in range(m):
            w = S[s, r + j]
            if not math.isnan(w):
                cnt += 1
                if (ascending and w < v) or ((not ascending) and w > v):
                    rank += 1
        out[i] = rank if _ok(cnt, seen, n, minp, 1) else NAN


@nb.njit(cache=True)
def _ema(x, sid, S, o, n, mode, out):
    alpha = 2.0 / (n + 1.0) if mode == 0 else 1.0 / n
    for i in range(x.shape[0]):
        s = sid[i]
        v = x[i]
        if math.isnan(v):  # NULLs are skipped: state unchanged, output NULL
            out[i] = NAN
            continue
        if S[s, o] == 0.0:  # collecting the seed: the mean of the first n non-NULL values
            cnt = S[s, o + 1] + 1
            sm = S[s, o + 2] + v
            S[s, o + 1] = cnt
            S[s, o + 2] = sm
            if cnt >= n:
                val = sm / n
                S[s, o] = 1.0
                S[s, o + 3] = val
                out[i] = val
            else:
                out[i] = NAN
        else:
            val = S[s, o + 3]
            if mode == 0:
                val = (v - val) * alpha + val  # TA-Lib's EMA recurrence, same operation order
            else:
                val = (val * (n - 1) + v) / n  # TA-Lib's Wilder recurrence (RSI, ATR)
            S[s, o + 3] = val
            out[i] = val


@nb.njit(cache=True)
def _wma(x, sid, S, o, n, out):
    denom = n * (n + 1) / 2.0
    for i in range(x.shape[0]):
        s = sid[i]
        v = x[i]
        seen = S[s, o + 1]
        if seen == 0 and math.isnan(v):
            out[i] = NAN
            continue
        pos = int(S[s, o])
        cnt = S[s, o + 2]
        sm = S[s, o + 3]
        wsum = S[s, o + 4]
        r = o + 5
        old = S[s, r + pos] if seen >= n else 0.0
        if seen >= n and not math.isnan(old):
            cnt -= 1
        ov = 0.0 if math.isnan(old) else old
        xv = 0.0 if math.isnan(v) else v
        if not math.isnan(v):
            cnt += 1
        wsum = wsum - sm + n * xv
        sm = sm - ov + xv
        S[s, r + pos] = v
        pos += 1
        seen += 1
        if pos == n:  # exact recomputation once per window
            pos = 0
            sm, wsum = 0.0, 0.0
            for j in range(n):
                w = S[s, r + j]
                if not math.isnan(w):
                    sm += w
                    wsum += (j + 1) * w
        S[s, o] = pos
        S[s, o + 1] = seen
        S[s, o + 2] = cnt
        S[s, o + 3] = sm
        S[s, o + 4] = wsum
        out[i] = wsum / denom if (seen >= n and cnt == n) else NAN


@nb.njit(cache=True)
def _cum(x, sid, S, o, mode, out):
    for i in range(x.shape[0]):
        s = sid[i]
        v = x[i]
        cnt = S[s, o]
        if not math.isnan(v):
            if mode == 0 or mode == 1:
                S[s, o + 2] += v
            elif cnt == 0 or (mode == 2 and v > S[s, o + 1]) or (mode == 3 and v < S[s, o + 1]):
                S[s, o + 1] = v
            cnt += 1
            S[s, o] = cnt
        if cnt == 0:
            out[i] = NAN
        elif mode == 0:
            out[i] = S[s, o + 2]
        elif mode == 1:
            out[i] = S[s, o + 2] / cnt
        else:
            out[i] = S[s, o + 1]


@nb.njit(cache=True)
def _elementwise(op, a, b, c, f1, out):
    # One loop per operator (the operator is loop-invariant): tight, branch-free loops
    # that LLVM can vectorise, instead of a switch inside every row.
    n = out.shape[0]
    if op == 0:
        out[:] = f1
    elif op == 1:
        for i in range(n):
            out[i] = -a[i]
    elif op == 2:
        for i in range(n):
            x = a[i]
            out[i] = NAN if math.isnan(x) else (1.0 if x == 0 else 0.0)
    elif op == 3:
        for i in range(n):
            out[i] = abs(a[i])
    elif op == 4:
        for i in range(n):
            x = a[i]
            out[i] = math.log(x) if x > 0 else NAN
    elif op == 5:
        for i in range(n):
            x = a[i]
            out[i] = math.sqrt(x) if x >= 0 else NAN
    elif op == 6:
        for i in range(n):
            x = a[i]
            out[i] = NAN if math.isnan(x) else (1.0 if x > 0 else (-1.0 if x < 0 else 0.0))
    elif op == 7:
        for i in range(n):
            x = a[i]
            out[i] = math.exp(x) if x < 709.0 else (math.inf if x == x else NAN)
    elif op == 10:
        for i in range(n):
            out[i] = a[i] + b[i]
    elif op == 11:
        for i in range(n):
            out[i] = a[i] - b[i]
    elif op == 12:
        for i in range(n):
            out[i] = a[i] * b[i]
    elif op == 13:
        for i in range(n):
            y = b[i]
            out[i] = a[i] / y if y != 0 else NAN
    elif op == 22:
        for i in range(n):
            x, y = a[i], b[i]
            out[i] = NAN if (math.isnan(x) or math.isnan(y)) else (x if x >= y else y)
    elif op == 23:
        for i in range(n):
            x, y = a[i], b[i]
            out[i] = NAN if (math.isnan(x) or math.isnan(y)) else (x if x <= y else y)
    elif op == 30:
        for i in range(n):
            x = a[i]
            out[i] = NAN if math.isnan(x) else (b[i] if x != 0 else c[i])
    else:
        for i in range(n):
            x, y = a[i], b[i]
            if math.isnan(x) or math.isnan(y):
                out[i] = NAN
            elif op == 14:
                out[i] = 1.0 if x < y else 0.0
            elif op == 15:
                out[i] = 1.0 if x <= y else 0.0
            elif op == 16:
                out[i] = 1.0 if x > y else 0.0
            elif op == 17:
                out[i] = 1.0 if x >= y else 0.0
            elif op == 18:
                out[i] = 1.0 if x == y else 0.0
            elif op == 19:
                out[i] = 1.0 if x != y else 0.0
            elif op == 20:
                out[i] = 1.0 if (x != 0 and y != 0) else 0.0
            else:
                out[i] = 1.0 if (x != 0 or y != 0) else 0.0


@nb.njit(cache=True)
def run_program(code, fp, regs, sid, S, cap):
    """Run every instruction of ``code`` over the batch held in ``regs`` (see module doc).

    ``code[k] = (op, out, a, b, c, offset, i1, i2, width)`` and ``fp[k] = (f1, f2)``. ``S`` is
    the flat state: instruction k owns ``S[cap*offset : cap*(offset+width)]`` viewed as
    ``[cap, width]`` (one row per symbol), so a batch that walks symbols in order walks each
    instruction's state sequentially instead of striding across all instructions' state.
    """
    for k in range(code.shape[0]):
        op = code[k, 0]
        out = regs[code[k, 1]]
        a = regs[code[k, 2]]
        b = regs[code[k, 3]]
        c = regs[code[k, 4]]
        o = code[k, 5]
        i1 = code[k, 6]
        i2 = code[k, 7]
        w = code[k, 8]
        f1 = fp[k, 0]
        f2 = fp[k, 1]
        if op < 40:
            _elementwise(op, a, b, c, f1, out)
            continue
        blk = S[cap * o: cap * (o + w)].reshape((cap, w))
        if op == 40:
            _move(a, sid, blk, 0, i1, out)
        elif op == 41:
            _wsum(a, sid, blk, 0, i1, i2, int(f1), f2 != 0, out)
        elif op == 42:
            _wvar(a, sid, blk, 0, i1, i2, int(f1), out)
        elif op == 43:
            _wext(a, sid, blk, 0, i1, i2, f1, out)
        elif op == 44:
            _wcov(a, b, sid, blk, 0, i1, i2, int(f1), out)
        elif op == 45:
            _wrank(a, sid, blk, 0, i1, i2, f1 != 0, out)
        elif op == 46:
            _ema(a, sid, blk, 0, i1, int(f1), out)
        elif op == 47:
            _wma(a, sid, blk, 0, i1, out)
        else:
            _cum(a, sid, blk, 0, int(f1), out)
