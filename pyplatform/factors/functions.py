"""The function table of the factor language: signatures, type checks, macros, lowering.

Two kinds of user-level function, one table each:

* **core functions** (``mavg``, ``ema``, ``prev``, ``abs``...) are *lowered* to the primitives
  of ``primitives.py`` -- the records every runtime reads -- or to element-wise operations;
  their DolphinDB form is in the primitive record (``Primitive.functions``);
* **composites** (``rsi``, ``macd*``, ``bb*``, ``atr``, ``cross``, ``zscore``, ``mvwap``) are
  *macros* over core functions, written once as factor-language text in :data:`COMPOSITES`.
  :func:`expand` replaces them before lowering and before DolphinDB emission, so the batch,
  stream, GPU and DolphinDB layers all compute the one definition. A record can name a native
  DolphinDB form to be emitted instead of the expansion (none does: the expansions are made of
  DolphinDB reactive-engine state functions already, see each record's ``dolphindb`` note).

The window rules (DolphinDB's m-functions, the TA-Lib window start) are in
``docs/factors.md``, "Window rules"; the look-back of each primitive in its record.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from pyplatform.factors.errors import FactorTypeError
from pyplatform.factors.limits import MAX_STATE_BYTES, MAX_WINDOW
from pyplatform.factors.parser import parse_tree
from pyplatform.factors.primitives import ELEMENTWISE, PRIMITIVES, DdbForm, state_floats
from pyplatform.factors.tree import Binary, Call, Col, Expr, Num, Unary

__all__ = ["FUNCTIONS", "COMPOSITES", "INTERNAL", "FuncSpec", "Param", "Composite", "check", "expand", "lower",
           "lookback_of", "MAX_WINDOW", "state_bytes"]


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
    """A user-level function's signature and how it is computed.

    Attributes
    ----------
    name, params, doc, category : the signature and its documentation.
    lower : ``f(args) -> tree`` over primitives (core functions); ``None`` for composites.
    macro : the composite's :class:`Composite` record (``None`` for core functions).
    """

    name: str
    params: tuple[Param, ...]
    doc: str
    lower: Callable[[list[Expr]], Expr] | None
    category: str = "moving"
    macro: "Composite | None" = None

    @property
    def required(self) -> int:
        return sum(1 for p in self.params if not p.optional)


@dataclass(frozen=True)
class Composite:
    """A composite function: a macro over core functions (see the module doc).

    Attributes
    ----------
    name, params, doc, category : its signature, as for :class:`FuncSpec`.
    template : factor-language text over the parameter names (constant arguments may be
        arithmetic over constant parameters, e.g. ``slow - fast``; internal core functions
        such as ``_emaAfter`` may be used).
    dolphindb : how DolphinDB computes it: why the expansion is the right form there.
    native : a DolphinDB form emitted instead of the expansion, or ``None`` (expand).
    """

    name: str
    params: tuple[Param, ...]
    doc: str
    category: str
    template: str
    dolphindb: str
    native: DdbForm | None = None

    @property
    def spec(self) -> FuncSpec:
        return FuncSpec(self.name, self.params, self.doc, None, self.category, self)


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


def _same(name: str):
    return lambda a: Call(name, tuple(a))


_CORE: list[FuncSpec] = [
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
    FuncSpec("sma", (X, WIN), "simple moving average (TA-Lib window start)", _wsum(1, 1), "talib"),
    FuncSpec("ema", (X, WIN), "exponential moving average, alpha 2/(n+1), seeded with the mean of n",
             lambda a: _ema(a[0], a[1], 0), "talib"),
    FuncSpec("wilder", (X, WIN), "Wilder smoothing, alpha 1/n, seeded with the mean of n",
             lambda a: _ema(a[0], a[1], 1), "talib"),
    FuncSpec("wma", (X, WIN), "linearly weighted moving average", lambda a: _c("_wma", a[0], a[1]), "talib"),
    FuncSpec("dema", (X, WIN), "2*ema - ema(ema)", _dema, "talib"),
    FuncSpec("tema", (X, WIN), "3*ema - 3*ema(ema) + ema(ema(ema))", _tema, "talib"),
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

_WIN = lambda name, default: Param(name, "win", default, True)  # noqa: E731 - an optional window

#: the composites, each defined once. The DolphinDB notes cite what the translation relies on.
COMPOSITES: dict[str, Composite] = {c.name: c for c in [
    Composite("mvwap", (Param("price", "x"), Param("volume", "x"), WIN), "msum(price*volume)/msum(volume)", "moving",
              "msum(price * volume, window) / msum(volume, window)",
              "expanded: msum is a reactive-engine state function"),
    Composite("zscore", (X, WIN), "(x - mavg(x, n)) / mstd(x, n)", "moving",
              "(X - mavg(X, window)) / mstd(X, window)",
              "expanded: mavg and mstd are reactive-engine state functions; a flat window divides by "
              "an exact 0 (NULL)"),
    Composite("rsi", (X, _WIN("window", 14)), "relative strength index (Wilder)", "talib",
              "100 * wilder(iif(deltas(X) > 0, deltas(X), 0), window) / (wilder(iif(deltas(X) > 0, deltas(X), 0), "
              "window) + wilder(iif(deltas(X) < 0, -deltas(X), 0), window))",
              "expanded over wilder, DolphinDB's native state function for Wilder smoothing; ta::rsi is a "
              "module function, not a reactive-engine state function"),
    Composite("macd", (X, _WIN("fast", 12), _WIN("slow", 26), _WIN("signal", 9)),
              "MACD line: ema(x, fast) - ema(x, slow)", "talib",
              "_emaAfter(X, fast, slow - fast) - ema(X, slow)",
              "expanded: TA-Lib seeds the fast EMA where the slow one starts, i.e. after the first "
              "slow - fast non-NULL values (_emaAfter: ema over X with those masked, via cumcount); "
              "counting values, not rows, so a NULL close blanks only its own row"),
    Composite("macdSignal", (X, _WIN("fast", 12), _WIN("slow", 26), _WIN("signal", 9)),
              "MACD signal: ema(macd, signal)", "talib", "ema(macd(X, fast, slow, signal), signal)",
              "expanded over macd and ema"),
    Composite("macdHist", (X, _WIN("fast", 12), _WIN("slow", 26), _WIN("signal", 9)),
              "MACD histogram: macd - macdSignal", "talib",
              "macd(X, fast, slow, signal) - macdSignal(X, fast, slow, signal)", "expanded over macd and ema"),
    Composite("bbUpper", (X, _WIN("window", 20), Param("nbdev", "num", 2, True)),
              "Bollinger upper band: mavg + nbdev * mstdp", "talib", "mavg(X, window) + nbdev * mstdp(X, window)",
              "expanded: mavg and mstdp (population std, as TA-Lib's BBANDS) are state functions"),
    Composite("bbMiddle", (X, _WIN("window", 20), Param("nbdev", "num", 2, True)),
              "Bollinger middle band: mavg", "talib", "mavg(X, window)", "expanded: mavg"),
    Composite("bbLower", (X, _WIN("window", 20), Param("nbdev", "num", 2, True)),
              "Bollinger lower band: mavg - nbdev * mstdp", "talib", "mavg(X, window) - nbdev * mstdp(X, window)",
              "expanded: mavg and mstdp are state functions"),
    Composite("atr", (Param("high", "x"), Param("low", "x"), Param("close", "x"), _WIN("window", 14)),
              "average true range (Wilder)", "talib",
              "wilder(max(high - low, max(abs(high - prev(close)), abs(low - prev(close)))), window)",
              "expanded over wilder (native Wilder smoothing; ta::atr is not a state function); the "
              "NULL-explicit binary max makes the first row (no previous close) NULL"),
    Composite("cross", (Param("a", "x"), Param("b", "x")), "+1 when a crosses above b, -1 below, else 0", "shift",
              "iif(a - b > 0 && prev(a - b) <= 0, 1, iif(a - b < 0 && prev(a - b) >= 0, -1, 0))",
              "expanded: prev and iif with the comparisons' NULL rules"),
]}

#: core functions only composites' templates call (not part of the language users write)
INTERNAL: dict[str, FuncSpec] = {s.name: s for s in [
    FuncSpec("_emaAfter", (X, WIN, Param("skip", "steps")), "ema of x with its first `skip` non-NULL values masked",
             lambda a: _c("_ema", a[0], a[1], 0, a[2]), "talib"),
]}

_ORDER = """prev move deltas ratios percentChange mavg msum mcount mvar mstd mvarp mstdp mmax mmin mcorr mbeta
mrank mvwap zscore sma ema wilder wma dema tema rsi macd macdSignal macdHist bbUpper bbMiddle bbLower atr cross
cumsum cumavg cummax cummin abs log sqrt exp sign max min iif""".split()
_ALL = {s.name: s for s in _CORE} | {n: c.spec for n, c in COMPOSITES.items()}
#: every function users write, core and composite (in the reference's order)
FUNCTIONS: dict[str, FuncSpec] = {n: _ALL[n] for n in _ORDER} | _ALL


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
    total = 0
    for node in lower(expand(expr)).walk():
        if isinstance(node, Call) and node.name in PRIMITIVES:
            prim = PRIMITIVES[node.name]
            total += 8 * state_floats(node.name, int(node.args[prim.series].value) if prim.state[1] else 0)
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


def _fold(e: Expr) -> Expr:
    """A constant argument of a template as one number (``slow - fast`` -> ``14``)."""
    if isinstance(e, Num):
        return e
    if isinstance(e, Unary) and e.op == "-":
        inner = _fold(e.operand)
        return Num(-inner.value) if isinstance(inner, Num) else e
    if isinstance(e, Binary) and e.op in "+-*/":
        a, b = _fold(e.left), _fold(e.right)
        if isinstance(a, Num) and isinstance(b, Num):
            x, y = a.value, b.value
            return Num({"+": x + y, "-": x - y, "*": x * y, "/": x / y if y else float("nan")}[e.op])
    return e


def _spec(name: str) -> FuncSpec | None:
    return FUNCTIONS.get(name) or INTERNAL.get(name)


def _substitute(node: Expr, env: dict[str, Expr]) -> Expr:
    """The template tree ``node`` with its parameters replaced by ``env`` (constant arguments
    of calls folded to numbers). Template trees are small; the arguments are shared, not walked."""
    if isinstance(node, Col):
        return env.get(node.name, node)
    if isinstance(node, Num):
        return node
    if isinstance(node, Unary):
        if node.op == "-" and isinstance(node.operand, Num):  # a literal -1: one number
            return Num(-node.operand.value)
        return Unary(node.op, _substitute(node.operand, env))
    if isinstance(node, Binary):
        return Binary(node.op, _substitute(node.left, env), _substitute(node.right, env))
    assert isinstance(node, Call)
    spec = _spec(node.name)
    kinds = [p.kind for p in spec.params] if spec is not None else ["x"] * len(node.args)
    return Call(node.name, tuple(_substitute(a, env) if k == "x" else _fold(_substitute(a, env))
                                 for k, a in zip(kinds, node.args)))


@lru_cache(maxsize=None)
def _template(name: str) -> Expr:
    """The composite's template, parsed once, with the composites it uses expanded."""
    return expand(parse_tree(COMPOSITES[name].template))


def expand(expr: Expr, keep: frozenset[str] = frozenset()) -> Expr:
    """Replace every composite call by its macro (:data:`COMPOSITES`), recursively.

    Parameters
    ----------
    expr : Expr
        A type-checked tree.
    keep : frozenset of str
        Composites left as calls (the DolphinDB translator keeps those with a ``native`` form).

    Returns
    -------
    Expr
        A tree of core (and internal) functions only, plus the kept composites; optional
        arguments are filled with their defaults.
    """
    if isinstance(expr, (Num, Col)):
        return expr
    if isinstance(expr, Unary):
        return Unary(expr.op, expand(expr.operand, keep))
    if isinstance(expr, Binary):
        return Binary(expr.op, expand(expr.left, keep), expand(expr.right, keep))
    assert isinstance(expr, Call)
    spec = _spec(expr.name)
    if spec is None:  # a primitive call (an already lowered tree)
        return Call(expr.name, tuple(expand(a, keep) for a in expr.args))
    # a constant argument is a number; inside a template it may still be a parameter (symbolic)
    args = [expand(a, keep) if p.kind == "x" else (a if _const(a) is None else Num(_const(a)))
            for p, a in zip(spec.params, expr.args)]
    if spec.macro is None or expr.name in keep:
        return Call(expr.name, tuple(args))
    env = {p.name: (args[i] if i < len(args) else Num(float(p.default))) for i, p in enumerate(spec.params)}
    return _substitute(_template(expr.name), env)


def lower(expr: Expr) -> Expr:
    """Rewrite user-level calls into the primitives the runtimes implement (composites are
    expanded first, see :func:`expand`)."""
    if isinstance(expr, (Num, Col)):
        return expr
    if isinstance(expr, Unary):
        return Unary(expr.op, lower(expr.operand))
    if isinstance(expr, Binary):
        return Binary(expr.op, lower(expr.left), lower(expr.right))
    assert isinstance(expr, Call)
    spec = _spec(expr.name)
    if spec is None:  # a primitive: already lowered
        return Call(expr.name, tuple(lower(a) for a in expr.args))
    if spec.macro is not None:
        return lower(expand(expr))
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
    """Rows before the first non-NULL output when all inputs are non-NULL (a user-level or
    lowered tree; the rule of each primitive is in its record)."""
    return _lb(lower(expr))
