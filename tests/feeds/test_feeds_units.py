"""Pure pieces of the feed: dedupe, sequences, codec, fault transforms, backoff, sessions, klines."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyplatform.clock import SimClock
from pyplatform.feeds.client import backoff_delay
from pyplatform.feeds.codec import CodecError, decode_batch, encode_batch
from pyplatform.feeds.dedupe import Deduper, SequenceTracker, missing_rows, tick_keys
from pyplatform.feeds.schemas import TICKS
from pyplatform.feeds.simulator import MALFORMED, FaultPlan, MarketTape
from pyplatform.feeds.simulator.faults import mangle
from pyplatform.feeds.simulator.kline import kline_bars

SYMS = ["AAPL.US", "EURUSD.GB", "BTCUSDT.BA"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 30)), max_size=40), max_size=8),
       st.integers(8, 64))
def test_deduper_matches_a_set_oracle(batches, merge_at):
    d = Deduper(window_ns=10**18, merge_at=merge_at)
    seen: set = set()
    for batch in batches:
        sym = [SYMS[s] for s, _ in batch]
        seq = np.array([q for _, q in batch], np.int64)
        keys = tick_keys(sym, np.zeros(len(batch)), np.ones(len(batch)), np.ones(len(batch)), seq)
        keep = d.filter(keys, np.arange(len(batch)))
        expected = []
        for item in batch:
            expected.append(item not in seen)
            seen.add(item)
        assert keep.tolist() == expected


def test_tick_keys_policy():
    ts, p, v = np.array([1, 1, 1, 2]), np.array([10.0, 10.0, 10.5, 10.0]), np.ones(4)
    k = tick_keys(["A.US"] * 4, ts, p, v)
    assert k[0] == k[1] and len({k[0], k[2], k[3]}) == 3  # value identity without sequence
    ks = tick_keys(["A.US"] * 4, ts, p, v, np.array([1, 2, 1, -1]))
    assert ks[0] != ks[1] and ks[0] == ks[2] and ks[3] == k[3]  # sequence identity when present
    assert tick_keys(["A.US"], ts[:1], p[:1], v[:1], [5])[0] != tick_keys(["B.US"], ts[:1], p[:1], v[:1], [5])[0]


def test_deduper_forgets_outside_the_window():
    d = Deduper(window_ns=100, merge_at=1)
    k = np.array([1, 2], np.uint64)
    assert d.filter(k, np.array([0, 0])).all()
    d.filter(np.array([3], np.uint64), np.array([1000]))  # newest moves on; merge prunes
    assert d.filter(k, np.array([1001, 1001])).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 2), st.integers(1, 40)), max_size=30, unique=True), max_size=6))
def test_sequence_tracker_matches_oracle(batches):
    # deliver each (symbol, seq) at most once overall, as the deduper guarantees
    seen, clean = set(), []
    for b in batches:
        clean.append([x for x in b if x not in seen])
        seen.update(b)
    tr = SequenceTracker()
    for b in clean:
        tr.update([SYMS[s] for s, _ in b], np.array([q for _, q in b], np.int64))
    # oracle: per symbol, sequence numbers between the lowest and highest seen, not seen
    holes, late, hi = 0, 0, {}
    for s in range(3):
        qs = {q for x, q in seen if x == s}
        if qs:
            assert tr.last[SYMS[s]] == max(qs)
            holes += max(qs) - min(qs) + 1 - len(qs)
    for b in clean:
        for x, q in b:
            late += q < hi.get(x, -1)
            hi[x] = max(hi.get(x, -1), q)
    assert tr.missing == holes and tr.late == late


def _ticks(n=200, seed=1, ms=True) -> pa.Table:
    rng = np.random.default_rng(seed)
    ts = 1_700_000_000_000_000_000 + np.cumsum(rng.integers(0, 3, n)) * (1_000_000 if ms else 137)
    sym = rng.choice(SYMS, n)
    price = np.round(100 + rng.normal(0, 1, n).cumsum(), 2)
    return pa.Table.from_arrays([pa.array(ts), pa.array(sym), pa.array(price), pa.array(rng.integers(1, 9, n) * 100.0),
                                 pa.array(rng.choice([-1, 0, 1], n).astype(np.int8)), pa.array(price - 0.01),
                                 pa.array(np.full(n, np.nan))], schema=TICKS)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 300), st.integers(0, 10**6), st.booleans(), st.booleans())
def test_codec_round_trip_is_lossless(n, seed, ms, compress):
    t = _ticks(n, seed, ms)
    if n and seed % 3 == 0:  # arbitrary non-decimal floats take the shuffled float64 path
        t = t.set_column(2, "price", pa.array(np.random.default_rng(seed).normal(size=n)))
    back = decode_batch(encode_batch(t, compress=compress))
    assert back.schema == t.schema
    pd.testing.assert_frame_equal(back.to_pandas(), t.to_pandas())


def test_codec_is_smaller_than_json_and_rejects_garbage():
    import json

    t = _ticks(2000)
    raw = encode_batch(t, compress=False)
    js = "\n".join(json.dumps({"code": 1, "data": {"s": r["symbol"], "ld": r["price"], "v": r["volume"],
                                                    "t": r["ts"] // 10**6, "type": "tick"}}) for r in t.to_pylist())
    assert len(raw) < 0.7 * len(js)  # the expectation: ~30% smaller before compression
    assert len(encode_batch(t)) < 0.6 * len(raw)  # and zstd saves a good deal more
    with pytest.raises(CodecError, match="not a pyplatform columnar batch"):
        decode_batch(b"{\"json\": 1}")
    with pytest.raises(CodecError, match="damaged"):
        decode_batch(raw[:5] + b"\x00" + raw[6:40])
    with pytest.raises(CodecError, match="nulls"):
        encode_batch(pa.table({"x": pa.array([1.0, None])}))


def test_mangle_faults_keep_track_of_rows():
    msgs = [f"m{i}".encode() for i in range(10)]
    rows = np.arange(10)
    out, r = mangle(msgs, rows, FaultPlan(duplicate_every=3), 0)
    assert len(out) == 13 and sorted(set(r.tolist())) == list(range(10))
    assert [m for m in out if out.count(m) == 2] == [b"m2", b"m2", b"m5", b"m5", b"m8", b"m8"]
    out, r = mangle(msgs, rows, FaultPlan(reorder_every=4), 0)
    assert out[2:4] == [b"m3", b"m2"] and sorted(out) == sorted(msgs)
    assert [int(x[1:]) for x in out] == r.tolist()
    out, r = mangle(msgs, rows, FaultPlan(malformed_every=5), 0)
    assert len(out) == 12 and sum(m in MALFORMED for m in out) == 2 and (r == -1).sum() == 2


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    rng = random.Random(3)
    delays = [[backoff_delay(a, 0.5, 30, rng) for _ in range(200)] for a in range(10)]
    assert all(0.25 <= d <= 0.5 for d in delays[0])
    assert all(0.25 <= d <= 8.0 for d in delays[4]) and max(delays[4]) > 4
    assert max(delays[9]) <= 30 and np.median(delays[9]) > 10
    assert len(set(delays[3])) > 100  # jittered


def test_market_tape_sessions_and_sequences():
    tape = MarketTape(SYMS, seed=1, sessions=True)
    saturday = pd.Timestamp("2024-03-09 15:00").value
    tuesday_us_open = pd.Timestamp("2024-03-05 15:00").value
    tuesday_us_closed = pd.Timestamp("2024-03-05 03:00").value
    assert tape.open_mask(saturday).tolist() == [False, False, True]  # crypto only
    assert tape.open_mask(tuesday_us_open).tolist() == [True, True, True]
    tape2 = MarketTape(SYMS, seed=1, sessions=True)
    assert tape2.open_mask(tuesday_us_closed).tolist() == [False, True, True]  # forex 24x5
    b = tape2.generate(500, tuesday_us_closed, tuesday_us_closed + 10**9)
    assert set(b.sym.tolist()) <= {1, 2}
    for s in (1, 2):  # per-symbol sequences are gap-free from 1
        q = np.sort(b.seq[b.sym == s])
        assert q.tolist() == list(range(1, len(q) + 1))
    assert (np.diff(b.ts) >= 0).all() and b.ts[-1] == tuesday_us_closed + 10**9
    assert np.allclose(b.price[b.sym == 1], np.round(b.price[b.sym == 1], 5))


def test_kline_bars_match_a_pandas_resample():
    t = _ticks(3000, ms=True)
    t = t.set_column(0, "ts", pa.array(t.column("ts").to_numpy() * 0 + 1_700_000_000_000_000_000
                                       + np.arange(3000) * 97_000_000))  # ~5 minutes
    got = pd.DataFrame(kline_bars(t, "AAPL.US", 1, 100, None))
    f = t.to_pandas()
    f = f[f.symbol == "AAPL.US"].set_index(pd.to_datetime(f[f.symbol == "AAPL.US"]["ts"]))
    oracle = f["price"].resample("1min").ohlc().dropna()
    assert got["o"].tolist() == oracle["open"].tolist() and got["c"].tolist() == oracle["close"].tolist()
    assert got["h"].tolist() == oracle["high"].tolist() and got["l"].tolist() == oracle["low"].tolist()
    assert got["v"].tolist() == f["volume"].resample("1min").sum()[oracle.index].tolist()
    assert (got["t"].to_numpy() * 10**6 == oracle.index.asi8).all()
    last2 = kline_bars(t, "AAPL.US", 1, 2, int(got["t"].iloc[2]))
    assert [b["t"] for b in last2] == got["t"].iloc[1:3].tolist()
    with pytest.raises(ValueError, match="kType"):
        kline_bars(t, "AAPL.US", 11, 5, None)


def test_missing_rows_is_a_multiset_difference():
    t = _ticks(50)
    dup = pa.concat_tables([t, t.slice(0, 1)])  # the cache holds a genuine repeated print
    assert missing_rows(dup, t).tolist() == [50]
    assert missing_rows(t, t.slice(10)).tolist() == list(range(10))
    assert missing_rows(t.slice(0, 0), t).tolist() == []


def test_sim_clock_is_an_input_to_the_tape():
    clock = SimClock(pd.Timestamp("2024-03-05 15:00").value)
    tape = MarketTape(SYMS, seed=2, sessions=False)
    b = tape.generate(10, clock.now_ns(), clock.advance(10**9))
    assert b.ts.min() > pd.Timestamp("2024-03-05 15:00").value and b.ts.max() == clock.now_ns()


def test_pong_must_echo_an_outstanding_ping(caplog):
    from pydantic import SecretStr

    from pyplatform.feeds.client import FeedConfig, ITickClient
    from pyplatform.feeds.messages import Pong

    client = ITickClient(FeedConfig(url="ws://127.0.0.1:1/x", token=SecretStr("t0k3n"), symbols=("AAPL.US",)),
                         ingestor=None, clock=SimClock(0))
    client._outstanding["1731688569840"] = 0.0
    client._on_event(Pong("1731688569840"))
    client._on_event(Pong("1731688569840"))  # echoed twice: the second matches nothing
    client._on_event(Pong("42"))
    assert client.stats.pongs == 1 and client.stats.pong_mismatches == 2
    assert "does not echo" in caplog.text


def test_feed_config_refuses_a_token_in_the_url_and_bad_types():
    from pyplatform.feeds.client import FeedConfig

    with pytest.raises(ValueError, match="must not be in the URL"):
        FeedConfig(url="wss://api.itick.org/stock?token=abc", token="abc", symbols=("AAPL.US",))
    with pytest.raises(ValueError, match="'trades'"):
        FeedConfig(url="wss://x/stock", token="abc", symbols=("AAPL.US",), types=("trades",))
    with pytest.raises(ValueError, match="token is empty"):
        FeedConfig(url="wss://x/stock", token="", symbols=("AAPL.US",))
    assert "abc" not in repr(FeedConfig(url="wss://x/stock", token="abc", symbols=("AAPL.US",)))


def test_endpoints_follow_itick_per_class_paths():
    from pyplatform.feeds.runner import endpoints_for

    syms = ["AAPL.US", "EURUSD.GB", "BTCUSDT.BA", "SPX.IDX", "MSFT.US"]
    assert endpoints_for("wss://api.itick.org/stock", syms) == {
        "wss://api.itick.org/stock": ["AAPL.US", "MSFT.US"], "wss://api.itick.org/forex": ["EURUSD.GB"],
        "wss://api.itick.org/crypto": ["BTCUSDT.BA"], "wss://api.itick.org/indices": ["SPX.IDX"]}
    assert endpoints_for("ws://127.0.0.1:9/all", syms) == {"ws://127.0.0.1:9/all": syms}


def test_deduper_caps_its_memory_keeping_the_newest():
    d = Deduper(window_ns=10**18, max_keys=1000, merge_at=100)
    keys = np.arange(5000, dtype=np.uint64) * np.uint64(7919)
    for i in range(0, 5000, 50):
        assert d.filter(keys[i:i + 50], np.arange(i, i + 50)).all()
    assert len(d) <= 1100
    assert not d.filter(keys[-10:], np.full(10, 6000)).any()  # newest remembered
    assert d.filter(keys[:10], np.full(10, 6000)).all()  # oldest forgotten


def test_client_repr_and_logs_mask_credentials_in_the_url():
    from pyplatform.feeds.client import FeedConfig, ITickClient

    c = ITickClient(FeedConfig(url="wss://user:pr0xypw@proxy.example/stock", token="tkn-abcdef", symbols=("AAPL.US",)),
                    ingestor=None, clock=SimClock(0))
    assert repr(c) == "ITickClient(url='wss://***@proxy.example/stock', symbols=1, token=***)"
    assert c.safe_url == "wss://***@proxy.example/stock"


def test_the_client_needs_a_clock_and_pings_with_its_time():
    import asyncio

    from pyplatform.feeds.client import FeedConfig, ITickClient

    cfg = FeedConfig(url="ws://127.0.0.1:1/x", token="t", symbols=("AAPL.US",), ping_interval_s=0.001)
    with pytest.raises(TypeError):
        ITickClient(cfg, None)  # no silent wall time
    client = ITickClient(cfg, None, SimClock(1_700_000_000_123_456_789))
    sent: list[str] = []

    class _WS:
        async def send(self, message: str) -> None:
            sent.append(message)

    async def one_ping() -> None:
        task = asyncio.create_task(client._pinger(_WS()))
        while not sent:
            await asyncio.sleep(0.001)
        task.cancel()

    asyncio.run(one_ping())
    assert "1700000000123" in sent[0] and list(client._outstanding) == ["1700000000123"]


def test_the_simulator_needs_a_clock_and_stamps_its_tape_with_it():
    import asyncio

    from pyplatform.feeds.simulator import ExchangeSimulator, SimulatorConfig

    cfg = SimulatorConfig(symbols=("AAPL.US", "MSFT.US"), sessions=False, rate=1000.0, period_s=0.001)
    with pytest.raises(TypeError):
        ExchangeSimulator(cfg)  # no silent wall time
    t0 = pd.Timestamp("2024-03-05 15:00").value
    clock = SimClock(t0)
    sim = ExchangeSimulator(cfg, clock=clock)

    async def run() -> None:
        task = asyncio.create_task(sim._publish())
        for _ in range(20):  # simulated seconds pass between publishing cycles
            await asyncio.sleep(0.002)
            clock.advance(100_000_000)
        task.cancel()

    asyncio.run(run())
    ts = sim.tape_history().column("ts").to_numpy()
    assert len(ts) > 0 and t0 - 1_000_000 <= ts.min() and ts.max() <= clock.now_ns()
