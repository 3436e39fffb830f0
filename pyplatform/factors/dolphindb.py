"""Translate factor trees to DolphinDB metacode for ``createReactiveStateEngine`` metrics and
SQL ``context by`` queries.

Native DolphinDB state functions are emitted as they are (``mavg``, ``mstd``, ``ema``,
``wilder``, ``prev``, ``cumsum``...). Functions DolphinDB only has in its ``ta`` module or not at
all (``rsi``, ``macd*``, ``bb*``, ``atr``, ``mvwap``, ``zscore``, ``cross``) are expanded into
native state functions, so they run inside the reactive state engine.

NULL rules. The language propagates NULL through every operator (a comparison, a logical
operator, ``max``/``min`` or ``iif`` with a NULL operand is NULL), as the batch and stream
runtimes do. DolphinDB does not, everywhere (docs.dolphindb.cn "Functions on Null Values",
``or``, ``nullCompare``, ``max``), so each operator is emitted in a form whose NULL result is
explicit and does not depend on server configuration:

* ``< <= > >=`` -> ``nullCompare(op, x, y)`` (documented for exactly these four operators;
  NULL when either side is NULL, independent of ``nullAsMinValueForComparison``);
* ``== !=`` -> ``iif(isNull(x) || isNull(y), 00b, x == y)``: DolphinDB's ``==`` treats NULL as
  the minimum (``NULL == NULL`` is true) and ``nullCompare`` does not accept ``==``/``!=``;
* ``&& ||`` and ``!`` -> the same ``iif(isNull(..) ..., 00b, ...)`` guard: ``or`` ignores a
  NULL operand under the default ``logicOrIgnoreNull=true``; the guard's own ``||`` only ever
  sees ``isNull`` results, which are never NULL;
* binary ``max``/``min`` -> ``iif(isNull(x) || isNull(y), 00F, max(x, y))``: DolphinDB's
  binary ``max`` treats NULL as the smallest value (``max(NULL, 3)`` is 3);
* ``iif`` branches are both DOUBLE (the ``iif`` page: "Both must have the same data type"):
  numeric literals are written as DOUBLE literals (``0.0``) and non-DOUBLE branches are
  wrapped in ``double()``; ``iif`` with a NULL condition is NULL (documented);
* a negated negation is written ``-(-x)``, never ``--x``.
"""

from __future__ import annotations

from pyplatform.factors.parser import parse
from pyplatform.factors.tree import BINARY_PRECEDENCE, Binary, Call, Col, Expr, Num, Unary, format_number

__all__ = ["to_dolphindb", "to_dolphindb_metrics", "to_dolphindb_sql", "UNCONFIRMED_IN_ENGINE",
           "NULL_BOOL", "NULL_DOUBLE"]

# Emitted forms whose behaviour inside createReactiveStateEngine the documentation does not
# settle (see docs/dolphindb.md, "unconfirmed"): wilder on a reactive engine before 3.00,
# and TA-Lib style windows (leading NULLs skipped) of ema/wilder inside the engine.
UNCONFIRMED_IN_ENGINE = {"rsi", "atr", "wilder", "macd", "macdSignal", "macdHist"}

NULL_BOOL = "00b"     # typed NULL literals (docs: "Null Values" - 00b BOOL, 00F DOUBLE)
NULL_DOUBLE = "00F"

_NATIVE = {
    "prev", "move", "deltas", "ratios", "percentChange", "mavg", "msum", "mcount", "mvar", "mstd",
    "mvarp", "mstdp", "mmax", "mmin", "mcorr", "mbeta", "ema", "wma", "sma", "dema", "tema",
    "wilder", "cumsum", "cumavg", "cummax", "cummin", "abs", "log", "sqrt", "exp",
}
_CMP = {"<", "<=", ">", ">="}
_EQ = {"==", "!="}
_LOGIC = {"&&", "||"}
_ATOM = 9

# column types of the deployed stream tables (pyplatform/dolphindb/schema.py): DOUBLE unless listed
_COLUMN_TYPES = {"trades": "INT", "side": "CHAR"}
# functions whose result is DOUBLE whatever the input type (moving statistics, TA-Lib family)
_DOUBLE_FUNCS = {"mavg", "mstd", "mstdp", "mvar", "mvarp", "mcorr", "mbeta", "ema", "wma", "sma",
                 "dema", "tema", "wilder", "ratios", "percentChange", "cumavg", "log", "sqrt", "exp"}
# functions whose result has the type of their first argument
_SAME_TYPE = {"prev", "move", "deltas", "abs", "cummax", "cummin", "mmax", "mmin", "msum", "cumsum"}


def _arg(args: tuple[Expr, ...], i: int, default: float) -> str:
    return _t(args[i])[0] if i < len(args) else format_number(default)


def _num(args: tuple[Expr, ...], i: int, default: float) -> float:
    if i >= len(args):
        return default
    a = args[i]
    return a.value if isinstance(a, Num) else -a.operand.value  # type: ignore[union-attr]


def _p(text: str, prec: int, need: int) -> str:
    return f"({text})" if prec < need else text


def _dtype(e: Expr) -> str | None:
    """DolphinDB type of ``e``'s emitted text where it is known (DOUBLE, BOOL, INT, CHAR)."""
    if isinstance(e, Num):
        return "INT" if e.value == int(e.value) else "DOUBLE"
    if isinstance(e, Col):
        return _COLUMN_TYPES.get(e.name, "DOUBLE")
    if isinstance(e, Unary):
        return "BOOL" if e.op == "!" else _dtype(e.operand)
    if isinstance(e, Binary):
        if e.op in _CMP or e.op in _EQ or e.op in _LOGIC:
            return "BOOL"
        types = {_dtype(e.left), _dtype(e.right)}
        return "DOUBLE" if "DOUBLE" in types else None
    assert isinstance(e, Call)
    if e.name in _DOUBLE_FUNCS or e.name in ("rsi", "atr", "mvwap", "zscore", "iif", "max", "min") \
            or e.name.startswith(("macd", "bb")):
        return "DOUBLE"
    if e.name in _SAME_TYPE and e.args:
        return _dtype(e.args[0])
    return None


def _double(e: Expr) -> str:
    """``e`` as a DOUBLE expression (an ``iif`` branch, a ``max`` operand)."""
    if isinstance(e, Num):
        return repr(float(e.value))
    if isinstance(e, Unary) and e.op == "-" and isinstance(e.operand, Num):
        return repr(-float(e.operand.value))
    text = _t(e)[0]
    return text if _dtype(e) == "DOUBLE" else f"double({text})"


def _null_guard(operands: list[str], body: str, null: str) -> str:
    """``body``, or the typed NULL ``null`` when any operand is NULL (made explicit)."""
    cond = " || ".join(f"isNull({o})" for o in operands)
    return f"iif({cond}, {null}, {body})"


def _t(e: Expr) -> tuple[str, int]:
    """(text, precedence) of ``e`` in DolphinDB syntax."""
    if isinstance(e, Num):
        return format_number(e.value), _ATOM
    if isinstance(e, Col):
        return e.name, _ATOM
    if isinstance(e, Unary):
        inner, p = _t(e.operand)
        if e.op == "!":
            return _null_guard([inner], f"not({inner})", NULL_BOOL), _ATOM
        # "--x" would be read as a decrement, not as -(-x): parenthesise a leading minus
        return f"-{_p(inner, p, 6) if not inner.startswith('-') else f'({inner})'}", 6
    if isinstance(e, Binary):
        lt, lp = _t(e.left)
        rt, rp = _t(e.right)
        if e.op in _CMP:
            return f"nullCompare({e.op}, {lt}, {rt})", _ATOM
        if e.op in _EQ or e.op in _LOGIC:
            return _null_guard([lt, rt], f"{_p(lt, lp, _ATOM)} {e.op} {_p(rt, rp, _ATOM)}", NULL_BOOL), _ATOM
        prec = BINARY_PRECEDENCE[e.op]
        right = _p(rt, rp, prec + 1)
        if right.startswith("-"):
            right = f"({right})"
        return f"{_p(lt, lp, prec)} {e.op} {right}", prec
    assert isinstance(e, Call)
    return _call(e)


def _iif(cond: str, a: Expr, b: Expr) -> str:
    return f"iif({cond}, {_double(a)}, {_double(b)})"


def _max_min(name: str, a: Expr, b: Expr) -> str:
    x, y = _t(a)[0], _t(b)[0]
    body = f"{name}({x}, {y})"
    if _dtype(a) != "DOUBLE" and _dtype(b) != "DOUBLE":
        body = f"double({body})"
    return _null_guard([x, y], body, NULL_DOUBLE)


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
    if name == "iif":
        return _iif(_t(a[0])[0], a[1], a[2]), _ATOM
    if name in ("max", "min"):
        return _max_min(name, a[0], a[1]), _ATOM
    if name in _NATIVE:
        return f"{name}({', '.join(_t(v)[0] for v in a)})", _ATOM
    if name == "rsi":
        n = _arg(a, 1, 14)
        d = Call("deltas", (a[0],))
        dt = _t(d)[0]
        up = f"wilder({_iif(f'nullCompare(>, {dt}, 0)', d, Num(0))}, {n})"
        down = f"wilder({_iif(f'nullCompare(<, {dt}, 0)', Unary('-', d), Num(0))}, {n})"
        return f"100 * {up} / ({up} + {down})", 5
    if name.startswith("macd"):
        fast, slow, sig = _num(a, 1, 12), _num(a, 2, 26), _num(a, 3, 9)
        # TA-Lib (and the Python runtimes) start the fast EMA where the slow one starts: the
        # fast EMA skips the first slow-fast non-NULL inputs (cumcount counts non-NULL values,
        # docs: "cumcount"; a NULL later on is skipped by both EMAs and blanks nothing else,
        # which a mask on move(x, lag) did, lag bars after it); ema, a TA-Lib family function,
        # starts its window at the first non-NULL value (docs: "TA-Lib Functions").
        lag = slow - fast
        fast_in = (f"iif(nullCompare(>, cumcount({x}), {format_number(lag)}), {_double(a[0])}, {NULL_DOUBLE})"
                   if lag > 0 else x)
        line = f"ema({fast_in}, {format_number(fast)}) - ema({x}, {format_number(slow)})"
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
        h, lo, c = a[0], a[1], a[2]
        n = _arg(a, 3, 14)
        pc = Call("prev", (c,))
        inner = Call("max", (Call("abs", (Binary("-", h, pc),)), Call("abs", (Binary("-", lo, pc),))))
        tr = Call("max", (Binary("-", h, lo), inner))
        # the NULL-explicit max makes the first row (no previous close) NULL, as in Python
        return f"wilder({_t(tr)[0]}, {n})", _ATOM
    if name == "mvwap":
        return f"msum({x} * {_t(a[1])[0]}, {_t(a[2])[0]}) / msum({_t(a[1])[0]}, {_t(a[2])[0]})", 5
    if name == "zscore":
        n = _t(a[1])[0]
        return f"({x} - mavg({x}, {n})) / mstd({x}, {n})", 5
    if name == "cross":
        d = Binary("-", a[0], a[1])
        pd_ = Call("prev", (d,))
        golden = _t(Binary("&&", Binary(">", d, Num(0)), Binary("<=", pd_, Num(0))))[0]
        death = _t(Binary("&&", Binary("<", d, Num(0)), Binary(">=", pd_, Num(0))))[0]
        return f"iif({golden}, 1.0, iif({death}, -1.0, 0.0))", _ATOM
    raise ValueError(f"no DolphinDB translation for {name!r}")  # pragma: no cover


def to_dolphindb(expr: Expr | str) -> str:
    """DolphinDB metacode for one factor (the text that goes inside ``<[...]>``).

    Parameters
    ----------
    expr : Expr or str

    Returns
    -------
    str
        E.g. ``"(close - mavg(close, 20)) / mstd(close, 20)"``. A factor whose value is
        logical (a comparison) is converted to DOUBLE, the factor table's value type.
    """
    tree = parse(expr) if isinstance(expr, str) else expr
    text = _t(tree)[0]
    return f"double({text})" if _dtype(tree) == "BOOL" else text


def to_dolphindb_metrics(factors: dict[str, str | Expr]) -> str:
    """Metrics for ``createReactiveStateEngine``: ``<[f1 as name1, f2 as name2]>``."""
    return "<[" + ", ".join(f"{to_dolphindb(e)} as {name}" for name, e in factors.items()) + "]>"


def to_dolphindb_sql(factors: dict[str, str | Expr], table: str, key: str = "symbol", time: str = "ts") -> str:
    """A SQL query computing the factors over a table, per symbol in time order."""
    cols = ", ".join(f"{to_dolphindb(e)} as {name}" for name, e in factors.items())
    return f"select {time}, {key}, {cols} from {table} context by {key} csort {time}"
