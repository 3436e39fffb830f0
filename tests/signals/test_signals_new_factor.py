"""A factor added to the running engine becomes a topic of the running service (real loopback WebSocket)."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from signals_support import make_service, run, token, wait_for
from pyplatform.clock import SimClock
from pyplatform.client import SignalClient
from pyplatform.client.signal_client import SubscriptionError
from pyplatform.domain.schemas import BARS
from pyplatform.factors import FactorEngine
from pyplatform.stream import EngineRunner, StreamTable

S = 1_000_000_000
SYMS = ["AAPL.US", "MSFT.US", "EURUSD.GB"]


def _bars(n: int, start: int) -> dict:
    rng = np.random.default_rng(start)
    close = 100 + rng.normal(0, 1, n).cumsum()
    return {"ts": (np.arange(start, start + n, dtype=np.int64) // 3) * 60 * S,
            "symbol": np.array(SYMS)[np.arange(start, start + n) % 3],
            "open": close, "high": close + 1, "low": close - 1, "close": close,
            "volume": np.full(n, 10.0), "vwap": close, "trades": np.ones(n, np.int64)}


def _value(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


@pytest.mark.parametrize("encoding", ["msgpack", "json"])
def test_client_subscribes_by_name_to_a_factor_added_after_the_service_started(verifier, issuer, clock, encoding):
    bars = StreamTable("bars", BARS, clock=SimClock())
    engine = FactorEngine({"ma3": "mavg(close, 3)"})
    factors = StreamTable("factors", engine.schema, memory_rows=10_000, clock=SimClock())
    runner = EngineRunner(engine, bars, factors, "factors")

    async def consume(client, got):
        async for msg in client:
            got.append(msg)

    async def main():
        bars.append(_bars(30, 0))
        runner.run_until_idle()
        svc = await make_service({"factors": factors}, verifier, clock)
        tasks = []
        try:
            # before the factor exists, its topic is refused by name
            early = SignalClient(svc.url, lambda: token(issuer, clock), ["factors:mx4"], "*", encoding=encoding,
                                 max_attempts=0)
            with pytest.raises(SubscriptionError, match="unknown factor 'mx4'"):
                await asyncio.wait_for(consume(early, []), 5)
            await early.close()

            engine.add_factor("mx4", "mmax(high, 4)")   # e.g. by the registry watcher
            runner.step()                                # the runner adds the column to the table
            added_at = factors.next_offset
            live_got, replay_got = [], []
            live = SignalClient(svc.url, lambda: token(issuer, clock), ["factors:mx4"], "*", encoding=encoding)
            replay = SignalClient(svc.url, lambda: token(issuer, clock), ["factors:mx4"], ["MSFT.US"],
                                  encoding=encoding, from_seq=added_at - 6)
            tasks = [asyncio.create_task(consume(live, live_got)), asyncio.create_task(consume(replay, replay_got))]
            # the live client first gets a snapshot (latest row per symbol: no mx4 value yet)
            await wait_for(lambda: len([m for m in live_got if m.kind == "snapshot"]) == 3)
            assert all(_value(m.row["mx4"]) is None for m in live_got)
            await asyncio.sleep(0.1)
            for start in (30, 45):                       # rows keep flowing
                bars.append(_bars(15, start))
                runner.run_until_idle()
                await asyncio.sleep(0.02)
            table = factors.read(added_at)
            want = dict(zip(table.column("offset").to_pylist(), table.column("mx4").to_pylist()))
            await wait_for(lambda: len([m for m in live_got if m.kind == "data"]) == len(want))
            data = [m for m in live_got if m.kind == "data"]
            assert [m.seq for m in data] == sorted(want)
            assert all(set(m.row) == {"seq", "ts", "symbol", "mx4"} for m in data)
            assert {m.seq: _value(m.row["mx4"]) for m in data} == want
            assert sum(v is not None for v in want.values()) >= 20  # real values, past the warm-up
            # a replay from before the change: null up to it, the new values after it
            msft = factors.read(added_at - 6)
            msft = msft.filter(np.array(msft.column("symbol").to_pylist()) == "MSFT.US")
            await wait_for(lambda: len(replay_got) == msft.num_rows)
            assert [m.seq for m in replay_got] == msft.column("offset").to_pylist()
            assert [_value(m.row["mx4"]) for m in replay_got] == msft.column("mx4").to_pylist()
            assert replay_got[0].seq < added_at and _value(replay_got[0].row["mx4"]) is None
            await live.close()
            await replay.close()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await svc.stop()

    run(main())
