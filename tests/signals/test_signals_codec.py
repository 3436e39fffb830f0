"""Row encoders against the msgpack / json libraries (oracles), and golden wire frames."""

from __future__ import annotations

import json
import math

import msgpack
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from pyplatform.signals.rowcodec import encode_json_rows, encode_msgpack_rows
from pyplatform.signals.wire import JsonCodec, MsgpackZstdCodec, decode_frame

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
floats = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def tables(draw):
    n = draw(st.integers(0, 25))
    cols = {
        "seq": pa.array(draw(st.lists(st.integers(0, 2**62), min_size=n, max_size=n)), pa.int64()),
        "ts": pa.array(draw(st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n)), pa.int64()),
        "symbol": pa.array(draw(st.lists(st.one_of(st.none(), texts), min_size=n, max_size=n)), pa.string()),
        "value": pa.array(draw(st.lists(st.one_of(st.none(), floats), min_size=n, max_size=n)), pa.float64()),
        "direction": pa.array(draw(st.lists(st.integers(-128, 127), min_size=n, max_size=n)), pa.int8()),
        "flag": pa.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), pa.bool_()),
    }
    t = pa.table(cols)
    if n > 2 and draw(st.booleans()):
        t = t.slice(1, n - 2)  # sliced inputs (offsets into shared buffers) must work too
    return t


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@settings(max_examples=25, deadline=None)
@given(tables())
def test_msgpack_rows_decode_to_the_table_rows(t):
    buf, bounds = encode_msgpack_rows(t)
    assert len(bounds) == t.num_rows + 1 and bounds[-1] == len(buf)
    for i, expect in enumerate(t.to_pylist()):
        got = msgpack.unpackb(buf[bounds[i]:bounds[i + 1]], raw=False)
        assert list(got) == list(expect)
        for k in expect:
            want = float("nan") if k == "value" and expect[k] is None else expect[k]
            assert _same(got[k], want), (k, got[k], want)


@settings(max_examples=25, deadline=None)
@given(tables())
def test_json_rows_match_the_json_module(t):
    buf, bounds = encode_json_rows(t)
    for i, expect in enumerate(t.to_pylist()):
        got = json.loads(buf[bounds[i]:bounds[i + 1]])
        v = expect["value"]
        expect["value"] = None if v is None or not math.isfinite(v) else v
        assert got == expect


def test_unsupported_column_type_is_named():
    t = pa.table({"when": pa.array([1], pa.timestamp("ns"))})
    with pytest.raises(TypeError, match="'when'"):
        encode_msgpack_rows(t)
    with pytest.raises(ValueError, match="'n'.*null"):
        encode_msgpack_rows(pa.table({"n": pa.array([1, None], pa.int64())}))


def test_golden_frames():
    t = pa.table({"seq": pa.array([7], pa.int64()), "ts": pa.array([1700000000000000000], pa.int64()),
                  "symbol": ["AAPL.US"], "mom": [0.25]})
    jc = JsonCodec()
    buf, b = jc.encode_rows(t)
    frame = jc.frame("data", "factors:mom", [buf], 1)
    assert frame == b'{"type":"data","topic":"factors:mom","rows":[{"seq":7,"ts":1700000000000000000,"symbol":"AAPL.US","mom":0.25}]}'
    mc = MsgpackZstdCodec(compress_min_bytes=10_000)
    buf, b = mc.encode_rows(t)
    frame = mc.frame("data", "factors:mom", [buf], 1)
    golden = bytes.fromhex(
        "0083a474797065a464617461a5746f706963ab666163746f72733a6d6f6da4726f777391"
        "84a3736571d30000000000000007a27473d317979cfe362a0000a673796d626f6ca7414150"
        "4c2e5553a36d6f6dcb3fd0000000000000")
    assert frame == golden
    assert decode_frame(frame) == {"type": "data", "topic": "factors:mom",
                                   "rows": [{"seq": 7, "ts": 1700000000000000000, "symbol": "AAPL.US", "mom": 0.25}]}
    big = MsgpackZstdCodec(compress_min_bytes=16)
    z = big.frame("data", "factors:mom", [buf] * 10, 10)
    assert z[0] == 1 and decode_frame(z)["rows"] == decode_frame(frame)["rows"] * 10
    with pytest.raises(ValueError, match="flag byte 9"):
        decode_frame(b"\x09abc")


def test_merged_frames_decode_to_every_message_in_order():
    from pyplatform.signals.wire import decode_messages

    t = pa.table({"seq": pa.array([1, 2], pa.int64()), "symbol": ["A.US", "B\nC"]})
    for codec in (JsonCodec(), MsgpackZstdCodec()):
        buf, b = codec.encode_rows(t)
        frames = [codec.control({"type": "subscribed", "topic": "quotes"}), codec.frame("data", "quotes", [buf], 2),
                  codec.control({"type": "pong", "id": 1})]
        assert all(codec.mergeable(f) for f in frames)
        merged = codec.merge(frames)
        got = decode_messages(merged.decode() if codec.text else merged)
        assert [m["type"] for m in got] == ["subscribed", "data", "pong"]
        assert got[1]["rows"] == [{"seq": 1, "symbol": "A.US"}, {"seq": 2, "symbol": "B\nC"}]
    big = MsgpackZstdCodec(compress_min_bytes=8)
    assert not big.mergeable(big.control({"type": "pong", "id": 123456}))  # compressed frames travel alone


@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 65535, 65536, 70_000])
@pytest.mark.parametrize("text", [True, False])
def test_direct_write_frame_header_is_what_websockets_serialises(n, text):
    """The fan-out's direct path writes header + payload itself; websockets' own serialiser is the oracle."""
    from websockets.frames import Frame, Opcode

    from pyplatform.signals.server import _frame_header

    payload = b"x" * n
    expected = Frame(Opcode.TEXT if text else Opcode.BINARY, payload).serialize(mask=False)
    assert _frame_header(text, n) + payload == expected
