"""Order messages <-> FIX 4.4 messages (pure: builds and reads quickfix ``Message`` objects).

Numbers travel as the exact decimal text of their ``Decimal`` (never through a float), so a
price of ``101.25`` is ``44=101.25`` on the wire and comes back as ``Decimal('101.25')``.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal

import quickfix as fix

from pyplatform.execution.messages import (
    CancelOrder, OrderAccepted, OrderCanceled, OrderCancelRejected, OrderExpired, OrderFilled, OrderRejected,
    OrderReplaced, OrderReplaceRejected, OrdType, ReplaceOrder, Side, SubmitOrder, TimeInForce,
)

__all__ = ["new_order_single", "cancel_request", "replace_request", "execution_report", "cancel_reject",
           "read_execution_report", "read_cancel_reject", "read_new_order", "read_cancel", "read_replace",
           "fix_time", "FixFormatError", "MSG_NEW_ORDER", "MSG_CANCEL", "MSG_REPLACE", "MSG_EXEC_REPORT",
           "MSG_CANCEL_REJECT", "MSG_REJECT"]

MSG_NEW_ORDER, MSG_CANCEL, MSG_REPLACE = "D", "F", "G"
MSG_EXEC_REPORT, MSG_CANCEL_REJECT, MSG_REJECT = "8", "9", "3"

_SIDE = {Side.BUY: "1", Side.SELL: "2"}
_SIDE_BACK = {v: k for k, v in _SIDE.items()}
_ORD_TYPE = {OrdType.MARKET: "1", OrdType.LIMIT: "2"}
_ORD_TYPE_BACK = {v: k for k, v in _ORD_TYPE.items()}
_TIF = {TimeInForce.DAY: "0", TimeInForce.GTC: "1", TimeInForce.IOC: "3"}
_TIF_BACK = {v: k for k, v in _TIF.items()}

# tags
CL_ORD_ID, ORIG_CL_ORD_ID, ORDER_ID, EXEC_ID, ACCOUNT, SYMBOL, SIDE = 11, 41, 37, 17, 1, 55, 54
ORDER_QTY, ORD_TYPE, PRICE, TIF, TRANSACT_TIME, TEXT = 38, 40, 44, 59, 60, 58
EXEC_TYPE, ORD_STATUS, LEAVES_QTY, CUM_QTY, AVG_PX, LAST_QTY, LAST_PX = 150, 39, 151, 14, 6, 32, 31
CXL_REJ_RESPONSE_TO, REF_SEQ_NUM, SESSION_REJECT_REASON, REF_TAG_ID = 434, 45, 373, 371


class FixFormatError(ValueError):
    """A FIX message this adapter cannot turn into an order message (names the tag)."""


def fix_time(ts_ns: int) -> str:
    """UTCTimestamp text (millisecond precision) for integer nanoseconds."""
    t = _dt.datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=_dt.timezone.utc)
    return t.strftime("%Y%m%d-%H:%M:%S") + f".{(ts_ns // 1_000_000) % 1000:03d}"


def _parse_time(text: str) -> int:
    base, _, frac = text.partition(".")
    t = _dt.datetime.strptime(base, "%Y%m%d-%H:%M:%S").replace(tzinfo=_dt.timezone.utc)
    ns = int(t.timestamp()) * 1_000_000_000
    if frac:
        ns += int(frac.ljust(9, "0")[:9])
    return ns


def _set(msg: fix.Message, tag: int, value) -> None:
    msg.setField(fix.StringField(tag, str(value)))


def _get(msg: fix.Message, tag: int, default: str | None = None) -> str:
    if msg.isSetField(tag):
        return msg.getField(tag)
    if default is None:
        raise FixFormatError(f"FIX message 35={_msg_type(msg)}: required tag {tag} missing")
    return default


def _dec(msg: fix.Message, tag: int, default: str | None = None) -> Decimal:
    text = _get(msg, tag, default)
    try:
        return Decimal(text)
    except ArithmeticError:
        raise FixFormatError(f"FIX message 35={_msg_type(msg)}: tag {tag} is not a number: {text!r}") from None


def _msg_type(msg: fix.Message) -> str:
    h = msg.getHeader()
    return h.getField(35) if h.isSetField(35) else "?"


def _new(msg_type: str) -> fix.Message:
    msg = fix.Message()
    msg.getHeader().setField(fix.BeginString("FIX.4.4"))
    msg.getHeader().setField(fix.MsgType(msg_type))
    return msg


# ----------------------------------------------------------------------------- initiator -> venue


def new_order_single(cmd: SubmitOrder) -> fix.Message:
    """NewOrderSingle (35=D) for a :class:`SubmitOrder`."""
    msg = _new(MSG_NEW_ORDER)
    _set(msg, CL_ORD_ID, cmd.client_order_id)
    _set(msg, ACCOUNT, cmd.account)
    _set(msg, SYMBOL, cmd.symbol)
    _set(msg, SIDE, _SIDE[cmd.side])
    _set(msg, TRANSACT_TIME, fix_time(cmd.ts))
    _set(msg, ORDER_QTY, cmd.quantity)
    _set(msg, ORD_TYPE, _ORD_TYPE[cmd.order_type])
    if cmd.price is not None:
        _set(msg, PRICE, cmd.price)
    _set(msg, TIF, _TIF[cmd.tif])
    return msg


def cancel_request(cmd: CancelOrder, request_id: str, symbol: str, side: Side, quantity: Decimal) -> fix.Message:
    """OrderCancelRequest (35=F): ``request_id`` is the request's own ClOrdID."""
    msg = _new(MSG_CANCEL)
    _set(msg, ORIG_CL_ORD_ID, cmd.client_order_id)
    _set(msg, CL_ORD_ID, request_id)
    _set(msg, SYMBOL, symbol)
    _set(msg, SIDE, _SIDE[side])
    _set(msg, ORDER_QTY, quantity)
    _set(msg, TRANSACT_TIME, fix_time(cmd.ts))
    return msg


def replace_request(cmd: ReplaceOrder, symbol: str, side: Side, order_type: OrdType) -> fix.Message:
    """OrderCancelReplaceRequest (35=G): the new ClOrdID is the replacement order's id."""
    msg = _new(MSG_REPLACE)
    _set(msg, ORIG_CL_ORD_ID, cmd.client_order_id)
    _set(msg, CL_ORD_ID, cmd.new_client_order_id)
    _set(msg, SYMBOL, symbol)
    _set(msg, SIDE, _SIDE[side])
    _set(msg, TRANSACT_TIME, fix_time(cmd.ts))
    _set(msg, ORDER_QTY, cmd.quantity)
    _set(msg, ORD_TYPE, _ORD_TYPE[order_type])
    if cmd.price is not None:
        _set(msg, PRICE, cmd.price)
    return msg


def read_new_order(msg: fix.Message) -> SubmitOrder:
    """The :class:`SubmitOrder` a NewOrderSingle carries (venue side)."""
    try:
        return SubmitOrder(
            _get(msg, CL_ORD_ID), _get(msg, ACCOUNT, ""), _get(msg, SYMBOL), _SIDE_BACK[_get(msg, SIDE)],
            _dec(msg, ORDER_QTY), _ORD_TYPE_BACK[_get(msg, ORD_TYPE)],
            _dec(msg, PRICE) if msg.isSetField(PRICE) else None, _TIF_BACK[_get(msg, TIF, "0")],
            ts=_parse_time(_get(msg, TRANSACT_TIME)))
    except KeyError as exc:
        raise FixFormatError(f"NewOrderSingle: unsupported enum value {exc}") from None


def read_cancel(msg: fix.Message) -> tuple[CancelOrder, str]:
    """(CancelOrder for the original id, the request's own ClOrdID)."""
    return CancelOrder(_get(msg, ORIG_CL_ORD_ID), _parse_time(_get(msg, TRANSACT_TIME))), _get(msg, CL_ORD_ID)


def read_replace(msg: fix.Message) -> ReplaceOrder:
    return ReplaceOrder(_get(msg, ORIG_CL_ORD_ID), _get(msg, CL_ORD_ID), _dec(msg, ORDER_QTY),
                        _dec(msg, PRICE) if msg.isSetField(PRICE) else None,
                        _parse_time(_get(msg, TRANSACT_TIME)))


# ----------------------------------------------------------------------------- venue -> initiator

_EXEC_TYPE = {OrderAccepted: "0", OrderFilled: "F", OrderCanceled: "4", OrderReplaced: "5",
              OrderRejected: "8", OrderExpired: "C"}


def execution_report(event, *, symbol: str, side: Side, order_id: str, cum_qty: Decimal, leaves_qty: Decimal,
                     avg_px: Decimal, request_id: str | None = None) -> fix.Message:
    """ExecutionReport (35=8) for a venue event.

    ``request_id`` is the ClOrdID of the cancel request a cancel answers (FIX puts the
    request's id in 11 and the order's in 41).
    """
    try:
        exec_type = _EXEC_TYPE[type(event)]
    except KeyError:
        raise TypeError(f"no ExecutionReport for {type(event).__name__}") from None
    msg = _new(MSG_EXEC_REPORT)
    if isinstance(event, OrderReplaced):
        _set(msg, CL_ORD_ID, event.new_client_order_id)
        _set(msg, ORIG_CL_ORD_ID, event.client_order_id)
    elif isinstance(event, OrderCanceled) and request_id:
        _set(msg, CL_ORD_ID, request_id)
        _set(msg, ORIG_CL_ORD_ID, event.client_order_id)
    else:
        _set(msg, CL_ORD_ID, event.client_order_id)
    _set(msg, ORDER_ID, order_id or "NONE")
    _set(msg, EXEC_ID, event.exec_id)
    _set(msg, EXEC_TYPE, exec_type)
    if isinstance(event, OrderFilled):
        leaves_qty = event.leaves_qty  # the execution itself is authoritative
        status = "2" if event.leaves_qty == 0 else "1"
        _set(msg, LAST_QTY, event.last_qty)
        _set(msg, LAST_PX, event.last_px)
    elif isinstance(event, OrderCanceled):
        status = "4"
    elif isinstance(event, OrderRejected):
        status = "8"
    elif isinstance(event, OrderExpired):
        status = "C"
    else:  # accepted, replaced
        status = "0" if cum_qty == 0 else "1"
    _set(msg, ORD_STATUS, status)
    _set(msg, SYMBOL, symbol)
    _set(msg, SIDE, _SIDE[side])
    if isinstance(event, OrderReplaced):
        _set(msg, ORDER_QTY, event.quantity)
        if event.price is not None:
            _set(msg, PRICE, event.price)
    _set(msg, LEAVES_QTY, leaves_qty)
    _set(msg, CUM_QTY, cum_qty)
    _set(msg, AVG_PX, avg_px)
    _set(msg, TRANSACT_TIME, fix_time(event.ts))
    reason = getattr(event, "reason", "")
    if reason:
        _set(msg, TEXT, reason)
    return msg


def cancel_reject(event: OrderCancelRejected | OrderReplaceRejected, request_id: str, order_id: str) -> fix.Message:
    """OrderCancelReject (35=9) answering a cancel (434=1) or a replace (434=2)."""
    msg = _new(MSG_CANCEL_REJECT)
    _set(msg, ORDER_ID, order_id or "NONE")
    _set(msg, CL_ORD_ID, request_id)
    _set(msg, ORIG_CL_ORD_ID, event.client_order_id)
    _set(msg, ORD_STATUS, "8" if order_id == "NONE" else "0")
    _set(msg, CXL_REJ_RESPONSE_TO, "1" if isinstance(event, OrderCancelRejected) else "2")
    _set(msg, TEXT, f"{event.reason} [exec {event.exec_id}]")
    return msg


def read_execution_report(msg: fix.Message):
    """The order event an ExecutionReport describes."""
    exec_type = _get(msg, EXEC_TYPE)
    exec_id = _get(msg, EXEC_ID)
    cl = _get(msg, CL_ORD_ID)
    orig = _get(msg, ORIG_CL_ORD_ID, "")
    ts = _parse_time(_get(msg, TRANSACT_TIME))
    text = _get(msg, TEXT, "")
    if exec_type == "0":
        return OrderAccepted(cl, ts, _get(msg, ORDER_ID), exec_id)
    if exec_type in ("F", "1", "2"):  # 1/2 are FIX 4.2 partial/fill exec types, still seen in the wild
        return OrderFilled(cl, ts, exec_id, _dec(msg, LAST_QTY), _dec(msg, LAST_PX), _dec(msg, LEAVES_QTY))
    if exec_type == "4":
        return OrderCanceled(orig or cl, ts, text, exec_id)
    if exec_type == "5":
        return OrderReplaced(orig, ts, cl, _dec(msg, ORDER_QTY),
                             _dec(msg, PRICE) if msg.isSetField(PRICE) else None, exec_id)
    if exec_type == "8":
        return OrderRejected(cl, ts, text, exec_id)
    if exec_type == "C":
        return OrderExpired(cl, ts, text, exec_id)
    raise FixFormatError(f"ExecutionReport {exec_id}: unsupported ExecType (150) {exec_type!r}")


def read_cancel_reject(msg: fix.Message, ts: int):
    """OrderCancelRejected / OrderReplaceRejected from an OrderCancelReject (35=9)."""
    text = _get(msg, TEXT, "")
    exec_id = ""
    if text.endswith("]") and "[exec " in text:
        text, _, tail = text.rpartition(" [exec ")
        exec_id = tail[:-1]
    orig = _get(msg, ORIG_CL_ORD_ID)
    cls = OrderCancelRejected if _get(msg, CXL_REJ_RESPONSE_TO, "1") == "1" else OrderReplaceRejected
    return cls(orig, ts, text, exec_id)
