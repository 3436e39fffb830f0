"""The live feed against a real signal service over loopback WebSockets: rows reach the buffer,
a quote forms a bar, and a dropped service shows as reconnecting."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pyplatform.clock import LiveClock, SimClock
from pyplatform.dashboard.live_buffer import LiveBuffer
from pyplatform.dashboard.live_feed import LiveFeed
from pyplatform.domain.schemas import BARS, QUOTES, SIGNALS
from pyplatform.signals.auth import KeyRing, RevocationList, TokenIssuer, TokenVerifier
from pyplatform.stream import StreamTable

from dashboard_helpers import ServiceThread as _ServiceThread

SECRET = b"dashboard-test-secret-0123456789-abcdefgh"


def _wait(pred, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_feed_fills_the_buffer_and_reports_a_dropped_service(tmp_path):
    tables = {"quotes": StreamTable("quotes", QUOTES, clock=SimClock()), "bars": StreamTable("bars", BARS, clock=SimClock()),
              "signals": StreamTable("signals", SIGNALS, clock=SimClock())}
    keys = KeyRing(SECRET)
    verifier = TokenVerifier(keys, RevocationList(tmp_path / "revoked.json"))
    token = TokenIssuer(keys).issue("dash", topics=["*"], symbols=["*"], now_ns=time.time_ns(), ttl_s=600)
    service = _ServiceThread(tables, verifier)
    url = service.start()
    buf = LiveBuffer()
    feed = LiveFeed(buf, url, token, flush_s=0.05, clock=LiveClock(), backoff_s=0.05, backoff_max_s=0.2).start()
    try:
        _wait(lambda: buf.connection.state == "connected")
        t0 = 1_767_225_600_000_000_000  # 2026-01-01
        tables["bars"].append({"ts": np.array([t0], np.int64), "symbol": ["AAA.US"], "open": [10.0], "high": [11.0],
                               "low": [9.5], "close": [10.5], "volume": [100.0], "vwap": [10.2],
                               "trades": np.array([7], np.int64)})
        nan = float("nan")
        tables["quotes"].append({"ts": np.array([t0 + 61_000_000_000, t0 + 62_000_000_000], np.int64),
                                 "symbol": ["AAA.US", "AAA.US"], "last": [10.7, 10.9], "open": [nan, nan],
                                 "high": [nan, nan], "low": [nan, nan], "volume": [1000.0, 1040.0],
                                 "turnover": [0.0, 0.0], "bid": [10.6, 10.8], "ask": [10.8, 11.0],
                                 "bid_size": [1.0, 1.0], "ask_size": [1.0, 1.0]})
        tables["signals"].append({"ts": np.array([t0], np.int64), "symbol": ["AAA.US"], "strategy": ["ma"],
                                  "direction": np.array([1], np.int8), "strength": [0.5], "reason": ["cross"],
                                  "factors": ["{}"]})
        _wait(lambda: len(buf.bars("AAA.US")) == 2 and len(buf.signals()) == 1)
        bars = buf.bars("AAA.US")
        assert bars["ts"].tolist() == [t0, t0 + 60_000_000_000]
        assert bars.iloc[0][["open", "high", "low", "close", "volume"]].tolist() == [10.0, 11.0, 9.5, 10.5, 100.0]
        # the forming bar from two quotes: last prices, and the rise of the day volume after the first
        assert bars.iloc[1][["open", "high", "low", "close", "volume"]].tolist() == [10.7, 10.9, 10.7, 10.9, 40.0]
        assert buf.quotes().set_index("symbol").loc["AAA.US", "last"] == 10.9
        service.stop()
        _wait(lambda: buf.connection.state == "reconnecting")
    finally:
        feed.stop()
    assert buf.connection.state == "offline"


class _IdleClient:
    """A client that never connects: the feed's own state changes are all that happen."""

    url = "ws://nowhere"
    connects = 0

    def __init__(self, *args, **kwargs) -> None:
        import asyncio

        self._closed = asyncio.Event()

    def __aiter__(self):
        return self

    async def __anext__(self):
        await self._closed.wait()
        raise StopAsyncIteration

    async def close(self) -> None:
        self._closed.set()


def test_the_feed_needs_a_clock_and_stamps_connection_states_with_it():
    with pytest.raises(TypeError):
        LiveFeed(LiveBuffer(), "ws://nowhere", "t", client_factory=_IdleClient)
    clock, buf = SimClock(1_000), LiveBuffer()
    feed = LiveFeed(buf, "ws://nowhere", "t", flush_s=0.01, clock=clock, client_factory=_IdleClient).start()
    assert (buf.connection.state, buf.connection.since_ns) == ("connecting", 1_000)
    clock.set(5_000)
    feed.stop()
    assert (buf.connection.state, buf.connection.since_ns) == ("offline", 5_000)
