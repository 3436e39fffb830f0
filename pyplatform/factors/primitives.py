"""The primitive set, one record each: the table every layer of the factor language reads.

A user-level function is either a *core* function, lowered to one of these primitives (or to
an element-wise operation) by ``functions.py``, or a *composite*, a macro over core functions
(``composites.py``) expanded before lowering and before DolphinDB emission.

Each :class:`Primitive` record names, for its layer, everything that layer needs:

===============  ===========================================================================
layer            reads
===============  ===========================================================================
look-back        ``lookback`` (``functions.lookback_of``)
stream program   ``series``, ``pack``, ``state``/``flags`` (``program.build_program``)
stream VM        ``opcode`` -> the numba kernel ``kernels.<kernel>`` (dispatched in
                 ``kernels.run_program``)
state limit      ``state_floats`` (``functions._check_state``, ``limits.MAX_STATE_BYTES``)
batch runtime    the method ``batch._Ctx.<batch>``
GPU array path   the method ``gpu._Evaluator.<gpu>`` (over the ``gpu_ops`` kernels)
DolphinDB        ``functions``: each core function lowered to this primitive and its
                 DolphinDB form (``dolphindb.py``)
===============  ===========================================================================

``tests/factors/test_factors_primitives.py`` iterates the records and fails when a layer
misses one. A new primitive is one record here plus the implementations it names.

A DolphinDB form is a :class:`DdbForm`: a template over the argument texts (``{0}``, ``{1}``...;
``{d0}`` is argument 0 as a DOUBLE expression, ``{b1}`` argument 1 as a BOOL literal), one per
number of arguments given (the last one serves any larger count), and the DolphinDB type of
the result (``DOUBLE``, ``same`` as the first argument, or ``None`` when not known).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Primitive", "DdbForm", "PRIMITIVES", "STATEFUL", "ELEMENTWISE", "ELEMENTWISE_FORMS", "OPCODES",
           "CORE_FORMS", "state_floats", "lookback"]


@dataclass(frozen=True)
class DdbForm:
    """DolphinDB text of a core function (see the module doc).

    Attributes
    ----------
    templates : tuple of str
        ``templates[k]`` is used for ``k + min_args`` arguments (the last for any more).
    result : str or None
        ``"DOUBLE"``, ``"same"`` (the type of the first argument) or ``None`` (unknown).
    min_args : int
        The fewest arguments the function takes (its required parameters).
    """

    templates: tuple[str, ...]
    result: str | None = "DOUBLE"
    min_args: int = 1

    def render(self, texts: list[str], doubles: list[str], bools: list[str]) -> str:
        t = self.templates[min(len(texts) - self.min_args, len(self.templates) - 1)]
        if "{" not in t:  # a native function's name: called with the arguments as given
            return f"{t}({', '.join(texts)})"
        kw = {f"d{i}": d for i, d in enumerate(doubles)} | {f"b{i}": b for i, b in enumerate(bools)}
        return t.format(*texts, **kw)


def native(name: str, result: str | None = "DOUBLE", min_args: int = 1) -> DdbForm:
    """A DolphinDB built-in of the same name and arguments: ``name({0}, {1}, ...)``."""
    return DdbForm((name,), result, min_args)


@dataclass(frozen=True)
class Primitive:
    """One stateful primitive.

    Attributes
    ----------
    name, opcode : the lowered call name and the stream VM's opcode.
    series : how many leading arguments are series (the rest are constants).
    params : names of the constant arguments, in order.
    state : ``(base, per)``: per-symbol stream state is ``base + per * n`` floats, ``n`` the
        first constant (window or steps; 0 when ``per`` is 0), plus ``ceil(n / 64)`` words of
        non-NULL flags (int64 bit patterns) when ``flags``.
    lookback : ``f(base, p)`` -> rows before the first non-NULL output given the look-back
        ``base`` of the series arguments and the constants ``p`` (inputs without NULLs).
    pack : ``f(p)`` -> ``(i1, i2, f1, f2)``, the constants as the VM instruction carries them.
    doc : what it computes.
    batch, kernel, gpu : the implementing method of ``batch._Ctx``, numba function of
        ``kernels`` and method of ``gpu._Evaluator`` (default: the primitive's name).
    functions : ``{core function: DdbForm}``: the user-level functions lowered to this
        primitive and their DolphinDB translation.
    flags : whether the state carries non-NULL flag words.
    """

    name: str
    opcode: int
    series: int
    params: tuple[str, ...]
    state: tuple[int, int]
    lookback: Callable[[int, list[float]], int]
    pack: Callable[[list[float]], tuple[int, int, float, float]]
    doc: str
    functions: dict[str, DdbForm] = field(default_factory=dict)
    flags: bool = False
    batch: str = ""
    kernel: str = ""
    gpu: str = ""

    def __post_init__(self) -> None:
        # each implementation is named after the primitive unless the record says otherwise
        for layer in ("batch", "kernel", "gpu"):
            if not getattr(self, layer):
                object.__setattr__(self, layer, self.name)

    def state_floats(self, n: int) -> int:
        base, per = self.state
        return base + per * n + ((n + 63) // 64 if self.flags else 0)


def _window_lb(need_of: Callable[[list[float]], int], talib_of: Callable[[list[float]], bool] = lambda p: False):
    # DolphinDB's m-function rule (docs/factors.md, Window rules): without minPeriods the first
    # n-1 rows are NULL; with it, the first max(minPeriods, need) - 1 after the input's look-back.
    def lb(base: int, p: list[float]) -> int:
        n, minp, need = int(p[0]), int(p[1]), need_of(p)
        if talib_of(p):  # TA-Lib window start: counts from the first non-NULL input
            return base + n - 1
        if minp > 0:
            return base + max(minp, need) - 1
        return max(base + need - 1, n - 1)
    return lb


_SAME = "same"
_MWIN = dict(min_args=2)  # x, window[, minPeriods]

_LIST = [
    Primitive("_move", 40, 1, ("k",), (2, 1), lambda b, p: b + int(p[0]),
              lambda p: (int(p[0]), 0, 0.0, 0.0), "x k rows earlier",
              {"prev": native("prev", _SAME), "move": native("move", _SAME, 2), "deltas": native("deltas", _SAME),
               "ratios": native("ratios"), "percentChange": native("percentChange")}),
    Primitive("_wsum", 41, 1, ("n", "minPeriods", "mode", "talib"), (4, 1),
              _window_lb(lambda p: 1, lambda p: p[3] == 1),
              lambda p: (int(p[0]), int(p[1]), p[2], p[3]), "moving sum (0) / mean (1) / count (2)",
              {"msum": native("msum", _SAME, 2), "mavg": native("mavg", **_MWIN), "mcount": native("mcount", None, 2),
               "sma": native("sma", **_MWIN)}, flags=True),
    Primitive("_wvar", 42, 1, ("n", "minPeriods", "mode"), (7, 2), _window_lb(lambda p: 2 if p[2] in (0, 1) else 1),
              lambda p: (int(p[0]), int(p[1]), p[2], 0.0), "var (0), std (1), varp (2), stdp (3)",
              {"mvar": native("mvar", **_MWIN), "mstd": native("mstd", **_MWIN), "mvarp": native("mvarp", **_MWIN),
               "mstdp": native("mstdp", **_MWIN)}, flags=True),
    Primitive("_wext", 43, 1, ("n", "minPeriods", "sign"), (5, 3), _window_lb(lambda p: 1),
              lambda p: (int(p[0]), int(p[1]), p[2], 0.0), "moving max (+1) / min (-1)",
              {"mmax": native("mmax", _SAME, 2), "mmin": native("mmin", _SAME, 2)}),
    Primitive("_wcov", 44, 2, ("n", "minPeriods", "mode"), (11, 5), _window_lb(lambda p: 2),
              lambda p: (int(p[0]), int(p[1]), p[2], 0.0), "moving corr (0) / beta of y on x (1)",
              {"mcorr": native("mcorr", min_args=3), "mbeta": native("mbeta", min_args=3)}, flags=True),
    # DolphinDB's mrank defaults are ignoreNA=true, tiesMethod='min', percent=false; minPeriods
    # is its seventh argument, so the defaults are spelled out when it is given
    Primitive("_wrank", 45, 1, ("n", "minPeriods", "ascending"), (2, 1), _window_lb(lambda p: 1),
              lambda p: (int(p[0]), int(p[1]), p[2], 0.0), "0-based rank of the last value, ties min",
              {"mrank": DdbForm(("mrank({0}, {b1}, {2})", "mrank({0}, {b1}, {2}, true, 'min', false, {3})"),
                                None, 3)}),
    # ema/wilder are TA-Lib family functions, native in DolphinDB (window from the first
    # non-NULL value). `_emaAfter` is internal (MACD's fast line): the EMA of x with its first
    # `skip` non-NULL values masked; cumcount counts non-NULL values (docs: "cumcount").
    Primitive("_ema", 46, 1, ("n", "mode", "skip"), (4, 0),
              lambda b, p: b + int(p[0]) - 1 + (int(p[2]) if len(p) > 2 else 0),
              lambda p: (int(p[0]), int(p[2]) if len(p) > 2 else 0, p[1], 0.0),
              "ema (0) / wilder (1), seeded after skipping `skip` non-NULL values",
              {"ema": native("ema", **_MWIN), "wilder": native("wilder", **_MWIN), "dema": native("dema", **_MWIN),
               "tema": native("tema", **_MWIN),
               "_emaAfter": DdbForm(("ema(iif(nullCompare(>, cumcount({0}), {2}), {d0}, 00F), {1})",), "DOUBLE", 3)}),
    Primitive("_wma", 47, 1, ("n",), (5, 3), lambda b, p: b + int(p[0]) - 1,
              lambda p: (int(p[0]), 0, 0.0, 0.0), "linearly weighted moving average",
              {"wma": native("wma", **_MWIN)}),
    Primitive("_cum", 48, 1, ("mode",), (3, 0), lambda b, p: b,
              lambda p: (0, 0, p[0], 0.0), "cumsum (0) / cumavg (1) / cummax (2) / cummin (3)",
              {"cumsum": native("cumsum", _SAME), "cumavg": native("cumavg"), "cummax": native("cummax", _SAME),
               "cummin": native("cummin", _SAME)}),
]

PRIMITIVES: dict[str, Primitive] = {p.name: p for p in _LIST}
STATEFUL = frozenset(PRIMITIVES)

#: element-wise functions (no state, look-back of their widest argument) and their DolphinDB
#: form; ``None``: written by the translator's NULL rules (``iif``, binary ``max``/``min``:
#: DolphinDB's ignore a NULL operand, see ``dolphindb.py``)
ELEMENTWISE_FORMS: dict[str, DdbForm | None] = {
    "abs": native("abs", _SAME), "log": native("log"), "sqrt": native("sqrt"), "exp": native("exp"),
    "sign": DdbForm(("signum({0})",), None), "max": None, "min": None, "iif": None,
}
ELEMENTWISE = frozenset(ELEMENTWISE_FORMS)

#: every core function's DolphinDB form (stateful ones from the records, then element-wise)
CORE_FORMS: dict[str, DdbForm | None] = {f: form for p in _LIST for f, form in p.functions.items()} | ELEMENTWISE_FORMS

OPCODES: dict[str, int] = {
    "const": 0, "neg": 1, "not": 2, "abs": 3, "log": 4, "sqrt": 5, "sign": 6, "exp": 7,
    "+": 10, "-": 11, "*": 12, "/": 13, "<": 14, "<=": 15, ">": 16, ">=": 17, "==": 18, "!=": 19,
    "&&": 20, "||": 21, "max": 22, "min": 23, "iif": 30,
    **{p.name: p.opcode for p in _LIST},
}


def state_floats(op: str, n: int) -> int:
    """Floats of per-symbol stream state of ``op`` for window/steps ``n`` (0 if stateless)."""
    prim = PRIMITIVES.get(op)
    return prim.state_floats(n) if prim is not None else 0


def lookback(name: str, base: int, p: list[float]) -> int:
    """Look-back of primitive ``name`` over series of look-back ``base`` (see Primitive)."""
    return PRIMITIVES[name].lookback(base, p)
