"""A small reader for DolphinDB scripts: tokens, function calls and their arguments.

It understands enough of the language to check the platform's own scripts without a
server: comments, strings, backtick symbols, metacode brackets, keyword arguments,
method calls (``db.f(...)``), partial application (``f{x}``), ``def`` and the ``if``
conditions that guard each call. It is not a full DolphinDB parser and never executes
anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pyplatform.dolphindb.signatures import SCRIPT_KEYWORDS

__all__ = ["Token", "Arg", "Call", "ScriptSyntaxError", "tokenize", "parse_calls", "defined_functions"]


class ScriptSyntaxError(ValueError):
    """A script that cannot be tokenised or has unbalanced brackets (names file and line)."""


@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, symbol, number, op
    text: str
    line: int
    pos: int


@dataclass(frozen=True)
class Arg:
    """One argument of a call: ``keyword`` is None for positional ones."""

    keyword: str | None
    text: str

    @property
    def literal(self) -> str | None:
        """The value of a plain string literal argument (``"x"``, ``'x'`` or `` `x``), else None."""
        t = self.text.strip()
        if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":
            return t[1:-1]
        if re.fullmatch(r"`[A-Za-z_][A-Za-z0-9_]*", t):
            return t[1:]
        return None


@dataclass(frozen=True)
class Call:
    """A call site ``name(args)`` (or ``name{args}`` when ``partial``)."""

    name: str
    args: tuple[Arg, ...]
    line: int
    method: bool = False
    partial: bool = False
    guards: tuple[str, ...] = field(default=())  # conditions of enclosing ``if`` blocks, innermost last
    text: str = ""

    @property
    def positional(self) -> int:
        return sum(1 for a in self.args if a.keyword is None)

    @property
    def keywords(self) -> list[str]:
        return [a.keyword for a in self.args if a.keyword is not None]

    def arg(self, name: str, position: int | None = None) -> Arg | None:
        """The argument bound to parameter ``name`` by keyword, else by ``position``."""
        for a in self.args:
            if a.keyword == name:
                return a
        if position is not None:
            pos = [a for a in self.args if a.keyword is None]
            if self.method:
                position -= 1
            if 0 <= position < len(pos):
                return pos[position]
        return None


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<symbol>`[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>\d[\d.]*[A-Za-z]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:!(?=[({]))?)
  | (?P<op>==|!=|<=|>=|&&|\|\||<-|\.\.|[-+*/\\%<>=!&|^(){}\[\],;:.$@?])
""", re.VERBOSE | re.DOTALL)


def tokenize(text: str, source: str = "<script>") -> list[Token]:
    """Split a script into tokens, dropping whitespace and comments."""
    out: list[Token] = []
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ScriptSyntaxError(f"{source}:{line}: cannot read {text[pos:pos + 20]!r}")
        kind = m.lastgroup or "op"
        if kind not in ("ws", "comment"):
            out.append(Token(kind, m.group(), line, pos))
        line += m.group().count("\n")
        pos = m.end()
    return out


_OPEN = {"(": ")", "[": "]", "{": "}"}


def _matching(tokens: list[Token], i: int, source: str) -> int:
    """Index of the bracket closing the one at ``tokens[i]``."""
    stack = [_OPEN[tokens[i].text]]
    j = i + 1
    while j < len(tokens):
        t = tokens[j].text if tokens[j].kind == "op" else ""
        if t in _OPEN:
            stack.append(_OPEN[t])
        elif t in (")", "]", "}"):
            if t != stack[-1]:
                raise ScriptSyntaxError(f"{source}:{tokens[j].line}: {t!r} closes {stack[-1]!r}")
            stack.pop()
            if not stack:
                return j
        j += 1
    raise ScriptSyntaxError(f"{source}:{tokens[i].line}: {tokens[i].text!r} is never closed")


def _split_args(text: str, tokens: list[Token], start: int, end: int) -> tuple[Arg, ...]:
    """Arguments between ``tokens[start]`` (open bracket) and ``tokens[end]`` (close)."""
    args: list[Arg] = []
    depth = 0
    first = start + 1
    for j in range(start + 1, end + 1):
        t = tokens[j]
        is_op = t.kind == "op"
        if is_op and t.text in _OPEN:
            depth += 1
        elif is_op and t.text in (")", "]", "}") and j != end:
            depth -= 1
        if (j == end or (is_op and t.text == "," and depth == 0)):
            piece = tokens[first:j]
            if piece:
                kw = None
                if (len(piece) >= 2 and piece[0].kind == "ident" and piece[1].kind == "op"
                        and piece[1].text == "="):
                    kw = piece[0].text
                    piece = piece[2:]
                raw = text[piece[0].pos: piece[-1].pos + len(piece[-1].text)] if piece else ""
                args.append(Arg(kw, raw))
            elif j != end or args:
                args.append(Arg(None, ""))  # an empty positional slot: f(, x)
            first = j + 1
    return tuple(args)


def defined_functions(tokens: list[Token]) -> frozenset[str]:
    """Names of functions the script defines with ``def name(...)``."""
    return frozenset(tokens[i + 1].text for i, t in enumerate(tokens[:-1])
                     if t.kind == "ident" and t.text == "def" and tokens[i + 1].kind == "ident")


def parse_calls(text: str, source: str = "<script>") -> list[Call]:
    """Every call site in ``text``, in order, each with the ``if`` conditions guarding it."""
    tokens = tokenize(text, source)
    calls: list[Call] = []
    # blocks: (close index, guard condition or None)
    blocks: list[tuple[int, str | None]] = []
    for i, tok in enumerate(tokens):
        while blocks and i > blocks[-1][0]:
            blocks.pop()
        if tok.kind == "op" and tok.text == "{" and i > 0 and tokens[i - 1].text == ")":
            # ``if(cond) {`` opens a guarded block; find the condition's opening bracket
            close_paren = i - 1
            depth, k = 0, close_paren
            while k >= 0:
                if tokens[k].text == ")":
                    depth += 1
                elif tokens[k].text == "(":
                    depth -= 1
                    if depth == 0:
                        break
                k -= 1
            guard = None
            if k > 0 and tokens[k - 1].text == "if":
                guard = text[tokens[k].pos + 1: tokens[close_paren].pos]
            blocks.append((_matching(tokens, i, source), guard))
            continue
        if tok.kind != "ident" or i + 1 >= len(tokens):
            continue
        nxt = tokens[i + 1]
        if nxt.kind != "op" or nxt.text not in ("(", "{"):
            continue
        if tok.text in SCRIPT_KEYWORDS:
            continue
        if i > 0 and tokens[i - 1].text == "def":
            continue
        close = _matching(tokens, i + 1, source)
        guards = tuple(g for _, g in blocks if g is not None)
        calls.append(Call(
            name=tok.text,
            args=_split_args(text, tokens, i + 1, close),
            line=tok.line,
            method=i > 0 and tokens[i - 1].text == ".",
            partial=nxt.text == "{",
            guards=guards,
            text=text[tok.pos: tokens[close].pos + 1],
        ))
    return calls
