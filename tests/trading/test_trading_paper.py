"""Paper broker fill model: touch, partial fills against quoted size, slippage, latency, IOC."""

from decimal import Decimal as D

import pytest

from pyplatform.clock import SimClock
from pyplatform.domain import Quote
from pyplatform.execution.matching import FillModel
from pyplatform.execution.messages import (
    CancelOrder, OrderAccepted, OrderCanceled, OrderCancelRejected, OrderFilled, OrderRejected, OrderReplaced,
    OrdType, ReplaceOrder, Side, SubmitOrder, TimeInForce,
)
from pyplatform.execution.paper import PaperBroker


def q(ts, bid, ask, bid_size=1000.0, ask_size=1000.0, sym="AAPL.US"):
    return Quote(ts, sym, (bid + ask) / 2, bid=bid, ask=ask, bid_size=bid_size, ask_size=ask_size)


def o(cl, side, qty, px=None, tif=TimeInForce.DAY, sym="AAPL.US"):
    kind = OrdType.MARKET if px is None else OrdType.LIMIT
    return SubmitOrder(cl, "acc", sym, side, D(qty), kind, None if px is None else D(px), tif)


def fills(events):
    return [e for e in events if isinstance(e, OrderFilled)]


def test_limit_rests_until_touched_then_fills_at_the_touch():
    b = PaperBroker(SimClock(0), FillModel(0, 0))
    b.on_quote(q(0, 99.98, 100.02))
    ev = b.send(o("a", Side.BUY, 100, "100.00"))
    assert [type(e) for e in ev] == [OrderAccepted]
    assert fills(b.on_quote(q(1, 99.98, 100.01))) == []
    (f,) = fills(b.on_quote(q(2, 99.97, 99.99)))
    assert f.last_px == D("99.99") and f.leaves_qty == 0


def test_partial_fills_against_quoted_size_shared_in_time_priority():
    b = PaperBroker(SimClock(0), FillModel(0, 0))
    b.send(o("a", Side.BUY, 300, "101"))
    b.send(o("b", Side.BUY, 300, "101"))
    ev = fills(b.on_quote(q(1, 99, 100, ask_size=400)))
    assert [(f.client_order_id, f.last_qty, f.leaves_qty) for f in ev] == [("a", 300, 0), ("b", 100, 200)]
    ev = fills(b.on_quote(q(2, 99, 100, ask_size=150)))
    assert [(f.client_order_id, f.last_qty, f.leaves_qty) for f in ev] == [("b", 150, 50)]


@pytest.mark.parametrize("size,expected", [(100000, "100.05"), (1000, "100.20")])
def test_slippage_grows_with_share_of_quoted_size(size, expected):
    # buy 1000 at ask 100: a sliver of 100,000 -> ~0.05%; all of 1000 -> 0.2%
    b = PaperBroker(SimClock(0))
    b.on_quote(q(0, 99.9, 100.0, ask_size=size))
    (f,) = fills(b.send(o("m", Side.BUY, 1000)))
    assert f.last_px == D(expected) or abs(f.last_px - D(expected)) <= D("0.01")
    assert D("100.05") <= f.last_px <= D("100.20")


def test_slippage_is_capped_by_the_limit_and_sells_slip_down():
    b = PaperBroker(SimClock(0))
    b.on_quote(q(0, 100.0, 100.1, bid_size=500, ask_size=500))
    (f,) = fills(b.send(o("l", Side.BUY, 500, "100.12")))
    assert f.last_px == D("100.12")
    (s,) = fills(b.send(o("s", Side.SELL, 500)))
    assert s.last_px == D("99.80")  # 100 x (1 - 0.2%)


def test_latency_delays_arrival():
    clock = SimClock(0)
    b = PaperBroker(clock, FillModel(0, 0, latency_ns=5_000))
    b.on_quote(q(0, 99, 100))
    assert b.send(o("a", Side.BUY, 10)) == []
    clock.advance(4_999)
    assert b.poll() == []
    clock.advance(1)
    ev = b.poll()
    assert [type(e) for e in ev] == [OrderAccepted, OrderFilled] and ev[0].ts == 5_000


def test_ioc_remainder_cancels():
    b = PaperBroker(SimClock(0), FillModel(0, 0))
    b.on_quote(q(0, 99, 100, ask_size=40))
    ev = b.send(o("i", Side.BUY, 100, "100", TimeInForce.IOC))
    assert [type(e) for e in ev] == [OrderAccepted, OrderFilled, OrderCanceled]


def test_cancel_replace_and_rejects():
    b = PaperBroker(SimClock(0), FillModel(0, 0))
    b.on_quote(q(0, 99, 100, ask_size=10))
    b.send(o("a", Side.BUY, 30, "100"))  # 10 filled
    (r,) = b.send(ReplaceOrder("a", "a2", D(5), D("100")))
    assert r.reason.startswith("new quantity 5 <= filled 10")
    ev = b.send(ReplaceOrder("a", "a2", D(50), D("99.5")))
    assert isinstance(ev[0], OrderReplaced) and ev[0].new_client_order_id == "a2"
    assert b.engine.orders["a2"].leaves == 40
    (c,) = b.send(CancelOrder("a2"))
    assert isinstance(c, OrderCanceled)
    (c,) = b.send(CancelOrder("a2"))
    assert isinstance(c, OrderCancelRejected) and "cancelled" in c.reason
    (rej,) = b.send(o("bad", Side.BUY, 1, "1", sym="NOPE.XX"))
    assert isinstance(rej, OrderRejected) and "XX" in rej.reason
    assert b.send(o("a", Side.BUY, 30, "100")) == []  # resend of a known id: idempotent


def test_day_orders_expire():
    b = PaperBroker(SimClock(0))
    b.send(o("d", Side.BUY, 1, "1"))
    b.send(o("g", Side.BUY, 1, "1", TimeInForce.GTC))
    ev = b.end_of_day()
    assert [e.client_order_id for e in ev] == ["d"]


def test_fill_model_validates():
    with pytest.raises(ValueError, match="slippage"):
        FillModel(0.01, 0.001)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["AAPL.US", "EURUSD.GB", "BTCUSDT.BA"]), st.floats(0.5, 50_000),
       st.integers(1, 5000), st.floats(1, 10_000), st.booleans())
def test_fill_prices_stay_in_the_slippage_band_at_asset_precision(sym, ask, qty, size, buy):
    from decimal import ROUND_CEILING, ROUND_FLOOR

    from pyplatform.domain import PRICE_DECIMALS, asset_class_of

    places = PRICE_DECIMALS[asset_class_of(sym)]
    unit = D(1).scaleb(-places)
    b = PaperBroker(SimClock(0))
    b.on_quote(Quote(0, sym, ask, bid=ask, ask=ask, bid_size=size, ask_size=size))
    ev = b.send(o("x", Side.BUY if buy else Side.SELL, qty, sym=sym))
    got = fills(ev)
    assert sum(f.last_qty for f in got) <= qty
    for f in got:
        assert f.last_px == f.last_px.quantize(unit)  # the asset class's precision
        ref = D(repr(ask))
        if buy:
            lo, hi = (ref * D("1.0005")).quantize(unit, ROUND_FLOOR), (ref * D("1.002")).quantize(unit, ROUND_CEILING)
        else:
            lo, hi = (ref * D("0.998")).quantize(unit, ROUND_FLOOR), (ref * D("0.9995")).quantize(unit, ROUND_CEILING)
        assert lo <= f.last_px <= hi
