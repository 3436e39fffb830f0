"""FIX cases a real venue produces, against hand-written wire messages and the exchange
simulator over a real quickfix session: reports without optional tags, late fills after a
cancel, cancel and business rejects, ExecIDs reused across a venue restart, PossDup
resends, a logon refused by sequence number, a start that times out."""

from __future__ import annotations

import shutil
import time
from decimal import Decimal as D

import pytest
import quickfix as fix

from pyplatform.clock import LiveClock
from pyplatform.domain import Quote
from pyplatform.execution.fix import SessionDown, codec
from pyplatform.execution.fix.exchange import FixExchange
from pyplatform.execution.fix.initiator import FixBroker
from pyplatform.execution.fix.session import FixSessionConfig, data_dictionary, free_port, parse_venue
from pyplatform.execution.journal import Journal
from pyplatform.execution.messages import (
    OrderAccepted, OrderCanceled, OrderFilled, OrderReplaced, OrdType, Side, SubmitOrder, VenueNotice,
)
from pyplatform.execution.node import TradingNode
from pyplatform.execution.oms import ConflictingExecution, OrderManager
from pyplatform.execution.order import Order
from pyplatform.execution.states import OrderStatus
from pyplatform.risk.config import AccountLimits, RiskConfig

SOH = "\x01"
# What QuickFIX's example executor sent for a filled limit order (seen on the wire): no 60.
EXECUTOR_FILL = ("35=8|34=2|49=EXECUTOR|52=20261204-17:12:45.706|56=PYPLATFORM|1=main|6=100.5|11=o1|14=10|17=1|"
                 "31=100.5|32=10|37=1|38=10|39=2|54=1|55=AAPL.US|150=F|151=0|")


def framed(body: str) -> str:
    b = body.replace("|", SOH)
    head = f"8=FIX.4.4{SOH}9={len(b)}{SOH}"
    return head + b + f"10={sum((head + b).encode()) % 256:03d}{SOH}"


def parse(body: str) -> fix.Message:
    return fix.Message(framed(body), fix.DataDictionary(str(data_dictionary())), True)


# ----------------------------------------------------------------------------- codec


def test_executor_fill_without_transact_time_is_read_with_receive_time():
    ev = codec.read_execution_report(parse(EXECUTOR_FILL), 1_234, session="FIX.4.4:PYPLATFORM->EXECUTOR")
    assert ev == OrderFilled("o1", 1_234, "1", D(10), D("100.5"), D(0), session="FIX.4.4:PYPLATFORM->EXECUTOR")


def test_a_tag_the_dictionary_requires_is_named_when_missing():
    body = EXECUTOR_FILL.replace("17=1|", "")
    msg = fix.Message(framed(body))  # unvalidated: the codec itself must notice
    with pytest.raises(codec.FixFormatError, match=r"ExecID\(17\) missing \(required by the FIX 4.4 dictionary\)"):
        codec.read_execution_report(msg, 1)


def test_fill_without_last_qty_is_derived_from_cum_and_avg():
    body = EXECUTOR_FILL.replace("31=100.5|32=10|", "").replace("6=100.5|", "6=101.25|").replace("14=10|", "14=40|")
    prior = Order("o1", "main", "AAPL.US", Side.BUY, D(40), OrdType.LIMIT, D(102), "day", status=OrderStatus.NEW,
                  cum_qty=D(10), notional=D(1000))
    ev = codec.read_execution_report(parse(body), 1, prior={"o1": prior}.get)
    # 40 x 101.25 = 4050 in all, 1000 of it before: 30 more at 3050 / 30
    assert (ev.last_qty, ev.last_px) == (D(30), D(3050) / D(30))
    with pytest.raises(codec.FixFormatError, match=r"LastQty\(32\)/LastPx\(31\)"):
        codec.read_execution_report(parse(body), 1)


def test_report_without_clordid_is_attributed_by_order_id():
    body = EXECUTOR_FILL.replace("11=o1|", "")
    assert codec.read_execution_report(parse(body), 1, client_order_id_of={"1": "o1"}.get).client_order_id == "o1"
    with pytest.raises(codec.FixFormatError, match=r"no ClOrdID\(11\)"):
        codec.read_execution_report(parse(body), 1)


def test_poss_dup_flag_is_carried_on_fills():
    body = EXECUTOR_FILL.replace("34=2|", "34=2|43=Y|").replace("56=PYPLATFORM|", "56=PYPLATFORM|122=20261204-17:12:45.700|")
    assert codec.read_execution_report(parse(body), 1).poss_dup is True


def test_business_reject_fields():
    msg = parse("35=j|34=3|49=EXECUTOR|52=20261204-17:12:45.707|56=PYPLATFORM|45=3|58=Unsupported Message Type|"
                "372=F|380=3|")
    assert codec.read_business_reject(msg) == ("F", 3, None, "unsupported message type: Unsupported Message Type")


# ----------------------------------------------------------------------------- session files


def test_session_file_is_read_and_written_back(tmp_path):
    f = tmp_path / "venue.cfg"
    f.write_text("# our end of the session with the broker\n[DEFAULT]\nConnectionType=initiator\nHeartBtInt=15\n"
                 "ResetOnLogon=Y\nSocketConnectHost=10.1.2.3\n\n[SESSION]\nBeginString=FIX.4.4\n"
                 "SenderCompID=FUND1\nTargetCompID=BROKERX\nSocketConnectPort=9123\nLogonTimeout=7\n")
    cfg = parse_venue(str(f), tmp_path / "s")
    assert (cfg.host, cfg.port, cfg.sender_comp_id, cfg.target_comp_id, cfg.heartbeat_s, cfg.reset_on_logon,
            cfg.reset_on_logout, cfg.extra) == ("10.1.2.3", 9123, "FUND1", "BROKERX", 15, True, False,
                                                (("LogonTimeout", "7"),))
    text = cfg.write().read_text()
    for line in ("SenderCompID=FUND1", "TargetCompID=BROKERX", "SocketConnectHost=10.1.2.3", "SocketConnectPort=9123",
                 "ResetOnLogon=Y", "ResetOnLogout=N", "HeartBtInt=15", "LogonTimeout=7"):
        assert f"\n{line}\n" in text, line
    assert cfg.session_name == "FIX.4.4:FUND1->BROKERX"


def test_the_session_file_in_the_docs_parses_as_documented(tmp_path):
    """docs/trading.md's venue.cfg example is a file the platform reads (values by hand)."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "trading.md").read_text()
    section = doc[doc.index("### Pointing the platform at a real venue"):]
    block = section[section.index("```ini\n") + len("```ini\n"):]
    f = tmp_path / "venue.cfg"
    f.write_text(block[:block.index("```")])
    cfg = parse_venue(str(f), tmp_path / "s")
    assert (cfg.sender_comp_id, cfg.target_comp_id, cfg.host, cfg.port) == ("FUND1", "BROKERX",
                                                                          "fix.broker.example", 9878)
    assert (cfg.heartbeat_s, cfg.reconnect_s) == (30, 5)
    assert (cfg.reset_on_logon, cfg.reset_on_logout, cfg.reset_on_disconnect) == (False, False, False)
    assert cfg.store_path == Path("/var/lib/pyplatform/fix/store")
    assert cfg.extra == ()


@pytest.mark.parametrize("body,error", [
    ("[SESSION]\nSenderCompID=A\nSocketConnectPort=1\n", "TargetCompID missing"),
    ("[SESSION]\nSenderCompID=A\nTargetCompID=B\nSocketConnectPort=x\n", "SocketConnectPort='x' is not an integer"),
    ("[SESSION]\nConnectionType=acceptor\nSenderCompID=A\nTargetCompID=B\nSocketConnectPort=1\n", "must be initiator"),
    ("[SESSION]\nSenderCompID=A\nTargetCompID=B\nSocketConnectPort=1\nResetOnLogon=maybe\n", "expected Y or N"),
    ("SenderCompID=A\n", "expected KEY=VALUE inside"),
])
def test_bad_session_files_name_the_problem(tmp_path, body, error):
    f = tmp_path / "bad.cfg"
    f.write_text(body)
    with pytest.raises(ValueError, match=error):
        FixSessionConfig.from_file(f)


def test_venue_spec_host_port_and_errors(tmp_path):
    cfg = parse_venue("fix.example.com:9878", tmp_path, target_comp_id="BROKERX", reset_on_logon=True)
    assert (cfg.host, cfg.port, cfg.target_comp_id, cfg.reset_on_logon) == ("fix.example.com", 9878, "BROKERX", True)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_venue("no-such-file-or-port", tmp_path)


# ----------------------------------------------------------------------------- execution identity (pure)


def _oms_with(*ids):
    oms = OrderManager()
    for cl in ids:
        oms.submit(SubmitOrder(cl, "a", "AAPL.US", Side.BUY, D(10), OrdType.LIMIT, D(100)))
    return oms


def test_exec_id_reused_on_another_order_is_a_new_execution():
    oms = _oms_with("o1", "o2")
    assert oms.apply(OrderFilled("o1", 1, "1", D(10), D(100), D(0), session="S")) is not None
    # the venue restarted and counts from 1 again: same id, same terms, another order
    assert oms.apply(OrderFilled("o2", 2, "1", D(10), D(100), D(0), session="S")) is not None
    assert oms.positions.quantity("a", "AAPL.US") == 20


def test_a_resend_is_dropped_and_a_conflicting_resend_refused():
    oms = _oms_with("o1")
    oms.apply(OrderFilled("o1", 1, "E1", D(4), D(100), D(6), session="S"))
    assert oms.apply(OrderFilled("o1", 1, "E1", D(4), D(100), D(6), session="S", poss_dup=True)) is None
    assert oms.duplicates == []  # flagged resends are expected
    assert oms.apply(OrderFilled("o1", 1, "E1", D(4), D(100), D(6), session="S")) is None
    assert len(oms.duplicates) == 1  # an unflagged repeat is kept visible
    with pytest.raises(ConflictingExecution, match="resent report exec 'E1'"):
        oms.apply(OrderFilled("o1", 1, "E1", D(5), D(100), D(5), session="S", poss_dup=True))
    # the same id with new terms and no PossDup: the venue reused the id for a new execution
    assert oms.apply(OrderFilled("o1", 2, "E1", D(6), D(101), D(0), session="S")) is not None
    assert oms.orders["o1"].cum_qty == 10 and len(oms.reused_exec_ids) == 1


def test_identity_follows_the_order_chain_across_a_replace():
    oms = _oms_with("o1")
    oms.apply(OrderAccepted("o1", 1, "B1", "E1"))
    oms.apply(OrderFilled("o1", 2, "E2", D(4), D(100), D(6), session="S"))
    oms.request_replace(__import__("pyplatform.execution.messages", fromlist=["ReplaceOrder"]).ReplaceOrder(
        "o1", "o1b", D(12), D(100), 3))
    oms.apply(OrderReplaced("o1", 4, "o1b", D(12), D(100), "E3"))
    # the venue resends the first fill, still naming o1: it must not fill o1b again
    assert oms.apply(OrderFilled("o1", 2, "E2", D(4), D(100), D(6), session="S", poss_dup=True)) is None
    assert oms.orders["o1b"].cum_qty == 4


def test_notice_is_journaled_and_recovered(tmp_path):
    path = tmp_path / "j"
    oms = OrderManager(Journal(path))
    oms.apply(VenueNotice(5, "S", "logon_refused", "MsgSeqNum too low"))
    oms.journal.close()
    assert OrderManager.recover(path, reopen=False).notices == [VenueNotice(5, "S", "logon_refused",
                                                                            "MsgSeqNum too low")]


# ----------------------------------------------------------------------------- live sessions


def wait_for(cond, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def permissive() -> RiskConfig:
    return RiskConfig(default=AccountLimits(rate_per_s=1e9, burst=10**9, concentration=100.0, price_band=0.5,
                                            daily_loss_limit=0.99, kill_on_breach="none"))


def quote(px=100.0, size=1000):
    return Quote(time.time_ns(), "AAPL.US", px, bid=px - 0.01, ask=px + 0.01, bid_size=size, ask_size=size)


def node_for(tmp_path, ex, **kw):
    node = TradingNode(None, {}, LiveClock(), "fix", risk_config=permissive(), journal=tmp_path / "client" / "j",
                       fix_session=FixSessionConfig(tmp_path / "client" / "fix", "initiator", ex.port), **kw)
    node.on_quote(quote())
    return node


def limit(cl, qty, px, side=Side.BUY):
    return SubmitOrder(cl, "main", "AAPL.US", side, D(qty), OrdType.LIMIT, D(px), ts=time.time_ns())


def status_of(node, cl):
    with node._lock:
        o = node.oms.orders.get(cl)
        return None if o is None else o.status


def test_late_fill_cancel_reject_business_reject_and_unreadable_report(tmp_path):
    ex = FixExchange(tmp_path / "venue", clock=LiveClock()).start()
    node = node_for(tmp_path, ex)
    try:
        # a resting order is cancelled; then the venue reports a fill that crossed the cancel
        node.submit(limit("o1", 10, "99.00"))
        wait_for(lambda: status_of(node, "o1") is OrderStatus.NEW, what="o1 resting")
        node.cancel("o1", "test")
        wait_for(lambda: status_of(node, "o1") is OrderStatus.CANCELLED, what="o1 cancelled")
        ex.send_message(codec.execution_report(OrderFilled("o1", time.time_ns(), "LATE-1", D(4), D("99.00"), D(0)),
                                               symbol="AAPL.US", side=Side.BUY, order_id="SIMEX-1", cum_qty=D(4),
                                               leaves_qty=D(0), avg_px=D("99.00")))
        wait_for(lambda: node.oms.orders["o1"].late_fill_qty == 4, what="late fill applied")
        assert status_of(node, "o1") is OrderStatus.CANCELLED
        assert node.oms.positions.quantity("main", "AAPL.US") == 4
        assert node.status()["late_fills"] == {"o1": "4"}

        # the venue refuses a cancel: the order goes back to where it was, with the venue's words
        node.submit(limit("o2", 10, "99.00"))
        wait_for(lambda: status_of(node, "o2") is OrderStatus.NEW, what="o2 resting")
        ex.refuse_cancels = "market closed for cancels"
        node.cancel("o2")
        wait_for(lambda: status_of(node, "o2") is OrderStatus.NEW and node.oms.orders["o2"].reject_reason,
                 what="cancel rejected")
        assert node.oms.orders["o2"].reject_reason == "market closed for cancels"

        # the venue refuses orders with a BusinessMessageReject: the order is rejected
        ex.refuse_orders = "trading halted"
        node.submit(limit("o3", 5, "99.50"))
        wait_for(lambda: status_of(node, "o3") is OrderStatus.REJECTED, what="business reject")
        assert node.oms.orders["o3"].reject_reason == "business reject: application not available: trading halted"
        ex.refuse_orders = None

        # reconcile: the simulator does not support OrderStatusRequest; that is reported per order
        node.broker.request_status("o2")
        wait_for(lambda: any(n.kind == "reconcile" for n in node.oms.notices), what="reconcile notice")
        assert "o2" in node.oms.notices[-1].text and "unsupported message type" in node.oms.notices[-1].text

        # a report the adapter cannot apply (a trade correction) is surfaced, never just logged
        bad = codec.execution_report(OrderCanceled("o2", time.time_ns(), "", "X9"), symbol="AAPL.US", side=Side.BUY,
                                     order_id="SIMEX-2", cum_qty=D(0), leaves_qty=D(0), avg_px=D(0))
        bad.setField(fix.StringField(150, "G"))
        ex.send_message(bad)
        wait_for(lambda: any("ExecType (150) 'G'" in e for e in node.broker.errors), what="unparseable visible")
        assert any("ExecType (150) 'G'" in n for n in node.status()["notices"])
        kinds = [m.kind for m in Journal.read(tmp_path / "client" / "j") if isinstance(m, VenueNotice)]
        assert "unparseable" in kinds and "reconcile" in kinds
        assert status_of(node, "o2") is OrderStatus.NEW  # nothing applied from it

        # a venue that answers OrderStatusRequest (ExecType I): compared with our view, reported
        def status_report(ord_status, cum):
            m = codec.execution_report(OrderAccepted("o2", time.time_ns(), "SIMEX-2", f"I-{ord_status}"),
                                       symbol="AAPL.US", side=Side.BUY, order_id="SIMEX-2", cum_qty=D(cum),
                                       leaves_qty=D(10 - cum), avg_px=D(0))
            m.setField(fix.StringField(150, "I"))
            m.setField(fix.StringField(39, ord_status))
            return m

        ex.send_message(status_report("0", 0))
        wait_for(lambda: any("venue says new, CumQty 0; here: new, CumQty 0" in h for h in node.broker.history),
                 what="status answer recorded")
        assert not any("venue says new" in e for e in node.broker.errors)  # agreement is no error
        ex.send_message(status_report("2", 10))
        wait_for(lambda: any("venue says filled, CumQty 10; here: new, CumQty 0" in e for e in node.broker.errors),
                 what="status disagreement is an error")
        assert status_of(node, "o2") is OrderStatus.NEW  # reported, not guessed at

        # a report missing a tag the dictionary requires is refused by quickfix itself (35=3
        # back to the venue) before the adapter sees it: that is surfaced too
        incomplete = codec.execution_report(OrderCanceled("o2", time.time_ns(), "", "X10"), symbol="AAPL.US",
                                            side=Side.BUY, order_id="SIMEX-2", cum_qty=D(0), leaves_qty=D(0),
                                            avg_px=D(0))
        incomplete.removeField(39)  # OrdStatus, required in a FIX 4.4 ExecutionReport
        ex.send_message(incomplete)
        wait_for(lambda: any("we rejected the venue's 35=8" in e and "tag 39" in e for e in node.broker.errors),
                 what="quickfix's own reject visible")
        assert status_of(node, "o2") is OrderStatus.NEW
    finally:
        node.close()
        ex.stop()


def test_exec_ids_reused_after_a_venue_restart_and_possdup_resend(tmp_path):
    ex = FixExchange(tmp_path / "venue", clock=LiveClock()).start()
    node = node_for(tmp_path, ex)
    try:
        ex.on_quote(quote())
        node.submit(limit("d1", 10, "100.05"))
        wait_for(lambda: status_of(node, "d1") is OrderStatus.FILLED, what="d1 filled")
        first = [e.exec_id for e in ex.engine.order_reports("d1")]
        # the venue restarts with a fresh engine: its ExecIDs count from the start again
        port = ex.port
        ex.stop()
        wait_for(lambda: node.session_down() is not None, what="down")
        ex = FixExchange(tmp_path / "venue", port=port, clock=LiveClock()).start()
        wait_for(lambda: node.session_down() is None, what="logon after venue restart")
        ex.on_quote(quote())
        node.submit(limit("d2", 10, "100.05"))
        wait_for(lambda: status_of(node, "d2") is OrderStatus.FILLED, what="d2 filled")
        assert [e.exec_id for e in ex.engine.order_reports("d2")] == first  # the same ids, the same terms
        assert node.oms.positions.quantity("main", "AAPL.US") == 20
        # the connection drops while the venue fills: the resend carries PossDup and fills once
        node.submit(limit("d3", 10, "99.00"))
        wait_for(lambda: status_of(node, "d3") is OrderStatus.NEW, what="d3 resting")
        ex.drop_connection()
        wait_for(lambda: node.session_down() is not None, what="drop")
        ex.on_quote(quote(98.99))
        wait_for(lambda: status_of(node, "d3") is OrderStatus.FILLED, what="d3 filled by the resend")
        time.sleep(0.3)  # let a duplicate arrive if one were coming
        assert node.oms.positions.quantity("main", "AAPL.US") == 30
        fills = [m for m in Journal.read(tmp_path / "client" / "j") if isinstance(m, OrderFilled)]
        assert len(fills) == 3 and not node.oms.duplicates
    finally:
        node.close()
        ex.stop()


def test_logon_refused_by_sequence_number_is_visible_then_followed(tmp_path):
    ex = FixExchange(tmp_path / "venue", clock=LiveClock()).start()
    node = node_for(tmp_path, ex)
    try:
        ex.on_quote(quote())
        node.submit(limit("s1", 10, "100.05"))
        wait_for(lambda: status_of(node, "s1") is OrderStatus.FILLED, what="s1 filled")
        port = ex.port
        ex.stop()
        shutil.rmtree(tmp_path / "venue" / "store")  # the venue lost its sequence numbers
        ex = FixExchange(tmp_path / "venue", port=port, clock=LiveClock()).start()
        wait_for(lambda: node.status()["session"]["last_problem"].startswith("venue's logon refused"),
                 what="refused logon visible")
        st = node.status()["session"]
        assert st["state"] in ("connecting", "no_logon") and "MsgSeqNum too low, expecting" in st["down_reason"]
        refused = node.submit(limit("s2", 1, "100.00")).refused
        assert refused[0].rule == "session_down" and "MsgSeqNum too low" in refused[0].reason
        with pytest.raises(SessionDown):
            node.broker.send(limit("s3", 1, "100.00"))
        node.broker.on_sequence_reset = "follow"
        wait_for(lambda: node.session_down() is None, timeout=15, what="logon after following")
        ex.on_quote(quote())
        node.submit(limit("s4", 10, "100.05"))
        wait_for(lambda: status_of(node, "s4") is OrderStatus.FILLED, what="s4 filled")
        assert node.broker.sequence_numbers()[0] < 10  # started again at 1
    finally:
        node.close()
        ex.stop()


def test_held_orders_are_routed_after_the_next_logon(tmp_path):
    ex = FixExchange(tmp_path / "venue", clock=LiveClock()).start()
    node = node_for(tmp_path, ex, on_session_down="queue")
    try:
        ex.on_quote(quote())
        port = ex.port
        ex.stop()
        wait_for(lambda: node.session_down() is not None, what="down")
        assert node.submit(limit("q1", 10, "100.05")).refused == []
        assert node.status()["held_orders"] == 1 and "q1" not in node.oms.orders
        ex = FixExchange(tmp_path / "venue", port=port, clock=LiveClock()).start()
        ex.on_quote(quote())
        wait_for(lambda: node.session_down() is None, what="logon")
        node.step()
        wait_for(lambda: status_of(node, "q1") is OrderStatus.FILLED, what="held order filled")
        assert node.status()["held_orders"] == 0
    finally:
        node.close()
        ex.stop()


def test_start_that_times_out_stops_everything(tmp_path):
    port = free_port()  # nobody listens
    b = FixBroker(config=FixSessionConfig(tmp_path / "fix", "initiator", port), clock=LiveClock())
    with pytest.raises(TimeoutError, match=f"127.0.0.1:{port}"):
        b.start(wait_s=1.0)
    assert b._initiator is None and b.status()["state"] == "stopped"
    # the node closes its journal when the broker it builds cannot start
    with pytest.raises(TimeoutError):
        TradingNode(None, {}, LiveClock(), "fix", journal=tmp_path / "j", fix_logon_wait_s=1.0,
                    fix_session=FixSessionConfig(tmp_path / "fix2", "initiator", port))


def test_live_page_shows_the_session_in_the_venues_words():
    from pyplatform.dashboard.pages.live import risk_panel

    down = {"session": "FIX.4.4:PYPLATFORM->EXECUTOR", "venue": "127.0.0.1:9", "state": "no_logon",
            "logged_on": False, "logons": 2, "down_reason": "not logged on for 12s: venue's logon refused: "
            "MsgSeqNum too low, expecting 7 but received 1", "last_problem": ""}
    panel = risk_panel({"kill_switch": False, "fix_session": down})
    line = next(c for c in panel.children if getattr(c, "id", None) == "fix-session")
    assert line.children == ("FIX FIX.4.4:PYPLATFORM->EXECUTOR at 127.0.0.1:9: no_logon · 2 logon(s) · not logged "
                             "on for 12s: venue's logon refused: MsgSeqNum too low, expecting 7 but received 1")
    assert "kill-on" in line.className
    assert not any("fix_session" in str(getattr(c, "children", "")) for c in panel.children)


def test_after_a_restart_the_node_asks_the_venue_about_orders_it_cannot_know(tmp_path):
    ex = FixExchange(tmp_path / "venue", clock=LiveClock()).start()
    node = node_for(tmp_path, ex)
    try:
        with node._lock:
            node.oms.submit(limit("lost", 10, "99.00"))  # journaled, then the process dies before sending
        node.close()
        node = node_for(tmp_path, ex)
        assert status_of(node, "lost") is OrderStatus.PENDING_NEW
        node.step()  # the first step after a logon reconciles
        wait_for(lambda: any(n.kind == "reconcile" and "lost" in n.text for n in node.oms.notices),
                 what="reconcile notice for the unknown order")
        assert any("reconcile: order lost" in n for n in node.status()["notices"])
        # the order manager then lists it for sending again, under the same id
        rec = node.oms.reconcile(node.broker)
        assert [c.client_order_id for c in rec.resend] == ["lost"]
        node.broker.send(rec.resend[0])
        wait_for(lambda: status_of(node, "lost") is OrderStatus.NEW, what="resent order accepted")
    finally:
        node.close()
        ex.stop()
