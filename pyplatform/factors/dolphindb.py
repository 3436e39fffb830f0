"""Translate factor trees to DolphinDB metacode for ``createReactiveStateEngine`` metrics and
SQL ``context by`` queries.

The translation is written from the factor's *expanded* tree (``Factor.expanded``): every
composite (``rsi``, ``macd*``, ``bb*``, ``atr``, ``mvwap``, ``zscore``, ``cross``) is replaced by
its one macro (``functions.COMPOSITES``), the same definition the Python runtimes lower, so
the two cannot disagree. Each core function is then emitted in the DolphinDB form named by its
primitive record (``primitives.py``: ``mavg``, ``mstd``, ``ema``, ``wilder``, ``prev``,
``cumsum``... are native state functions), so the metacode runs inside the reactive state
engine. A composite whose record names a ``native`` form is emitted as that instead.

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

from pyplatform.factors.factor import Factor, as_factor
from pyplatform.factors.functions import COMPOSITES, expand
from pyplatform.factors.primitives import CORE_FORMS, DdbForm
from pyplatform.factors.tree import BINARY_PRECEDENCE, Binary, Call, Col, Expr, Num, Unary, format_number

__all__ = ["to_dolphindb", "to_dolphindb_metrics", "to_dolphindb_sql", "UNCONFIRMED_IN_ENGINE",
           "NULL_BOOL", "NULL_DOUBLE"]

# Emitted forms whose behaviour inside createReactiveStateEngine the documentation does not
# settle (see docs/dolphindb.md, "unconfirmed"): wilder on a reactive engine before 3.00,
# and TA-Lib style windows (leading NULLs skipped) of ema/wilder inside the engine.
UNCONFIRMED_IN_ENGINE = {"rsi", "atr", "wilder", "macd", "macdSignal", "macdHist"}

NULL_BOOL = "00b"     # typed NULL literals (docs: "Null Values" - 00b BOOL, 00F DOUBLE)
NULL_DOUBLE = "00F"

_CMP = {"<", "<=", ">", ">="}
_EQ = {"==", "!="}
_LOGIC = {"&&", "||"}
_ATOM = 9

# column types of the deployed stream tables (pyplatform/dolphindb/schema.py): DOUBLE unless listed
_COLUMN_TYPES = {"trades": "INT", "side": "CHAR"}
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
    if e.name in ("iif", "max", "min"):  # the translation makes both operands DOUBLE
        return "DOUBLE"
    form = _form(e.name)
    result = form.result if form is not None else None
    if result == "same":
        return _dtype(e.args[0]) if e.args else None
    return result


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
    if name == "iif":
        return _iif(_t(a[0])[0], a[1], a[2]), _ATOM
    if name in ("max", "min"):
        return _max_min(name, a[0], a[1]), _ATOM
    form = _form(name)
    if form is None:
        raise ValueError(f"no DolphinDB translation for {name!r}")  # pragma: no cover - the records test
    texts = [_t(v)[0] for v in a]
    doubles = [_double(v) for v in a]
    bools = ["true" if _truthy(v) else "false" for v in a]
    return form.render(texts, doubles, bools), _ATOM


def _truthy(e: Expr) -> bool:
    return isinstance(e, Num) and e.value != 0


def _form(name: str) -> DdbForm | None:
    """The DolphinDB form of a core function (its primitive record) or of a composite the
    function table says DolphinDB computes natively (``Composite.native``)."""
    if name in CORE_FORMS:
        return CORE_FORMS[name]
    macro = COMPOSITES.get(name)
    return macro.native if macro is not None else None


#: composites emitted as a native DolphinDB call instead of their expansion (none today)
_KEEP = frozenset(n for n, c in COMPOSITES.items() if c.native is not None)


def to_dolphindb(expr: Factor | Expr | str) -> str:
    """DolphinDB metacode for one factor (the text that goes inside ``<[...]>``).

    Parameters
    ----------
    expr : Factor, Expr or str
        A parsed factor, a tree, or text (parsed here).

    Returns
    -------
    str
        E.g. ``"(close - mavg(close, 20)) / mstd(close, 20)"``. A factor whose value is
        logical (a comparison) is converted to DOUBLE, the factor table's value type.
    """
    factor = as_factor(expr)
    tree = factor.expanded if not _KEEP else expand(factor.tree, _KEEP)
    text = _t(tree)[0]
    return f"double({text})" if _dtype(tree) == "BOOL" else text


def to_dolphindb_metrics(factors: dict[str, Factor | str | Expr]) -> str:
    """Metrics for ``createReactiveStateEngine``: ``<[f1 as name1, f2 as name2]>``."""
    return "<[" + ", ".join(f"{to_dolphindb(e)} as {name}" for name, e in factors.items()) + "]>"


def to_dolphindb_sql(factors: dict[str, Factor | str | Expr], table: str, key: str = "symbol", time: str = "ts") -> str:
    """A SQL query computing the factors over a table, per symbol in time order."""
    cols = ", ".join(f"{to_dolphindb(e)} as {name}" for name, e in factors.items())
    return f"select {time}, {key}, {cols} from {table} context by {key} csort {time}"
