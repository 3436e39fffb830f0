"""The sans-I/O fan-out: shared frames, parity with naive per-client serialisation (the bench's
baseline subclass), bounded queues."""

from __future__ import annotations

import numpy as np
import pytest

from signals_support import SYMBOLS, factor_batch
from pyplatform.bench.naive_fanout import NaiveFanout
from pyplatform.clock import SimClock
from pyplatform.domain.schemas import SIGNALS, factor_schema
from pyplatform.signals.fanout import Fanout, Subscriber, SubscribeError
from pyplatform.signals.topics import parse_topic
from pyplatform.signals.wire import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, JsonCodec, MsgpackZstdCodec, decode_frame
from pyplatform.stream import StreamTable


def _fanout(naive=False, **kw):
    t = StreamTable("factors", factor_schema(["mom", "rsi"]), memory_rows=1000, clock=SimClock())
    codecs = {JSON_SUBPROTOCOL: JsonCodec(), MSGPACK_SUBPROTOCOL: MsgpackZstdCodec(64)}
    return t, (NaiveFanout if naive else Fanout)({"factors": t}, codecs, **kw)


def _rows(sub):
    out = []
    for frame, _, _ in sub.queue:
        msg = decode_frame(frame.decode() if sub.codec.text else frame)
        if msg["type"] in ("data", "snapshot"):
            out += [(msg["type"], r["seq"], r["symbol"], r.get("mom")) for r in msg["rows"]]
    return sorted(out)


@pytest.mark.parametrize("proto", [JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL])
def test_shared_encoding_delivers_what_naive_per_client_serialisation_delivers(proto):
    rng = np.random.default_rng(3)
    results = []
    for naive in (False, True):
        t, f = _fanout(naive)
        subs = []
        for i in range(12):
            syms = None if i == 0 else frozenset(rng.choice(SYMBOLS, size=int(rng.integers(1, 6)), replace=False).tolist())
            s = Subscriber(f"c{i}", f.codecs[proto])
            f.subscribe(s, parse_topic("factors:mom"), syms, 0)
            subs.append(s)
        for k in range(3):
            t.append(factor_batch(k * 100, value0=k))
            f.pump("factors")
        results.append([_rows(s) for s in subs])
        rng = np.random.default_rng(3)
    assert results[0] == results[1]
    assert sum(len(r) for r in results[0]) > 60


def test_identical_subscriptions_share_one_frame_object():
    t, f = _fanout()
    a, b = (Subscriber(n, f.codecs[MSGPACK_SUBPROTOCOL]) for n in "ab")
    for s in (a, b):
        f.subscribe(s, parse_topic("factors:rsi"), frozenset(SYMBOLS[:4]), 0)
    t.append(factor_batch(0))
    f.pump("factors")
    assert a.queue[-1][0] is b.queue[-1][0]  # encoded once, the same bytes for both
    assert a.queue[-1][2] == 3  # the frame's last sequence


def test_replay_range_retention_and_queue_bound():
    t, f = _fanout()
    for k in range(3):
        t.append(factor_batch(k * 100))
    f.pump("factors")
    s = Subscriber("r", f.codecs[JSON_SUBPROTOCOL])
    info = f.subscribe(s, parse_topic("factors:mom"), frozenset(SYMBOLS[:2]), 21)
    assert info == {"mode": "replay", "live_seq": 60}
    assert [r[1] for r in _rows(s)] == [21, 40, 41]  # 21 is S001 of the second batch, then the third
    with pytest.raises(SubscribeError, match="beyond the next sequence 60"):
        f.subscribe(s, parse_topic("factors:mom"), None, 61)
    small = StreamTable("factors", factor_schema(["mom", "rsi"]), memory_rows=20, clock=SimClock())
    f2 = Fanout({"factors": small}, {JSON_SUBPROTOCOL: JsonCodec()})
    small.append(factor_batch(0))
    small.append(factor_batch(100))
    with pytest.raises(SubscribeError) as info:
        f2.subscribe(s, parse_topic("factors:mom"), None, 0)
    assert info.value.info["oldest_seq"] == small.oldest_offset == 20
    lags = []
    slow = Subscriber("slow", f.codecs[JSON_SUBPROTOCOL], max_frames=3, on_lag=lambda: lags.append(1))
    fast = Subscriber("fast", f.codecs[JSON_SUBPROTOCOL], max_frames=3)
    f.subscribe(slow, parse_topic("factors:mom"), None, 60)
    f.subscribe(fast, parse_topic("factors:mom"), None, 60)
    for k in range(5):
        t.append(factor_batch(1000 + k))
        f.pump("factors")
        fast.queue.clear()  # fast drains; slow never does
    assert slow.lagged and lags == [1] and not slow.queue
    assert not fast.lagged


def test_signals_topic_filters_by_strategy_and_latest_is_per_strategy_and_symbol():
    t = StreamTable("signals", SIGNALS, clock=SimClock())
    f = Fanout({"signals": t}, {JSON_SUBPROTOCOL: JsonCodec()})
    t.append({"ts": [1, 2, 3, 4], "symbol": ["A.US", "A.US", "B.US", "A.US"], "strategy": ["x", "y", "x", "x"],
              "direction": [1, -1, 1, 0], "strength": [1.0, 0.5, 1.0, 0.0], "reason": ["r1", "r2", "r3", "r4"],
              "factors": ["{}"] * 4})
    f.pump("signals")
    s = Subscriber("s", f.codecs[JSON_SUBPROTOCOL])
    f.subscribe(s, parse_topic("signals:x"), None, None)
    msg = decode_frame(s.queue[-1][0].decode())
    assert [(r["seq"], r["symbol"], r["strategy"]) for r in msg["rows"]] == [(2, "B.US", "x"), (3, "A.US", "x")]
    latest = f.latest("signals")
    assert sorted(latest.column("offset").to_pylist()) == [1, 2, 3]


def test_gather_segments_equals_joining_the_slices():
    """The compiled segment copy against ``b"".join`` of Python slices (empty segments included)."""
    from pyplatform.signals.assemble import gather_segments

    rng = np.random.default_rng(3)
    src = rng.integers(0, 256, 5_000, dtype=np.uint8)
    raw = src.tobytes()
    for n in (0, 1, 7, 500):
        starts = rng.integers(0, 4_000, n)
        lens = rng.integers(0, 200, n)
        lens[::3] = 0
        expected = b"".join(raw[s:s + k] for s, k in zip(starts.tolist(), lens.tolist()))
        assert gather_segments(src, starts, lens) == expected
