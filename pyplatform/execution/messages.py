"""Order commands (imperative) and order events (past tense).

Every message is a frozen dataclass with an integer-nanosecond ``ts``. Quantities and prices
are :class:`decimal.Decimal` so money arithmetic is exact; a price carries its asset class's
precision (``pyplatform.domain.round_price``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum, IntEnum

__all__ = [
    "Side", "OrdType", "TimeInForce",
    "SubmitOrder", "CancelOrder", "ReplaceOrder", "Command",
    "OrderSubmitted", "OrderAccepted", "OrderRejected", "OrderFilled", "OrderPendingCancel",
    "OrderCanceled", "OrderCancelRejected", "OrderPendingReplace", "OrderReplaced",
    "OrderReplaceRejected", "OrderExpired", "OrderEvent", "VenueNotice", "EVENT_TYPES", "COMMAND_TYPES",
    "stop_order",
]


class Side(IntEnum):
    """Order side; the value is the sign it gives a position."""

    BUY = 1
    SELL = -1


class OrdType(str, Enum):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(str, Enum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"


# ----------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """Place a new order.

    Parameters
    ----------
    client_order_id : str
        Unique per order; submitting the same id twice is idempotent (same content) or an
        error (different content).
    account, symbol : str
        Who trades what (``AAPL.US``).
    side : Side
    quantity : Decimal
        Positive, in units (shares, base-currency units, coins).
    order_type : OrdType
    price : Decimal or None
        Limit price; ``None`` for market orders.
    tif : TimeInForce
    ts : int
        Nanoseconds UTC when the command was issued.
    reason : str
        Why (the signal or stop behind it), journaled with the order.
    parent_id : str or None
        The parent order when this is a VWAP child slice.
    """

    client_order_id: str
    account: str
    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrdType = OrdType.LIMIT
    price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    ts: int = 0
    reason: str = ""
    parent_id: str | None = None

    def __post_init__(self) -> None:
        if not self.client_order_id:
            raise ValueError("SubmitOrder.client_order_id must not be empty")
        if not isinstance(self.quantity, Decimal):
            object.__setattr__(self, "quantity", Decimal(str(self.quantity)))
        if self.price is not None and not isinstance(self.price, Decimal):
            object.__setattr__(self, "price", Decimal(str(self.price)))
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "order_type", OrdType(self.order_type))
        object.__setattr__(self, "tif", TimeInForce(self.tif))
        if not self.quantity.is_finite() or self.quantity <= 0:
            raise ValueError(f"SubmitOrder {self.client_order_id}: quantity must be > 0, got {self.quantity}")
        if self.order_type is OrdType.LIMIT:
            if self.price is None or not self.price.is_finite() or self.price <= 0:
                raise ValueError(f"SubmitOrder {self.client_order_id}: limit order needs a price > 0, got {self.price}")

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity * int(self.side)


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel the rest of an order."""

    client_order_id: str
    ts: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ReplaceOrder:
    """Change an order's quantity and/or price; the replacement gets ``new_client_order_id``."""

    client_order_id: str
    new_client_order_id: str
    quantity: Decimal
    price: Decimal | None = None
    ts: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.quantity, Decimal):
            object.__setattr__(self, "quantity", Decimal(str(self.quantity)))
        if self.price is not None and not isinstance(self.price, Decimal):
            object.__setattr__(self, "price", Decimal(str(self.price)))
        if self.quantity <= 0:
            raise ValueError(f"ReplaceOrder {self.client_order_id}: quantity must be > 0, got {self.quantity}")
        if self.new_client_order_id == self.client_order_id:
            raise ValueError(f"ReplaceOrder {self.client_order_id}: new_client_order_id must differ")


Command = SubmitOrder | CancelOrder | ReplaceOrder

# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class OrderSubmitted:
    """The order manager took the order (journaled) and is sending it to the broker."""

    client_order_id: str
    ts: int


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    client_order_id: str
    ts: int
    broker_order_id: str = ""
    exec_id: str = ""


@dataclass(frozen=True, slots=True)
class OrderRejected:
    client_order_id: str
    ts: int
    reason: str = ""
    exec_id: str = ""


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """One execution. ``leaves_qty == 0`` means the order is complete.

    An execution is identified by ``(session, order, exec_id)``: venues reuse ExecIDs across
    days and restarts, so an id alone identifies nothing. The order manager drops a report
    whose identity *and* terms it has already applied (a resend), and applies one whose
    identity repeats with new terms unless it is flagged ``poss_dup`` (see ``OrderManager``).
    """

    client_order_id: str
    ts: int
    exec_id: str
    last_qty: Decimal
    last_px: Decimal
    leaves_qty: Decimal
    liquidity: str = ""  # "maker" | "taker" (paper broker), informational
    session: str = ""  # the FIX session (or venue) that reported it; "" for the paper broker
    poss_dup: bool = False  # PossDupFlag(43)/PossResend(97): the sender says it may have sent this before


@dataclass(frozen=True, slots=True)
class OrderPendingCancel:
    client_order_id: str
    ts: int


@dataclass(frozen=True, slots=True)
class OrderCanceled:
    client_order_id: str
    ts: int
    reason: str = ""
    exec_id: str = ""


@dataclass(frozen=True, slots=True)
class OrderCancelRejected:
    client_order_id: str
    ts: int
    reason: str = ""
    exec_id: str = ""


@dataclass(frozen=True, slots=True)
class OrderPendingReplace:
    """A replace was requested; the terms are kept so it can be resent after a restart."""

    client_order_id: str
    ts: int
    new_client_order_id: str = ""
    quantity: Decimal | None = None
    price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderReplaced:
    """The order ``client_order_id`` now lives on as ``new_client_order_id`` with new terms."""

    client_order_id: str
    ts: int
    new_client_order_id: str
    quantity: Decimal
    price: Decimal | None = None
    exec_id: str = ""


@dataclass(frozen=True, slots=True)
class OrderReplaceRejected:
    client_order_id: str
    ts: int
    reason: str = ""
    exec_id: str = ""


@dataclass(frozen=True, slots=True)
class OrderExpired:
    client_order_id: str
    ts: int
    reason: str = ""
    exec_id: str = ""


@dataclass(frozen=True, slots=True)
class VenueNotice:
    """Something a venue or its session said that is no single order's event.

    An unparseable report, a logon refused, a sequence-number reset, a business reject that
    names no known order: journaled and kept in ``OrderManager.notices`` so it is seen in
    ``pyplatform trade status`` and never lives only in a log line.
    """

    ts: int
    session: str
    kind: str  # "unparseable" | "logon_refused" | "logout" | "sequence_reset" | "reject" | "reconcile"
    text: str


OrderEvent = (
    OrderSubmitted | OrderAccepted | OrderRejected | OrderFilled | OrderPendingCancel | OrderCanceled
    | OrderCancelRejected | OrderPendingReplace | OrderReplaced | OrderReplaceRejected | OrderExpired
)

EVENT_TYPES: dict[str, type] = {c.__name__: c for c in (
    OrderSubmitted, OrderAccepted, OrderRejected, OrderFilled, OrderPendingCancel, OrderCanceled,
    OrderCancelRejected, OrderPendingReplace, OrderReplaced, OrderReplaceRejected, OrderExpired, VenueNotice,
)}
COMMAND_TYPES: dict[str, type] = {c.__name__: c for c in (SubmitOrder, CancelOrder, ReplaceOrder)}


def stop_order(stop, client_order_id: str) -> SubmitOrder:
    """The market order that closes what a fired stop says.

    Parameters
    ----------
    stop : pyplatform.risk.stops.StopTriggered
        ``account``, ``symbol``, signed ``quantity`` to trade (negative sells a long),
        ``kind``, ``reason`` and ``ts``.
    client_order_id : str

    Returns
    -------
    SubmitOrder
        A MARKET order of ``abs(stop.quantity)``, its reason naming the stop.
    """
    # built here, not in pyplatform.risk: risk stays free of execution imports
    return SubmitOrder(client_order_id, stop.account, stop.symbol,
                       Side.BUY if stop.quantity > 0 else Side.SELL, abs(stop.quantity),
                       OrdType.MARKET, None, ts=stop.ts, reason=f"{stop.kind} stop: {stop.reason}")
