"""Parser: canonical text round-trips, precedence, positions in errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyplatform.factors import Binary, Call, Col, FactorSyntaxError, FactorTypeError, Num, Unary, parse
from pyplatform.factors.functions import FUNCTIONS

COLUMNS = ["close", "high", "low", "volume", "price", "side"]


def test_precedence_and_associativity():
    e = parse("a + b * c - d / e").tree
    assert e == Binary("-", Binary("+", Col("a"), Binary("*", Col("b"), Col("c"))), Binary("/", Col("d"), Col("e")))
    assert parse("a - b - c").tree == Binary("-", Binary("-", Col("a"), Col("b")), Col("c"))
    assert parse("a || b && !c").tree == Binary("||", Col("a"), Binary("&&", Col("b"), Unary("!", Col("c"))))
    assert parse("a or b and not c") == parse("a || b && !c")
    assert parse("-x > 2 == 1").tree == Binary("==", Binary(">", Unary("-", Col("x")), Num(2)), Num(1))


def test_canonical_text():
    assert str(parse("( close-mavg( close ,20 ) )/mstd(close,20)")) == "(close - mavg(close, 20)) / mstd(close, 20)"
    assert str(parse("a - (b - c)")) == "a - (b - c)"
    assert str(parse("(a - b) - c")) == "a - b - c"
    assert str(parse("mrank(close, false, 5)")) == "mrank(close, 0, 5)"
    assert str(parse("2.50 * 1e3")) == "2.5 * 1000"


def test_lookback_of_nodes():
    assert parse("close").lookback == 0
    assert parse("mavg(close, 20)").lookback == 19
    assert parse("mavg(close, 20, 5)").lookback == 4
    assert parse("ema(close, 12)").lookback == 11
    assert parse("dema(close, 10)").lookback == 18
    assert parse("tema(close, 10)").lookback == 27
    assert parse("rsi(close, 14)").lookback == 14
    assert parse("macdSignal(close, 12, 26, 9)").lookback == 33
    assert parse("mavg(deltas(close), 3)").lookback == 2   # DolphinDB: window counts rows, NULLs skipped
    assert parse("sma(deltas(close), 3)").lookback == 3    # TA-Lib family starts at the first non-NULL
    assert parse("mstd(close, 5) + move(close, 7)").lookback == 7


@pytest.mark.parametrize("text, line, col, fragment", [
    ("mavg(close, 0)", 1, 13, "window"),
    ("mavg(close)", 1, 1, "takes 2 to 3 argument"),
    ("foo(close)", 1, 1, "unknown function 'foo'"),
    ("mavge(close, 5)", 1, 1, "did you mean 'mavg'"),
    ("mavg(close, volume)", 1, 13, "must be a constant"),
    ("mavg(close, 2.5)", 1, 13, "integer"),
    ("mavg(close, -3)", 1, 13, "integer"),
    ("mavg(close, 5, 9)", 1, 16, "must not exceed the window"),
    ("mrank(close, 2, 5)", 1, 14, "true or false"),
    ("macd(close, 26, 12)", 1, 1, "fast period"),
    ("close +\n  mavg(close, 5) $", 2, 18, "unexpected character '$'"),
    ("close + ", 1, 9, "unexpected end"),
    ("(close", 1, 7, "unexpected end"),
    ("close close", 1, 7, "unexpected"),
])
def test_errors_carry_position_and_caret(text, line, col, fragment):
    with pytest.raises((FactorSyntaxError, FactorTypeError)) as info:
        parse(text)
    err = info.value
    assert (err.line, err.column) == (line, col), str(err)
    assert fragment in str(err)
    caret_line = str(err).splitlines()[-1]
    assert caret_line.index("^") == col + 1  # two spaces of indent, 1-based column


def test_unknown_column_against_schema():
    with pytest.raises(FactorTypeError) as info:
        parse("mavg(close, 5) / vol", columns={"close", "volume"})
    assert (info.value.line, info.value.column) == (1, 18)
    assert "unknown column 'vol'" in str(info.value)
    assert parse("mavg(close, 5)", columns={"close"}).tree == Call("mavg", (Col("close"), Num(5)))


def test_never_evaluates_text():
    for text in ("__import__('os')", "close.__class__", "lambda: 1", "close; 1"):
        with pytest.raises((FactorSyntaxError, FactorTypeError)):
            parse(text)


# -- property: str(e) re-parses to an equal tree ---------------------------------------------------
_SERIES_FUNCS = [(n, s) for n, s in FUNCTIONS.items()]


def _const_for(kind: str, draw) -> Num:
    if kind == "win":
        return Num(float(draw(st.integers(2, 30))))
    if kind == "steps":
        return Num(float(draw(st.integers(1, 30))))
    if kind == "minp":
        return Num(1.0)
    if kind == "bool":
        return Num(float(draw(st.integers(0, 1))))
    return Num(draw(st.sampled_from([0.5, 1.0, 2.0, 2.5])))


@st.composite
def trees(draw, depth: int = 3):
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        if draw(st.booleans()):
            return Col(draw(st.sampled_from(COLUMNS)))
        return Num(draw(st.one_of(st.integers(0, 1000).map(float), st.floats(0, 1e6, allow_nan=False).filter(lambda v: v >= 0))))
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return Unary(draw(st.sampled_from(["-", "!"])), draw(trees(depth - 1)))
    if kind == 1:
        op = draw(st.sampled_from(["+", "-", "*", "/", "<", "<=", ">", ">=", "==", "!=", "&&", "||"]))
        return Binary(op, draw(trees(depth - 1)), draw(trees(depth - 1)))
    name, spec = draw(st.sampled_from(_SERIES_FUNCS))
    n_args = draw(st.integers(spec.required, len(spec.params)))
    args = []
    for p in spec.params[:n_args]:
        args.append(draw(trees(depth - 1)) if p.kind == "x" else _const_for(p.kind, draw))
    if name.startswith("macd") and n_args >= 3 and args[1].value >= args[2].value:
        args[2] = Num(args[1].value + 1)
    if name.startswith("macd") and n_args == 2 and args[1].value >= 26:
        args[1] = Num(12.0)
    return Call(name, tuple(args))


@settings(max_examples=150, deadline=None)
@given(trees())
def test_canonical_text_round_trips(tree):
    text = str(tree)
    again = parse(text)
    assert again.tree == tree
    assert str(again) == text
    assert again.lookback >= 0
