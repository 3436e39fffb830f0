"""Parser of the factor language (lark, LALR): text -> typed tree. Never evaluates the text.

Grammar (lowest to highest precedence)::

    or:    a || b   a or b
    and:   a && b   a and b
    cmp:   == != < <= > >=
    sum:   + -
    prod:  * /
    unary: -x  !x  not x
    atom:  number | true | false | column | name(args) | (expr)
"""

from __future__ import annotations

from functools import lru_cache

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from pyplatform.factors.errors import FactorError, FactorSyntaxError
from pyplatform.factors.functions import check
from pyplatform.factors.tree import Binary, Call, Col, Expr, Num, Unary

__all__ = ["parse"]

_GRAMMAR = r"""
?start: expr
?expr: or_
?or_: and_ | or_ OR and_ -> binop
?and_: cmp | and_ AND cmp -> binop
?cmp: sum | cmp CMP sum -> binop
?sum: prod | sum ADD prod -> binop
?prod: unary | prod MUL unary -> binop
?unary: atom | NEG unary -> unop | NOT unary -> unop
?atom: NUMBER -> number
     | TRUE -> true
     | FALSE -> false
     | NAME "(" [args] ")" -> call
     | NAME -> column
     | "(" expr ")"
args: expr ("," expr)*

OR: "||" | /or\b/
AND: "&&" | /and\b/
CMP: "==" | "!=" | "<=" | ">=" | "<" | ">"
ADD: "+" | "-"
MUL: "*" | "/"
NEG: "-"
NOT: "!" | /not\b/
TRUE.2: /true\b/
FALSE.2: /false\b/
NUMBER: /(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/
NAME: /(?!(and|or|not|true|false)\b)[A-Za-z_][A-Za-z0-9_]*/
%import common.WS
%ignore WS
"""

_CANON = {"or": "||", "and": "&&", "not": "!"}


def _pos(tok: Token) -> tuple[int, int]:
    return (tok.line or 1, tok.column or 1)


@v_args(inline=True)
class _ToTree(Transformer):
    def number(self, tok: Token) -> Num:
        return Num(float(tok), _pos(tok))

    def true(self, tok: Token) -> Num:
        return Num(1.0, _pos(tok))

    def false(self, tok: Token) -> Num:
        return Num(0.0, _pos(tok))

    def column(self, tok: Token) -> Col:
        return Col(str(tok), _pos(tok))

    def call(self, name: Token, args=None) -> Call:
        return Call(str(name), tuple(args.children) if args is not None else (), _pos(name))

    def binop(self, left: Expr, op: Token, right: Expr) -> Binary:
        return Binary(_CANON.get(str(op), str(op)), left, right, _pos(op))

    def unop(self, op: Token, operand: Expr) -> Unary:
        return Unary(_CANON.get(str(op), str(op)), operand, _pos(op))


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", propagate_positions=False, maybe_placeholders=False)


def _describe(exc: UnexpectedInput) -> str:
    if isinstance(exc, UnexpectedCharacters):
        return f"unexpected character {exc.char!r}"
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        return "unexpected end of expression"
    if isinstance(exc, UnexpectedToken):
        return f"unexpected {exc.token.type.lower()} {str(exc.token)!r}"
    return "invalid syntax"


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> Expr:
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        line, col = getattr(exc, "line", -1), getattr(exc, "column", -1)
        at_end = isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END")
        if at_end or line is None or line < 1:  # end of input: point just past the last character
            lines = text.splitlines() or [""]
            line, col = len(lines), len(lines[-1]) + 1
        raise FactorSyntaxError(_describe(exc), text, line, col) from None
    try:
        return _ToTree().transform(tree)
    except VisitError as exc:  # pragma: no cover - transformer bugs surface here
        raise exc.orig_exc from None


def parse(text: str, columns: set[str] | list[str] | None = None) -> Expr:
    """Parse and type-check a factor expression.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"(close - mavg(close, 20)) / mstd(close, 20)"``.
    columns : set of str, optional
        The input schema's column names; when given, unknown columns are errors.

    Returns
    -------
    Expr
        The typed tree; ``str(tree)`` is its canonical text and ``tree.lookback`` its warm-up.

    Raises
    ------
    FactorSyntaxError, FactorTypeError
        With ``line``, ``column`` and a caret excerpt of ``text``.
    """
    if not isinstance(text, str):
        raise TypeError(f"factor expression must be a string, got {type(text).__name__}")
    if not text.strip():
        raise FactorSyntaxError("empty expression", text, 1, 1)
    expr = _parse_cached(text)
    check(expr, text, set(columns) if columns is not None else None)
    return expr


__all__ += ["FactorError"]
