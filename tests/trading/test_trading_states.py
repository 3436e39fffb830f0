"""Every legal and every illegal order transition, against a hand-written expected table."""

from decimal import Decimal

import pytest

from pyplatform.execution.messages import (
    OrderAccepted, OrderCanceled, OrderCancelRejected, OrderExpired, OrderFilled, OrderPendingCancel,
    OrderPendingReplace, OrderRejected, OrderReplaced, OrderReplaceRejected, OrdType, Side, SubmitOrder,
)
from pyplatform.execution.order import Order
from pyplatform.execution.states import (
    PREVIOUS, TERMINAL, TRANSITIONS, EventKind, IllegalTransition, OrderStatus, next_status, render_markdown,
)

ALL = [(s, k) for s in OrderStatus for k in EventKind]

# The order lifecycle written out by hand from FIX 4.4 (OrdStatus/ExecType semantics) -- NOT
# read from TRANSITIONS, so a wrong or missing table entry fails here. One line per legal
# (status, event) -> next status; every pair not listed must be illegal.
EXPECTED = {
    ("pending_new", "accepted"): "new",
    ("pending_new", "rejected"): "rejected",
    ("pending_new", "partial_fill"): "partially_filled",
    ("pending_new", "fill"): "filled",
    ("pending_new", "cancel_requested"): "pending_cancel",
    ("new", "partial_fill"): "partially_filled",
    ("new", "fill"): "filled",
    ("new", "cancel_requested"): "pending_cancel",
    ("new", "replace_requested"): "pending_replace",
    ("new", "cancelled"): "cancelled",
    ("new", "expired"): "expired",
    ("partially_filled", "partial_fill"): "partially_filled",
    ("partially_filled", "fill"): "filled",
    ("partially_filled", "cancel_requested"): "pending_cancel",
    ("partially_filled", "replace_requested"): "pending_replace",
    ("partially_filled", "cancelled"): "cancelled",
    ("partially_filled", "expired"): "expired",
    ("pending_cancel", "accepted"): "pending_cancel",
    ("pending_cancel", "rejected"): "rejected",
    ("pending_cancel", "partial_fill"): "pending_cancel",
    ("pending_cancel", "fill"): "filled",
    ("pending_cancel", "cancelled"): "cancelled",
    ("pending_cancel", "cancel_rejected"): "previous",
    ("pending_cancel", "expired"): "expired",
    ("pending_replace", "partial_fill"): "pending_replace",
    ("pending_replace", "fill"): "filled",
    ("pending_replace", "replaced"): "replaced",
    ("pending_replace", "replace_rejected"): "previous",
    ("pending_replace", "cancelled"): "cancelled",
    ("pending_replace", "expired"): "expired",
    # late fills: applied, the order stays closed
    ("cancelled", "partial_fill"): "cancelled",
    ("cancelled", "fill"): "cancelled",
    ("expired", "partial_fill"): "expired",
    ("expired", "fill"): "expired",
}
CLOSED = {"filled", "cancelled", "rejected", "expired", "replaced"}
LEGAL = sorted(EXPECTED)
ILLEGAL = [(s.value, k.value) for s, k in ALL if (s.value, k.value) not in EXPECTED]


def test_table_is_exactly_the_hand_written_one():
    got = {(s.value, k.value): (t if t == PREVIOUS else t.value) for (s, k), t in TRANSITIONS.items()}
    assert got == EXPECTED
    assert {s.value for s in TERMINAL} == CLOSED


@pytest.mark.parametrize("status,kind", LEGAL, ids=[f"{s}-{k}" for s, k in LEGAL])
def test_legal(status, kind):
    got = next_status("x", OrderStatus(status), EventKind(kind), previous=OrderStatus.PARTIALLY_FILLED)
    want = EXPECTED[(status, kind)]
    assert got.value == ("partially_filled" if want == "previous" else want)


@pytest.mark.parametrize("status,kind", ILLEGAL, ids=[f"{s}-{k}" for s, k in ILLEGAL])
def test_illegal(status, kind):
    with pytest.raises(IllegalTransition, match=f"illegal transition '{kind}' from '{status}'"):
        next_status("x", OrderStatus(status), EventKind(kind))


def _event(kind: EventKind, leaves=Decimal(0)):
    return {
        EventKind.ACCEPTED: OrderAccepted("o", 1), EventKind.REJECTED: OrderRejected("o", 1, "no"),
        EventKind.PARTIAL_FILL: OrderFilled("o", 1, "e", Decimal(1), Decimal(10), Decimal(9)),
        EventKind.FILL: OrderFilled("o", 1, "e", Decimal(1), Decimal(10), Decimal(0)),
        EventKind.CANCEL_REQUESTED: OrderPendingCancel("o", 1), EventKind.CANCELLED: OrderCanceled("o", 1),
        EventKind.CANCEL_REJECTED: OrderCancelRejected("o", 1), EventKind.REPLACE_REQUESTED: OrderPendingReplace("o", 1, "o2"),
        EventKind.REPLACED: OrderReplaced("o", 1, "o2", Decimal(10)), EventKind.REPLACE_REJECTED: OrderReplaceRejected("o", 1),
        EventKind.EXPIRED: OrderExpired("o", 1),
    }[kind]


@pytest.mark.parametrize("status,kind", ALL, ids=[f"{s.value}-{k.value}" for s, k in ALL])
def test_order_apply_follows_the_hand_written_table(status, kind):
    qty = Decimal(1) if kind is EventKind.FILL else Decimal(10)
    order = Order("o", "a", "AAPL.US", Side.BUY, qty, OrdType.LIMIT, Decimal(10), "day", status=status,
                  previous_status=OrderStatus.NEW)
    want = EXPECTED.get((status.value, kind.value))
    if want is None:
        with pytest.raises(IllegalTransition):
            order.apply(_event(kind))
    else:
        assert order.apply(_event(kind)).status.value == ("new" if want == "previous" else want)


def test_late_fill_after_cancel_is_applied_and_recorded():
    o = Order.from_command(SubmitOrder("o", "a", "AAPL.US", Side.BUY, Decimal(10), OrdType.LIMIT, Decimal(10)))
    o = o.apply(OrderAccepted("o", 1)).apply(OrderPendingCancel("o", 2)).apply(OrderCanceled("o", 3, "user"))
    o = o.apply(OrderFilled("o", 4, "e1", Decimal(3), Decimal(10), Decimal(0)))
    assert (o.status, o.cum_qty, o.late_fill_qty, o.leaves_qty) == (OrderStatus.CANCELLED, 3, 3, 0)


def test_cancel_before_ack_then_ack_then_reject_returns_to_new():
    o = Order.from_command(SubmitOrder("o", "a", "AAPL.US", Side.BUY, Decimal(10), OrdType.LIMIT, Decimal(10)))
    o = o.apply(OrderPendingCancel("o", 1))
    assert o.status is OrderStatus.PENDING_CANCEL and o.previous_status is OrderStatus.PENDING_NEW
    o = o.apply(OrderAccepted("o", 2, "B1")).apply(OrderCancelRejected("o", 3, "too late to cancel"))
    assert (o.status, o.reject_reason, o.broker_order_id) == (OrderStatus.NEW, "too late to cancel", "B1")


def test_cancel_reject_restores_partially_filled_after_fill_while_pending():
    o = Order.from_command(SubmitOrder("o", "a", "AAPL.US", Side.BUY, Decimal(10), OrdType.LIMIT, Decimal(10)))
    o = o.apply(OrderAccepted("o", 1)).apply(OrderPendingCancel("o", 2))
    o = o.apply(OrderFilled("o", 3, "e1", Decimal(4), Decimal(10), Decimal(6)))
    assert o.status is OrderStatus.PENDING_CANCEL
    o = o.apply(OrderCancelRejected("o", 4, "too late"))
    assert o.status is OrderStatus.PARTIALLY_FILLED and o.cum_qty == 4


def test_markdown_rendering_lists_every_status_and_event():
    md = render_markdown()
    for s in OrderStatus:
        assert f"**{s.value}**" in md
    for k in EventKind:
        assert k.value in md.splitlines()[0]
    row = next(line for line in md.splitlines() if line.startswith("| **pending_cancel**"))
    assert "previous" in row and "cancelled" in row


def test_docs_show_the_table_from_the_code():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "trading.md").read_text()
    assert render_markdown() in doc
