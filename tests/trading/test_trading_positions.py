"""Positions: average cost, realised and unrealised P&L -- exact arithmetic, property-tested."""

from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from pyplatform.execution.positions import Position, PositionBook

prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000"), places=2)
qtys = st.integers(min_value=-1000, max_value=1000).filter(lambda q: q != 0)


def test_average_cost_and_realised_example():
    p = Position("a", "AAPL.US")
    p.apply_fill(Decimal(100), Decimal("10.00"))
    p.apply_fill(Decimal(100), Decimal("12.00"))
    assert p.avg_price == 11
    r = p.apply_fill(Decimal(-150), Decimal("13.00"))
    assert r == 150 * 2 and p.quantity == 50 and p.avg_price == 11
    # through zero: close 50 at 9 (-100), open short 30 at 9
    r = p.apply_fill(Decimal(-80), Decimal("9.00"))
    assert r == -100 and p.quantity == -30 and p.avg_price == 9
    assert p.realised == 200
    assert p.unrealised(Decimal("8.50")) == Fraction(15)  # short 30 gains 0.5 each


def test_book_totals_per_account():
    b = PositionBook()
    b.get("a", "X.US").apply_fill(Decimal(10), Decimal(5))
    b.get("b", "X.US").apply_fill(Decimal(-10), Decimal(5))
    b.mark("X.US", Decimal(6))
    assert b.unrealised("a") == 10 and b.unrealised("b") == -10
    assert b.gross_exposure("a") == 60


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(qtys, prices), min_size=1, max_size=30), prices)
def test_pnl_identity(fills, mark):
    """realised + unrealised == cash flows + position x mark, to the last digit."""
    p = Position("a", "S.US")
    cash = Fraction(0)
    for q, px in fills:
        p.apply_fill(Decimal(q), px)
        cash -= Fraction(q) * Fraction(px)
    assert p.quantity == sum(q for q, _ in fills)
    assert p.realised + p.unrealised(mark) == cash + Fraction(p.quantity) * Fraction(mark)
    if p.quantity == 0:
        assert p.cost == 0 and p.avg_price is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 500), prices), min_size=1, max_size=20))
def test_average_cost_is_volume_weighted_for_one_direction(buys):
    p = Position("a", "S.US")
    for q, px in buys:
        p.apply_fill(Decimal(q), px)
    total_q = sum(q for q, _ in buys)
    assert p.avg_price == sum(Fraction(q) * Fraction(px) for q, px in buys) / total_q
    assert p.realised == 0
