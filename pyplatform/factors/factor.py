"""A parsed factor: the checked object every layer of the factor language accepts.

``parse(text)`` runs the grammar, the size limits and the type check once and returns a
:class:`Factor` holding what the layers need -- the canonical text, the user-level tree, the
tree with composites expanded (what DolphinDB metacode is written from), the lowered tree
(what the batch runtime, the stream program and the GPU path run), the look-back in rows and
the input columns. ``compile_batch``, ``compile_stream``, ``to_dolphindb``, ``FactorEngine``
and the GPU path take a Factor, or text (parsed once, here), or a bare tree.
"""

from __future__ import annotations

from functools import cached_property, lru_cache

from pyplatform.factors.errors import FactorTypeError
from pyplatform.factors.functions import check, expand, lookback_of, lower
from pyplatform.factors.parser import parse_tree
from pyplatform.factors.tree import Col, Expr

__all__ = ["Factor", "parse", "as_factor"]


class Factor:
    """A checked factor expression (see the module doc). Immutable; compared by its tree.

    Attributes
    ----------
    text : str
        Canonical text: ``parse(f.text) == f``.
    tree : Expr
        The tree as written (user-level functions, composites included).
    expanded : Expr
        The tree with every composite replaced by its macro (``functions.COMPOSITES``).
    lowered : Expr
        The tree over the primitives of ``primitives.py``.
    input_columns : tuple of str
        The input columns read, sorted.
    lookback : int
        Rows before the first non-NULL output when the inputs have no NULLs.
    """

    def __init__(self, tree: Expr) -> None:
        if not isinstance(tree, Expr):
            raise TypeError(f"a factor is built from a tree (Expr), got {type(tree).__name__}")
        self.tree = tree
        self.text = str(tree)
        self.expanded = expand(tree)
        self.lowered = lower(self.expanded)
        self.input_columns = tuple(sorted(tree.columns()))

    @cached_property
    def lookback(self) -> int:
        return lookback_of(self.lowered)

    def columns(self) -> set[str]:
        """Input column names (a new set; as :meth:`Expr.columns`)."""
        return set(self.input_columns)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Factor({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Factor) and other.tree == self.tree

    def __hash__(self) -> int:
        return hash(self.tree)


@lru_cache(maxsize=4096)
def _parse_checked(text: str) -> Factor:
    tree = parse_tree(text)
    check(tree, text)
    return Factor(tree)


def _check_columns(tree: Expr, text: str, columns: set[str]) -> None:
    for node in tree.walk():  # left to right: the first unknown column in the text is named
        if isinstance(node, Col) and node.name not in columns:
            known = ", ".join(sorted(columns))
            line, col = node.pos if node.pos != (0, 0) else (1, 1)
            raise FactorTypeError(f"unknown column {node.name!r} (input columns: {known})", text, line, col)


def parse(text: str, columns: set[str] | list[str] | None = None) -> Factor:
    """Parse and type-check a factor expression.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"(close - mavg(close, 20)) / mstd(close, 20)"``.
    columns : set of str, optional
        The input schema's column names; when given, unknown columns are errors.

    Returns
    -------
    Factor
        ``str(f)`` is its canonical text, ``f.lookback`` its warm-up in rows, ``f.tree`` the
        tree. The same text gives the same (cached, immutable) object.

    Raises
    ------
    FactorSyntaxError, FactorTypeError
        With ``line``, ``column`` and a caret excerpt of ``text``.
    """
    factor = _parse_checked(text) if isinstance(text, str) else parse_tree(text)
    if columns is not None:
        _check_columns(factor.tree, text, set(columns))
    return factor


def as_factor(expr: "Factor | Expr | str", columns: set[str] | list[str] | None = None) -> Factor:
    """``expr`` as a :class:`Factor`: text is parsed (and checked against ``columns``), a Factor
    is returned as it is (its columns checked when given), a bare tree is wrapped as it is."""
    if isinstance(expr, Factor):
        if columns is not None:
            _check_columns(expr.tree, expr.text, set(columns))
        return expr
    if isinstance(expr, Expr):
        return Factor(expr)
    return parse(expr, columns)
