"""Every legal and every illegal order transition, generated from the table itself."""

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
LEGAL = [p for p in ALL if p in TRANSITIONS]
ILLEGAL = [p for p in ALL if p not in TRANSITIONS]


def test_table_shape():
    # terminal statuses have no way out; every non-terminal one has at least one
    for s in OrderStatus:
        outs = [k for (st, k) in TRANSITIONS if st is s]
        assert (not outs) == (s in TERMINAL), s
    assert len(LEGAL) + len(ILLEGAL) == len(OrderStatus) * len(EventKind)


@pytest.mark.parametrize("status,kind", LEGAL, ids=[f"{s.value}-{k.value}" for s, k in LEGAL])
def test_legal(status, kind):
    target = TRANSITIONS[(status, kind)]
    got = next_status("x", status, kind, previous=OrderStatus.PARTIALLY_FILLED)
    assert got == (OrderStatus.PARTIALLY_FILLED if target == PREVIOUS else target)


@pytest.mark.parametrize("status,kind", ILLEGAL, ids=[f"{s.value}-{k.value}" for s, k in ILLEGAL])
def test_illegal(status, kind):
    with pytest.raises(IllegalTransition, match=f"illegal transition '{kind.value}' from '{status.value}'"):
        next_status("x", status, kind)


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
def test_order_apply_follows_table(status, kind):
    qty = Decimal(1) if kind is EventKind.FILL else Decimal(10)
    order = Order("o", "a", "AAPL.US", Side.BUY, qty, OrdType.LIMIT, Decimal(10), "day", status=status,
                  previous_status=OrderStatus.NEW)
    if (status, kind) in TRANSITIONS:
        new = order.apply(_event(kind))
        target = TRANSITIONS[(status, kind)]
        assert new.status == (OrderStatus.NEW if target == PREVIOUS else target)
    else:
        with pytest.raises(IllegalTransition):
            order.apply(_event(kind))


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
