"""Order manager: idempotent ids, duplicate executions, replace chains, and journal
recovery after a crash at every step of an order's life (reconciled with the broker)."""

from decimal import Decimal as D

import pytest

from pyplatform.clock import SimClock
from pyplatform.domain import Quote
from pyplatform.execution.journal import Journal, JournalCorrupt
from pyplatform.execution.messages import (
    CancelOrder, OrderAccepted, OrderFilled, OrdType, ReplaceOrder, Side, SubmitOrder,
)
from pyplatform.execution.oms import DuplicateOrderId, OrderManager, UnknownOrder
from pyplatform.execution.paper import PaperBroker
from pyplatform.execution.states import IllegalTransition, OrderStatus


def buy(cl="o1", qty=500, px="100.05", ts=1):
    return SubmitOrder(cl, "acc", "AAPL.US", Side.BUY, D(qty), OrdType.LIMIT, D(px), ts=ts)


def test_submit_is_idempotent_and_conflicting_reuse_fails(tmp_path):
    oms = OrderManager(Journal(tmp_path / "j"))
    r1 = oms.submit(buy())
    r2 = oms.submit(buy(ts=99))  # a retry: same terms
    assert r1.created and not r2.created and r2.order is r1.order
    with pytest.raises(DuplicateOrderId, match="o1"):
        oms.submit(buy(qty=600))
    assert len(list(Journal.read(tmp_path / "j"))) == 1


def test_duplicate_execution_is_applied_once():
    oms = OrderManager()
    oms.submit(buy())
    fill = OrderFilled("o1", 2, "E1", D(100), D("100.00"), D(400))
    assert oms.apply(OrderAccepted("o1", 1, "B1", "E0")) is not None
    assert oms.apply(fill) is not None
    assert oms.apply(fill) is None  # resent report
    assert oms.orders["o1"].cum_qty == 100 and oms.positions.quantity("acc", "AAPL.US") == 100


def test_unknown_order_and_overfill_are_errors():
    oms = OrderManager()
    with pytest.raises(UnknownOrder, match="nope"):
        oms.apply(OrderAccepted("nope", 1))
    oms.submit(buy(qty=10))
    oms.apply(OrderAccepted("o1", 1, exec_id="E0"))
    with pytest.raises(Exception, match="exceeds quantity 10"):
        oms.apply(OrderFilled("o1", 2, "E1", D(11), D(1), D(0)))
    with pytest.raises(IllegalTransition):
        oms.apply(OrderAccepted("o1", 3, exec_id="E2"))
    assert oms.orders["o1"].status is OrderStatus.NEW  # nothing half-applied


def test_replace_chain_and_late_fill_for_replaced_id():
    oms = OrderManager()
    oms.submit(buy())
    oms.apply(OrderAccepted("o1", 1, exec_id="E0"))
    oms.request_replace(ReplaceOrder("o1", "o1b", D(600), D("100.10"), 2))
    from pyplatform.execution.messages import OrderReplaced

    new = oms.apply(OrderReplaced("o1", 3, "o1b", D(600), D("100.10"), "E1"))
    assert new.client_order_id == "o1b" and new.orig_client_order_id == "o1" and new.status is OrderStatus.NEW
    assert oms.orders["o1"].status is OrderStatus.REPLACED
    oms.apply(OrderFilled("o1", 4, "E2", D(100), D("100.10"), D(500)))  # venue still names the old id
    assert oms.orders["o1b"].cum_qty == 100 and oms.live_id("o1") == "o1b"


def test_torn_tail_is_dropped_and_corruption_is_named(tmp_path):
    path = tmp_path / "j"
    with Journal(path) as j:
        j.append(buy())
        j.append(OrderAccepted("o1", 2, "B", "E0"))
    with open(path, "ab") as fh:
        fh.write(b'{"type":"OrderFilled","client_')  # crash mid-write
    oms = OrderManager.recover(path)
    assert oms.orders["o1"].status is OrderStatus.NEW
    oms.apply(OrderFilled("o1", 3, "E1", D(1), D(100), D(499)))
    oms.journal.close()
    assert OrderManager.recover(path, reopen=False).orders["o1"].cum_qty == 1  # the tail was repaired
    lines = path.read_bytes().split(b"\n")
    lines[1] = b'{"type":"OrderAccepted","ts":"x","oops":1}'
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalCorrupt, match="line 2"):
        OrderManager.recover(path)


# ----------------------------------------------------------------------------- crash at every step


class Crash(Exception):
    pass


class CrashingJournal(Journal):
    """Dies at the ``at``-th append: before writing, after writing (before acting), or mid-write."""

    def __init__(self, path, at, mode):
        super().__init__(path)
        self.at, self.mode, self.n = at, mode, 0

    def append_many(self, msgs):
        self.n += 1
        if self.n == self.at:
            if self.mode == "after":
                super().append_many(msgs)
            elif self.mode == "torn":
                import json

                from pyplatform.execution.codec import encode

                self._fh.write(json.dumps(encode(msgs[0])).encode()[:17])
            raise Crash(self.n)
        super().append_many(msgs)


def quote(ts, ask, ask_size, bid=None):
    return Quote(ts, "AAPL.US", ask - 0.01, bid=bid or ask - 0.02, ask=ask, bid_size=1000, ask_size=ask_size)


def life(oms, broker, clock):
    """An order's whole life: placed, partly filled, filled more, replaced, filled, cancelled."""

    def apply(events):
        for e in events:
            oms.apply(e)

    broker.on_quote(quote(clock.now_ns(), 100.01, 200))
    cmd = buy()
    oms.submit(cmd)
    apply(broker.send(cmd))  # accepted + 200 filled
    clock.advance(10)
    apply(broker.on_quote(quote(clock.now_ns(), 100.02, 100)))  # +100
    clock.advance(10)
    rep = ReplaceOrder("o1", "o1b", D(600), D("100.06"), clock.now_ns())
    oms.request_replace(rep)
    apply(broker.send(rep))
    clock.advance(10)
    apply(broker.on_quote(quote(clock.now_ns(), 100.03, 100)))  # +100
    clock.advance(10)
    cxl = CancelOrder("o1b", clock.now_ns())
    oms.request_cancel(cxl)
    apply(broker.send(cxl))


def _run_clean(tmp_path):
    clock = SimClock(1_000)
    broker = PaperBroker(clock)
    oms = OrderManager(Journal(tmp_path / "clean"))
    life(oms, broker, clock)
    return oms, oms.journal.appended


def test_clean_life(tmp_path):
    oms, n = _run_clean(tmp_path)
    assert oms.orders["o1"].status is OrderStatus.REPLACED
    assert oms.orders["o1b"].status is OrderStatus.CANCELLED and oms.orders["o1b"].cum_qty == 400
    assert oms.positions.quantity("acc", "AAPL.US") == 400
    assert n == 9  # submit, accepted, fill, fill, pending replace, replaced, fill, pending cancel, cancelled


@pytest.mark.parametrize("mode", ["before", "after", "torn"])
def test_recovery_after_crash_at_every_step(tmp_path, mode):
    _, total = _run_clean(tmp_path)
    for at in range(1, total + 1):
        path = tmp_path / f"{mode}-{at}"
        clock = SimClock(1_000)
        broker = PaperBroker(clock)
        oms = OrderManager(CrashingJournal(path, at, mode))
        with pytest.raises(Crash):
            life(oms, broker, clock)
        # restart: rebuild from the journal, then reconcile with the broker
        rec = OrderManager.recover(path)
        report = rec.reconcile(broker)
        for cmd in report.resend:
            for e in broker.send(cmd):
                rec.apply(e)
        venue = broker.engine
        assert set(rec.orders) == set(venue.orders), (mode, at)  # nothing only one side knows
        for cl, vo in venue.orders.items():
            assert cl in rec.orders, (mode, at, cl)
            assert rec.orders[cl].status.value == vo.status, (mode, at, cl)
            assert rec.orders[cl].cum_qty == vo.cum_qty, (mode, at, cl)
        filled_at_venue = sum(e.last_qty for reps in venue._reports.values() for e in reps
                              if isinstance(e, OrderFilled))
        assert rec.positions.quantity("acc", "AAPL.US") == filled_at_venue, (mode, at)
        # a second restart changes nothing (recovery is idempotent, nothing doubles)
        rec.journal.close()
        again = OrderManager.recover(path, reopen=False)
        assert again.orders == rec.orders
        assert again.positions.quantity("acc", "AAPL.US") == filled_at_venue
        assert not again.reconcile(broker).applied
