"""Orders, the order manager, positions, the journal, and the paper and FIX brokers."""

from pyplatform.execution.journal import Journal, JournalCorrupt
from pyplatform.execution.matching import FillModel, MatchingEngine
from pyplatform.execution.messages import (
    CancelOrder, OrderAccepted, OrderCanceled, OrderCancelRejected, OrderExpired, OrderFilled, OrderPendingCancel,
    OrderPendingReplace, OrderRejected, OrderReplaced, OrderReplaceRejected, OrdType, ReplaceOrder, Side,
    SubmitOrder, TimeInForce,
)
from pyplatform.execution.oms import DuplicateOrderId, OrderManager, UnknownOrder
from pyplatform.execution.order import Order, OverFill
from pyplatform.execution.paper import PaperBroker
from pyplatform.execution.positions import PositionBook
from pyplatform.execution.states import TRANSITIONS, IllegalTransition, OrderStatus

__all__ = [
    "Journal", "JournalCorrupt", "FillModel", "MatchingEngine", "CancelOrder", "OrderAccepted", "OrderCanceled",
    "OrderCancelRejected", "OrderExpired", "OrderFilled", "OrderPendingCancel", "OrderPendingReplace",
    "OrderRejected", "OrderReplaced", "OrderReplaceRejected", "OrdType", "ReplaceOrder", "Side", "SubmitOrder",
    "TimeInForce", "DuplicateOrderId", "OrderManager", "UnknownOrder", "Order", "OverFill", "PaperBroker",
    "PositionBook", "TRANSITIONS", "IllegalTransition", "OrderStatus",
]
