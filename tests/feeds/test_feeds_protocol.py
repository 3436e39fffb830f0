"""Golden iTick messages through the sans-I/O protocol core (no sockets)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyplatform.feeds.decoder import FeedDecoder
from pyplatform.feeds.messages import (AuthResult, Connected, Pong, SubscribeResult, auth_message, connected_message,
                                       ping_message, pong_message, subscribe_message, subscribe_result_message)
from pyplatform.feeds.rest import RestError, bars_from_kline
from pyplatform.feeds.symbols import from_itick, rest_kind, split_symbol, to_itick

GOLDEN = Path(__file__).parent / "golden"
NOW = 1_800_000_000_000_000_000


def golden(name: str) -> str:
    return (GOLDEN / f"{name}.json").read_text()


def decode(*frames, symbols=("AAPL.US", "EURUSD.GB")):
    d = FeedDecoder(symbols)
    return d, d.decode(list(frames), NOW)


def test_symbols_round_trip_and_errors():
    assert to_itick("AAPL.US") == "AAPL$US"
    assert from_itick("EURUSD$GB") == "EURUSD.GB"
    assert from_itick("AAPL.US") == "AAPL.US"
    assert split_symbol("700.HK") == ("700", "HK")
    assert rest_kind("BTCUSDT.BA") == "crypto" and rest_kind("SPX.IDX") == "indices"
    with pytest.raises(ValueError, match="'AAPL'"):
        to_itick("AAPL")


def test_client_requests_match_golden():
    assert json.loads(subscribe_message(["AAPL.US", "EURUSD.GB"])) == json.loads(golden("subscribe_request"))
    assert json.loads(ping_message(1731688569840)) == json.loads(golden("ping"))
    with pytest.raises(ValueError, match="'trades'"):
        subscribe_message(["AAPL.US"], ["trades"])
    with pytest.raises(ValueError, match="at least one symbol"):
        subscribe_message([])


def test_server_messages_match_golden():
    assert json.loads(connected_message()) == json.loads(golden("connected"))
    assert json.loads(auth_message(False)) == json.loads(golden("auth_failed"))
    ok = json.loads(auth_message(True, token_echo="x"))
    assert ok["code"] == 1 and ok["resAc"] == "auth" and ok["msg"] == "authenticated"
    assert json.loads(subscribe_result_message(True)) == json.loads(golden("subscribe_ok"))
    assert json.loads(subscribe_result_message(False, "exceeding the maximum subscription limit")) == json.loads(golden("subscribe_limit"))
    assert json.loads(subscribe_result_message(False)) == json.loads(golden("subscribe_bad_action"))
    assert json.loads(pong_message("1731688569840")) == json.loads(golden("pong"))


@pytest.mark.parametrize("name, expected", [
    ("connected", Connected("Connected Successfully")),
    ("auth_ok", AuthResult(True, "authenticated")),
    ("auth_failed", AuthResult(False, "auth failed")),
    ("subscribe_ok", SubscribeResult(True, "subscribe Successfully")),
    ("subscribe_limit", SubscribeResult(False, "exceeding the maximum subscription limit")),
    ("subscribe_bad_action", SubscribeResult(False, "cannot be resolved action")),
    ("pong", Pong("1731688569840")),
])
def test_golden_control_messages(name, expected):
    d, out = decode(golden(name))
    assert out.events == [expected]
    assert out.ticks.num_rows == out.quotes.num_rows == out.depth.num_rows == 0
    assert d.counts["malformed"] == d.counts["unknown"] == 0
    if name == "subscribe_limit":
        assert out.events[0].limit_exceeded
    if name == "subscribe_bad_action":
        assert not out.events[0].limit_exceeded


def test_golden_quote():
    d, out = decode(golden("quote"))  # pretty-printed, as documented: still one message
    q = out.quotes.to_pylist()
    assert len(q) == 1
    q = q[0]
    assert q["ts"] == 1731689407000 * 1_000_000 and q["symbol"] == "AAPL.US"
    assert (q["last"], q["open"], q["high"], q["low"]) == (225.215, 226.27, 226.92, 224.44)
    assert q["volume"] == 16742235 and q["turnover"] == 3774688301.452
    assert d.counts["quotes"] == 1


def test_golden_depth():
    d, out = decode(golden("depth"))
    depth = out.depth.to_pandas()
    assert len(depth) == 10 and set(depth["symbol"]) == {"AAPL.US"}
    assert (depth["ts"] == NOW).all()  # depth carries no "t": stamped on receipt
    bids = depth[depth["side"] == 1].sort_values("position")
    asks = depth[depth["side"] == -1].sort_values("position")
    assert bids["price"].tolist() == [3034, 3033.99, 3033.98, 3033.97, 3033.94]
    assert asks["price"].tolist() == [3034.01, 3034.03, 3034.18, 3034.26, 3034.27]
    assert asks["volume"].tolist()[0] == 10.6023 and bids["orders"].tolist()[0] == 20.9758
    assert bids["position"].tolist() == [1, 2, 3, 4, 5]


def test_golden_tick_and_symbol_matching():
    d, out = decode(golden("tick"), golden("tick").replace('"AAPL.US"', '"AAPL"'),
                    golden("tick").replace('"AAPL.US"', '"aapl.us"'), golden("tick").replace('"AAPL.US"', '"MSFT.US"'))
    ticks = out.ticks.to_pylist()
    assert [t["symbol"] for t in ticks] == ["AAPL.US"] * 3  # exact, region-less and lower-case pushes
    assert ticks[0]["price"] == 225.215 and ticks[0]["volume"] == 100 and ticks[0]["seq"] == -1
    assert ticks[0]["ts"] == 1731689407000 * 1_000_000
    assert d.counts["unexpected_symbol"] == 1 and "MSFT.US" in d.samples["unexpected_symbol"][0]


def test_golden_rest_kline():
    body = json.loads(golden("kline_rest"))
    assert body["code"] == 0  # REST success is 0, unlike the WebSocket's 1
    bars = bars_from_kline("AAPL.US", body["data"]).to_pylist()
    assert bars[1]["ts"] == 1731660060000 * 1_000_000 and bars[1]["open"] == 3055.36
    assert bars[1]["high"] == 3061.41 and bars[1]["low"] == 3055.24 and bars[1]["close"] == 3059.39
    assert bars[1]["volume"] == 28 and bars[1]["vwap"] == pytest.approx(157513 / 28)
    with pytest.raises(RestError, match="row 0 .*'c'"):
        bars_from_kline("AAPL.US", [{"t": 1, "o": 1, "h": 1, "l": 1, "v": 1}])


BAD = [
    (b"this is not json", "malformed"),
    (b'{"code":1,"data":{"s":"AAPL.US","ld":225.1,', "malformed"),
    (b'{"code":1,"data":{"s":"AAPL.US","ld":"abc","v":1,"t":1,"type":"tick"}}', "malformed"),
    (b"[1,2,3]", "malformed"),
    (b'{"code":1,"data":{"s":"AAPL.US","type":"weather"}}', "unknown"),
    (b'{"foo":1}', "unknown"),
    (b'{"code":1,"data":{"s":"AAPL.US","v":100,"t":1,"type":"tick"}}', "malformed_tick"),
    (b'{"code":1,"data":{"s":"AAPL.US","ld":-5,"v":100,"t":1,"type":"tick"}}', "malformed_tick"),
    (b'{"code":1,"data":{"s":"AAPL.US","a":[{"po":1,"p":"x"}],"b":[],"type":"depth"}}', "malformed"),
    (b'{"code":1,"data":{"s":"AAPL.US","a":[{"po":1,"v":3}],"b":[],"type":"depth"}}', "malformed_depth"),
    (b'{"code":1,"data":{"ld":1,"t":1,"type":"quote"}}', "malformed_quote"),
]


@pytest.mark.parametrize("raw, reason", BAD)
def test_bad_messages_are_counted_sampled_and_do_not_stop_the_stream(raw, reason, caplog):
    good = golden("tick")
    with caplog.at_level(logging.WARNING, logger="pyplatform.feeds.decoder"):
        d, out = decode(good, raw, good.replace("225.215", "226.5"))
    assert [t["price"] for t in out.ticks.to_pylist()] == [225.215, 226.5]
    assert d.counts[reason] == 1, d.counts
    assert d.samples[reason] and reason in caplog.text


tick_st = st.fixed_dictionaries({
    "s": st.sampled_from(["AAPL.US", "EURUSD.GB"]), "ld": st.floats(0.01, 1e6), "v": st.integers(0, 10**6),
    "t": st.integers(1, 2 * 10**12),
})


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(tick_st.map(lambda d: json.dumps({"code": 1, "data": {**d, "type": "tick"}})),
                          st.sampled_from([b.decode() for b, _ in BAD])), max_size=60))
def test_batch_decode_equals_one_by_one(frames):
    """Decoding a whole batch (fast path + bisection) gives what decoding each frame alone gives."""
    _, together = decode(*frames)
    d1 = FeedDecoder(["AAPL.US", "EURUSD.GB"])
    alone = [d1.decode([f], NOW).ticks for f in frames]
    cols = ["ts", "symbol", "price", "volume", "seq"]  # bid/ask are NaN (NaN != NaN)
    rows = [r for t in alone for r in t.select(cols).to_pylist()]
    assert together.ticks.select(cols).to_pylist() == rows
    expected = [json.loads(f)["data"] for f in frames if f.startswith('{"code": 1')]
    assert [r["price"] for r in rows] == [float(e["ld"]) for e in expected]


def test_newline_batched_frames_and_empty_input():
    frames = ["\n".join([golden("tick")] * 3), ""]
    d, out = decode(*frames)
    assert out.ticks.num_rows == 3 and out.messages == 3
    _, empty = decode()
    assert empty.ticks.num_rows == 0 and empty.events == []
    assert np.asarray(empty.ticks.column("ts")).dtype == np.int64


def test_documented_kline_push_is_not_subscribed_and_is_counted_not_fatal():
    """iTick documents a WebSocket K-line push; this client subscribes quote/depth/tick only,
    so one arriving is counted as unknown (with a sample) and the stream goes on."""
    d, out = decode(golden("kline_push"), golden("tick"))
    assert out.ticks.num_rows == 1 and out.events == []
    assert d.counts["unknown"] == 1 and '"k"' in d.samples["unknown"][0]
