"""The FIX broker: a quickfix FIX 4.4 initiator speaking for the order manager.

Commands go out as NewOrderSingle / OrderCancelRequest / OrderCancelReplaceRequest;
ExecutionReports, OrderCancelRejects, BusinessMessageRejects (35=j) and session-level
Rejects (35=3) come back as order events. Sequence numbers and sent messages live in a
quickfix FileStore, so a restart continues the session and the venue resends whatever the
broker missed (the order manager drops what it already applied).

Events are handed to ``on_event`` *on quickfix's thread, before the message counts as
received*: a handler that journals (``OrderManager.apply``) makes an execution durable
before quickfix advances the incoming sequence number, so a crash can only make the venue
resend it, never lose it.

What the session itself says -- a logon refused, the venue's logout text, a sequence-number
mismatch, a report this adapter cannot read -- goes to ``errors``, to :meth:`FixBroker.status`
and, as a :class:`~pyplatform.execution.messages.VenueNotice`, to ``on_event`` (so the order
journal keeps it): nothing lives only in a log line.

Orders are never resent by quickfix itself: when the venue asks for a gap that holds a
NewOrderSingle/Cancel/Replace, the adapter answers with a gap fill (``DoNotSend``) -- a
stale order replayed into a market minutes later is worse than a missing one, and the
order manager's reconciliation decides what to send again, under the same ids.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Callable

import quickfix as fix

from pyplatform.clock import Clock
from pyplatform.execution.fix import SessionDown, codec
from pyplatform.execution.fix.app import SessionApp
from pyplatform.execution.fix.session import FixSessionConfig
from pyplatform.execution.messages import (
    CancelOrder, OrderAccepted, OrderCancelRejected, OrderFilled, OrderRejected, OrderReplaceRejected, ReplaceOrder,
    SubmitOrder, VenueNotice,
)

__all__ = ["FixBroker", "SessionDown", "SEQUENCE_RESET_POLICIES"]

log = logging.getLogger(__name__)

#: What to do when the venue's logon carries a lower MsgSeqNum than expected (it reset):
#: ``report`` -- refuse the session (quickfix logs out), say so everywhere, keep refusing;
#: ``follow`` -- say so, then start both sequence numbers again at 1 on the next logon.
SEQUENCE_RESET_POLICIES = ("report", "follow")

_TOO_LOW = re.compile(r"MsgSeqNum too low, expecting (\d+) but received (\d+)")


class _App(SessionApp):
    """The broker's end: also sees admin traffic (logon, logout, rejects) and what it sends."""

    def onLogon(self, sessionID):  # noqa: N802
        self.owner._on_logon()
        super().onLogon(sessionID)

    def onLogout(self, sessionID):  # noqa: N802
        super().onLogout(sessionID)
        self.owner._on_logout()

    def fromAdmin(self, message, sessionID):  # noqa: N802
        self.owner._on_admin_in(message)

    def toAdmin(self, message, sessionID):  # noqa: N802
        self.owner._on_admin_out(message)

    def toApp(self, message, sessionID):  # noqa: N802
        self.owner._on_sent(message)

    def fromApp(self, message, sessionID):  # noqa: N802
        self.owner._on_app(message)


class FixBroker:
    """Order routing over FIX 4.4.

    Parameters
    ----------
    directory : Path
        Session settings, FileStore and logs (reuse it to continue a session after a restart).
        Ignored when ``config`` is given.
    port : int
        The venue's port on ``host`` (ignored when ``config`` is given).
    order_lookup : callable
        ``client_order_id -> Order`` (symbol, side, quantity for cancels and replaces; the
        prior fill state when a venue omits LastQty/LastPx).
    on_event : callable, optional
        Receives each order event and :class:`VenueNotice` on quickfix's thread; without it
        events queue for ``poll``.
    clock : Clock
        Keyword, required: stamps venue notices and locally made rejects (the trading
        node passes its own; ``LiveClock()`` trading live, a ``SimClock`` in tests).
    config : FixSessionConfig, optional
        The whole session (comp ids, host, port, reset policy, store, dictionary); see
        :func:`~pyplatform.execution.fix.session.parse_venue`.
    on_sequence_reset : {"report", "follow"}
        See :data:`SEQUENCE_RESET_POLICIES`.
    logon_timeout_s : float
        After this long without a logon, :meth:`status` reports "no logon for N s".
    """

    name = "fix"

    def __init__(self, directory: str | Path | None = None, port: int | None = None,
                 order_lookup: Callable | None = None, on_event: Callable | None = None, host: str = "127.0.0.1",
                 *, clock: Clock, sender_comp_id: str = "PYPLATFORM", target_comp_id: str = "SIMEX",
                 config: FixSessionConfig | None = None, on_sequence_reset: str = "report",
                 logon_timeout_s: float = 10.0) -> None:
        if config is None:
            if directory is None or port is None:
                raise ValueError("FixBroker needs config=FixSessionConfig(...) or directory and port")
            config = FixSessionConfig(Path(directory), "initiator", port, host, sender_comp_id, target_comp_id)
        if config.role != "initiator":
            raise ValueError(f"FixBroker needs an initiator session, got role {config.role!r}")
        if on_sequence_reset not in SEQUENCE_RESET_POLICIES:
            raise ValueError(f"on_sequence_reset must be one of {SEQUENCE_RESET_POLICIES}, got {on_sequence_reset!r}")
        self.config = config
        codec.use_dictionary(config.dictionary_path)  # the codec reads what the session validates
        self.order_lookup = order_lookup
        self.on_event = on_event
        self.clock = clock
        self.on_sequence_reset = on_sequence_reset
        self.logon_timeout_s = logon_timeout_s
        self.session = config.session_name
        self.session_id = None
        self.logged_on = threading.Event()
        self.errors: list[str] = []
        self.history: list[str] = []  # session events in order, in the venue's own words
        self._events: queue.Queue = queue.Queue()
        self._sent: dict[int, tuple[str, str]] = {}  # outgoing seq num -> (msg type, client order id)
        self._by_order_id: dict[str, str] = {}  # venue OrderID -> client order id
        self._cancel_n = 0
        self._lock = threading.Lock()
        self._app = _App(self)
        self._initiator = None
        self._down_since: float | None = None  # monotonic time the session was last seen down
        self._last_problem = ""
        self.logons = 0
        self.suppressed_resends = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self, wait_s: float | None = 10.0) -> "FixBroker":
        """Connect and log on (waits up to ``wait_s`` for the logon; None: don't wait).

        Raises
        ------
        TimeoutError
            No logon within ``wait_s``; everything started is stopped first, and the message
            carries the session's last problem (a refused logon, the venue's logout text).
        """
        settings = fix.SessionSettings(str(self.config.write()))
        store = fix.FileStoreFactory(settings)
        logs = fix.FileLogFactory(settings)
        # threaded (a thread per session): the plain SocketInitiator shares one socket loop whose
        # stop() can race a disconnect, as its acceptor counterpart does
        self._initiator = fix.ThreadedSocketInitiator(self._app, store, settings, logs)
        self._down_since = time.monotonic()
        self._initiator.start()
        if wait_s is not None and not self.logged_on.wait(wait_s):
            why = self._last_problem or "no answer"
            self.stop()
            raise TimeoutError(f"FIX logon to {self.config.host}:{self.config.port} ({self.session}) timed out "
                               f"after {wait_s}s: {why}")
        return self

    def stop(self) -> None:
        """Log out and disconnect (the FileStore keeps the sequence numbers)."""
        if self._initiator is not None:
            self._initiator.stop()
            self._initiator = None
        self.logged_on.clear()

    close = stop

    def sequence_numbers(self) -> tuple[int, int]:
        """(next outgoing, next expected incoming) sequence number of the session."""
        s = fix.Session.lookupSession(self.session_id)
        return s.getExpectedSenderNum(), s.getExpectedTargetNum()

    # ------------------------------------------------------------------ state
    def down_reason(self) -> str | None:
        """None while logged on; otherwise why not, in the session's own words."""
        if self.logged_on.is_set():
            return None
        if self._initiator is None:
            return "FIX session not started"
        since = time.monotonic() - (self._down_since or time.monotonic())
        text = f"FIX session {self.session} not logged on for {since:.0f}s"
        return f"{text}: {self._last_problem}" if self._last_problem else text

    def status(self) -> dict:
        """The session as plain data (``TradingNode.status``, the CLI, the Dash Live page)."""
        down = self.down_reason()
        since = 0.0 if self._down_since is None else time.monotonic() - self._down_since
        state = "logged_on" if down is None else ("stopped" if self._initiator is None else "connecting")
        if down is not None and self._initiator is not None and since >= self.logon_timeout_s:
            state = "no_logon"
        try:
            seq = self.sequence_numbers() if self.session_id is not None else None
        except Exception:  # the session object is gone after stop()
            seq = None
        return {"session": self.session, "venue": f"{self.config.host}:{self.config.port}", "state": state,
                "logged_on": down is None, "down_reason": down, "last_problem": self._last_problem,
                "logons": self.logons, "next_seq": seq, "errors": list(self.errors[-20:]),
                "history": list(self.history[-20:]), "suppressed_resends": self.suppressed_resends,
                "reset_on_logon": self.config.reset_on_logon, "on_sequence_reset": self.on_sequence_reset}

    # ------------------------------------------------------------------ outgoing
    def send(self, cmd) -> list:
        """Send a command; its events arrive asynchronously (``on_event``/``poll``).

        Raises
        ------
        SessionDown
            While the session is not logged on (quickfix would store the message and, on
            the venue's resend request, the adapter gap-fills orders: it would be lost).
        """
        down = self.down_reason()
        if down is not None:
            raise SessionDown(down)
        if isinstance(cmd, SubmitOrder):
            msg = codec.new_order_single(cmd)
        elif isinstance(cmd, CancelOrder):
            order = self._order(cmd.client_order_id)
            with self._lock:
                self._cancel_n += 1
                req = f"{cmd.client_order_id}~C{self._cancel_n}"
            msg = codec.cancel_request(cmd, req, order.symbol, order.side, order.quantity)
        elif isinstance(cmd, ReplaceOrder):
            order = self._order(cmd.client_order_id)
            msg = codec.replace_request(cmd, order.symbol, order.side, order.order_type)
        else:
            raise TypeError(f"FixBroker cannot send {type(cmd).__name__}")
        self.send_message(msg)
        return []

    def request_status(self, client_order_id: str) -> None:
        """Ask the venue where an order stands (OrderStatusRequest 35=H).

        A venue that supports it answers with an ExecutionReport (ExecType I, no state
        change) or resends what was missed; one that does not answers 35=j, which the
        adapter records as a notice for that order.
        """
        order = self._order(client_order_id)
        self.send_message(codec.order_status_request(client_order_id, order.symbol, order.side))

    def send_message(self, msg: fix.Message) -> None:
        """Send a prepared FIX message on the session (stored for resend if not logged on)."""
        if self.session_id is None:
            raise RuntimeError("FIX session not created: call start() first")
        fix.Session.sendToTarget(msg, self.session_id)

    def _order(self, client_order_id: str):
        if self.order_lookup is None:
            raise RuntimeError("FixBroker needs order_lookup to cancel or replace orders")
        return self.order_lookup(client_order_id)

    def _prior(self, client_order_id: str):
        if self.order_lookup is None:
            return None
        try:
            return self.order_lookup(client_order_id)
        except KeyError:
            return None

    def on_quote(self, quote) -> list:
        """Market data is the venue's business: a FIX broker matches nothing locally."""
        return []

    # ------------------------------------------------------------------ incoming
    def poll(self) -> list:
        """Events received since the last poll (when no ``on_event`` handler is set)."""
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def order_reports(self, client_order_id: str) -> list | None:
        """None: this side cannot know what the venue holds.

        FIX reconciles by resend: reports the venue sent while we were away arrive again
        through the session's sequence-number gap fill, and ``OrderManager.reconcile``
        lists pending commands to send again; the simulator answers a repeated
        NewOrderSingle by replaying that order's reports (deduplicated by identity).
        """
        return None

    def _deliver(self, event) -> None:
        if self.on_event is None:
            self._events.put(event)
            return
        try:
            self.on_event(event)
        except Exception as exc:  # a bad report must not kill quickfix's thread; keep it visible
            log.exception("FIX event handler failed on %s", event)
            self.errors.append(f"{type(exc).__name__}: {exc} (event {event})")

    def _notice(self, kind: str, text: str, error: bool = True) -> None:
        """Record a session problem everywhere it must be seen (once per distinct text)."""
        if error:
            if text == self._last_problem:
                return  # quickfix retries a refused logon every ReconnectInterval: say it once
            self._last_problem = text
        # journal first, then show: whoever sees the problem in errors/history can find it in
        # the journal too (the other order let a reader see the error before the record existed)
        self._deliver(VenueNotice(self.clock.now_ns(), self.session, kind, text))
        if error:
            self.errors.append(f"{kind}: {text}")
        self.history.append(f"{kind}: {text}")
        log.warning("FIX %s %s: %s", self.session, kind, text)

    def _on_logon(self) -> None:
        self.logons += 1
        self._down_since = None
        self._last_problem = ""
        self.history.append(f"logon #{self.logons}")

    def _on_logout(self) -> None:
        self._down_since = time.monotonic()
        self.history.append("logout")

    def _on_admin_out(self, message) -> None:
        mtype = message.getHeader().getField(35)
        if mtype == codec.MSG_REJECT:
            # quickfix refused one of the venue's messages before the application saw it (a
            # tag the dictionary requires is missing, a bad value): whatever it said is lost to
            # the order manager, so it must at least be seen
            ref = message.getField(codec.REF_SEQ_NUM) if message.isSetField(codec.REF_SEQ_NUM) else "?"
            ref_type = message.getField(codec.REF_MSG_TYPE) if message.isSetField(codec.REF_MSG_TYPE) else "?"
            text = message.getField(codec.TEXT) if message.isSetField(codec.TEXT) else "rejected"
            tag = f" (tag {message.getField(codec.REF_TAG_ID)})" if message.isSetField(codec.REF_TAG_ID) else ""
            self._notice("unparseable", f"we rejected the venue's 35={ref_type} seq {ref}: {text}{tag}")
            return
        if mtype == "5" and message.isSetField(codec.TEXT):
            text = message.getField(codec.TEXT)
            m = _TOO_LOW.search(text)
            if m is None:
                self._notice("logout", f"we logged out: {text}")
                return
            expected, received = int(m.group(1)), int(m.group(2))
            if self.on_sequence_reset == "follow":
                self._notice("sequence_reset", f"venue reset its sequence numbers (we expected {expected}, it sent "
                             f"{received}); following: both sides start again at 1 -- reports the venue sent "
                             f"before its reset are not resent, reconcile open orders")
                threading.Thread(target=self._follow_reset, daemon=True, name="fix-follow-reset").start()
            else:
                self._notice("logon_refused", f"venue's logon refused: {text} -- the venue reset its sequence "
                             f"numbers; set ResetOnLogon=Y to match it or on_sequence_reset='follow'")

    def _follow_reset(self) -> None:
        # after quickfix has sent its logout and dropped the socket (it increments the sender
        # number after our hook returns), before the next connect attempt
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            s = fix.Session.lookupSession(self.session_id) if self.session_id is not None else None
            if s is not None and not s.isLoggedOn():
                time.sleep(0.05)
                s.setNextSenderMsgSeqNum(1)
                s.setNextTargetMsgSeqNum(1)
                return
            time.sleep(0.02)

    def _on_admin_in(self, message) -> None:
        mtype = message.getHeader().getField(35)
        if mtype == codec.MSG_REJECT:
            self._on_session_reject(message)
        elif mtype == "5" and message.isSetField(codec.TEXT):
            self._notice("logout", f"venue logged out: {message.getField(codec.TEXT)}")

    def _on_sent(self, message) -> None:
        h = message.getHeader()
        mtype = h.getField(35)
        if codec.is_poss_dup(message) and mtype in (codec.MSG_NEW_ORDER, codec.MSG_CANCEL, codec.MSG_REPLACE):
            # the venue asked for a gap holding an order: answer with a gap fill, never a replay
            self.suppressed_resends += 1
            raise fix.DoNotSend()
        cl = message.getField(41) if mtype in (codec.MSG_CANCEL, codec.MSG_REPLACE) else (
            message.getField(11) if message.isSetField(11) else "")
        with self._lock:
            self._sent[int(h.getField(34))] = (mtype, cl)

    def _on_app(self, message) -> None:
        mtype = message.getHeader().getField(35)
        now = self.clock.now_ns()
        try:
            if mtype == codec.MSG_EXEC_REPORT and message.isSetField(codec.EXEC_TYPE) and \
                    message.getField(codec.EXEC_TYPE) == "I":
                self._on_order_status(message)
                return
            if mtype == codec.MSG_EXEC_REPORT:
                event = codec.read_execution_report(message, now, session=self.session, prior=self._prior,
                                                    client_order_id_of=self._by_order_id.get)
                if isinstance(event, (OrderAccepted, OrderFilled)) and message.isSetField(codec.ORDER_ID):
                    self._by_order_id[message.getField(codec.ORDER_ID)] = event.client_order_id
                if event is None:
                    return
            elif mtype == codec.MSG_CANCEL_REJECT:
                event = codec.read_cancel_reject(message, now)
            elif mtype == codec.MSG_BUSINESS_REJECT:
                self._on_business_reject(message)
                return
            else:
                self._notice("unparseable", f"unexpected application message 35={mtype}: "
                             f"{message.toString().replace(chr(1), '|')}")
                return
        except codec.FixFormatError as exc:
            self._notice("unparseable", f"{exc} -- message {message.toString().replace(chr(1), '|')}")
            return
        self._deliver(event)

    _ORD_STATUS = {"0": "new", "1": "partially_filled", "2": "filled", "4": "cancelled", "6": "pending_cancel",
                   "8": "rejected", "A": "pending_new", "C": "expired", "E": "pending_replace"}

    def _on_order_status(self, message) -> None:
        """An answer to OrderStatusRequest (ExecType I): compared with our order, reported.

        It carries no execution of its own (the venue resends missed fills through the
        session), so nothing is applied; a difference is an error notice naming both views.
        """
        cl = message.getField(codec.CL_ORD_ID) if message.isSetField(codec.CL_ORD_ID) else "?"
        venue_status = self._ORD_STATUS.get(message.getField(codec.ORD_STATUS), message.getField(codec.ORD_STATUS))
        venue_cum = message.getField(codec.CUM_QTY)
        order = self._prior(cl)
        ours = "unknown here" if order is None else f"{order.status.value}, CumQty {order.cum_qty}"
        try:
            same = order is not None and order.status.value == venue_status and order.cum_qty == Decimal(venue_cum)
        except ArithmeticError:
            same = False
        self._notice("reconcile", f"order {cl}: venue says {venue_status}, CumQty {venue_cum}; here: {ours}",
                     error=not same)

    def _reject_event(self, sent, ref: int, prefix: str, reason: str):
        mtype, cl = sent
        cls = {codec.MSG_NEW_ORDER: OrderRejected, codec.MSG_CANCEL: OrderCancelRejected,
               codec.MSG_REPLACE: OrderReplaceRejected}.get(mtype)
        if cls is None or not cl:
            return None
        # a resent reject is the same reject: its identity is the message it refers to
        return cls(cl, self.clock.now_ns(), f"{prefix}: {reason}", f"{prefix.upper().replace(' ', '-')}-{ref}")

    def _on_business_reject(self, message) -> None:
        try:
            ref_type, ref, ref_id, reason = codec.read_business_reject(message)
        except codec.FixFormatError as exc:
            self._notice("unparseable", str(exc))
            return
        with self._lock:
            sent = self._sent.get(ref) if ref is not None else None
        if sent is None and ref_id:
            sent = (ref_type, ref_id.split("~C")[0])  # a cancel's own id is "<order>~C<n>"
        if sent is not None and sent[0] == codec.MSG_STATUS_REQUEST:
            self._notice("reconcile", f"order {sent[1]}: the venue cannot report its state ({reason}); left "
                         f"as it is here -- check it with the venue", error=False)
            return
        event = self._reject_event(sent, ref or 0, "business reject", reason) if sent else None
        if event is None:
            self._notice("reject", f"business reject of 35={ref_type} seq {ref} (ref id {ref_id}): {reason}")
            return
        self.history.append(f"business reject of 35={ref_type} for {event.client_order_id}: {reason}")
        self._deliver(event)

    def _on_session_reject(self, message) -> None:
        ref = int(message.getField(codec.REF_SEQ_NUM))
        with self._lock:
            sent = self._sent.get(ref)
        reason = message.getField(codec.TEXT) if message.isSetField(codec.TEXT) else "session-level reject"
        if message.isSetField(codec.REF_TAG_ID):
            reason += f" (tag {message.getField(codec.REF_TAG_ID)})"
        event = self._reject_event(sent, ref, "session reject", reason) if sent else None
        if event is None:
            self._notice("reject", f"session reject of message seq {ref}: {reason}")
            return
        self._deliver(event)
