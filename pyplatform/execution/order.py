"""An order's state, advanced by events through the transition table (pure)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from pyplatform.execution.messages import (
    OrderAccepted, OrderCanceled, OrderCancelRejected, OrderExpired, OrderFilled, OrderPendingCancel,
    OrderPendingReplace, OrderRejected, OrderReplaced, OrderReplaceRejected, OrdType, Side, SubmitOrder,
    TimeInForce,
)
from pyplatform.execution.states import TERMINAL, EventKind, OrderStatus, next_status

__all__ = ["Order", "event_kind", "OverFill"]

_KIND = {
    OrderAccepted: EventKind.ACCEPTED,
    OrderRejected: EventKind.REJECTED,
    OrderPendingCancel: EventKind.CANCEL_REQUESTED,
    OrderCanceled: EventKind.CANCELLED,
    OrderCancelRejected: EventKind.CANCEL_REJECTED,
    OrderPendingReplace: EventKind.REPLACE_REQUESTED,
    OrderReplaced: EventKind.REPLACED,
    OrderReplaceRejected: EventKind.REPLACE_REJECTED,
    OrderExpired: EventKind.EXPIRED,
}


class OverFill(RuntimeError):
    """An execution that would fill more than the order's quantity."""


def event_kind(event) -> EventKind:
    """The transition-table kind of an order event (a fill splits on ``leaves_qty``)."""
    if isinstance(event, OrderFilled):
        return EventKind.FILL if event.leaves_qty == 0 else EventKind.PARTIAL_FILL
    try:
        return _KIND[type(event)]
    except KeyError:
        raise TypeError(f"{type(event).__name__} is not an order event the table knows") from None


@dataclass(frozen=True, slots=True)
class Order:
    """One order as the order manager knows it.

    ``cum_qty``/``avg_px`` accumulate executions; ``previous_status`` remembers the status
    before a pending cancel/replace so a rejected request restores it.
    """

    client_order_id: str
    account: str
    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrdType
    price: Decimal | None
    tif: TimeInForce
    status: OrderStatus = OrderStatus.PENDING_NEW
    cum_qty: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)  # sum of last_qty * last_px
    previous_status: OrderStatus | None = None
    created_ts: int = 0
    updated_ts: int = 0
    reason: str = ""
    parent_id: str | None = None
    broker_order_id: str = ""
    orig_client_order_id: str | None = None  # the order this one replaced
    late_fill_qty: Decimal = Decimal(0)  # filled after the order was cancelled or expired
    reject_reason: str = ""  # the venue's words on the last refused request (cancel/replace reject)

    @classmethod
    def from_command(cls, cmd: SubmitOrder) -> "Order":
        return cls(cmd.client_order_id, cmd.account, cmd.symbol, cmd.side, cmd.quantity, cmd.order_type,
                   cmd.price, cmd.tif, created_ts=cmd.ts, updated_ts=cmd.ts, reason=cmd.reason,
                   parent_id=cmd.parent_id)

    @property
    def leaves_qty(self) -> Decimal:
        if self.status in (OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED,
                           OrderStatus.FILLED, OrderStatus.REPLACED):
            return Decimal(0)
        return self.quantity - self.cum_qty

    @property
    def avg_px(self) -> Decimal | None:
        return None if self.cum_qty == 0 else self.notional / self.cum_qty

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL

    def apply(self, event) -> "Order":
        """The order after ``event``.

        Raises
        ------
        IllegalTransition
            If the event is not allowed in the current status.
        OverFill
            If a fill exceeds the order's quantity or disagrees with its leaves quantity.
        """
        kind = event_kind(event)
        prev = self.previous_status
        status = next_status(self.client_order_id, self.status, kind, previous=prev)
        changes: dict = {"status": status, "updated_ts": event.ts}
        if kind in (EventKind.CANCEL_REQUESTED, EventKind.REPLACE_REQUESTED):
            changes["previous_status"] = self.status
        elif kind in (EventKind.CANCEL_REJECTED, EventKind.REPLACE_REJECTED):
            changes["previous_status"] = None
            changes["reject_reason"] = getattr(event, "reason", "")
        elif kind is EventKind.REJECTED:
            changes["reject_reason"] = getattr(event, "reason", "")
        elif kind is EventKind.ACCEPTED and self.status is OrderStatus.PENDING_CANCEL:
            # the ack of an order cancelled before it was acknowledged: a cancel reject now
            # returns it to NEW, not to PENDING_NEW
            changes["previous_status"] = OrderStatus.NEW
        if isinstance(event, OrderAccepted) and event.broker_order_id:
            changes["broker_order_id"] = event.broker_order_id
        if isinstance(event, OrderFilled):
            cum = self.cum_qty + event.last_qty
            if event.last_qty <= 0 or cum > self.quantity:
                raise OverFill(f"order {self.client_order_id!r}: fill of {event.last_qty} on cum {self.cum_qty} "
                               f"exceeds quantity {self.quantity} (exec {event.exec_id})")
            changes["cum_qty"] = cum
            changes["notional"] = self.notional + event.last_qty * event.last_px
            if self.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
                changes["late_fill_qty"] = self.late_fill_qty + event.last_qty
            if self.previous_status is not None and status in (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE):
                # a fill while a request is pending: a later reject restores "partially filled"
                changes["previous_status"] = OrderStatus.PARTIALLY_FILLED
        return replace(self, **changes)

    def replacement(self, event: OrderReplaced) -> "Order":
        """The order that continues this one under ``event.new_client_order_id``."""
        if event.quantity < self.cum_qty:
            raise OverFill(f"order {self.client_order_id!r}: replacement quantity {event.quantity} "
                           f"is below the filled {self.cum_qty}")
        status = OrderStatus.NEW if self.cum_qty == 0 else OrderStatus.PARTIALLY_FILLED
        if self.cum_qty == event.quantity:
            status = OrderStatus.FILLED
        return replace(self, client_order_id=event.new_client_order_id, quantity=event.quantity,
                       price=event.price if event.price is not None else self.price, status=status,
                       previous_status=None, updated_ts=event.ts, orig_client_order_id=self.client_order_id)
