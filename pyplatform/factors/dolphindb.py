"""Translate factor trees to DolphinDB metacode for ``createReactiveStateEngine`` metrics and
SQL ``context by`` queries.

Native DolphinDB state functions are emitted as they are (``mavg``, ``mstd``, ``ema``,
``wilder``, ``prev``, ``cumsum``...). Functions DolphinDB only has in its ``ta`` module or not at
all (``rsi``, ``macd*``, ``bb*``, ``atr``, ``mvwap``, ``zscore``, ``cross``) are expanded into
native state functions, so they run inside the reactive state engine. Comparisons use
``nullCompare`` because plain DolphinDB comparisons treat NULL as the smallest value, while this
language propagates NULL (as ``nullCompare`` does).
"""

from __future__ import annotations

from pyplatform.factors.parser import parse
from pyplatform.factors.tree import BINARY_PRECEDENCE, Binary, Call, Col, Expr, Num, Unary, format_number

__all__ = ["to_dolphindb", "to_dolphindb_metrics", "to_dolphindb_sql", "UNCONFIRMED_IN_ENGINE"]

# Emitted forms whose NULL behaviour inside createReactiveStateEngine is not confirmed by the
# documentation (see docs/factors.md): logical operators on NULL, iif with a NULL condition.
UNCONFIRMED_IN_ENGINE = {"cross", "&&", "||", "!", "iif", "rsi", "atr"}

_NATIVE = {
    "prev", "move", "deltas", "ratios", "percentChange", "mavg", "msum", "mcount", "mvar", "mstd",
    "mvarp", "mstdp", "mmax", "mmin", "mcorr", "mbeta", "ema", "wma", "sma", "dema", "tema",
    "wilder", "cumsum", "cumavg", "cummax", "cummin", "abs", "log", "sqrt", "exp", "iif", "max", "min",
}
_CMP = {"<", "<=", ">", ">=", "==", "!="}
_ATOM = 9


def _arg(args: tuple[Expr, ...], i: int, default: float) -> str:
    return _t(args[i])[0] if i < len(args) else format_number(default)


def _num(args: tuple[Expr, ...], i: int, default: float) -> float:
    if i >= len(args):
        return default
    a = args[i]
    return a.value if isinstance(a, Num) else -a.operand.value  # type: ignore[union-attr]


def _p(text: str, prec: int, need: int) -> str:
    return f"({text})" if prec < need else text


def _t(e: Expr) -> tuple[str, int]:
    """(text, precedence) of ``e`` in DolphinDB syntax."""
    if isinstance(e, Num):
        return format_number(e.value), _ATOM
    if isinstance(e, Col):
        return e.name, _ATOM
    if isinstance(e, Unary):
        inner, p = _t(e.operand)
        if e.op == "!":
            return f"not({inner})", _ATOM
        return f"-{_p(inner, p, 6)}", 6
    if isinstance(e, Binary):
        lt, lp = _t(e.left)
        rt, rp = _t(e.right)
        if e.op in _CMP:
            return f"nullCompare({e.op}, {lt}, {rt})", _ATOM
        prec = BINARY_PRECEDENCE[e.op]
        return f"{_p(lt, lp, prec)} {e.op} {_p(rt, rp, prec + 1)}", prec
    assert isinstance(e, Call)
    return _call(e)


def _call(e: Call) -> tuple[str, int]:
    name, a = e.name, e.args
    x = _t(a[0])[0] if a else ""
    if name == "sign":
        return f"signum({x})", _ATOM
    if name == "mrank":
        asc = "true" if _num(a, 1, 1) else "false"
        win = _t(a[2])[0]
        if len(a) > 3:
            return f"mrank({x}, {asc}, {win}, true, 'min', false, {_t(a[3])[0]})", _ATOM
        return f"mrank({x}, {asc}, {win})", _ATOM
    if name in _NATIVE:
        return f"{name}({', '.join(_t(v)[0] for v in a)})", _ATOM
    if name == "rsi":
        n = _arg(a, 1, 14)
        d = f"deltas({x})"
        up = f"wilder(iif(nullCompare(>, {d}, 0), {d}, 0), {n})"
        down = f"wilder(iif(nullCompare(<, {d}, 0), -{d}, 0), {n})"
        return f"100 * {up} / ({up} + {down})", 5
    if name.startswith("macd"):
        fast, slow, sig = _num(a, 1, 12), _num(a, 2, 26), _num(a, 3, 9)
        line = (f"ema({x} + 0 * move({x}, {format_number(slow - fast)}), {format_number(fast)})"
                f" - ema({x}, {format_number(slow)})")
        signal = f"ema({line}, {format_number(sig)})"
        if name == "macd":
            return line, 4
        if name == "macdSignal":
            return signal, _ATOM
        return f"{line} - {signal}", 4
    if name in ("bbUpper", "bbMiddle", "bbLower"):
        n, k = _arg(a, 1, 20), _arg(a, 2, 2)
        if name == "bbMiddle":
            return f"mavg({x}, {n})", _ATOM
        op = "+" if name == "bbUpper" else "-"
        return f"mavg({x}, {n}) {op} {k} * mstdp({x}, {n})", 4
    if name == "atr":
        h, lo, c = x, _t(a[1])[0], _t(a[2])[0]
        n = _arg(a, 3, 14)
        pc = f"prev({c})"
        tr = f"max({h} - {lo}, max(abs({h} - {pc}), abs({lo} - {pc})))"
        return f"wilder(iif(isNull({pc}), 00F, {tr}), {n})", _ATOM
    if name == "mvwap":
        return f"msum({x} * {_t(a[1])[0]}, {_t(a[2])[0]}) / msum({_t(a[1])[0]}, {_t(a[2])[0]})", 5
    if name == "zscore":
        n = _t(a[1])[0]
        return f"({x} - mavg({x}, {n})) / mstd({x}, {n})", 5
    if name == "cross":
        d = f"{_p(x, _t(a[0])[1], 5)} - {_p(_t(a[1])[0], _t(a[1])[1], 5)}"
        golden = f"nullCompare(>, {d}, 0) && nullCompare(<=, prev({d}), 0)"
        death = f"nullCompare(<, {d}, 0) && nullCompare(>=, prev({d}), 0)"
        return f"iif({golden}, 1, iif({death}, -1, 0))", _ATOM
    raise ValueError(f"no DolphinDB translation for {name!r}")  # pragma: no cover


def to_dolphindb(expr: Expr | str) -> str:
    """DolphinDB metacode for one factor (the text that goes inside ``<[...]>``).

    Parameters
    ----------
    expr : Expr or str

    Returns
    -------
    str
        E.g. ``"(close - mavg(close, 20)) / mstd(close, 20)"``.
    """
    tree = parse(expr) if isinstance(expr, str) else expr
    return _t(tree)[0]


def to_dolphindb_metrics(factors: dict[str, str | Expr]) -> str:
    """Metrics for ``createReactiveStateEngine``: ``<[f1 as name1, f2 as name2]>``."""
    return "<[" + ", ".join(f"{to_dolphindb(e)} as {name}" for name, e in factors.items()) + "]>"


def to_dolphindb_sql(factors: dict[str, str | Expr], table: str, key: str = "symbol", time: str = "ts") -> str:
    """A SQL query computing the factors over a table, per symbol in time order."""
    cols = ", ".join(f"{to_dolphindb(e)} as {name}" for name, e in factors.items())
    return f"select {time}, {key}, {cols} from {table} context by {key} csort {time}"
