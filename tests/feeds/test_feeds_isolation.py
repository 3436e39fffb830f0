"""Feeds that fail loudly and alone (issue 18, item 9), against the simulator over loopback."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from feeds_support import TOKEN, feed_session, tick_multiset
from pyplatform.feeds import AuthenticationFailed, FeedFailed, RecentCache, SubscriptionLimitError
from pyplatform.feeds.runner import endpoints_for
from pyplatform.feeds.simulator import FaultPlan, SimulatorConfig

SYMS = ["AAPL.US", "EURUSD.GB", "BTCUSDT.BA"]


def _cfg(**faults) -> SimulatorConfig:
    return SimulatorConfig(sessions=False, rate=3000, record=True, token=TOKEN, faults=FaultPlan(**faults))


def test_one_failing_endpoint_leaves_its_siblings_and_the_cache_alone(tmp_path):
    """The forex endpoint hits its subscription limit; stock and crypto keep streaming into the
    tables *and* the shared LMDB cache until stop, and the failure still reaches the caller."""
    failures: list = []
    rows_at_failure: dict = {}

    def on_error(client, exc):
        failures.append((client.config.url, exc))
        rows_at_failure["ticks"] = client.ingestor.written

    async def go():
        # a per-class path: one connection per asset class, as against iTick
        from pyplatform.feeds.simulator import start_simulator

        sim = await start_simulator(_cfg(limit_paths=("/forex",)))
        try:
            return await feed_session(tmp_path, 1.5, sim=sim, symbols=SYMS, url=f"ws://127.0.0.1:{sim.port}/stock",
                                      on_error=on_error)
        finally:
            await sim.stop()

    s = asyncio.run(go())
    # the failure reached the callback at once and run_feed's caller at the end
    assert isinstance(s.error, SubscriptionLimitError)
    assert [u.rsplit("/", 1)[1] for u, _ in failures] == ["forex"]
    states = {c.config.url.rsplit("/", 1)[1]: c.stats.state for c in s.clients}
    assert states == {"stock": "stopped", "forex": "failed", "crypto": "stopped"}
    assert isinstance(next(c for c in s.clients if c.stats.state == "failed").stats.fatal, SubscriptionLimitError)
    # the siblings went on storing after the failure ...
    assert s.clients[0].ingestor.written > rows_at_failure["ticks"] + 100
    # ... every tick the simulator sent them, each once (no lmdb.Error swallowed on the way)
    sent = s.sim.sent_ticks().to_pandas().drop_duplicates(["symbol", "seq"])
    assert set(sent["symbol"]) == {"AAPL.US", "BTCUSDT.BA"}
    got = tick_multiset(s.ticks())
    exp = tick_multiset(__import__("pyarrow").Table.from_pandas(sent, preserve_index=False))
    pd.testing.assert_series_equal(got, exp, check_names=False)
    # and the cache was still open for them: it holds batches written after the failure
    with RecentCache(tmp_path / "cache") as cache:
        cached, _ = cache.read()
    assert cached.num_rows == s.ticks().num_rows


def test_several_failures_are_all_reported(tmp_path):
    async def go():
        from pyplatform.feeds.simulator import start_simulator

        sim = await start_simulator(_cfg(limit_paths=("/forex", "/crypto")))
        try:
            return await feed_session(tmp_path, 1.0, sim=sim, symbols=SYMS, url=f"ws://127.0.0.1:{sim.port}/stock")
        finally:
            await sim.stop()

    s = asyncio.run(go())
    assert isinstance(s.error, FeedFailed)
    assert sorted(u.rsplit("/", 1)[1] for u in s.error.errors) == ["crypto", "forex"]
    assert all(isinstance(e, SubscriptionLimitError) for e in s.error.errors.values())
    assert "maximum subscription limit" in str(s.error)


@pytest.mark.parametrize("status", [401, 403])
def test_http_auth_refusal_at_the_handshake_is_an_auth_failure_not_a_reconnect(tmp_path, caplog, status):
    async def go():
        s = await feed_session(tmp_path, 1.0, _cfg(handshake_status=status), symbols=SYMS[:1])
        return s

    s = asyncio.run(go())
    assert isinstance(s.error, AuthenticationFailed) and s.error.status == status
    assert s.sim.refused_handshakes == 1  # tried once, not in a loop
    assert s.client.stats.auth_failures == 1 and s.client.stats.reconnects == 0
    assert s.client.stats.state == "failed"
    assert f"HTTP {status}" in caplog.text and "not retrying" in caplog.text


def test_other_handshake_refusals_are_retried(tmp_path):
    # a 503 from a gateway is transient: reconnect with backoff (this is what 401 must NOT do)
    s = asyncio.run(feed_session(tmp_path, 1.0, _cfg(handshake_status=503), symbols=SYMS[:1]))
    assert s.error is None
    assert s.sim.refused_handshakes >= 2 and s.client.stats.reconnects >= 2
    assert "503" in s.client.stats.last_error


def test_endpoint_paths_are_configuration(tmp_path):
    syms = ["AAPL.US", "EURUSD.GB", "BTCUSDT.BA", "SPX.IDX"]
    # iTick's older documented names are one family too
    assert endpoints_for("wss://api.itick.org/sws", syms) == {
        "wss://api.itick.org/sws": ["AAPL.US"], "wss://api.itick.org/fws": ["EURUSD.GB"],
        "wss://api.itick.org/cws": ["BTCUSDT.BA"], "wss://api.itick.org/iws": ["SPX.IDX"]}
    paths = {"stock": "/v2/stk", "forex": "/v2/fx", "indices": "/v2/idx", "crypto": "/v2/cc"}
    assert endpoints_for("wss://gw.example/v2/fx", syms, paths) == {
        "wss://gw.example/v2/stk": ["AAPL.US"], "wss://gw.example/v2/fx": ["EURUSD.GB"],
        "wss://gw.example/v2/cc": ["BTCUSDT.BA"], "wss://gw.example/v2/idx": ["SPX.IDX"]}
    # a path outside every family: one connection
    assert endpoints_for("wss://gw.example/v3", syms, paths) == {"wss://gw.example/v3": syms}

    # and run_feed takes them from the settings (PYPLATFORM_ITICK_WS_PATHS)
    async def go():
        from pyplatform.feeds.simulator import start_simulator

        sim = await start_simulator(_cfg())
        try:
            return await feed_session(tmp_path, 0.8, sim=sim, symbols=SYMS, url=f"ws://127.0.0.1:{sim.port}/v2/stk",
                                      settings_kw={"itick_ws_paths": paths})
        finally:
            await sim.stop()

    s = asyncio.run(go())
    assert s.error is None
    assert sorted(c.config.url.split(":")[-1].split("/", 1)[1] for c in s.clients) == ["v2/cc", "v2/fx", "v2/stk"]
    assert all(c.stats.ticks > 0 for c in s.clients)
