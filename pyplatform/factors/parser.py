"""Parser of the factor language (lark, LALR): text -> syntax tree. Never evaluates the text.

This is the syntax only: :func:`parse_tree` gives the tree of the text as written, with the
size limits checked. :func:`pyplatform.factors.parse` adds the type check against the function
table and returns the checked :class:`~pyplatform.factors.factor.Factor`.

Grammar (lowest to highest precedence)::

    or:    a || b   a or b
    and:   a && b   a and b
    cmp:   == != < <= > >=
    sum:   + -
    prod:  * /
    unary: -x  !x  not x
    atom:  number | true | false | column | name(args) | (expr)

Numbers are ASCII digits only (``２０`` and ``٢٠`` are not 20) and must be finite float64
(``1e400`` is an error, not infinity). The limits of ``limits.py`` (text length, nesting
depth, tree size) are checked on the text and on lark's parse tree -- built iteratively by the
LALR parser -- before any recursive walk, so hostile input gets a FactorSyntaxError, never a
RecursionError.
"""

from __future__ import annotations

import math
from functools import lru_cache

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from pyplatform.factors.errors import FactorSyntaxError
from pyplatform.factors.limits import MAX_DEPTH, MAX_NODES, MAX_TEXT_CHARS
from pyplatform.factors.tree import Binary, Call, Col, Expr, Num, Unary

__all__ = ["parse_tree"]

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
NUMBER: /([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?/
NAME: /(?!(and|or|not|true|false)\b)[A-Za-z_][A-Za-z0-9_]*/
%import common.WS
%ignore WS
"""

_CANON = {"or": "||", "and": "&&", "not": "!"}


def _pos(tok: Token) -> tuple[int, int]:
    return (tok.line or 1, tok.column or 1)


@v_args(inline=True)
class _ToTree(Transformer):
    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.text = text

    def number(self, tok: Token) -> Num:
        value = float(tok)
        if not math.isfinite(value):
            line, col = _pos(tok)
            raise FactorSyntaxError(f"number {str(tok)!r} is outside the float64 range (at most ~1.8e308)",
                                    self.text, line, col)
        return Num(value, _pos(tok))

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


def _first_token(tree: Tree) -> Token | None:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Token):
            return node
        stack.extend(reversed(node.children))
    return None


def _check_size(tree: Tree, text: str) -> None:
    """Nesting depth and node count of lark's tree, walked iteratively (see module doc)."""
    stack: list[tuple[object, int]] = [(tree, 0)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Token):
            if node.type in ("NUMBER", "NAME", "TRUE", "FALSE"):
                nodes += 1
            continue
        assert isinstance(node, Tree)
        level = depth if node.data == "args" else depth + 1  # an argument list is not a level
        if node.data != "args":
            nodes += 1
        if level > MAX_DEPTH or nodes > MAX_NODES:
            tok = _first_token(node)
            line, col = _pos(tok) if tok is not None else (1, 1)
            what = (f"nesting deeper than {MAX_DEPTH} levels" if level > MAX_DEPTH
                    else f"more than {MAX_NODES} terms (numbers, columns, operators and calls)")
            raise FactorSyntaxError(f"expression too large: {what}; the limit keeps parsing and evaluation "
                                    "bounded (see docs/factors.md, Limits)", text, line, col)
        stack.extend((c, level) for c in node.children)


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
    if len(text) > MAX_TEXT_CHARS:
        head = text[:MAX_TEXT_CHARS]
        line, col = head.count("\n") + 1, len(head) - (head.rfind("\n") + 1) + 1
        raise FactorSyntaxError(f"expression is {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,} "
                                "(see docs/factors.md, Limits)", text, line, col)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        line, col = getattr(exc, "line", -1), getattr(exc, "column", -1)
        at_end = isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END")
        if at_end or line is None or line < 1:  # end of input: point just past the last character
            lines = text.splitlines() or [""]
            line, col = len(lines), len(lines[-1]) + 1
        raise FactorSyntaxError(_describe(exc), text, line, col) from None
    _check_size(tree, text)
    try:
        return _ToTree(text).transform(tree)
    except VisitError as exc:  # a FactorSyntaxError raised by the transformer (non-finite number)
        raise exc.orig_exc from None


def parse_tree(text: str) -> Expr:
    """The syntax tree of ``text`` (grammar and size limits checked; functions not checked).

    Raises
    ------
    TypeError
        ``text`` is not a string.
    FactorSyntaxError
        With ``line``, ``column`` and a caret excerpt of ``text``.
    """
    if not isinstance(text, str):
        raise TypeError(f"factor expression must be a string, got {type(text).__name__}")
    if not text.strip():
        raise FactorSyntaxError("empty expression", text, 1, 1)
    return _parse_cached(text)
