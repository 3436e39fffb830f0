"""The function table of the factor language: signatures, type checks, look-back and lowering.

User-level functions (``rsi``, ``macd``, ``atr``, ``zscore``...) are *lowered* to a small set of
primitives that the batch and stream runtimes implement:

==========  ==========================================  =======================================
primitive   arguments                                   meaning
==========  ==========================================  =======================================
``_move``   x, k                                        x k rows earlier
``_wsum``   x, n, minPeriods, mode, talib               moving sum (0) / mean (1) / count (2)
``_wvar``   x, n, minPeriods, mode                      var (0), std (1), varp (2), stdp (3)
``_wext``   x, n, minPeriods, sign                      moving max (+1) / min (-1)
``_wcov``   y, x, n, minPeriods, mode                   moving corr (0) / beta of y on x (1)
``_wrank``  x, n, minPeriods, ascending                 0-based rank of the last value, ties min
``_ema``    x, n, mode[, skip]                          ema (alpha 2/(n+1)) (0), wilder (1/n) (1)
``_wma``    x, n                                        linearly weighted moving average
``_cum``    x, mode                                     cumsum (0) / cumavg (1) / cummax (2) / cummin (3)
==========  ==========================================  =======================================

Window rule shared by both runtimes (DolphinDB's m-functions): without ``minPeriods`` the first
``n - 1`` rows of a symbol are NULL and later rows aggregate the non-NULL values of the window;
with ``minPeriods`` a row is NULL while the window holds fewer non-NULL values than that. The
TA-Lib family (``sma``, ``ema``, ``wma``, ``wilder`` and what is built on them) starts its window
at the first non-NULL value, as DolphinDB's TA-Lib functions and TA-Lib itself do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pyplatform.factors.errors import FactorTypeError
from pyplatform.factors.limits import MAX_STATE_BYTES, MAX_WINDOW
from pyplatform.factors.primitives import ELEMENTWISE, PRIMITIVES, state_floats
from pyplatform.factors.tree import Binary, Call, Col, Expr, Num, Unary

__all__ = ["FUNCTIONS", "FuncSpec", "Param", "check", "lower", "lookback_of", "MAX_WINDOW", "state_bytes"]


@dataclass(frozen=True)
class Param:
    """One parameter: ``kind`` is ``x`` (series), ``win`` (integer >= 2), ``steps`` (integer >= 1),
    ``minp`` (1 <= integer <= window), ``bool`` (0/1, true/false) or ``num`` (non-negative constant)."""

    name: str
    kind: str
    default: float | None = None
    optional: bool = False


@dataclass(frozen=True)
class FuncSpec:
    name: str
    params: tuple[Param, ...]
    doc: str
    lower: Callable[[list[Expr]], Expr]
    category: str = "moving"

    @property
    def required(self) -> int:
        return sum(1 for p in self.params if not p.optional)


def _n(v: float) -> Num:
    return Num(float(v))


def _c(name: str, *args: Expr | float) -> Call:
    return Call(name, tuple(a if isinstance(a, Expr) else _n(a) for a in args))


def _arg(args: list[Expr], i: int, default: float) -> Expr:
    return args[i] if i < len(args) else _n(default)


def _val(e: Expr) -> float:
    assert isinstance(e, Num)
    return e.value


X = Param("X", "x")
WIN = Param("window", "win")
MINP = Param("minPeriods", "minp", optional=True)


def _wsum(mode: int, talib: int = 0, default_minp: int = 0):
    return lambda a: _c("_wsum", a[0], a[1], _val(_arg(a, 2, default_minp)), mode, talib)


def _wvar(mode: int):
    return lambda a: _c("_wvar", a[0], a[1], _val(_arg(a, 2, 0)), mode)


def _ema(x: Expr, n: Expr | float, mode: int) -> Call:
    return _c("_ema", x, n, mode)


def _dema(a: list[Expr]) -> Expr:
    e = _ema(a[0], a[1], 0)
    return Binary("-", Binary("*", _n(2), e), _ema(e, a[1], 0))


def _tema(a: list[Expr]) -> Expr:
    e = _ema(a[0], a[1], 0)
    ee = _ema(e, a[1], 0)
    return Binary("+", Binary("-", Binary("*", _n(3), e), Binary("*", _n(3), ee)), _ema(ee, a[1], 0))


def _deltas(x: Expr) -> Expr:
    return Binary("-", x, _c("_move", x, 1))


def _rsi(a: list[Expr]) -> Expr:
    n = _arg(a, 1, 14)
    d = _deltas(a[0])
    up = _c("iif", Binary(">", d, _n(0)), d, 0)
    down = _c("iif", Binary("<", d, _n(0)), Unary("-", d), 0)
    u, dn = _ema(up, n, 1), _ema(down, n, 1)
    return Binary("/", Binary("*", _n(100), u), Binary("+", u, dn))


def _macd_line(a: list[Expr]) -> Expr:
    # TA-Lib seeds the fast EMA where the slow one starts (the mean of the `fast` values ending at
    # the slow seed), not at row fast-1: the fast EMA skips the first slow - fast non-NULL values.
    # Counting non-NULL values (not rows) keeps the EMA's NULL rule: a NULL blanks only its row.
    x, fast, slow = a[0], _arg(a, 1, 12), _arg(a, 2, 26)
    return Binary("-", _c("_ema", x, fast, 0, _val(slow) - _val(fast)), _ema(x, slow, 0))


def _macd_signal(a: list[Expr]) -> Expr:
    return _ema(_macd_line(a), _arg(a, 3, 9), 0)


def _macd_hist(a: list[Expr]) -> Expr:
    return Binary("-", _macd_line(a), _macd_signal(a))


def _bb(sign: int):
    def f(a: list[Expr]) -> Expr:
        n, k = _arg(a, 1, 20), _arg(a, 2, 2)
        mid = _c("_wsum", a[0], n, 0, 1, 0)
        if sign == 0:
            return mid
        return Binary("+" if sign > 0 else "-", mid, Binary("*", k, _c("_wvar", a[0], n, 0, 3)))
    return f


def _atr(a: list[Expr]) -> Expr:
    h, lo, c = a[0], a[1], a[2]
    pc = _c("_move", c, 1)
    tr = _c("max", Binary("-", h, lo), _c("max", _c("abs", Binary("-", h, pc)), _c("abs", Binary("-", lo, pc))))
    return _ema(tr, _arg(a, 3, 14), 1)


def _cross(a: list[Expr]) -> Expr:
    d = Binary("-", a[0], a[1])
    pd = _c("_move", d, 1)
    golden = Binary("&&", Binary(">", d, _n(0)), Binary("<=", pd, _n(0)))
    death = Binary("&&", Binary("<", d, _n(0)), Binary(">=", pd, _n(0)))
    return _c("iif", golden, 1, _c("iif", death, -1, 0))


def _zscore(a: list[Expr]) -> Expr:
    return Binary("/", Binary("-", a[0], _c("_wsum", a[0], a[1], 0, 1, 0)), _c("_wvar", a[0], a[1], 0, 1))


def _mvwap(a: list[Expr]) -> Expr:
    p, v, n = a[0], a[1], a[2]
    return Binary("/", _c("_wsum", Binary("*", p, v), n, 0, 0, 0), _c("_wsum", v, n, 0, 0, 0))


def _same(name: str):
    return lambda a: Call(name, tuple(a))


_SPECS: list[FuncSpec] = [
    # shifts and differences
    FuncSpec("prev", (X,), "x one row earlier", lambda a: _c("_move", a[0], 1), "shift"),
    FuncSpec("move", (X, Param("steps", "steps")), "x `steps` rows earlier", lambda a: _c("_move", a[0], a[1]), "shift"),
    FuncSpec("deltas", (X,), "x - prev(x)", lambda a: _deltas(a[0]), "shift"),
    FuncSpec("ratios", (X,), "x / prev(x)", lambda a: Binary("/", a[0], _c("_move", a[0], 1)), "shift"),
    FuncSpec("percentChange", (X, Param("steps", "steps", 1, True)), "x / move(x, steps) - 1",
             lambda a: Binary("-", Binary("/", a[0], _c("_move", a[0], _arg(a, 1, 1))), _n(1)), "shift"),
    # moving windows
    FuncSpec("mavg", (X, WIN, MINP), "moving mean", _wsum(1)),
    FuncSpec("msum", (X, WIN, MINP), "moving sum", _wsum(0)),
    FuncSpec("mcount", (X, WIN, Param("minPeriods", "minp", 1, True)), "moving count of non-NULL values",
             _wsum(2, 0, 1)),
    FuncSpec("mvar", (X, WIN, MINP), "moving sample variance", _wvar(0)),
    FuncSpec("mstd", (X, WIN, MINP), "moving sample standard deviation", _wvar(1)),
    FuncSpec("mvarp", (X, WIN, MINP), "moving population variance", _wvar(2)),
    FuncSpec("mstdp", (X, WIN, MINP), "moving population standard deviation", _wvar(3)),
    FuncSpec("mmax", (X, WIN, MINP), "moving maximum", lambda a: _c("_wext", a[0], a[1], _val(_arg(a, 2, 0)), 1)),
    FuncSpec("mmin", (X, WIN, MINP), "moving minimum", lambda a: _c("_wext", a[0], a[1], _val(_arg(a, 2, 0)), -1)),
    FuncSpec("mcorr", (X, Param("Y", "x"), WIN, MINP), "moving Pearson correlation",
             lambda a: _c("_wcov", a[0], a[1], a[2], _val(_arg(a, 3, 0)), 0)),
    FuncSpec("mbeta", (Param("Y", "x"), X, WIN, MINP), "moving OLS slope of Y on X",
             lambda a: _c("_wcov", a[0], a[1], a[2], _val(_arg(a, 3, 0)), 1)),
    FuncSpec("mrank", (X, Param("ascending", "bool"), WIN, MINP), "0-based rank of x in its window (ties: min)",
             lambda a: _c("_wrank", a[0], a[2], _val(_arg(a, 3, 0)), a[1])),
    FuncSpec("mvwap", (Param("price", "x"), Param("volume", "x"), WIN), "msum(price*volume)/msum(volume)", _mvwap),
    FuncSpec("zscore", (X, WIN), "(x - mavg(x, n)) / mstd(x, n)", _zscore),
    # TA-Lib family
    FuncSpec("sma", (X, WIN), "simple moving average (TA-Lib window start)", _wsum(1, 1), "talib"),
    FuncSpec("ema", (X, WIN), "exponential moving average, alpha 2/(n+1), seeded with the mean of n",
             lambda a: _ema(a[0], a[1], 0), "talib"),
    FuncSpec("wilder", (X, WIN), "Wilder smoothing, alpha 1/n, seeded with the mean of n",
             lambda a: _ema(a[0], a[1], 1), "talib"),
    FuncSpec("wma", (X, WIN), "linearly weighted moving average", lambda a: _c("_wma", a[0], a[1]), "talib"),
    FuncSpec("dema", (X, WIN), "2*ema - ema(ema)", _dema, "talib"),
    FuncSpec("tema", (X, WIN), "3*ema - 3*ema(ema) + ema(ema(ema))", _tema, "talib"),
    FuncSpec("rsi", (X, Param("window", "win", 14, True)), "relative strength index (Wilder)", _rsi, "talib"),
    FuncSpec("macd", (X, Param("fast", "win", 12, True), Param("slow", "win", 26, True), Param("signal", "win", 9, True)),
             "MACD line: ema(x, fast) - ema(x, slow)", _macd_line, "talib"),
    FuncSpec("macdSignal", (X, Param("fast", "win", 12, True), Param("slow", "win", 26, True), Param("signal", "win", 9, True)),
             "MACD signal: ema(macd, signal)", _macd_signal, "talib"),
    FuncSpec("macdHist", (X, Param("fast", "win", 12, True), Param("slow", "win", 26, True), Param("signal", "win", 9, True)),
             "MACD histogram: macd - macdSignal", _macd_hist, "talib"),
    FuncSpec("bbUpper", (X, Param("window", "win", 20, True), Param("nbdev", "num", 2, True)),
             "Bollinger upper band: mavg + nbdev * mstdp", _bb(1), "talib"),
    FuncSpec("bbMiddle", (X, Param("window", "win", 20, True), Param("nbdev", "num", 2, True)),
             "Bollinger middle band: mavg", _bb(0), "talib"),
    FuncSpec("bbLower", (X, Param("window", "win", 20, True), Param("nbdev", "num", 2, True)),
             "Bollinger lower band: mavg - nbdev * mstdp", _bb(-1), "talib"),
    FuncSpec("atr", (Param("high", "x"), Param("low", "x"), Param("close", "x"), Param("window", "win", 14, True)),
             "average true range (Wilder)", _atr, "talib"),
    FuncSpec("cross", (Param("a", "x"), Param("b", "x")), "+1 when a crosses above b, -1 below, else 0", _cross, "shift"),
    # cumulative
    FuncSpec("cumsum", (X,), "running sum", lambda a: _c("_cum", a[0], 0), "cumulative"),
    FuncSpec("cumavg", (X,), "running mean", lambda a: _c("_cum", a[0], 1), "cumulative"),
    FuncSpec("cummax", (X,), "running maximum", lambda a: _c("_cum", a[0], 2), "cumulative"),
    FuncSpec("cummin", (X,), "running minimum", lambda a: _c("_cum", a[0], 3), "cumulative"),
    # element-wise
    FuncSpec("abs", (X,), "absolute value", _same("abs"), "elementwise"),
    FuncSpec("log", (X,), "natural log (NULL for x <= 0)", _same("log"), "elementwise"),
    FuncSpec("sqrt", (X,), "square root (NULL for x < 0)", _same("sqrt"), "elementwise"),
    FuncSpec("exp", (X,), "e ** x", _same("exp"), "elementwise"),
    FuncSpec("sign", (X,), "-1, 0 or 1", _same("sign"), "elementwise"),
    FuncSpec("max", (Param("a", "x"), Param("b", "x")), "element-wise maximum (NULL if either is NULL)", _same("max"), "elementwise"),
    FuncSpec("min", (Param("a", "x"), Param("b", "x")), "element-wise minimum (NULL if either is NULL)", _same("min"), "elementwise"),
    FuncSpec("iif", (Param("cond", "x"), Param("a", "x"), Param("b", "x")), "a where cond is true, else b (NULL if cond is NULL)",
             _same("iif"), "elementwise"),
]

FUNCTIONS: dict[str, FuncSpec] = {s.name: s for s in _SPECS}


def _err(msg: str, node: Expr, text: str) -> FactorTypeError:
    line, col = getattr(node, "pos", (1, 1)) or (1, 1)
    return FactorTypeError(msg, text, max(line, 1), max(col, 1))


def _const(node: Expr) -> float | None:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Unary) and node.op == "-" and isinstance(node.operand, Num):
        return -node.operand.value
    return None


def check(expr: Expr, text: str = "", columns: set[str] | None = None) -> None:
    """Type-check a parsed tree; raise :class:`FactorTypeError` pointing at the first problem."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Col):
            if columns is not None and node.name not in columns:
                known = ", ".join(sorted(columns))
                raise _err(f"unknown column {node.name!r} (input columns: {known})", node, text)
        elif isinstance(node, Call):
            _check_call(node, text)
        stack.extend(node.children())


def _check_call(node: Call, text: str) -> None:
    spec = FUNCTIONS.get(node.name)
    if spec is None:
        import difflib

        close = difflib.get_close_matches(node.name, FUNCTIONS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise _err(f"unknown function {node.name!r}{hint}", node, text)
    n_args, lo, hi = len(node.args), spec.required, len(spec.params)
    if not lo <= n_args <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        sig = ", ".join(p.name if not p.optional else f"[{p.name}]" for p in spec.params)
        raise _err(f"{node.name}({sig}) takes {want} argument(s), got {n_args}", node, text)
    window = None
    for p, a in zip(spec.params, node.args):
        if p.kind == "x":
            continue
        v = _const(a)
        where = f"{node.name}: argument {p.name!r}"
        if v is None:
            raise _err(f"{where} must be a constant, got expression {str(a)!r}", a, text)
        if p.kind in ("win", "steps", "minp"):
            low = 2 if p.kind == "win" else 1
            if v != int(v) or v < low or v > MAX_WINDOW:
                raise _err(f"{where} must be an integer from {low} to {MAX_WINDOW}, got {v:g}", a, text)
            if p.kind == "win" and window is None:
                window = v
            if p.kind == "minp" and window is not None and v > window:
                raise _err(f"{where} ({v:g}) must not exceed the window ({window:g})", a, text)
        elif p.kind == "bool" and v not in (0.0, 1.0):
            raise _err(f"{where} must be true or false, got {v:g}", a, text)
        elif p.kind == "num" and v < 0:
            raise _err(f"{where} must be a non-negative constant, got {v:g}", a, text)
    if node.name.startswith("macd"):
        fast, slow = _const(_arg(list(node.args), 1, 12)), _const(_arg(list(node.args), 2, 26))
        if fast is not None and slow is not None and fast >= slow:
            raise _err(f"{node.name}: fast period ({fast:g}) must be shorter than slow period ({slow:g})", node, text)
    _check_state(spec, node, text)


def _own_call(spec: FuncSpec, args: list[float | None]) -> Call:
    """The call with placeholder columns for its series arguments (its own state only)."""
    return Call(spec.name, tuple(Col(f"_{i}") if v is None else Num(v) for i, v in enumerate(args)))


def state_bytes(expr: Expr) -> int:
    """Bytes of per-symbol stream state of ``expr`` (all its stateful primitives)."""
    total, stack = 0, [lower(expr)]
    while stack:
        node = stack.pop()
        if isinstance(node, Call) and node.name in PRIMITIVES:
            prim = PRIMITIVES[node.name]
            total += 8 * state_floats(node.name, int(node.args[prim.series].value) if prim.state[1] else 0)
        stack.extend(node.children())
    return total


def _check_state(spec: FuncSpec, node: Call, text: str) -> None:
    # A window's stream state grows with the window; past MAX_STATE_BYTES per symbol a few
    # thousand symbols would need gigabytes, so say so here rather than fail at run time.
    args = [None if p.kind == "x" else _const(a) for p, a in zip(spec.params, node.args)]
    need = state_bytes(_own_call(spec, args))
    if need <= MAX_STATE_BYTES:
        return
    i = next(k for k, p in enumerate(spec.params) if p.kind in ("win", "steps"))
    lo, hi = 2, int(args[i])  # the largest window that fits (state grows linearly with it)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        trial = list(args)
        trial[i] = float(mid)
        lo, hi = (mid, hi) if state_bytes(_own_call(spec, trial)) <= MAX_STATE_BYTES else (lo, mid - 1)
    raise _err(f"{node.name}: window {args[i]:g} needs {need / 2**20:.2f} MiB of stream state per symbol; "
               f"the limit is {MAX_STATE_BYTES / 2**20:g} MiB per symbol per function ({5000 * MAX_STATE_BYTES / 2**30:.1f} GiB "
               f"at 5,000 symbols), so the window can be at most {lo:,}", node.args[i], text)


def lower(expr: Expr) -> Expr:
    """Rewrite user-level calls into the primitives the runtimes implement (see module doc)."""
    if isinstance(expr, (Num, Col)):
        return expr
    if isinstance(expr, Unary):
        return Unary(expr.op, lower(expr.operand))
    if isinstance(expr, Binary):
        return Binary(expr.op, lower(expr.left), lower(expr.right))
    assert isinstance(expr, Call)
    if expr.name.startswith("_"):
        return Call(expr.name, tuple(lower(a) for a in expr.args))
    spec = FUNCTIONS[expr.name]
    args = [lower(a) if p.kind == "x" else Num(_const(a)) for p, a in zip(spec.params, expr.args)]
    return spec.lower(args)


def _lb(e: Expr) -> int:
    if isinstance(e, (Num, Col)):
        return 0
    if isinstance(e, (Unary, Binary)):
        return max(_lb(c) for c in e.children())
    assert isinstance(e, Call)
    if e.name in ELEMENTWISE:
        return max(_lb(c) for c in e.args)
    prim = PRIMITIVES[e.name]
    base = max(_lb(c) for c in e.args[:prim.series])
    return prim.lookback(base, [c.value for c in e.args[prim.series:]])


def lookback_of(expr: Expr) -> int:
    """Rows before the first non-NULL output when all inputs are non-NULL."""
    return _lb(lower(expr))
