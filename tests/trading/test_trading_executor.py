"""The project's order path (TradingNode -> risk -> OrderManager -> FixBroker) against a FIX
venue nobody here wrote: QuickFIX's own example executor, fetched from Debian's packages by
``scripts/fetch_quickfix_executor.sh`` and run on loopback as a FIX.4.4 acceptor.

The oracle is the executor's own output: every ExecutionReport it printed. After each step
-- fills, a refused market order, a cancel it cannot handle, a SIGKILL and a restart with
ResetOnLogon=N and then =Y -- the node's positions must equal what the executor executed,
with nothing lost (its ExecIDs restart at 1 in each process) and nothing doubled.
"""

from __future__ import annotations

import time
from decimal import Decimal as D

import pytest

from pyplatform.clock import LiveClock
from pyplatform.domain import Quote
from pyplatform.execution.fix.session import data_dictionary, parse_venue
from pyplatform.execution.journal import Journal
from pyplatform.execution.messages import OrderFilled, OrdType, Side, SubmitOrder, VenueNotice
from pyplatform.execution.node import TradingNode
from pyplatform.execution.states import OrderStatus
from pyplatform.risk.config import AccountLimits, RiskConfig

from executor_support import Executor, fetch_executor, free_port

SYMBOLS = {"AAPL.US": 100.0, "MSFT.US": 300.0}


@pytest.fixture(scope="module")
def executor_cache():
    # fetched once per machine (cached); a failure to fetch is a failure, not a skip
    return fetch_executor()


def wait_for(cond, timeout=15.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def permissive() -> RiskConfig:
    return RiskConfig(default=AccountLimits(rate_per_s=1e9, burst=10**9, concentration=100.0, price_band=0.5,
                                            daily_loss_limit=0.99, kill_on_breach="none"))


def order(cl, symbol, side, qty, px=None, kind=OrdType.LIMIT):
    return SubmitOrder(cl, "main", symbol, side, D(qty), kind, None if px is None else D(px), ts=time.time_ns())


def positions(node) -> dict:
    with node._lock:
        return {p.symbol: p.quantity for p in node.oms.positions.positions("main") if p.quantity}


def journal_fills(path) -> list[OrderFilled]:
    return [m for m in Journal.read(path) if isinstance(m, OrderFilled)]


def test_trading_node_against_quickfix_executor(tmp_path, executor_cache):
    port = free_port()
    ex = Executor(executor_cache, tmp_path / "venue", port, data_dictionary()).start(reset_on_logon=False)
    session = parse_venue(f"127.0.0.1:{port}", tmp_path / "client" / "fix", target_comp_id="EXECUTOR",
                          heartbeat_s=5)
    journal = tmp_path / "client" / "orders.journal"
    node = TradingNode(None, {}, LiveClock(), "fix", risk_config=permissive(), journal=journal,
                       fix_session=session)
    try:
        for sym, px in SYMBOLS.items():
            node.on_quote(Quote(time.time_ns(), sym, px, bid=px - 0.01, ask=px + 0.01, bid_size=1e6, ask_size=1e6))
        # --- limit orders: the executor fills each at once, without TransactTime(60)
        for cmd in (order("a1", "AAPL.US", Side.BUY, 100, "100.05"), order("a2", "AAPL.US", Side.SELL, 30, "100.10"),
                    order("m1", "MSFT.US", Side.BUY, 7, "300.25")):
            assert not node.submit(cmd).refused
        wait_for(lambda: all(node.oms.orders[c].status is OrderStatus.FILLED for c in ("a1", "a2", "m1")),
                 what="three fills")
        assert positions(node) == ex.positions() == {"AAPL.US": D(70), "MSFT.US": D(7)}
        assert node.oms.orders["a2"].avg_px == D("100.10")

        # --- a market order: the executor refuses it with a session Reject (373=5 on tag 40)
        node.submit(order("mkt", "AAPL.US", Side.BUY, 5, kind=OrdType.MARKET))
        wait_for(lambda: node.oms.orders["mkt"].status is OrderStatus.REJECTED, what="session reject")
        assert "tag 40" in node.oms.orders["mkt"].reject_reason

        # --- a cancel the executor cannot handle (35=j, unsupported message type), sent before
        # the order's fill is applied: the order ends FILLED, the reject is kept as stale
        with node._lock:  # the fill waits for the lock, so the cancel goes out while pending_new
            node.submit(order("c1", "AAPL.US", Side.BUY, 10, "100.00"))
            node.cancel("c1", "test cancel")
            assert node.oms.orders["c1"].status is OrderStatus.PENDING_CANCEL
        wait_for(lambda: node.oms.orders["c1"].status is OrderStatus.FILLED and node.oms.stale,
                 what="fill and cancel reject")
        stale = node.oms.stale[-1]
        assert stale.client_order_id == "c1" and "unsupported message type" in stale.reason.lower()
        assert positions(node) == ex.positions() == {"AAPL.US": D(80), "MSFT.US": D(7)}

        # --- the venue crashes: the session is down, visibly, and orders are refused with that reason
        ex.kill()
        wait_for(lambda: node.session_down() is not None, what="session down")
        refused = node.submit(order("while-down", "AAPL.US", Side.BUY, 1, "100.00")).refused
        assert refused and refused[0].rule == "session_down" and "not logged on" in refused[0].reason
        assert "while-down" not in node.oms.orders

        # --- restart with ResetOnLogon=N (its store continues; its ExecIDs start again at 1)
        ex.start(reset_on_logon=False)
        wait_for(lambda: node.session_down() is None, what="logon after restart (N)")
        node.step()
        # the same terms as a1/a2: with ExecIDs 1 and 2 again, only the order tells them apart
        for cmd in (order("b1", "AAPL.US", Side.BUY, 100, "100.05"), order("b2", "AAPL.US", Side.SELL, 30, "100.10")):
            assert not node.submit(cmd).refused
        wait_for(lambda: all(node.oms.orders[c].status is OrderStatus.FILLED for c in ("b1", "b2")),
                 what="fills after restart")
        assert [f[17] for f in ex.sent("8") if f[11] in ("b1", "b2")] == ["1", "2"]  # ExecIDs reused...
        assert positions(node) == ex.positions() == {"AAPL.US": D(150), "MSFT.US": D(7)}  # ...nothing lost

        # --- restart with ResetOnLogon=Y: its logon comes with MsgSeqNum 1. Policy "report":
        # the logon is refused, and status/errors/journal say why in the venue's words
        ex.kill()
        wait_for(lambda: node.session_down() is not None, what="session down again")
        ex.start(reset_on_logon=True)
        wait_for(lambda: "logon_refused" in " ".join(node.broker.errors), what="refused logon visible")
        st = node.status()["session"]
        assert not st["logged_on"] and "MsgSeqNum too low" in st["down_reason"]
        assert any(isinstance(m, VenueNotice) and m.kind == "logon_refused" for m in Journal.read(journal))
        assert node.submit(order("refused", "AAPL.US", Side.BUY, 1, "100.00")).refused[0].rule == "session_down"
        # policy "follow": both sides start again at 1 and trading resumes
        node.broker.on_sequence_reset = "follow"
        wait_for(lambda: node.session_down() is None, timeout=20, what="logon after following the reset")
        node.step()
        for cmd in (order("r1", "AAPL.US", Side.BUY, 15, "100.01"), order("r2", "MSFT.US", Side.SELL, 4, "299.90")):
            assert not node.submit(cmd).refused
        wait_for(lambda: all(node.oms.orders[c].status is OrderStatus.FILLED for c in ("r1", "r2")),
                 what="fills after reset")
        assert positions(node) == ex.positions() == {"AAPL.US": D(165), "MSFT.US": D(3)}
        status = node.status()
        assert status["session"]["logons"] == 3
        assert any("sequence_reset" in h for h in status["session"]["history"])

        # nothing doubled: one journaled fill per execution the venue reported, every one applied
        fills = journal_fills(journal)
        venue_trades = [f for f in ex.sent("8") if f.get(150) == "F"]
        assert len(fills) == len(venue_trades) == 8
        assert len({(f.session, f.client_order_id, f.exec_id) for f in fills}) == len(fills)
        assert len({f.exec_id for f in fills}) < len(fills)  # the same ExecIDs, told apart by order
        assert not node.oms.duplicates
    finally:
        node.close()
        ex.kill()


def test_trade_run_reaches_an_outside_venue_from_a_session_file(tmp_path, executor_cache, monkeypatch):
    import json

    from typer.testing import CliRunner

    from pyplatform.cli.trade import app
    from pyplatform.config import reset_settings_cache

    port = free_port()
    ex = Executor(executor_cache, tmp_path / "venue", port, data_dictionary()).start()
    session_file = tmp_path / "executor-session.cfg"
    session_file.write_text("[DEFAULT]\nConnectionType=initiator\nHeartBtInt=5\n\n[SESSION]\nBeginString=FIX.4.4\n"
                            f"SenderCompID=PYPLATFORM\nTargetCompID=EXECUTOR\nSocketConnectHost=127.0.0.1\n"
                            f"SocketConnectPort={port}\n")
    monkeypatch.setenv("PYPLATFORM_DATA_DIR", str(tmp_path / "data"))
    reset_settings_cache()
    runner = CliRunner()
    try:
        r = runner.invoke(app, ["run", "--broker", "fix", "--venue", str(session_file), "--symbols", "2",
                                "--minutes", "120", "--strategy", "ma_cross"])
        assert r.exit_code == 0, r.output
        assert "FIX session FIX.4.4:PYPLATFORM->EXECUTOR at 127.0.0.1:" in r.output and ": logged_on" in r.output
        r = runner.invoke(app, ["status", "--json"])
        status = json.loads(r.output)
        venue = ex.positions()
        assert venue, "the strategy traded nothing: the test proves nothing"
        assert {p["symbol"]: D(p["quantity"]) for p in status["positions"] if D(p["quantity"])} == venue
        assert status["open_orders"] == []  # the executor fills every limit order at once
    finally:
        reset_settings_cache()
        ex.kill()
