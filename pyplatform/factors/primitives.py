"""The primitive set, one record each: what the look-back computation, the stream program
builder, the stream VM's opcodes and state layout, the state-memory limit and the GPU path read.

User-level functions are lowered to these (``functions.py``); the batch runtime implements
each as a method of the same name (``batch._Ctx``), the stream VM as the kernel behind its
opcode (``kernels.py``), the GPU path in ``models/gpu_batch.py``. A new primitive is one record
here plus those implementations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["Primitive", "PRIMITIVES", "STATEFUL", "ELEMENTWISE", "OPCODES", "state_floats", "lookback"]


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
    """

    name: str
    opcode: int
    series: int
    params: tuple[str, ...]
    state: tuple[int, int]
    lookback: Callable[[int, list[float]], int]
    pack: Callable[[list[float]], tuple[int, int, float, float]]
    doc: str
    flags: bool = False

    def state_floats(self, n: int) -> int:
        base, per = self.state
        return base + per * n + ((n + 63) // 64 if self.flags else 0)


def _window_lb(need_of: Callable[[list[float]], int], talib_of: Callable[[list[float]], bool] = lambda p: False):
    # DolphinDB's m-function rule (functions.py module doc): without minPeriods the first n-1
    # rows are NULL; with it, the first max(minPeriods, need) - 1 after the input's look-back.
    def lb(base: int, p: list[float]) -> int:
        n, minp, need = int(p[0]), int(p[1]), need_of(p)
        if talib_of(p):  # TA-Lib window start: counts from the first non-NULL input
            return base + n - 1
        if minp > 0:
            return base + max(minp, need) - 1
        return max(base + need - 1, n - 1)
    return lb


_LIST = [
    Primitive("_move", 40, 1, ("k",), (2, 1), lambda b, p: b + int(p[0]),
              lambda p: (int(p[0]), 0, 0.0, 0.0), "x k rows earlier"),
    Primitive("_wsum", 41, 1, ("n", "minPeriods", "mode", "talib"), (4, 1),
              _window_lb(lambda p: 1, lambda p: p[3] == 1),
              lambda p: (int(p[0]), int(p[1]), p[2], p[3]), "moving sum (0) / mean (1) / count (2)", flags=True),
    Primitive("_wvar", 42, 1, ("n", "minPeriods", "mode"), (7, 2), _window_lb(lambda p: 2 if p[2] in (0, 1) else 1),
              lambda p: (int(p[0]), int(p[1]), p[2], 0.0), "var (0), std (1), varp (2), stdp (3)", flags=True),
    Primitive("_wext", 43, 1, ("n", "minPeriods", "sign"), (5, 3), _window_lb(lambda p: 1),
              lambda p: (int(p[0]), int(p[1]), p[2], 0.0), "moving max (+1) / min (-1)"),
    Primitive("_wcov", 44, 2, ("n", "minPeriods", "mode"), (11, 5), _window_lb(lambda p: 2),
              lambda p: (int(p[0]), int(p[1]), p[2], 0.0), "moving corr (0) / beta of y on x (1)", flags=True),
    Primitive("_wrank", 45, 1, ("n", "minPeriods", "ascending"), (2, 1), _window_lb(lambda p: 1),
              lambda p: (int(p[0]), int(p[1]), p[2], 0.0), "0-based rank of the last value, ties min"),
    Primitive("_ema", 46, 1, ("n", "mode", "skip"), (4, 0),
              lambda b, p: b + int(p[0]) - 1 + (int(p[2]) if len(p) > 2 else 0),
              lambda p: (int(p[0]), int(p[2]) if len(p) > 2 else 0, p[1], 0.0),
              "ema (0) / wilder (1), seeded after skipping `skip` non-NULL values"),
    Primitive("_wma", 47, 1, ("n",), (5, 3), lambda b, p: b + int(p[0]) - 1,
              lambda p: (int(p[0]), 0, 0.0, 0.0), "linearly weighted moving average"),
    Primitive("_cum", 48, 1, ("mode",), (3, 0), lambda b, p: b,
              lambda p: (0, 0, p[0], 0.0), "cumsum (0) / cumavg (1) / cummax (2) / cummin (3)"),
]

PRIMITIVES: dict[str, Primitive] = {p.name: p for p in _LIST}
STATEFUL = frozenset(PRIMITIVES)
#: element-wise functions (no state, look-back of their widest argument)
ELEMENTWISE = frozenset({"abs", "log", "sqrt", "exp", "sign", "max", "min", "iif"})

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
