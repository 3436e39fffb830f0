"""The iTick client against the exchange simulator over real loopback WebSockets."""

from __future__ import annotations

import asyncio
import logging

import pytest

from feeds_support import SYMBOLS, TOKEN, assert_complete_and_unique, feed_session
from pyplatform.clock import SimClock
from pyplatform.feeds import AuthenticationFailed, SubscriptionLimitError
from pyplatform.feeds.simulator import FaultPlan, SimulatorConfig


def sim_config(**kw) -> SimulatorConfig:
    return SimulatorConfig(sessions=False, rate=kw.pop("rate", 3000), record=True, token=TOKEN, **kw)


def test_auth_subscribe_stream_and_token_never_logged(tmp_path, caplog):
    with caplog.at_level(logging.DEBUG):
        s = asyncio.run(feed_session(tmp_path, 0.8, sim_config()))
    assert s.error is None
    conn = s.sim.connections[0]
    assert conn.authenticated and conn.subscriptions == [SYMBOLS]
    st = s.client.stats
    assert st.connects == 1 and st.subscribed == 1 and st.ticks > 100 and st.quotes > 0 and st.depth > 0
    assert s.tables.get_table("quotes").read().num_rows == st.quotes
    assert set(s.tables.get_table("depth").read().column("side").to_pylist()) == {1, -1}
    assert_complete_and_unique(s)
    # the handshake was logged at DEBUG by websockets (so this check can fail) ...
    assert "GET /all HTTP/1.1" in caplog.text
    # ... but the token never appears, neither in logs nor in reprs
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(s.client) and TOKEN not in repr(s.client.config)


@pytest.mark.parametrize("fault", ["wrong token", "reject_auth"])
def test_auth_failure_is_reported_and_not_retried(tmp_path, caplog, fault):
    cfg = sim_config(faults=FaultPlan(reject_auth=fault == "reject_auth"))
    token = "not-the-token" if fault == "wrong token" else TOKEN

    async def go():
        s = await feed_session(tmp_path, 1.0, cfg, token=token)
        await asyncio.sleep(0.3)  # a tight retry loop would open more connections meanwhile
        return s

    s = asyncio.run(go())
    assert isinstance(s.error, AuthenticationFailed)
    assert len(s.sim.connections) == 1 and not s.sim.connections[0].authenticated
    assert s.client.stats.auth_failures == 1
    assert "authentication failed" in caplog.text and token not in caplog.text


def test_subscription_limit_is_an_error(tmp_path):
    s = asyncio.run(feed_session(tmp_path, 1.0, sim_config(max_subscriptions=2)))
    assert isinstance(s.error, SubscriptionLimitError)
    assert "maximum subscription limit" in str(s.error)


def test_heartbeats_ping_every_interval_and_check_the_echo(tmp_path):
    s = asyncio.run(feed_session(tmp_path, 1.0, sim_config(rate=200)))
    pings = s.sim.connections[0].pings
    assert len(pings) >= 5 and all(p.isdigit() for p in pings)
    st = s.client.stats
    assert st.pongs >= len(pings) - 2 and st.pong_mismatches == 0


@pytest.mark.parametrize("name, plan, feed_kw", [
    ("drop", FaultPlan(drop_after=400), {}),
    ("stall, WebSocket ping timeout", FaultPlan(stall_after=400, stall_s=2.5),
     {"ws_ping_interval_s": 0.2, "ws_ping_timeout_s": 0.6, "silence_timeout_s": 10.0}),
    ("stall, silence watchdog", FaultPlan(stall_after=400, stall_s=2.5),
     {"ws_ping_interval_s": None, "silence_timeout_s": 0.8}),
])
def test_connection_faults_reconnect_resubscribe_and_lose_nothing_sent(tmp_path, name, plan, feed_kw):
    s = asyncio.run(feed_session(tmp_path, 2.5, sim_config(faults=plan), **feed_kw))
    assert s.error is None
    first, second = s.sim.connections[0], s.sim.connections[1]
    assert first.fault in ("dropped", "stalled")
    assert second.authenticated and second.subscriptions == first.subscriptions == [SYMBOLS]
    st = s.client.stats
    assert st.connects >= 2 and st.reconnects >= 1
    expected = {"watchdog": "silence timeout", "ping timeout": "keepalive ping timeout"}.get(
        next((k for k in ("watchdog", "ping timeout") if k in name), ""), "no close frame")
    assert any(expected in e for e in st.errors), st.errors
    if "watchdog" in name:
        assert st.dead_connections >= 1
    assert st.gaps and st.gaps[0].reason == "reconnect" and st.gaps[0].end_ns > st.gaps[0].start_ns
    assert st.gaps[0].missing > 0  # the market moved on while we were away: sequence numbers skipped
    assert_complete_and_unique(s)
    assert s.bars, "the gap's bars were not backfilled over REST"


@pytest.mark.parametrize("plan", [FaultPlan(malformed_every=25), FaultPlan(duplicate_every=5),
                                  FaultPlan(reorder_every=4)], ids=["malformed", "duplicated", "out-of-order"])
def test_message_faults_leave_the_table_complete_and_duplicate_free(tmp_path, plan):
    s = asyncio.run(feed_session(tmp_path, 1.0, sim_config(faults=plan)))
    assert s.error is None and s.client.stats.connects == 1
    assert_complete_and_unique(s)
    counts = s.client.decoder.counts
    if plan.malformed_every:
        assert counts["malformed"] + counts["unknown"] + counts["malformed_tick"] > 5
    if plan.duplicate_every:
        assert s.client.stats.duplicates > 10
    if plan.reorder_every:
        assert s.sim.sent_ticks().num_rows == s.client.stats.ticks  # nothing taken for a duplicate


def test_newline_batched_frames(tmp_path):
    s = asyncio.run(feed_session(tmp_path, 0.8, sim_config(frame_batch=50, rate=5000)))
    assert s.error is None
    assert s.client.stats.frames < s.client.stats.ticks  # several messages per frame
    assert_complete_and_unique(s)


def test_plain_itick_without_sequence_numbers(tmp_path):
    s = asyncio.run(feed_session(tmp_path, 0.8, sim_config(send_seq=False, faults=FaultPlan(duplicate_every=7))))
    assert s.error is None and s.client.stats.duplicates > 5
    # without sequence numbers identical (symbol, ms, price, volume) prints are one tick
    assert_complete_and_unique(s, identity=("symbol", "ts", "price", "volume"))


def test_default_feed_uses_the_simulator_without_a_token(tmp_path):
    from pyplatform.config import get_settings
    from pyplatform.feeds import run_market_feed
    from pyplatform.stream import StreamTables

    async def go():
        tables, stop, clients = StreamTables(None, clock=SimClock()), asyncio.Event(), []
        asyncio.get_running_loop().call_later(0.8, stop.set)
        await run_market_feed(get_settings(data_dir=tmp_path, itick_token=None), tables, SYMBOLS, stop,
                              rate=2000, sessions=False, clients_out=clients)
        return tables, clients

    tables, clients = asyncio.run(go())
    ticks = tables.get_table("ticks").read()
    assert ticks.num_rows > 100 and set(ticks.column("symbol").to_pylist()) == set(SYMBOLS)
    assert clients[0].stats.connects == 1 and clients[0].config.url.endswith("/all")
