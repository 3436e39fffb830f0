"""The order manager: every order's state, positions, and a journal to rebuild both.

Pure and synchronous: commands and broker events go in, the new order state comes out. It
never talks to a broker itself -- the caller (``TradingNode``, a backtest) sends what it is
told to send -- so the same object runs live, in a backtest and in tests.

Durability rule: a command or event is written to the journal (fsync) *before* state
changes and before the call returns, so whatever a caller saw acknowledged survives a crash.
Client order ids are unique: submitting the same id again with the same terms is a no-op
(idempotent retries), with different terms an error.

Execution identity: a report is identified by ``(session, order chain, exec_id)`` -- never
by ``exec_id`` alone, because venues restart their ExecID counters across days and
restarts. A report whose identity *and* terms were already applied is a resend and is
dropped (counted in ``duplicates`` when it was not even flagged PossDup). A report whose
identity repeats with *new* terms is a new execution under a reused id and is applied --
unless it is flagged PossDup/PossResend, which makes it a conflicting resend: that raises
:class:`ConflictingExecution` rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Protocol

from pyplatform.execution.journal import Journal
from pyplatform.execution.messages import (
    CancelOrder, OrderCanceled, OrderCancelRejected, OrderFilled, OrderPendingCancel, OrderPendingReplace, OrderReplaced,
    OrderReplaceRejected, ReplaceOrder, SubmitOrder, VenueNotice,
)
from pyplatform.execution.order import Order
from pyplatform.execution.positions import PositionBook
from pyplatform.execution.states import OrderStatus

__all__ = ["OrderManager", "SubmitResult", "DuplicateOrderId", "UnknownOrder", "ReconcileReport",
           "BrokerReports", "ConflictingExecution"]


class DuplicateOrderId(ValueError):
    """A client order id reused with different terms."""


class UnknownOrder(KeyError):
    """An event or command for a client order id the manager never saw."""


class ConflictingExecution(ValueError):
    """A report flagged as a resend (PossDup) whose terms differ from the execution it repeats."""


_NO_KEY = object()  # ``_commit`` without a precomputed execution key


def _terms(event) -> tuple:
    # what makes two reports with one identity the same report
    if isinstance(event, OrderFilled):
        return (event.last_qty, event.last_px, event.leaves_qty)
    return (type(event).__name__,)


@dataclass(frozen=True, slots=True)
class SubmitResult:
    order: Order
    created: bool  # False: an idempotent retry of an order already known


class BrokerReports(Protocol):
    def order_reports(self, client_order_id: str) -> list | None:
        """Every event the broker produced for the order, or None if it never saw it."""


@dataclass
class ReconcileReport:
    """What reconciliation with the broker found."""

    applied: list = field(default_factory=list)  # broker events the journal had missed
    resend: list = field(default_factory=list)  # commands the broker never received
    unknown_at_broker: list[str] = field(default_factory=list)


def _same_terms(a: SubmitOrder, b: SubmitOrder) -> bool:
    return (a.account, a.symbol, a.side, a.quantity, a.order_type, a.price, a.tif, a.parent_id) == (
        b.account, b.symbol, b.side, b.quantity, b.order_type, b.price, b.tif, b.parent_id)


class OrderManager:
    """Orders, positions and the journal behind them.

    Parameters
    ----------
    journal : Journal or None
        Where every command/event is written before it takes effect. ``None`` keeps
        everything in memory (backtests).
    """

    def __init__(self, journal: Journal | None = None) -> None:
        self.journal = journal
        self.orders: dict[str, Order] = {}
        self.commands: dict[str, SubmitOrder] = {}
        self.positions = PositionBook()
        self._exec_ids: set[str] = set()  # every exec id applied (``seen``); identity is ``_execs``
        self._execs: dict[tuple, list[tuple]] = {}  # (session, root order, exec id) -> terms applied
        self._root: dict[str, str] = {}  # replacement id -> the first id of its order chain
        self.duplicates: list = []  # resends dropped that did not say they were resends
        self.reused_exec_ids: list = []  # new executions applied under an identity seen before
        self.notices: list[VenueNotice] = []
        self._replaced_by: dict[str, str] = {}
        self._pending_replace: dict[str, OrderPendingReplace] = {}
        self.journal_records = 0
        self.stale: list = []
        self._deferred: list[int] | None = None  # journal tickets written inside apply_many
        # open orders by id, with each order's position in ``orders`` (open_orders is called
        # on every signal; scanning every order ever placed made long runs quadratic)
        self._open: dict[str, Order] = {}
        self._rank: dict[str, int] = {}

    # ------------------------------------------------------------------ commands
    def submit(self, cmd: SubmitOrder) -> SubmitResult:
        """Register a new order (status PENDING_NEW); the caller then sends ``cmd`` to a broker.

        Raises
        ------
        DuplicateOrderId
            If the id is known with different terms.
        """
        known = self.commands.get(cmd.client_order_id)
        if known is not None:
            if not _same_terms(known, cmd):
                raise DuplicateOrderId(f"client order id {cmd.client_order_id!r} already used for "
                                       f"{known.side.name} {known.quantity} {known.symbol} @ {known.price}")
            return SubmitResult(self.orders[cmd.client_order_id], False)
        if cmd.client_order_id in self.orders:
            raise DuplicateOrderId(f"client order id {cmd.client_order_id!r} already names a replacement order")
        self._write(cmd)
        return SubmitResult(self._commit_submit(cmd), True)

    def request_cancel(self, cmd: CancelOrder) -> OrderPendingCancel:
        """Mark an order pending cancel; the caller then sends ``cmd`` to the broker."""
        event = OrderPendingCancel(cmd.client_order_id, cmd.ts)
        self.apply(event)
        return event

    def request_replace(self, cmd: ReplaceOrder) -> OrderPendingReplace:
        """Mark an order pending replace; the caller then sends ``cmd`` to the broker."""
        if cmd.new_client_order_id in self.orders or cmd.new_client_order_id in self.commands:
            raise DuplicateOrderId(f"replacement id {cmd.new_client_order_id!r} is already used")
        event = OrderPendingReplace(cmd.client_order_id, cmd.ts, cmd.new_client_order_id, cmd.quantity, cmd.price)
        self.apply(event)
        return event

    # ------------------------------------------------------------------ events
    def apply(self, event) -> Order | None:
        """Apply a broker (or request) event; returns the order's new state, or None for a
        duplicate execution already applied.

        Raises
        ------
        UnknownOrder, IllegalTransition, OverFill
        """
        if isinstance(event, VenueNotice):
            self.note(event)
            return None
        key = self._exec_key(event)  # once: the duplicate check and the commit share it
        if self._is_duplicate(event, key):
            if not getattr(event, "poss_dup", False):
                self.duplicates.append(event)
            return None
        if isinstance(event, (OrderCancelRejected, OrderReplaceRejected)):
            order = self.orders.get(event.client_order_id)
            if order is not None and order.status not in (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE):
                # the answer to a request resent after a restart that the venue had already
                # carried out: stale, nothing to change (kept visible in ``stale``)
                self.stale.append(event)
                return None
        staged = self._stage(event)
        self._write(event)
        return self._commit(event, staged, key)

    def apply_many(self, events) -> list:
        """Apply several events with one wait for the disk; returns ``apply``'s result per event.

        Each event is journaled in order as it is applied, but the call waits for the journal
        once, after the last one: with a group-committing journal one fsync then covers the
        whole batch (an accept and its fill arriving together cost one fsync, not two). The
        durability promise is unchanged -- nothing is returned, so nothing can be acted on,
        before every record of the batch is on disk. If an event raises, the records written
        before it are still made durable before the error propagates.
        """
        if self.journal is None or not hasattr(self.journal, "write_many") or self._deferred is not None:
            return [self.apply(ev) for ev in events]
        self._deferred = []
        try:
            return [self.apply(ev) for ev in events]
        finally:
            tickets, self._deferred = self._deferred, None
            if tickets:
                self.journal.wait_durable(tickets[-1])

    def _stage(self, event):
        cl = event.client_order_id
        if isinstance(event, OrderFilled):
            cl = self.live_id(cl)  # a late fill for a replaced order belongs to its replacement
        order = self.orders.get(cl)
        if order is None:
            raise UnknownOrder(f"no order with client order id {event.client_order_id!r}")
        new = order.apply(event)
        extra = None
        if isinstance(event, OrderReplaced):
            if event.new_client_order_id in self.orders:
                raise DuplicateOrderId(f"replacement id {event.new_client_order_id!r} is already used")
            extra = new.replacement(event)
        return new, extra

    def _commit(self, event, staged, key=_NO_KEY) -> Order:
        new, extra = staged
        self._put(new)
        if extra is not None:
            self._put(extra)
            self._replaced_by[new.client_order_id] = extra.client_order_id
        if key is _NO_KEY:
            key = self._exec_key(event)
        if key is not None:
            self._exec_ids.add(key[2])
            applied = self._execs.setdefault(key, [])
            if applied:
                self.reused_exec_ids.append(event)
            applied.append(_terms(event))
        if extra is not None:
            self._root[extra.client_order_id] = self.root_id(new.client_order_id)
        if isinstance(event, OrderPendingReplace):
            self._pending_replace[event.client_order_id] = event
        if isinstance(event, OrderFilled):
            pos = self.positions.get(new.account, new.symbol)
            pos.apply_fill(event.last_qty * int(new.side), event.last_px, event.ts)
        return extra if extra is not None else new

    def root_id(self, client_order_id: str) -> str:
        """The first client order id of the chain an order belongs to (undoes replacements)."""
        return self._root.get(client_order_id, client_order_id)

    def _exec_key(self, event) -> tuple | None:
        exec_id = getattr(event, "exec_id", "")
        if not exec_id:
            return None
        return (getattr(event, "session", ""), self.root_id(event.client_order_id), exec_id)

    def is_duplicate(self, event) -> bool:
        """True if ``event`` repeats a report already applied (same identity, same terms).

        Raises
        ------
        ConflictingExecution
            If the event is flagged as a resend but its terms differ from every report
            applied under its identity.
        """
        return self._is_duplicate(event, self._exec_key(event))

    def _is_duplicate(self, event, key: tuple | None) -> bool:
        if key is None:
            return False
        applied = self._execs.get(key)
        if not applied:
            return False
        if _terms(event) in applied:
            return True
        if getattr(event, "poss_dup", False):
            raise ConflictingExecution(
                f"order {event.client_order_id!r}: resent report exec {key[2]!r} (session {key[0]!r}) has terms "
                f"{_terms(event)}, the execution it repeats had {applied}")
        return False

    def note(self, notice: VenueNotice) -> None:
        """Journal and keep a venue/session notice (no order changes)."""
        self._write(notice)
        self.notices.append(notice)

    def live_id(self, client_order_id: str) -> str:
        """The id an order chain currently lives under (follows replacements)."""
        while client_order_id in self._replaced_by:
            client_order_id = self._replaced_by[client_order_id]
        return client_order_id

    # ------------------------------------------------------------------ queries
    def open_orders(self, account: str | None = None, symbol: str | None = None) -> list[Order]:
        """Orders not yet in a final state, in the order they were first registered."""
        found = [o for o in self._open.values()
                 if (account is None or o.account == account) and (symbol is None or o.symbol == symbol)]
        if len(found) > 1:
            found.sort(key=lambda o: self._rank[o.client_order_id])
        return found

    def seen(self, exec_id: str) -> bool:
        """True if any report with this exec id was applied (to any order: see ``is_duplicate``)."""
        return exec_id in self._exec_ids

    def release_closed(self) -> int:
        """Forget the execution identities of order chains that are closed; returns how many.

        Duplicate detection needs a chain's execution ids only while the venue can still
        report on it. A long backtest against the paper broker (which never resends and
        reports nothing after an order is closed) calls this between windows so that memory
        follows the open orders, not every fill of the run; a live manager keeps them.
        """
        live_roots = {self.root_id(cl) for cl in self._open}
        before = len(self._execs)
        self._execs = {k: v for k, v in self._execs.items() if k[1] in live_roots}
        self._exec_ids = {k[2] for k in self._execs}
        return before - len(self._execs)

    # ------------------------------------------------------------------ durability
    def _write(self, msg) -> None:
        if self.journal is not None:
            if self._deferred is not None:
                self._deferred.append(self.journal.write_many((msg,)))  # waited for in apply_many
            else:
                self.journal.append(msg)
        self.journal_records += 1

    def _commit_submit(self, cmd: SubmitOrder) -> Order:
        order = Order.from_command(cmd)
        self.commands[cmd.client_order_id] = cmd
        self._put(order)
        return order

    def _put(self, order: Order) -> None:
        cl = order.client_order_id
        self.orders[cl] = order
        self._rank.setdefault(cl, len(self._rank))
        if order.is_open:
            self._open[cl] = order
        else:
            self._open.pop(cl, None)

    @classmethod
    def recover(cls, path, reopen: bool = True, fsync: bool = True) -> "OrderManager":
        """Rebuild orders and positions from the journal at ``path``.

        With ``reopen`` the returned manager keeps appending to the same journal.
        """
        oms = cls(None)
        for msg in Journal.read(path):
            oms._replay(msg)
        if reopen:
            oms.journal = Journal(path, fsync=fsync)
        return oms

    def _replay(self, msg) -> None:
        self.journal_records += 1
        if isinstance(msg, SubmitOrder):
            self._commit_submit(msg)
        elif isinstance(msg, VenueNotice):
            self.notices.append(msg)
        else:
            self._commit(msg, self._stage(msg))

    def replay(self, msgs: Iterable) -> None:
        """Apply journaled messages without writing them again."""
        for msg in msgs:
            self._replay(msg)

    def reconcile(self, broker: BrokerReports) -> ReconcileReport:
        """Bring open orders in line with the broker after a restart.

        Applies every broker event the journal missed (duplicates are dropped by exec id),
        and lists commands the broker never received (a crash between journaling and
        sending) so the caller can send them again -- under the same ids, so nothing
        doubles.
        """
        report = ReconcileReport()
        checked: set[str] = set()
        while True:
            todo = [o for o in self.open_orders() if o.client_order_id not in checked]
            if not todo:
                break
            for order in todo:
                cl = order.client_order_id
                checked.add(cl)
                reports = broker.order_reports(cl)
                if reports is None:
                    if order.status is OrderStatus.PENDING_NEW and cl in self.commands:
                        report.resend.append(self.commands[cl])
                    elif order.status is OrderStatus.PENDING_CANCEL:
                        report.resend.append(CancelOrder(cl, order.updated_ts, "resent after restart"))
                    elif order.status is OrderStatus.PENDING_REPLACE and cl in self._pending_replace:
                        req = self._pending_replace[cl]
                        report.resend.append(ReplaceOrder(cl, req.new_client_order_id, req.quantity, req.price,
                                                          order.updated_ts))
                    else:
                        report.unknown_at_broker.append(cl)
                    continue
                for ev in reports:
                    if self.is_duplicate(ev):
                        continue
                    self.apply(ev)
                    report.applied.append(ev)
                order = self.orders[cl]
                if order.status is OrderStatus.PENDING_CANCEL and not any(
                        isinstance(e, OrderCanceled) for e in reports):
                    report.resend.append(CancelOrder(cl, order.updated_ts, "resent after restart"))
                elif order.status is OrderStatus.PENDING_REPLACE and not any(
                        isinstance(e, OrderReplaced) for e in reports):
                    req = self._pending_replace.get(cl)
                    if req is not None:
                        report.resend.append(ReplaceOrder(cl, req.new_client_order_id, req.quantity, req.price,
                                                          order.updated_ts))
        return report
