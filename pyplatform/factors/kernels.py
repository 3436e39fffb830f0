"""The stream runtime's compiled kernel: one numba function that runs a factor *program*
(a list of instructions over registers) on a micro-batch, with per-symbol state.

Why a small virtual machine instead of one numba function per factor: factors are added and
removed while the engine runs and random expressions are compiled in tests; generating and
JIT-compiling code per expression would cost seconds each. The VM is compiled once (and cached
on disk); a program is just an integer array, so building one is instant, and a whole batch for
all factors is a single call with no per-row Python.

Instructions run column-at-a-time: each reads its operand registers for all rows of the batch
and writes its output register. Stateful instructions walk the rows in order, keyed by the
row's symbol id into the instruction's own ``[symbols, width]`` block of the flat state; every state update is O(1) amortised,
except ``_wrank`` which is O(window) per row. All state is float64 and zero-initialised, so
adding a symbol is appending a zero row.

Moving sums, variances, co-moments and weighted sums are *two-stack* sliding aggregates: a
ring of the last ``n`` values, a "back" aggregate of the values written since the last flip,
and, at each flip (every ``n`` rows of a symbol, when the ring is in age order), suffix
aggregates of the whole ring. A window is the suffix aggregate of its oldest value merged with
the back (sums added; Welford moments merged with Chan et al.'s formula). No value is ever
subtracted, so a value that leaves the window leaves no cancellation error behind (a 1e12 tick
followed by prices near 1 gives the exact spread of those prices), sums over exact zeros are
exactly 0, and a flat window has spread exactly 0 (Welford adds ``d = 0``). The cost is one O(n) pass per ``n``
rows: O(1) amortised, and independent of how rows are batched (bit-identical output).
Symbols fed in lockstep flip on the same batch; the flip passes are cheap (additions only, no
division per value), and keeping every symbol's ring at the same position keeps the state
access a regular stride that the hardware prefetcher follows (staggering the rings was tried:
it halved the p99 spike but slowed every batch by a third).
Each slot's ring value and suffix aggregates are stored side by side, so a row reads one
cache line of them (the state of thousands of symbols does not fit in cache).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from pyplatform.factors.primitives import OPCODES, state_floats

__all__ = ["run_program", "state_width", "OPCODES"]


NAN = np.nan


def state_width(op: str, n: int) -> int:
    """Floats of per-symbol state an instruction needs (``n``: window or steps)."""
    return state_floats(op, n)


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
    # State: pos, seen, cnt (non-NULL values in the window, exact), bsum (sum of the values
    # written since the last flip), ceil(n / 64) words of
    # non-NULL flags (the float64 state viewed as int64 bits), then n slots.
    # Two-stack sliding sum, in place: a slot written since the last flip holds its value;
    # at each flip (every n rows, when the ring is in age order) every slot j is replaced by
    # the sum of slots j..n-1, so until it is overwritten it holds the suffix sum of the
    # front that starts there, and a window is slot[pos] + bsum. Nothing is ever subtracted,
    # so a large value that leaves the window leaves no cancellation error, and the cost is
    # O(1) amortised (one O(n) pass per n rows) with the memory of a plain ring.
    nw = (n + 63) >> 6
    fl = o + 4
    r = fl + nw
    B = S.view(np.int64)  # the flag words are bit patterns, not numbers
    for i in range(x.shape[0]):
        s = sid[i]
        v = x[i]
        seen = S[s, o + 1]
        if talib and seen == 0 and math.isnan(v):
            out[i] = NAN
            continue
        pos = int(S[s, o])
        cnt = S[s, o + 2]
        bsum = S[s, o + 3]
        wi = fl + (pos >> 6)
        bit = np.int64(1) << (pos & 63)
        word = B[s, wi]
        if seen >= n and (word & bit) != 0:  # the value leaving was non-NULL
            cnt -= 1
        S[s, r + pos] = v
        if math.isnan(v):
            word &= ~bit
        else:
            word |= bit
            cnt += 1
            bsum += v
        B[s, wi] = word
        pos += 1
        seen += 1
        if pos == n:  # flip: the ring is in age order; suffix sums of it, back stack empty
            pos = 0
            acc = 0.0
            for j in range(n - 1, -1, -1):
                w = S[s, r + j]
                if not math.isnan(w):
                    acc += w
                S[s, r + j] = acc
            bsum = 0.0
        S[s, o] = pos
        S[s, o + 1] = seen
        S[s, o + 2] = cnt
        S[s, o + 3] = bsum
        if not _ok(cnt, seen, n, minp, 1):
            out[i] = NAN
        elif mode == 2:
            out[i] = cnt
        else:
            # slot pos is the oldest value still in the window: before the first flip it was
            # never written (0: the front is empty), after it it holds the front's suffix sum
            sm = S[s, r + pos] + bsum
            out[i] = sm if mode == 0 else sm / cnt


@nb.njit(cache=True)
def _wvar(x, sid, S, o, n, minp, mode, out, mode2, out2):
    # State: pos, seen, cnt (window), bn, bmean, bm2 (Welford over the values written since
    # the last flip), k (the shift of the suffixes), ceil(n / 64) words of non-NULL flags
    # (as in _wsum), then n slots of two floats: a slot written since the last flip holds its
    # value; at a flip, slot j becomes (sum of (x - k), sum of (x - k)**2) over slots j..n-1
    # (the front's suffix from j; its count is cnt - bn), in place. A window is Chan's merge of the suffix and the back: only values
    # inside the window enter it, so nothing is removed and no cancellation is left behind.
    # The suffixes are shifted by k, the newest non-NULL value of the ring at the flip, which
    # belongs to every non-empty suffix: then M2 = Q - D**2/c >= Q/c (Cauchy-Schwarz), so at
    # most log2(c) bits cancel, and the flip needs no division per value. A flat window has
    # D = Q = 0 and so M2 == 0 exactly (and Welford adds d = 0 to the back).
    # The state does not depend on the mode: with ``mode2 >= 0`` the instruction also writes
    # that statistic to ``out2`` (mstd and mstdp of one series share one state).
    ddof2 = 1.0 if mode2 < 2 else 0.0
    need2 = 2 if mode2 < 2 else 1
    ddof = 1.0 if mode < 2 else 0.0
    need = 2 if mode < 2 else 1
    nw = (n + 63) >> 6
    fl = o + 7
    r = fl + nw
    fm = r
    fq = r + 1
    B = S.view(np.int64)  # the flag words are bit patterns, not numbers
    for i in range(x.shape[0]):
        s = sid[i]
        v = x[i]
        pos = int(S[s, o])
        seen = S[s, o + 1]
        cnt = S[s, o + 2]
        bn, bmean, bm2 = S[s, o + 3], S[s, o + 4], S[s, o + 5]
        wi = fl + (pos >> 6)
        bit = np.int64(1) << (pos & 63)
        word = B[s, wi]
        if seen >= n and (word & bit) != 0:  # the value leaving was non-NULL
            cnt -= 1
        S[s, r + 2 * pos] = v
        B[s, wi] = (word & ~bit) if math.isnan(v) else (word | bit)
        if not math.isnan(v):
            cnt += 1
            bn += 1
            d = v - bmean
            bmean += d / bn
            bm2 += d * (v - bmean)
        pos += 1
        seen += 1
        if pos == n:  # flip: shifted suffix sums over the ring (age order), back stack empty
            pos = 0
            dsum, qsum = 0.0, 0.0
            k = NAN
            for j in range(n - 1, -1, -1):
                w = S[s, r + 2 * j]
                if not math.isnan(w):
                    if math.isnan(k):
                        k = w
                    d = w - k
                    dsum += d
                    qsum += d * d
                S[s, fm + 2 * j] = dsum
                S[s, fq + 2 * j] = qsum
            S[s, o + 6] = 0.0 if math.isnan(k) else k
            bn, bmean, bm2 = 0.0, 0.0, 0.0
        S[s, o] = pos
        S[s, o + 1] = seen
        S[s, o + 2] = cnt
        S[s, o + 3], S[s, o + 4], S[s, o + 5] = bn, bmean, bm2
        ok1 = _ok(cnt, seen, n, minp, need)
        ok2 = mode2 >= 0 and _ok(cnt, seen, n, minp, need2)
        if not ok1:
            out[i] = NAN
        if mode2 >= 0 and not ok2:
            out2[i] = NAN
        if ok1 or ok2:
            fn = cnt - bn
            if fn == 0:
                m2 = bm2
            else:  # the suffix's M2 from its shifted sums, then Chan et al.'s merge with the back
                inv = 1.0 / fn
                dsum = S[s, fm + 2 * pos]
                m2 = max(S[s, fq + 2 * pos] - dsum * dsum * inv, 0.0)
                if bn > 0:
                    d = bmean - (S[s, o + 6] + dsum * inv)
                    m2 += bm2 + d * d * (fn * bn / cnt)
            if ok1:
                var = m2 / (cnt - ddof)
                out[i] = math.sqrt(var) if (mode == 1 or mode == 3) else var
            if ok2:
                var = m2 / (cnt - ddof2)
                out2[i] = math.sqrt(var) if (mode2 == 1 or mode2 == 3) else var


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
    # The two-stack scheme of _wvar for pairs: back (bn, means, co-moments) by Welford, shifted
    # suffix sums and cross-products of the ring at the last flip, merged per row (Chan et al.). Only
    # rows where both values are non-NULL count. A flat series has co-moments exactly 0.
    # Slots of five floats, in place as in _wvar: (a, b) while in the back; at a flip
    # (sum of a - ka, sum of b - kb, the three sums of products) over the suffix.
    nw = (n + 63) >> 6
    fl = o + 11  # after the header: ..., ka, kb (the suffixes' shifts, as in _wvar)
    ra = fl + nw
    rb = ra + 1
    fa = ra
    fb = ra + 1
    faa = ra + 2
    fbb = ra + 3
    fab = ra + 4
    B = S.view(np.int64)  # the flag words are bit patterns, not numbers
    for i in range(a.shape[0]):
        s = sid[i]
        va, vb = a[i], b[i]
        pos = int(S[s, o])
        seen = S[s, o + 1]
        cnt = S[s, o + 2]
        bn, bma, bmb = S[s, o + 3], S[s, o + 4], S[s, o + 5]
        baa, bbb, bab = S[s, o + 6], S[s, o + 7], S[s, o + 8]
        wi = fl + (pos >> 6)
        bit = np.int64(1) << (pos & 63)
        word = B[s, wi]
        if seen >= n and (word & bit) != 0:  # the pair leaving was non-NULL
            cnt -= 1
        S[s, ra + 5 * pos] = va
        S[s, rb + 5 * pos] = vb
        B[s, wi] = (word & ~bit) if (math.isnan(va) or math.isnan(vb)) else (word | bit)
        if not (math.isnan(va) or math.isnan(vb)):
            cnt += 1
            bn += 1
            da = va - bma
            bma += da / bn
            db = vb - bmb
            bmb += db / bn
            baa += da * (va - bma)
            bbb += db * (vb - bmb)
            bab += da * (vb - bmb)
        pos += 1
        seen += 1
        if pos == n:  # flip
            pos = 0
            sa, sb, caa, cbb, cab = 0.0, 0.0, 0.0, 0.0, 0.0
            ka, kb = NAN, NAN
            for j in range(n - 1, -1, -1):
                wa, wb = S[s, ra + 5 * j], S[s, rb + 5 * j]
                if not (math.isnan(wa) or math.isnan(wb)):
                    if math.isnan(ka):
                        ka, kb = wa, wb
                    da = wa - ka
                    db = wb - kb
                    sa += da
                    sb += db
                    caa += da * da
                    cbb += db * db
                    cab += da * db
                S[s, fa + 5 * j], S[s, fb + 5 * j] = sa, sb
                S[s, faa + 5 * j], S[s, fbb + 5 * j], S[s, fab + 5 * j] = caa, cbb, cab
            S[s, o + 9] = 0.0 if math.isnan(ka) else ka
            S[s, o + 10] = 0.0 if math.isnan(kb) else kb
            bn, bma, bmb, baa, bbb, bab = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        S[s, o] = pos
        S[s, o + 1] = seen
        S[s, o + 2] = cnt
        S[s, o + 3], S[s, o + 4], S[s, o + 5] = bn, bma, bmb
        S[s, o + 6], S[s, o + 7], S[s, o + 8] = baa, bbb, bab
        if not _ok(cnt, seen, n, minp, 2):
            out[i] = NAN
            continue
        fn = cnt - bn
        if fn == 0:
            caa, cbb, cab = baa, bbb, bab
        else:
            # the suffix's moments from its shifted sums (see _wvar), then Chan's merge
            inv = 1.0 / fn
            sa, sb = S[s, fa + 5 * pos], S[s, fb + 5 * pos]
            faa_ = max(S[s, faa + 5 * pos] - sa * sa * inv, 0.0)
            fbb_ = max(S[s, fbb + 5 * pos] - sb * sb * inv, 0.0)
            fab_ = S[s, fab + 5 * pos] - sa * sb * inv
            if bn == 0:
                caa, cbb, cab = faa_, fbb_, fab_
            else:
                da = bma - (S[s, o + 9] + sa * inv)
                db = bmb - (S[s, o + 10] + sb * inv)
                w = fn * bn / cnt
                caa = faa_ + baa + da * da * w
                cbb = fbb_ + bbb + db * db * w
                cab = fab_ + bab + da * db * w
        if mode == 0:
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
def _ema(x, sid, S, o, n, mode, skip, out):
    # State: seeded flag, non-NULL values seen while seeding, seed sum, value. The first
    # ``skip`` non-NULL values are observed but not used (MACD's fast line starts where the
    # slow one does, as in TA-Lib); NULLs are skipped, so a NULL only blanks its own row.
    alpha = 2.0 / (n + 1.0) if mode == 0 else 1.0 / n
    for i in range(x.shape[0]):
        s = sid[i]
        v = x[i]
        if math.isnan(v):  # NULLs are skipped: state unchanged, output NULL
            out[i] = NAN
            continue
        if S[s, o] == 0.0:  # collecting the seed: the mean of n non-NULL values after `skip`
            cnt = S[s, o + 1] + 1
            S[s, o + 1] = cnt
            if cnt <= skip:
                out[i] = NAN
                continue
            sm = S[s, o + 2] + v
            S[s, o + 2] = sm
            if cnt >= n + skip:
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
    # Two-stack weighted sum (weights 1..n, oldest first): at a flip, for the ring in age order,
    # ssum[j] = sum(ring[j:]) and wsum[j] = sum((k - j + 1) * ring[k] for k >= j); the back
    # keeps its sum and its locally weighted sum (weights 1..pos). A window of f front and
    # pos back values is wsum[pos] + f * bsum + bw: additions only, no cancellation.
    denom = n * (n + 1) / 2.0
    r = o + 5
    fs = r + 1
    fw = r + 2
    for i in range(x.shape[0]):
        s = sid[i]
        v = x[i]
        seen = S[s, o + 1]
        if seen == 0 and math.isnan(v):
            out[i] = NAN
            continue
        pos = int(S[s, o])
        cnt = S[s, o + 2]
        bsum = S[s, o + 3]
        bw = S[s, o + 4]
        if seen >= n and not math.isnan(S[s, r + 3 * pos]):
            cnt -= 1
        xv = 0.0 if math.isnan(v) else v
        if not math.isnan(v):
            cnt += 1
        S[s, r + 3 * pos] = v
        bsum += xv
        bw += (pos + 1) * xv
        pos += 1
        seen += 1
        if pos == n:  # flip
            pos = 0
            sm, wm = 0.0, 0.0
            for j in range(n - 1, -1, -1):
                w = S[s, r + 3 * j]
                w = 0.0 if math.isnan(w) else w
                wm = w + wm + sm
                sm = w + sm
                S[s, fs + 3 * j] = sm
                S[s, fw + 3 * j] = wm
            bsum, bw = 0.0, 0.0
        S[s, o] = pos
        S[s, o + 1] = seen
        S[s, o + 2] = cnt
        S[s, o + 3] = bsum
        S[s, o + 4] = bw
        if seen >= n and cnt == n:
            out[i] = (S[s, fw + 3 * pos] + (n - pos) * bsum + bw) / denom
        else:
            out[i] = NAN


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
            _wvar(a, sid, blk, 0, i1, i2, int(f1), out, int(f2) - 1, c)
        elif op == 43:
            _wext(a, sid, blk, 0, i1, i2, f1, out)
        elif op == 44:
            _wcov(a, b, sid, blk, 0, i1, i2, int(f1), out)
        elif op == 45:
            _wrank(a, sid, blk, 0, i1, i2, f1 != 0, out)
        elif op == 46:
            _ema(a, sid, blk, 0, i1, int(f1), i2, out)
        elif op == 47:
            _wma(a, sid, blk, 0, i1, out)
        else:
            _cum(a, sid, blk, 0, int(f1), out)
