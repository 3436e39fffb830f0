"""The typed expression tree of the factor language.

Nodes are frozen dataclasses compared by value (positions in the source text are kept for
error messages but excluded from equality), so ``parse(str(e)) == e`` for every tree ``e``.
``str(node)`` is the canonical text: minimal parentheses, ``&&``/``||``/``!`` for logic, numbers
as integers where exact. The tree knows nothing of functions: the checked factor built on it
(look-back, lowering) is :class:`pyplatform.factors.factor.Factor`.
"""

from __future__ import annotations

from collections.abc import Iterator

from dataclasses import dataclass, field

__all__ = ["Expr", "Num", "Col", "Unary", "Binary", "Call", "BINARY_PRECEDENCE", "format_number"]

# Operator -> precedence (higher binds tighter).  Unary operators bind tighter than all of these.
BINARY_PRECEDENCE: dict[str, int] = {
    "||": 1, "&&": 2,
    "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
    "+": 4, "-": 4,
    "*": 5, "/": 5,
}
_UNARY_PRECEDENCE = 6
_ATOM_PRECEDENCE = 7


def format_number(value: float) -> str:
    """Canonical text of a numeric literal (integers without a decimal point)."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Expr:
    """Base class of all nodes."""

    __slots__ = ()

    @property
    def precedence(self) -> int:
        return _ATOM_PRECEDENCE

    def children(self) -> tuple["Expr", ...]:
        return ()

    def walk(self) -> Iterator["Expr"]:
        """Every node, depth-first and left to right (the order they appear in the text).

        Iterative, so trees at the parser's nesting limit do not hit Python's recursion limit.
        """
        stack: list[Expr] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children()))

    def columns(self) -> set[str]:
        """Input column names the expression reads."""
        return {node.name for node in self.walk() if isinstance(node, Col)}


@dataclass(frozen=True, slots=True)
class Num(Expr):
    """A numeric constant (always non-negative from the parser: ``-2`` is ``Unary('-', Num(2))``)."""

    value: float
    pos: tuple[int, int] = field(default=(0, 0), compare=False, repr=False)

    def __str__(self) -> str:
        return format_number(self.value)


@dataclass(frozen=True, slots=True)
class Col(Expr):
    """An input column such as ``close`` or ``volume``."""

    name: str
    pos: tuple[int, int] = field(default=(0, 0), compare=False, repr=False)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Unary(Expr):
    """``-x`` (negation) or ``!x`` (logical not)."""

    op: str
    operand: Expr
    pos: tuple[int, int] = field(default=(0, 0), compare=False, repr=False)

    @property
    def precedence(self) -> int:
        return _UNARY_PRECEDENCE

    def children(self) -> tuple[Expr, ...]:
        return (self.operand,)

    def __str__(self) -> str:
        inner = str(self.operand)
        if self.operand.precedence < _UNARY_PRECEDENCE:
            inner = f"({inner})"
        return f"{self.op}{inner}"


@dataclass(frozen=True, slots=True)
class Binary(Expr):
    """``left op right`` for arithmetic, comparison and logical operators (left-associative)."""

    op: str
    left: Expr
    right: Expr
    pos: tuple[int, int] = field(default=(0, 0), compare=False, repr=False)

    @property
    def precedence(self) -> int:
        return BINARY_PRECEDENCE[self.op]

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)

    def __str__(self) -> str:
        p = self.precedence
        left, right = str(self.left), str(self.right)
        if self.left.precedence < p:
            left = f"({left})"
        if self.right.precedence <= p:
            right = f"({right})"
        return f"{left} {self.op} {right}"


@dataclass(frozen=True, slots=True)
class Call(Expr):
    """A function call ``name(arg, ...)``; constant arguments (windows) are ``Num`` nodes."""

    name: str
    args: tuple[Expr, ...]
    pos: tuple[int, int] = field(default=(0, 0), compare=False, repr=False)

    def children(self) -> tuple[Expr, ...]:
        return self.args

    def __str__(self) -> str:
        return f"{self.name}({', '.join(str(a) for a in self.args)})"
