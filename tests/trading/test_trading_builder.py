"""build_trading_node: settings -> journal, kill file, risk, broker and FIX session of a node."""

import json
import time
from decimal import Decimal as D

import pytest

from pyplatform.clock import LiveClock, SimClock
from pyplatform.config import get_settings
from pyplatform.domain import Quote
from pyplatform.execution.builder import build_trading_node
from pyplatform.execution.fix.exchange import FixExchange
from pyplatform.execution.fix.session import free_port
from pyplatform.execution.journal import Journal
from pyplatform.execution.messages import OrdType, Side, SubmitOrder
from pyplatform.execution.states import OrderStatus


def test_paper_node_from_settings_uses_the_data_dir(tmp_path):
    settings = get_settings(data_dir=tmp_path)
    node = build_trading_node(settings, SimClock(1_000), account="acc")
    try:
        assert node.oms.journal.path == tmp_path / "trading" / "acc" / "orders.journal"
        node.on_quote(Quote(1_000, "AAPL.US", 100.0, bid=99.99, ask=100.01, bid_size=1e6, ask_size=1e6))
        assert not node.submit(SubmitOrder("o1", "acc", "AAPL.US", Side.BUY, D(100), OrdType.LIMIT, D("100.05"),
                                           ts=1_000)).refused
        assert [type(m).__name__ for m in Journal.read(node.oms.journal.path)][:1] == ["SubmitOrder"]
        (tmp_path / "trading" / "acc" / "kill.json").write_text(json.dumps({"mode": "halt", "reason": "drill"}))
        node.step()
        assert node.status()["kill_switch"] == "HALT" and node.status()["kill_reason"] == "drill"
    finally:
        node.close()


def test_fix_node_from_a_venue_spec(tmp_path):
    ex = FixExchange(tmp_path / "venue", clock=LiveClock()).start()
    settings = get_settings(data_dir=tmp_path / "data")
    node = build_trading_node(settings, LiveClock(), broker="fix", venue=f"127.0.0.1:{ex.port}")
    try:
        assert node.status()["session"]["state"] == "logged_on"
        assert (tmp_path / "data" / "trading" / "main" / "fix" / "initiator.cfg").exists()
        q = Quote(time.time_ns(), "AAPL.US", 100.0, bid=99.99, ask=100.01, bid_size=1e6, ask_size=1e6)
        node.on_quote(q)
        ex.on_quote(q)
        node.submit(SubmitOrder("f1", "main", "AAPL.US", Side.BUY, D(10), OrdType.LIMIT, D("100.05"),
                                ts=time.time_ns()))
        end = time.monotonic() + 10
        while node.oms.orders["f1"].status is not OrderStatus.FILLED and time.monotonic() < end:
            time.sleep(0.02)
        assert node.oms.orders["f1"].status is OrderStatus.FILLED
    finally:
        node.close()
        ex.stop()


def test_bad_builds_say_what_is_wrong(tmp_path):
    settings = get_settings(data_dir=tmp_path)
    with pytest.raises(ValueError, match="broker must be 'paper' or 'fix'"):
        build_trading_node(settings, SimClock(0), broker="ib")
    with pytest.raises(ValueError, match="venue needs broker='fix'"):
        build_trading_node(settings, SimClock(0), venue="127.0.0.1:1")
    with pytest.raises(ValueError, match="HOST:PORT"):
        build_trading_node(settings, SimClock(0), broker="fix", venue="nowhere")
    with pytest.raises(TimeoutError, match="timed out"):
        build_trading_node(settings, LiveClock(), broker="fix", venue=f"127.0.0.1:{free_port()}", logon_wait_s=0.5)


def test_fix_venue_from_settings(tmp_path):
    ex = FixExchange(tmp_path / "venue", clock=LiveClock()).start()
    settings = get_settings(data_dir=tmp_path / "data", fix_venue=f"127.0.0.1:{ex.port}", fix_port=1)
    node = build_trading_node(settings, LiveClock(), broker="fix")
    try:
        # fix_port=1 would fail: the session reached the venue named by the setting
        assert node.status()["session"]["state"] == "logged_on"
    finally:
        node.close()
        ex.stop()
