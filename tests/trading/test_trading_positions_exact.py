"""Position booking on integer ratios equals the textbook average-cost rule in Fractions.

The oracle below is the rule written with ``fractions.Fraction`` operators (independent of
the integer-ratio arithmetic ``Position.apply_fill`` uses); every result must be equal, not
close, including fills through zero, exact flattening and fractional quantities.
"""

from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from pyplatform.execution.positions import Position, PositionBook

prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4)
qtys = st.decimals(min_value=Decimal("-500"), max_value=Decimal("500"), places=3).filter(lambda q: q != 0)


def oracle(fills):
    """(quantity, cost, realised, per-fill realised) by the average-cost rule in Fractions."""
    held, cost, realised, each = Fraction(0), Fraction(0), Fraction(0), []
    for q, px in fills:
        q, px = Fraction(q), Fraction(px)
        r = Fraction(0)
        if held == 0 or (held > 0) == (q > 0):
            cost += q * px
        else:
            avg = cost / held
            closing = -held if abs(q) >= abs(held) else q
            r = -closing * (px - avg)
            cost += closing * avg
            if q - closing:
                cost = (q - closing) * px
        held += q
        realised += r
        each.append(r)
    return held, cost, realised, each


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(qtys, prices), min_size=1, max_size=40), prices)
def test_apply_fill_equals_fraction_oracle(fills, mark):
    p = Position("a", "S.US")
    got = [p.apply_fill(q, px) for q, px in fills]
    held, cost, realised, each = oracle(fills)
    assert got == each
    assert Fraction(p.quantity) == held and p.cost == cost and p.realised == realised
    assert p.avg_price == (None if held == 0 else cost / held)
    assert p.unrealised(mark) == held * Fraction(mark) - cost


def test_exact_flatten_and_flip_by_hand():
    p = Position("a", "S.US")
    p.apply_fill(Decimal("0.3"), Decimal("10.1"))
    p.apply_fill(Decimal("0.7"), Decimal("10.2"))  # avg (3.03 + 7.14) / 1 = 10.17
    assert p.avg_price == Fraction("10.17")
    assert p.apply_fill(Decimal("-0.4"), Decimal("11")) == Fraction("0.4") * Fraction("0.83")
    assert p.avg_price == Fraction("10.17") and p.quantity == Decimal("0.6")
    assert p.apply_fill(Decimal("-0.6"), Decimal("10")) == Fraction("0.6") * Fraction("-0.17")
    assert p.quantity == 0 and p.cost == 0 and p.avg_price is None and p.opened_ts is None
    assert p.apply_fill(Decimal("-2"), Decimal("9"), ts=5) == 0
    assert p.avg_price == 9 and p.opened_ts == 5
    # through zero: buy 3 closes 2 short at 9 -> realised 2 x (9 - 8) = 2, then 1 long at 8
    assert p.apply_fill(Decimal(3), Decimal(8), ts=7) == 2
    assert p.quantity == 1 and p.avg_price == 8 and p.opened_ts == 7
    assert p.realised == Fraction("0.332") - Fraction("0.102") + 2


def test_book_totals_ignore_order_and_other_accounts():
    b = PositionBook()
    b.get("a", "Z.US").apply_fill(Decimal(2), Decimal(10))
    b.get("a", "A.US").apply_fill(Decimal(-3), Decimal(4))
    b.get("b", "A.US").apply_fill(Decimal(100), Decimal(4))
    b.get("a", "Z.US").apply_fill(Decimal(-1), Decimal(12))  # realises 2
    b.mark("Z.US", Decimal(11))
    b.mark("A.US", Decimal(5))
    assert b.realised("a") == 2 and b.realised("b") == 0
    assert b.unrealised("a") == (11 - 10) * 1 + (-3) * (5 - 4)  # -2
    assert b.unrealised("b") == 100
    assert b.gross_exposure("a") == 11 + 15
    assert [p.symbol for p in b.positions("a")] == ["A.US", "Z.US"]
