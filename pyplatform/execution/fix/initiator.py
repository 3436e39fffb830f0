"""The FIX broker: a quickfix FIX 4.4 initiator speaking for the order manager.

Commands go out as NewOrderSingle / OrderCancelRequest / OrderCancelReplaceRequest;
ExecutionReports, OrderCancelRejects and session-level Rejects come back as order events.
Sequence numbers and sent messages live in a quickfix FileStore, so a restart continues
the session and the venue resends whatever the broker missed (duplicates are dropped by
the order manager's exec-id check).

Events are handed to ``on_event`` *on quickfix's thread, before the message counts as
received*: a handler that journals (``OrderManager.apply``) makes an execution durable
before quickfix advances the incoming sequence number, so a crash can only make the venue
resend it, never lose it.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Callable

import quickfix as fix

from pyplatform.clock import Clock, LiveClock
from pyplatform.execution.fix import codec
from pyplatform.execution.fix.app import SessionApp
from pyplatform.execution.fix.session import FixSessionConfig
from pyplatform.execution.messages import (
    CancelOrder, OrderCancelRejected, OrderRejected, OrderReplaceRejected, ReplaceOrder, SubmitOrder,
)

__all__ = ["FixBroker"]

log = logging.getLogger(__name__)


class _App(SessionApp):
    """The broker's end: also sees session-level rejects and every message it sends."""

    def fromAdmin(self, message, sessionID):  # noqa: N802
        if message.getHeader().getField(35) == codec.MSG_REJECT:
            self.owner._on_session_reject(message)

    def toApp(self, message, sessionID):  # noqa: N802
        self.owner._on_sent(message)


class FixBroker:
    """Order routing over FIX 4.4.

    Parameters
    ----------
    directory : Path
        Session settings, FileStore and logs (reuse it to continue a session after a restart).
    port : int
        The venue's port on ``host``.
    order_lookup : callable
        ``client_order_id -> Order`` (symbol, side, quantity for cancels and replaces).
    on_event : callable, optional
        Receives each order event on quickfix's thread; without it events queue for ``poll``.
    """

    name = "fix"

    def __init__(self, directory: str | Path, port: int, order_lookup: Callable | None = None,
                 on_event: Callable | None = None, host: str = "127.0.0.1", clock: Clock | None = None,
                 sender_comp_id: str = "PYPLATFORM", target_comp_id: str = "SIMEX") -> None:
        self.config = FixSessionConfig(Path(directory), "initiator", port, host, sender_comp_id, target_comp_id)
        self.order_lookup = order_lookup
        self.on_event = on_event
        self.clock = clock or LiveClock()
        self.session_id = None
        self.logged_on = threading.Event()
        self.errors: list[str] = []
        self._events: queue.Queue = queue.Queue()
        self._sent: dict[int, tuple[str, str]] = {}  # outgoing seq num -> (msg type, client order id)
        self._cancel_n = 0
        self._lock = threading.Lock()
        self._app = _App(self)
        self._initiator = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, wait_s: float | None = 10.0) -> "FixBroker":
        """Connect and log on (waits up to ``wait_s`` for the logon; None: don't wait)."""
        settings = fix.SessionSettings(str(self.config.write()))
        store = fix.FileStoreFactory(settings)
        logs = fix.FileLogFactory(settings)
        # threaded (a thread per session): the plain SocketInitiator shares one socket loop whose
        # stop() can race a disconnect, as its acceptor counterpart does
        self._initiator = fix.ThreadedSocketInitiator(self._app, store, settings, logs)
        self._initiator.start()
        if wait_s is not None and not self.logged_on.wait(wait_s):
            raise TimeoutError(f"FIX logon to {self.config.host}:{self.config.port} timed out after {wait_s}s")
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

    # ------------------------------------------------------------------ outgoing
    def send(self, cmd) -> list:
        """Send a command; its events arrive asynchronously (``on_event``/``poll``)."""
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

    def send_message(self, msg: fix.Message) -> None:
        """Send a prepared FIX message on the session (stored for resend if not logged on)."""
        if self.session_id is None:
            raise RuntimeError("FIX session not created: call start() first")
        fix.Session.sendToTarget(msg, self.session_id)

    def _order(self, client_order_id: str):
        if self.order_lookup is None:
            raise RuntimeError("FixBroker needs order_lookup to cancel or replace orders")
        return self.order_lookup(client_order_id)

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
        NewOrderSingle by replaying that order's reports (deduplicated by exec id).
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

    def _on_sent(self, message) -> None:
        h = message.getHeader()
        mtype = h.getField(35)
        cl = message.getField(41) if mtype in (codec.MSG_CANCEL, codec.MSG_REPLACE) else message.getField(11)
        with self._lock:
            self._sent[int(h.getField(34))] = (mtype, cl)

    def _on_app(self, message) -> None:
        mtype = message.getHeader().getField(35)
        try:
            if mtype == codec.MSG_EXEC_REPORT:
                event = codec.read_execution_report(message)
            elif mtype == codec.MSG_CANCEL_REJECT:
                event = codec.read_cancel_reject(message, self.clock.now_ns())
            else:
                self.errors.append(f"unexpected application message 35={mtype}")
                return
        except codec.FixFormatError as exc:
            self.errors.append(str(exc))
            return
        self._deliver(event)

    def _on_session_reject(self, message) -> None:
        ref = int(message.getField(codec.REF_SEQ_NUM))
        with self._lock:
            sent = self._sent.get(ref)
        reason = message.getField(codec.TEXT) if message.isSetField(codec.TEXT) else "session-level reject"
        if message.isSetField(codec.REF_TAG_ID):
            reason += f" (tag {message.getField(codec.REF_TAG_ID)})"
        if sent is None:
            self.errors.append(f"session reject of unknown message seq {ref}: {reason}")
            return
        mtype, cl = sent
        exec_id = f"REJECT-{ref}"  # a resent reject is the same reject
        ts = self.clock.now_ns()
        cls = {codec.MSG_NEW_ORDER: OrderRejected, codec.MSG_CANCEL: OrderCancelRejected,
               codec.MSG_REPLACE: OrderReplaceRejected}.get(mtype)
        if cls is not None:
            self._deliver(cls(cl, ts, f"session reject: {reason}", exec_id))
