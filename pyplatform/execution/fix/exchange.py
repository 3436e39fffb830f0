"""Exchange simulator: a quickfix FIX 4.4 acceptor that matches orders like the paper broker.

It runs the same :class:`~pyplatform.execution.matching.MatchingEngine`; quotes come in by
``on_quote`` (from the demo's market feed or a test) and fills go out as ExecutionReports.
Reports produced while the client is disconnected are stored by quickfix and resent when
the client logs on again and asks for the gap.
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal
from pathlib import Path

import quickfix as fix

from pyplatform.clock import Clock
from pyplatform.domain import Quote
from pyplatform.execution.fix import codec
from pyplatform.execution.fix.app import SessionApp
from pyplatform.execution.fix.session import FixSessionConfig, free_port
from pyplatform.execution.matching import FillModel, MatchingEngine
from pyplatform.execution.messages import (
    OrderCanceled, OrderCancelRejected, OrderFilled, OrderReplaced, OrderReplaceRejected, Side,
)

__all__ = ["FixExchange"]

log = logging.getLogger(__name__)


class _App(SessionApp):
    """The venue's end: the shared callbacks are all it needs."""


class FixExchange:
    """A simulated venue behind a FIX acceptor.

    Parameters
    ----------
    directory : Path
        Settings, FileStore and logs of the venue's session.
    port : int
        Port to listen on (0 picks a free loopback port; see ``port`` after construction).
    fill_model : FillModel, optional
    clock : Clock
        Keyword, required: stamps commands as they arrive (``LiveClock()`` for a venue on
        real sockets, as the CLI and the demo pass).
    reset_on_logon : bool
        Start sequence numbers again at 1 on every logon (a venue that resets daily or on
        reconnect; its logon answer then carries MsgSeqNum 1).

    Attributes
    ----------
    refuse_cancels : str or None
        When set, every OrderCancelRequest is answered with an OrderCancelReject (35=9,
        CxlRejReason 2) carrying this text -- a venue that refuses to cancel.
    refuse_orders : str or None
        When set, every NewOrderSingle is answered with a BusinessMessageReject (35=j,
        reason 4 "application not available") carrying this text.
    Messages it does not handle (e.g. OrderStatusRequest 35=H) get quickfix's own 35=j
    "unsupported message type", as QuickFIX's example executor answers them.
    """

    def __init__(self, directory: str | Path, port: int = 0, fill_model: FillModel | None = None, *,
                 clock: Clock, host: str = "127.0.0.1", sender_comp_id: str = "SIMEX",
                 target_comp_id: str = "PYPLATFORM", reset_on_logon: bool = False) -> None:
        self.port = port or free_port(host)
        self.config = FixSessionConfig(Path(directory), "acceptor", self.port, host, sender_comp_id, target_comp_id,
                                       reset_on_logon=reset_on_logon)
        self.refuse_cancels: str | None = None
        self.refuse_orders: str | None = None
        self.engine = MatchingEngine(fill_model, venue="SIMEX")
        self.clock = clock
        self.session_id = None
        self.logged_on = threading.Event()
        self.errors: list[str] = []
        self._lock = threading.RLock()
        self._notional: dict[str, Decimal] = {}
        self._counted: set[str] = set()
        self._order_ids: dict[str, str] = {}
        self._app = _App(self)
        self._acceptor = None

    def start(self) -> "FixExchange":
        settings = fix.SessionSettings(str(self.config.write()))
        # the threaded acceptor (a thread per connection): SocketAcceptor.stop() races its own
        # socket map when a client disconnects at the same moment (segfault in SocketServer::close)
        self._acceptor = fix.ThreadedSocketAcceptor(self._app, fix.FileStoreFactory(settings), settings,
                                            fix.FileLogFactory(settings))
        self._acceptor.start()
        return self

    def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.stop()
            self._acceptor = None
        self.logged_on.clear()

    def send_message(self, msg: fix.Message) -> None:
        """Send a prepared message to the client (tests: late fills, crafted reports)."""
        self._send(msg)

    def drop_connection(self) -> None:
        """Cut the TCP connection without a logout (the client reconnects by itself)."""
        s = fix.Session.lookupSession(self.session_id)
        if s is not None:
            s.disconnect()

    # ------------------------------------------------------------------ market data
    def on_quote(self, quote: Quote) -> int:
        """Match resting orders against ``quote``; returns how many reports it sent."""
        with self._lock:
            events = self.engine.on_quote(quote)
            for ev in events:
                self._report(ev)
        return len(events)

    def order_state(self) -> dict[str, tuple[str, Decimal]]:
        """client order id -> (status, filled quantity), for checks against the client's view."""
        with self._lock:
            return {cl: (o.status, o.cum_qty) for cl, o in self.engine.orders.items()}

    # ------------------------------------------------------------------ orders
    def _on_app(self, message) -> None:
        mtype = message.getHeader().getField(35)
        now = self.clock.now_ns()
        try:
            with self._lock:
                if mtype == codec.MSG_NEW_ORDER and self.refuse_orders is not None:
                    self._send(codec.business_reject(int(message.getHeader().getField(34)), mtype,
                                                     message.getField(codec.CL_ORD_ID), "4", self.refuse_orders))
                elif mtype == codec.MSG_CANCEL and self.refuse_cancels is not None:
                    cmd, request_id = codec.read_cancel(message)
                    self._send(codec.cancel_reject(OrderCancelRejected(cmd.client_order_id, now, self.refuse_cancels),
                                                   request_id, self._order_ids.get(cmd.client_order_id, "NONE"),
                                                   with_exec_id=False))
                elif mtype == codec.MSG_NEW_ORDER:
                    cmd = codec.read_new_order(message)
                    known = self.engine.order_reports(cmd.client_order_id)
                    if known is not None:  # a client resending after a restart: replay, never re-enter
                        for ev in known:
                            self._report(ev, cmd=cmd)
                        return
                    for ev in self.engine.send(cmd, now):
                        self._report(ev, cmd=cmd)
                elif mtype == codec.MSG_CANCEL:
                    cmd, request_id = codec.read_cancel(message)
                    for ev in self.engine.send(cmd, now):
                        self._report(ev, request_id)
                elif mtype == codec.MSG_REPLACE:
                    cmd = codec.read_replace(message)
                    for ev in self.engine.send(cmd, now):
                        self._report(ev, cmd.new_client_order_id)
                else:
                    # quickfix answers with BusinessMessageReject 380=3, as real venues do
                    raise fix.UnsupportedMessageType()
        except codec.FixFormatError as exc:
            self.errors.append(str(exc))

    def _report(self, ev, request_id: str | None = None, cmd=None) -> None:
        eng = self.engine
        if isinstance(ev, (OrderCancelRejected, OrderReplaceRejected)):
            order = eng.orders.get(ev.client_order_id)
            msg = codec.cancel_reject(ev, request_id or ev.client_order_id,
                                      self._order_ids.get(ev.client_order_id, "NONE") if order else "NONE")
            self._send(msg)
            return
        cl = ev.new_client_order_id if isinstance(ev, OrderReplaced) else ev.client_order_id
        order = eng.orders.get(cl) or eng.orders.get(ev.client_order_id)
        if order is None:  # rejected before it became an order
            self._send(codec.execution_report(ev, symbol=cmd.symbol if cmd else "UNKNOWN",
                                              side=cmd.side if cmd else Side.BUY, order_id="NONE",
                                              cum_qty=Decimal(0), leaves_qty=Decimal(0), avg_px=Decimal(0)))
            return
        chain = order.cmd.client_order_id  # notional is kept per order chain (across replaces)
        if isinstance(ev, OrderFilled):
            if ev.exec_id not in self._counted:  # a replayed report must not count twice
                self._counted.add(ev.exec_id)
                self._notional[chain] = self._notional.get(chain, Decimal(0)) + ev.last_qty * ev.last_px
            cum = order.quantity - ev.leaves_qty
            leaves = ev.leaves_qty
        elif isinstance(ev, OrderCanceled) or order.status in ("expired", "rejected"):
            cum, leaves = order.cum_qty, Decimal(0)
        else:
            cum = order.cum_qty if not hasattr(ev, "broker_order_id") else Decimal(0)
            leaves = order.quantity - cum
        if hasattr(ev, "broker_order_id") and ev.broker_order_id:
            self._order_ids[cl] = ev.broker_order_id
        oid = self._order_ids.get(cl) or self._order_ids.get(chain, "NONE")
        self._order_ids.setdefault(cl, oid)
        avg = self._notional.get(chain, Decimal(0)) / cum if cum else Decimal(0)
        msg = codec.execution_report(ev, symbol=order.cmd.symbol, side=order.cmd.side, order_id=oid, cum_qty=cum,
                                     leaves_qty=leaves, avg_px=avg,
                                     request_id=request_id if isinstance(ev, OrderCanceled) else None)
        self._send(msg)

    def _send(self, msg: fix.Message) -> None:
        if self.session_id is None:
            self.errors.append("no FIX session to report on")
            return
        fix.Session.sendToTarget(msg, self.session_id)
