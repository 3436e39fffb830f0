"""Order messages <-> FIX 4.4 messages (pure: builds and reads quickfix ``Message`` objects).

Numbers travel as the exact decimal text of their ``Decimal`` (never through a float), so a
price of ``101.25`` is ``44=101.25`` on the wire and comes back as ``Decimal('101.25')``.

Which tags a message must carry is the FIX 4.4 data dictionary's business (the same
``FIX44.xml`` quickfix validates the session with; :func:`use_dictionary`), not a list in
this file: a reader asks the dictionary before calling a missing tag an error. A missing
optional tag gets a documented default:

==========================  ======================================================
TransactTime (60)           the time the report was received (``receive_ts``)
ClOrdID (11)                looked up from OrderID (37) in the orders this side knows
LastQty (32) / LastPx (31)  derived from CumQty (14) / AvgPx (6) and the order's prior
                            cum and notional (``prior``); without a prior: an error
Text (58), OrigClOrdID (41) empty
TimeInForce (59)            DAY (venue side)
==========================  ======================================================
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
           "read_business_reject", "business_reject", "order_status_request", "fix_time", "FixFormatError", "use_dictionary",
           "is_required", "is_poss_dup", "MSG_NEW_ORDER", "MSG_CANCEL", "MSG_REPLACE", "MSG_EXEC_REPORT",
           "MSG_CANCEL_REJECT", "MSG_REJECT", "MSG_BUSINESS_REJECT", "MSG_STATUS_REQUEST", "NO_EVENT_EXEC_TYPES"]

MSG_NEW_ORDER, MSG_CANCEL, MSG_REPLACE = "D", "F", "G"
MSG_EXEC_REPORT, MSG_CANCEL_REJECT, MSG_REJECT = "8", "9", "3"
MSG_BUSINESS_REJECT, MSG_STATUS_REQUEST = "j", "H"

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
REF_MSG_TYPE, BUSINESS_REJECT_REF_ID, BUSINESS_REJECT_REASON = 372, 379, 380
POSS_DUP_FLAG, POSS_RESEND = 43, 97

#: ExecTypes that acknowledge a request without changing the order's status in our table:
#: pending new/cancel/replace (A/6/E), order status (I, the answer to 35=H) and done for
#: day (3, followed by the venue's own cancel or expiry report).
NO_EVENT_EXEC_TYPES = frozenset({"A", "6", "E", "I", "3"})

_DICT = {"path": None, "dd": None}


def use_dictionary(path=None):
    """Load (once per path) and return the data dictionary the readers consult.

    ``path`` defaults to the FIX44.xml that ships with quickfix; a session configured with
    its own ``DataDictionary`` passes that file so codec and session agree.
    """
    from pyplatform.execution.fix.session import data_dictionary

    path = str(path or data_dictionary())
    if _DICT["path"] != path:
        _DICT["dd"], _DICT["path"] = fix.DataDictionary(path), path
    return _DICT["dd"]


def is_required(msg_type: str, tag: int) -> bool:
    """Whether the data dictionary makes ``tag`` required in messages of ``msg_type``."""
    dd = _DICT["dd"] or use_dictionary()
    return bool(dd.isRequiredField(msg_type, tag))


def _field_name(tag: int) -> str:
    dd = _DICT["dd"] or use_dictionary()
    name = dd.getFieldName(tag, "")
    if isinstance(name, dict):  # SWIG hands the out-parameter back as {0: name}
        name = next(iter(name.values()), "")
    elif isinstance(name, (list, tuple)):
        name = name[-1] if name else ""
    return f"{name}({tag})" if name else f"tag {tag}"


def is_poss_dup(msg: fix.Message) -> bool:
    """PossDupFlag(43)=Y or PossResend(97)=Y in the header: the sender may have sent it before."""
    h = msg.getHeader()
    return any(h.isSetField(t) and h.getField(t) == "Y" for t in (POSS_DUP_FLAG, POSS_RESEND))


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
    """The tag's text; when absent, ``default`` -- unless the dictionary requires the tag (or
    there is no default), which is a :class:`FixFormatError` naming the field."""
    if msg.isSetField(tag):
        return msg.getField(tag)
    mtype = _msg_type(msg)
    if default is None or is_required(mtype, tag):
        why = "required by the FIX 4.4 dictionary" if is_required(mtype, tag) else "needed here"
        raise FixFormatError(f"FIX message 35={mtype}: {_field_name(tag)} missing ({why})")
    return default


def _opt(msg: fix.Message, tag: int) -> str | None:
    return msg.getField(tag) if msg.isSetField(tag) else None


def _dec(msg: fix.Message, tag: int, default: str | None = None) -> Decimal:
    text = _get(msg, tag, default)
    try:
        return Decimal(text)
    except ArithmeticError:
        raise FixFormatError(f"FIX message 35={_msg_type(msg)}: {_field_name(tag)} is not a number: {text!r}") from None


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


def cancel_reject(event: OrderCancelRejected | OrderReplaceRejected, request_id: str, order_id: str,
                  with_exec_id: bool = True) -> fix.Message:
    """OrderCancelReject (35=9) answering a cancel (434=1) or a replace (434=2).

    35=9 has no ExecID; the simulator appends ``[exec ID]`` to Text so a replayed reject
    keeps its identity. ``with_exec_id=False`` sends what an outside venue sends (plain
    text, CxlRejReason 102=2).
    """
    msg = _new(MSG_CANCEL_REJECT)
    _set(msg, ORDER_ID, order_id or "NONE")
    _set(msg, CL_ORD_ID, request_id)
    _set(msg, ORIG_CL_ORD_ID, event.client_order_id)
    _set(msg, ORD_STATUS, "8" if order_id == "NONE" else "0")
    _set(msg, CXL_REJ_RESPONSE_TO, "1" if isinstance(event, OrderCancelRejected) else "2")
    if with_exec_id:
        _set(msg, TEXT, f"{event.reason} [exec {event.exec_id}]")
    else:
        _set(msg, 102, "2")
        if event.reason:
            _set(msg, TEXT, event.reason)
    return msg


def business_reject(ref_seq: int, ref_msg_type: str, ref_id: str, reason_code: str, text: str = "") -> fix.Message:
    """BusinessMessageReject (35=j) refusing message ``ref_seq`` of type ``ref_msg_type``."""
    msg = _new(MSG_BUSINESS_REJECT)
    _set(msg, REF_SEQ_NUM, ref_seq)
    _set(msg, REF_MSG_TYPE, ref_msg_type)
    if ref_id:
        _set(msg, BUSINESS_REJECT_REF_ID, ref_id)
    _set(msg, BUSINESS_REJECT_REASON, reason_code)
    if text:
        _set(msg, TEXT, text)
    return msg


def read_execution_report(msg: fix.Message, receive_ts: int = 0, *, session: str = "", prior=None,
                          client_order_id_of=None):
    """The order event an ExecutionReport describes (None for ExecTypes that change nothing,
    see :data:`NO_EVENT_EXEC_TYPES`).

    Parameters
    ----------
    msg : quickfix.Message
    receive_ts : int
        When the report arrived (ns): the event's time when TransactTime(60) is absent.
    session : str
        Stamped on fills: an execution is identified by (session, order, ExecID).
    prior : callable, optional
        ``client_order_id -> Order | None``: the order before this report, to derive
        LastQty/LastPx from CumQty/AvgPx when a fill lacks them.
    client_order_id_of : callable, optional
        ``order_id -> client_order_id | None`` when the report carries no ClOrdID(11).

    Raises
    ------
    FixFormatError
        A tag the dictionary requires is missing, a number does not parse, or the ExecType
        is one this adapter cannot apply (trade corrections and busts need a human).
    """
    exec_type = _get(msg, EXEC_TYPE)
    exec_id = _get(msg, EXEC_ID)
    cl = _opt(msg, CL_ORD_ID)
    if cl is None:
        order_id = _get(msg, ORDER_ID)
        cl = client_order_id_of(order_id) if client_order_id_of is not None else None
        if cl is None:
            raise FixFormatError(f"ExecutionReport {exec_id}: no ClOrdID(11) and OrderID(37) {order_id!r} "
                                 f"names no order this side sent")
    orig = _get(msg, ORIG_CL_ORD_ID, "")
    ts = _parse_time(msg.getField(TRANSACT_TIME)) if msg.isSetField(TRANSACT_TIME) else receive_ts
    text = _get(msg, TEXT, "")
    if exec_type in NO_EVENT_EXEC_TYPES:
        return None
    if exec_type == "0":
        return OrderAccepted(cl, ts, _get(msg, ORDER_ID), exec_id)
    if exec_type in ("F", "1", "2"):  # 1/2 are FIX 4.2 partial/fill exec types, still seen in the wild
        leaves = _dec(msg, LEAVES_QTY)
        if msg.isSetField(LAST_QTY) and msg.isSetField(LAST_PX):
            last_qty, last_px = _dec(msg, LAST_QTY), _dec(msg, LAST_PX)
        else:
            last_qty, last_px = _derive_last(msg, exec_id, cl, prior)
        return OrderFilled(cl, ts, exec_id, last_qty, last_px, leaves, session=session, poss_dup=is_poss_dup(msg))
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


def _derive_last(msg: fix.Message, exec_id: str, cl: str, prior) -> tuple[Decimal, Decimal]:
    # LastQty/LastPx are optional in FIX 4.4: what this execution added is the change in
    # CumQty, at the price that moves the order's notional to CumQty x AvgPx
    order = prior(cl) if prior is not None else None
    if order is None:
        raise FixFormatError(f"ExecutionReport {exec_id}: a trade without LastQty(32)/LastPx(31) for an order "
                             f"this side does not know ({cl!r})")
    cum, avg = _dec(msg, CUM_QTY), _dec(msg, AVG_PX)
    last_qty = cum - order.cum_qty
    if last_qty <= 0:
        raise FixFormatError(f"ExecutionReport {exec_id}: no LastQty(32) and CumQty(14) {cum} does not exceed "
                             f"the {order.cum_qty} already filled")
    return last_qty, (cum * avg - order.notional) / last_qty


def read_cancel_reject(msg: fix.Message, ts: int):
    """OrderCancelRejected / OrderReplaceRejected from an OrderCancelReject (35=9)."""
    text = _get(msg, TEXT, "")
    exec_id = ""
    if text.endswith("]") and "[exec " in text:
        text, _, tail = text.rpartition(" [exec ")
        exec_id = tail[:-1]
    orig = _get(msg, ORIG_CL_ORD_ID)
    if not exec_id:
        # a venue's reject carries no ExecID: the request's ClOrdID names this answer
        exec_id = f"CXLREJ-{_get(msg, CL_ORD_ID, '')}"
    reason = _get(msg, 102, "")  # CxlRejReason
    if reason and not text:
        text = {"0": "too late to cancel", "1": "unknown order", "2": "broker option",
                "3": "already pending cancel or replace"}.get(reason, f"CxlRejReason {reason}")
    cls = OrderCancelRejected if _get(msg, CXL_REJ_RESPONSE_TO, "1") == "1" else OrderReplaceRejected
    return cls(orig, ts, text, exec_id)


_BUSINESS_REASONS = {"0": "other", "1": "unknown ID", "2": "unknown security", "3": "unsupported message type",
                     "4": "application not available", "5": "conditionally required field missing",
                     "6": "not authorized", "7": "DeliverTo firm not available"}


def read_business_reject(msg: fix.Message) -> tuple[str, int | None, str | None, str]:
    """(RefMsgType, RefSeqNum or None, BusinessRejectRefID or None, reason text) of a 35=j."""
    ref_type = _get(msg, REF_MSG_TYPE)
    code = _get(msg, BUSINESS_REJECT_REASON)
    seq = _opt(msg, REF_SEQ_NUM)
    text = _get(msg, TEXT, "")
    reason = _BUSINESS_REASONS.get(code, f"BusinessRejectReason {code}")
    if text:
        reason = f"{reason}: {text}"
    return ref_type, int(seq) if seq is not None else None, _opt(msg, BUSINESS_REJECT_REF_ID), reason


def order_status_request(client_order_id: str, symbol: str, side: Side) -> fix.Message:
    """OrderStatusRequest (35=H): asks the venue for an ExecutionReport with ExecType I."""
    msg = _new(MSG_STATUS_REQUEST)
    _set(msg, CL_ORD_ID, client_order_id)
    _set(msg, SYMBOL, symbol)
    _set(msg, SIDE, _SIDE[side])
    return msg
