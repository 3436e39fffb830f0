"""Publishing a factor into a running platform: registry -> running factor engine -> factors
table -> signal service -> a notebook subscriber, with no restart; retiring stops it live."""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import time

import numpy as np
import pytest

from pyplatform.clock import LiveClock, SimClock
import pyplatform as pp
from pyplatform.registry import FactorRegistry
from pyplatform.registry.watcher import RegistryWatcher
from pyplatform.signals.service import build_issuer, serve
from pyplatform.stream import StreamTables
from pyplatform.stream.pipelines import market_pipeline

S = 1_000_000_000
SYMS = ["AAA.US", "BBB.US"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ticks(start_s: int, seconds: int, seed: int) -> dict:
    """Four ticks per second per symbol, so every second closes a 1 s bar per symbol."""
    rng = np.random.default_rng(seed)
    n = seconds * 4 * len(SYMS)
    ts = start_s * S + np.arange(n, dtype=np.int64) * (S // (4 * len(SYMS)))
    return {"ts": ts, "symbol": np.array(SYMS * (n // len(SYMS))),
            "price": 100 + rng.normal(0, 0.5, n).cumsum(), "volume": rng.integers(1, 9, n).astype(float),
            "side": np.ones(n, np.int8), "bid": np.full(n, 99.0), "ask": np.full(n, 101.0)}


def _none(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


@pytest.fixture
def platform(market_settings, tmp_path, monkeypatch):
    """A running market pipeline with a factor engine, and the signal service over its tables."""
    monkeypatch.setenv("PYPLATFORM_JWT_SECRET", "s" * 48)
    settings = market_settings.model_copy(update={"signal_port": _port()})
    tables = StreamTables(tmp_path / "streams", clock=SimClock())
    pipe = market_pipeline(tables, window="1s", factors={"ma3": "mavg(close, 3)"})
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve(settings, {"factors": pipe.factors, "bars": pipe.bars}, stop,
                                      clock=LiveClock(), use_redis=False, ready=lambda _: ready.set()))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(10)
    yield settings, pipe
    loop.call_soon_threadsafe(stop.set)
    t.join(10)
    pipe.close()
    tables.close()


def test_published_factor_reaches_the_running_engine_table_and_subscribers(platform):
    settings, pipe = platform
    watcher = RegistryWatcher(FactorRegistry.from_settings(settings), pipe.factor_engine)
    assert watcher.poll() == []
    pipe.ticks.append(_ticks(0, 10, seed=1))
    pipe.run_until_idle()
    before = pipe.factors.next_offset
    assert before >= 15 and pipe.factors.schema.names == ["ts", "symbol", "ma3"]

    # a researcher publishes from a notebook (validated on the generated market's history)
    version = pp.publish("hi5", "mmax(high, 5)", author="ana", description="5-bar high", settings=settings)
    assert version.version == 1
    assert watcher.poll() == [("add", "hi5")]          # the running engine picks it up
    assert "hi5" in pipe.factor_engine.factors
    pipe.run_until_idle()                              # no new input yet: the column is added anyway
    assert pipe.factors.schema.names == ["ts", "symbol", "ma3", "hi5"]

    token = build_issuer(settings).issue("nb", topics=["factors:*"], symbols=["*"], now_ns=time.time_ns())
    view = pp.subscribe("factors:hi5", SYMS, token=token, settings=settings)
    try:
        time.sleep(0.3)
        for k in range(3):                             # rows keep flowing
            pipe.ticks.append(_ticks(10 + 5 * k, 5, seed=2 + k))
            pipe.run_until_idle()
        rows = pipe.factors.read(before)
        hi5 = rows.column("hi5").to_pylist()
        finite = [v for v in hi5 if v is not None]
        assert len(finite) >= 10
        # oracle: the 5-bar rolling max of each symbol's highs, counted from the publish
        bars = pipe.bars.read().to_pandas()
        for sym in SYMS:
            b = bars[bars.symbol == sym].iloc[len(bars[(bars.symbol == sym) & (bars.offset < before)]):]
            want = b["high"].rolling(5).max().to_numpy()
            got = np.array([_none(v) if _none(v) is not None else np.nan
                            for v, s in zip(hi5, rows.column("symbol").to_pylist()) if s == sym], dtype=float)
            np.testing.assert_allclose(got, want[:len(got)], equal_nan=True)
        # rows before the publish keep their history, with the new column null
        assert pipe.factors.read(0, before).column("hi5").null_count == before

        wanted = {o: v for o, v in zip(rows.column("offset").to_pylist(), hi5)}
        assert view.wait(len(wanted), timeout=15), view.received
        frame = view.frame()
        data = frame[frame["_seq"] >= before]
        assert {int(s): _none(v) for s, v in zip(data["_seq"], data["hi5"])} == wanted
    finally:
        view.stop()

    # retiring stops it live; its column and history stay
    pp.retire("hi5", "done", settings=settings)
    assert watcher.poll() == [("remove", "hi5")]
    mark = pipe.factors.next_offset
    pipe.ticks.append(_ticks(25, 3, seed=9))
    pipe.run_until_idle()
    after = pipe.factors.read(mark)
    assert after.num_rows > 0 and after.column("hi5").null_count == after.num_rows
    assert after.column("ma3").null_count < after.num_rows
    assert pipe.factors.read(before, mark).column("hi5").null_count < mark - before
