"""FIX 4.4: golden wire messages, and a real quickfix session over loopback between the
initiator (FixBroker) and the exchange simulator (FixExchange)."""

import threading
import time
from decimal import Decimal as D

import pytest

from pyplatform.clock import LiveClock
# quickfix is part of the environment (pyproject extra "fix", environment.yml): no skip if missing
from pyplatform.domain import Quote
from pyplatform.execution.fix import codec
from pyplatform.execution.fix.exchange import FixExchange
from pyplatform.execution.fix.initiator import FixBroker
from pyplatform.execution.journal import Journal
from pyplatform.execution.messages import (
    CancelOrder, OrderAccepted, OrderCanceled, OrderFilled, OrderReplaced, OrdType, ReplaceOrder, Side,
    SubmitOrder, TimeInForce,
)
from pyplatform.execution.oms import OrderManager
from pyplatform.execution.states import OrderStatus

TS = 1_700_000_000_123_000_000  # 2023-11-14 22:13:20.123 UTC


def wire(msg):
    return msg.toString().replace("\x01", "|")


def frame(body: str) -> str:
    """A FIX 4.4 message around ``body`` (``|``-separated fields after 35=), with BodyLength
    and CheckSum computed as the FIX spec defines them -- an oracle for quickfix's framing."""
    b = body.replace("|", "\x01")
    head = f"8=FIX.4.4\x019={len(b)}\x01"
    checksum = sum((head + b).encode()) % 256
    return (head + b + f"10={checksum:03d}\x01").replace("\x01", "|")


def test_golden_new_order_single():
    cmd = SubmitOrder("o1", "acc", "AAPL.US", Side.BUY, D(100), OrdType.LIMIT, D("101.25"), TimeInForce.DAY, ts=TS)
    assert wire(codec.new_order_single(cmd)) == frame(
        "35=D|1=acc|11=o1|38=100|40=2|44=101.25|54=1|55=AAPL.US|59=0|60=20231114-22:13:20.123|")
    assert codec.read_new_order(codec.new_order_single(cmd)) == cmd


def test_golden_cancel_and_replace():
    c = codec.cancel_request(CancelOrder("o1", TS), "o1~C1", "AAPL.US", Side.SELL, D(5))
    assert wire(c) == frame("35=F|11=o1~C1|38=5|41=o1|54=2|55=AAPL.US|60=20231114-22:13:20.123|")
    r = codec.replace_request(ReplaceOrder("o1", "o2", D("0.5"), D("30000.12345678"), TS), "BTCUSDT.BA",
                              Side.BUY, OrdType.LIMIT)
    assert "|11=o2|38=0.5|40=2|41=o1|44=30000.12345678|54=1|55=BTCUSDT.BA|" in wire(r)
    assert codec.read_replace(r) == ReplaceOrder("o1", "o2", D("0.5"), D("30000.12345678"), TS)


@pytest.mark.parametrize("event", [
    OrderAccepted("o1", TS, "B1", "E1"),
    OrderFilled("o1", TS, "E2", D(40), D("101.25"), D(60)),
    OrderFilled("o1", TS, "E3", D(60), D("101.30"), D(0)),
    OrderCanceled("o1", TS, "user", "E4"),
    OrderReplaced("o1", TS, "o2", D(200), D("101.5"), "E5"),
])
def test_execution_report_round_trip(event):
    msg = codec.execution_report(event, symbol="AAPL.US", side=Side.BUY, order_id="B1", cum_qty=D(40),
                                 leaves_qty=D(60), avg_px=D("101.25"))
    assert codec.read_execution_report(msg) == event


def test_golden_fill_report():
    msg = codec.execution_report(OrderFilled("o1", TS, "E2", D(40), D("101.25"), D(60)), symbol="AAPL.US",
                                 side=Side.BUY, order_id="B1", cum_qty=D(40), leaves_qty=D(60), avg_px=D("101.25"))
    assert wire(msg) == frame("35=8|6=101.25|11=o1|14=40|17=E2|31=101.25|32=40|37=B1|39=1|54=1|"
                              "55=AAPL.US|60=20231114-22:13:20.123|150=F|151=60|")


# ----------------------------------------------------------------------------- live session


def wait_for(cond, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Client:
    """The order manager behind a FIX broker, journaling each report on quickfix's thread."""

    def __init__(self, directory, port, journal):
        self.lock = threading.Lock()
        self.oms = OrderManager.recover(journal)
        self.broker = FixBroker(directory, port, order_lookup=lambda cl: self.oms.orders[cl], on_event=self.on_event,
                                clock=LiveClock())

    def on_event(self, ev):
        with self.lock:
            self.oms.apply(ev)

    def submit(self, cmd):
        with self.lock:
            self.oms.submit(cmd)
        self.broker.send(cmd)

    def status(self, cl):
        with self.lock:
            o = self.oms.orders.get(cl)
            return None if o is None else o.status

    def stop(self):
        self.broker.stop()
        self.oms.journal.close()


def quote(ask, ask_size, bid=None):
    return Quote(time.time_ns(), "AAPL.US", ask, bid=bid or ask - 0.02, ask=ask, bid_size=1000, ask_size=ask_size)


def test_live_fix_session_over_loopback(tmp_path):
    ex = FixExchange(tmp_path / "venue", clock=LiveClock()).start()
    journal = tmp_path / "client" / "orders.journal"
    c = Client(tmp_path / "client" / "fix", ex.port, journal)
    try:
        c.broker.start()
        ex.on_quote(quote(100.01, 200))
        # placed and partially filled
        c.submit(SubmitOrder("o1", "acc", "AAPL.US", Side.BUY, D(500), OrdType.LIMIT, D("100.05"), ts=time.time_ns()))
        wait_for(lambda: c.status("o1") is OrderStatus.PARTIALLY_FILLED, what="o1 partial")
        # replaced, then filled more under the new id
        rep = ReplaceOrder("o1", "o1b", D(600), D("100.06"), time.time_ns())
        with c.lock:
            c.oms.request_replace(rep)
        c.broker.send(rep)
        wait_for(lambda: c.status("o1b") is OrderStatus.PARTIALLY_FILLED and c.status("o1") is OrderStatus.REPLACED,
                 what="replace")
        ex.on_quote(quote(100.02, 100))
        wait_for(lambda: c.oms.orders["o1b"].cum_qty == 300, what="fill after replace")
        # cancelled
        with c.lock:
            c.oms.request_cancel(CancelOrder("o1b", time.time_ns()))
        c.broker.send(CancelOrder("o1b", time.time_ns()))
        wait_for(lambda: c.status("o1b") is OrderStatus.CANCELLED, what="cancel")
        # rejected by the venue (business) and by the session layer (required tag missing)
        c.submit(SubmitOrder("bad", "acc", "NOPE.XX", Side.BUY, D(1), OrdType.LIMIT, D(1), ts=time.time_ns()))
        wait_for(lambda: c.status("bad") is OrderStatus.REJECTED, what="venue reject")
        raw = SubmitOrder("raw", "acc", "AAPL.US", Side.BUY, D(1), OrdType.LIMIT, D(100), ts=time.time_ns())
        with c.lock:
            c.oms.submit(raw)
        msg = codec.new_order_single(raw)
        msg.removeField(40)
        c.broker.send_message(msg)
        wait_for(lambda: c.status("raw") is OrderStatus.REJECTED, what="session reject")
        # a resting order, then the connection drops (no logout) while the venue fills it
        c.submit(SubmitOrder("o2", "acc", "AAPL.US", Side.BUY, D(300), OrdType.LIMIT, D("99.00"), ts=time.time_ns()))
        wait_for(lambda: c.status("o2") is OrderStatus.NEW, what="o2 resting")
        ex.drop_connection()
        wait_for(lambda: not c.broker.logged_on.is_set(), what="disconnect")
        ex.on_quote(quote(98.99, 100))  # fills 100 of o2 while the client is away
        wait_for(c.broker.logged_on.is_set, what="automatic reconnect")
        wait_for(lambda: c.oms.orders["o2"].cum_qty == 100, what="fill resent after reconnect")
        # the client process restarts: sequence numbers continue from the FileStore, the OMS from its journal
        seq_before = c.broker.sequence_numbers()
        lost = SubmitOrder("o3", "acc", "AAPL.US", Side.BUY, D(10), OrdType.LIMIT, D("95.00"), ts=time.time_ns())
        with c.lock:
            c.oms.submit(lost)  # journaled, then the process dies before sending it
        c.stop()
        ex.on_quote(quote(98.98, 150))  # +150 for o2 while the client is down
        c = Client(tmp_path / "client" / "fix", ex.port, journal)
        assert c.oms.orders["o2"].cum_qty == 100  # rebuilt from the journal
        c.broker.start()
        seq_after = c.broker.sequence_numbers()
        assert seq_after[0] > 1 and seq_after[0] >= seq_before[0]
        wait_for(lambda: c.oms.orders["o2"].cum_qty == 250, what="fill resent after restart")
        rec = c.oms.reconcile(c.broker)
        assert [cmd.client_order_id for cmd in rec.resend] == ["o3"]
        for cmd in rec.resend:
            c.broker.send(cmd)
        wait_for(lambda: c.status("o3") is OrderStatus.NEW, what="lost order resent")
        # a duplicate NewOrderSingle for an order the venue has: it replays, nothing doubles
        c.broker.send(c.oms.commands["o2"])
        time.sleep(0.3)  # let any duplicate resend arrive before comparing

        with c.lock:
            venue = ex.order_state()
            assert set(venue) <= set(c.oms.orders)
            for cl, (status, cum) in venue.items():
                assert (c.oms.orders[cl].status.value, c.oms.orders[cl].cum_qty) == (status, cum), cl
            fills = [m for m in Journal.read(journal) if isinstance(m, OrderFilled)]
            assert len({f.exec_id for f in fills}) == len(fills)  # nothing applied twice
            live = sum(cum for st, cum in venue.values() if st != "replaced")  # a replacement carries the fills
            assert c.oms.positions.quantity("acc", "AAPL.US") == live == 550
        assert not c.broker.errors and not ex.errors
        log = "".join(p.read_text() for p in (tmp_path / "client" / "fix" / "log").glob("*.messages.current.log"))
        assert "\x0143=Y\x01" in log  # the venue resent with PossDupFlag
        accept_o2 = ex.engine.order_reports("o2")[0].exec_id
        assert log.count(f"\x0117={accept_o2}\x01") >= 2  # the duplicate order was answered by a replay
    finally:
        c.broker.stop()
        ex.stop()
