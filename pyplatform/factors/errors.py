"""Errors of the factor language, each pointing at the offending place in the text."""

from __future__ import annotations

__all__ = ["FactorError", "FactorSyntaxError", "FactorTypeError", "caret_excerpt"]


def caret_excerpt(text: str, line: int, column: int) -> str:
    """The source line ``line`` (1-based) of ``text`` with a caret under ``column`` (1-based)."""
    lines = text.splitlines() or [""]
    src = lines[min(max(line, 1), len(lines)) - 1]
    return f"  {src}\n  {' ' * max(column - 1, 0)}^"


class FactorError(ValueError):
    """Base class: a factor expression that cannot be used.

    Attributes
    ----------
    text : str
        The whole expression text.
    line, column : int
        1-based position of the problem in ``text``.
    reason : str
        What is wrong, without the position.
    """

    kind = "error"

    def __init__(self, reason: str, text: str = "", line: int = 1, column: int = 1) -> None:
        self.reason = reason
        self.text = text
        self.line = line
        self.column = column
        msg = f"{self.kind} at {line}:{column}: {reason}"
        if text:
            msg += "\n" + caret_excerpt(text, line, column)
        super().__init__(msg)


class FactorSyntaxError(FactorError):
    """The text does not follow the grammar (unexpected character or token)."""

    kind = "syntax error"


class FactorTypeError(FactorError):
    """Well-formed text that is not a valid factor: unknown function or column, wrong arity,
    a window that is not a positive integer constant, and the like."""

    kind = "type error"
