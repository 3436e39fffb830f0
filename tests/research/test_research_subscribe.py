"""pp.subscribe against a real signal service over loopback WebSockets."""

import asyncio
import socket
import threading
import time

import numpy as np
import pandas as pd
import pytest

from pyplatform.clock import LiveClock, SimClock
import pyplatform as pp
from pyplatform.config import Settings
from pyplatform.domain.schemas import factor_schema
from pyplatform.signals.service import build_issuer, serve
from pyplatform.stream import StreamTables


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def service(tmp_path, monkeypatch):
    monkeypatch.setenv("PYPLATFORM_JWT_SECRET", "x" * 48)
    s = Settings(data_dir=tmp_path, signal_port=_port())
    tables = StreamTables(tmp_path / "streams", clock=SimClock())
    factors = tables.get_table("factors", factor_schema(["mom"]))
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve(s, {"factors": factors}, stop, clock=LiveClock(), use_redis=False,
                                      ready=lambda _: ready.set()))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(10)
    yield s, factors
    loop.call_soon_threadsafe(stop.set)
    t.join(10)


def _rows(n, start=0):
    return {"ts": np.arange(start, start + n, dtype=np.int64) * 1_000_000_000,
            "symbol": np.array(["AAA.US", "BBB.US"] * (n // 2)), "mom": np.arange(start, start + n, dtype=float)}


def test_subscribe_collects_live_rows(service):
    s, factors = service
    token = build_issuer(s).issue("nb", topics=["factors:*"], symbols=["AAA.US"], now_ns=time.time_ns())
    view = pp.subscribe("factors:mom", ["AAA.US"], token=token, settings=s)
    try:
        time.sleep(0.5)
        factors.append(_rows(20))
        assert view.wait(10, timeout=15), view.received
        df = view.frame()
        assert set(df.index.get_level_values("symbol")) == {"AAA.US"}  # filtered by symbol
        assert sorted(df["mom"].tolist())[-1] == 18.0
        assert df["_seq"].is_unique  # no duplicates
        assert "live:" in view._repr_html_()
        assert view.latest().loc[("factors:mom", "AAA.US"), "mom"] == 18.0
    finally:
        view.stop()


def test_subscribe_needs_a_token(service):
    s, _ = service
    with pytest.raises(ValueError, match="no token"):
        pp.subscribe("factors:mom", settings=s)


def test_local_service_rows_carry_bar_time_not_wall_time(market_settings):
    """Notebook 04's local service replays history: rows keep their bar's time, and rows still
    warming up (no factor value yet) are not published."""
    import pyplatform as pp
    from pyplatform.research.live_view import LocalService

    bars = pp.bars(freq="1d", settings=market_settings)
    days = bars.index.get_level_values("datetime")
    svc = LocalService({"z_10": "zscore(close, 10)"}, settings=market_settings, clock=LiveClock()).start()
    try:
        view = pp.subscribe(["factors:z_10"], "*", url=svc.url, token=svc.token, settings=market_settings)
        assert view.wait(20, timeout=60)
        df = view.frame()
        view.stop()
    finally:
        svc.stop()
    t = df.index.get_level_values("datetime") if "datetime" in df.index.names else pd.to_datetime(df["datetime"])
    assert t.min() >= days.min() and t.max() <= days.max()  # history's dates, not today
    assert df["z_10"].notna().all()
