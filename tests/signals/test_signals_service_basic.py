"""Real loopback WebSocket sessions: handshake auth, negotiation, entitlements, bad frames, health."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from signals_support import recv_msg, SYMBOLS, factor_batch, make_service, run, token, wait_for
from pyplatform.signals.wire import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, decode_messages


def _ws(url, tok, proto=JSON_SUBPROTOCOL, **kw):
    headers = {"Authorization": f"Bearer {tok}"} if tok is not None else {}
    return connect(url, additional_headers=headers, subprotocols=[proto] if proto else None, compression=None,
                   proxy=None, **kw)


async def _recv(ws, timeout=5.0):
    return await recv_msg(ws, timeout)


async def _handshake_status(url, tok, path=""):
    try:
        async with _ws(url + path, tok):
            return 101, ""
    except InvalidStatus as exc:
        return exc.response.status_code, exc.response.body.decode()


def test_handshake_refuses_missing_expired_forged_revoked_and_url_tokens(tables, verifier, issuer, clock, keys, revocations):
    from pyplatform.signals.auth import KeyRing, TokenIssuer

    async def main():
        svc = await make_service(tables, verifier, clock)
        try:
            good = token(issuer, clock)
            assert (await _handshake_status(svc.url, good))[0] == 101
            st, body = await _handshake_status(svc.url, None)
            assert st == 401 and "Authorization" in body
            expired = token(issuer, clock, ttl_s=60, at_ns=clock.now_ns() - 3_000 * 10**9)
            st, body = await _handshake_status(svc.url, expired)
            assert st == 401 and "expired" in body
            forged = TokenIssuer(KeyRing(b"x" * 40)).issue("evil", topics=["*"], symbols=["*"], now_ns=clock.now_ns())
            st, body = await _handshake_status(svc.url, forged)
            assert st == 401 and "signature" in body
            tampered = good[:-3] + ("AAA" if good[-3:] != "AAA" else "BBB")
            assert (await _handshake_status(svc.url, tampered))[0] == 401
            claims = verifier.verify(good, clock.now_ns())
            revocations.revoke(claims.token_id, claims.expires_ns // 10**9, clock.now_ns())
            st, body = await _handshake_status(svc.url, good)
            assert st == 401 and "revoked" in body
            other = token(issuer, clock)
            st, body = await _handshake_status(svc.url, None, path=f"/?token={other}")
            assert st == 400 and "URL" in body
        finally:
            await svc.stop()

    run(main())


def test_rotated_keys_previous_accepted_in_grace_then_refused(tables, verifier, issuer, clock, keys):
    async def main():
        svc = await make_service(tables, verifier, clock)
        try:
            period_start_ns = keys.period(clock.now_ns()) * keys.rotation_s * 10**9
            # a token signed by the previous period's key, still within its own lifetime
            old = token(issuer, clock, ttl_s=7_200, at_ns=period_start_ns - 600 * 10**9)
            clock.offset_ns = period_start_ns + 60 * 10**9 - clock.now_ns() + clock.offset_ns  # 1 min after rotation
            assert (await _handshake_status(svc.url, old))[0] == 101
            clock.offset_ns += (keys.grace_s + 10) * 10**9  # grace over
            st, body = await _handshake_status(svc.url, old)
            assert st == 401 and "not current" in body
            assert (await _handshake_status(svc.url, token(issuer, clock)))[0] == 101  # new key works
        finally:
            await svc.stop()

    run(main())


@pytest.mark.parametrize("proto", [JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL])
def test_negotiated_encoding_snapshot_then_live(tables, verifier, issuer, clock, proto):
    async def main():
        tables["factors"].append(factor_batch(0))
        svc = await make_service(tables, verifier, clock)
        try:
            async with _ws(svc.url, token(issuer, clock), proto) as ws:
                assert ws.subprotocol == proto
                await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:mom"], "symbols": SYMBOLS[:3], "id": 7}))
                raw = await ws.recv()
                assert isinstance(raw, str) == (proto == JSON_SUBPROTOCOL)
                ack, *rest = decode_messages(raw)
                assert ack["type"] == "subscribed" and ack["id"] == 7 and ack["live_seq"] == 20
                snap = rest[0] if rest else await _recv(ws)
                assert snap["type"] == "snapshot"
                assert [(r["seq"], r["symbol"], r["mom"]) for r in snap["rows"]] == [(0, SYMBOLS[0], 0), (1, SYMBOLS[1], 1), (2, SYMBOLS[2], 2)]
                tables["factors"].append(factor_batch(100, value0=10))
                live = await _recv(ws)
                assert live["type"] == "data"
                assert sorted((r["seq"], r["mom"]) for r in live["rows"]) == [(20, 10), (21, 11), (22, 12)]
                assert set(live["rows"][0]) == {"seq", "ts", "symbol", "mom"}
        finally:
            await svc.stop()

    run(main())


def test_entitlements_enforced_on_every_subscribe(tables, verifier, issuer, clock):
    async def main():
        svc = await make_service(tables, verifier, clock)
        try:
            tok = token(issuer, clock, topics=["factors:mom"], symbols=SYMBOLS[:2])
            async with _ws(svc.url, tok) as ws:
                await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:rsi"], "symbols": SYMBOLS[:1], "id": 1}))
                err = await _recv(ws)
                assert err["code"] == "forbidden" and err["topics"] == ["factors:rsi"]
                await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:mom"], "symbols": SYMBOLS[:3], "id": 2}))
                err = await _recv(ws)
                assert err["code"] == "forbidden" and err["symbols"] == [SYMBOLS[2]]
                await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:mom"], "symbols": "*", "id": 3}))
                assert (await _recv(ws))["code"] == "forbidden"
                await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:mom"], "symbols": SYMBOLS[:2], "id": 4}))
                assert (await _recv(ws))["type"] == "subscribed"
                tables["factors"].append(factor_batch(0))
                rows = (await _recv(ws))["rows"]
                assert {r["symbol"] for r in rows} == set(SYMBOLS[:2])  # nothing outside the entitlement
        finally:
            await svc.stop()

    run(main())


def test_malformed_oversized_and_binary_frames_get_clear_close_codes_others_unaffected(tables, verifier, issuer, clock):
    async def main():
        svc = await make_service(tables, verifier, clock, max_message_bytes=1024)
        try:
            tok = token(issuer, clock)
            async with _ws(svc.url, tok) as good:
                await good.send(json.dumps({"type": "subscribe", "topics": ["factors:mom"], "symbols": "*"}))
                assert (await _recv(good))["type"] == "subscribed"
                cases = [("{not json", 1007, "invalid JSON"), (b"\x00\x01", 1003, "binary"),
                         ("x" * 5000, 1009, ""), ("[1, 2]", 1007, "JSON object")]
                for payload, code, words in cases:
                    async with _ws(svc.url, tok) as bad:
                        await bad.send(payload)
                        with pytest.raises(ConnectionClosed) as info:
                            await asyncio.wait_for(bad.recv(), 5)
                        assert info.value.rcvd.code == code, (payload[:10], info.value.rcvd)
                        assert words in info.value.rcvd.reason
                async with _ws(svc.url, tok, close_timeout=1) as bad:  # broken framing: a reserved opcode
                    bad.transport.write(b"\x8f\x80\x00\x00\x00\x00")
                    with pytest.raises(ConnectionClosed) as info:
                        await asyncio.wait_for(bad.recv(), 5)
                    assert info.value.rcvd.code == 1002 and "opcode" in info.value.rcvd.reason
                async with _ws(svc.url, tok) as bad:  # a request flood
                    with pytest.raises(ConnectionClosed) as info:
                        for _ in range(500):
                            await bad.send(json.dumps({"type": "ping"}))
                        while True:
                            await asyncio.wait_for(bad.recv(), 5)
                    assert info.value.rcvd.code == 1008 and "rate limit" in info.value.rcvd.reason
                async with _ws(svc.url, tok) as odd:  # schema errors are answered, not fatal
                    await odd.send(json.dumps({"type": "subscribe", "topics": ["nope"]}))
                    err = await _recv(odd)
                    assert err["code"] == "bad_request" and "'nope'" in err["message"]
                    await odd.send(json.dumps({"type": "subscribe", "topics": ["quotes"], "symbols": ["bad symbol"]}))
                    assert "bad symbol" in (await _recv(odd))["message"]
                    await odd.send(json.dumps({"type": "subscribe", "topics": ["factors:nope"]}))
                    assert "unknown factor 'nope'" in (await _recv(odd))["message"]
                tables["factors"].append(factor_batch(0))
                got = await _recv(good)  # the well-behaved client still streams
                assert got["type"] == "snapshot" or got["type"] == "data"
        finally:
            await svc.stop()

    run(main())


def test_health_endpoint_and_token_expiry_closes_connection(tables, verifier, issuer, clock):
    async def main():
        svc = await make_service(tables, verifier, clock)
        try:
            url = svc.url.replace("ws://", "http://") + "/health"
            body = await asyncio.to_thread(lambda: json.loads(urllib.request.urlopen(url, timeout=5).read()))
            assert body["status"] == "ok" and body["redis"] == "disabled"
            async with _ws(svc.url, token(issuer, clock, ttl_s=30)) as ws:
                clock.offset_ns += 60 * 10**9
                with pytest.raises(ConnectionClosed) as info:
                    await asyncio.wait_for(ws.recv(), 5)
                assert info.value.rcvd.code == 1008 and "expired" in info.value.rcvd.reason
        finally:
            await svc.stop()

    run(main())


def test_silent_peer_is_dropped_by_heartbeat_and_revoked_connection_closed(tables, verifier, issuer, clock, revocations):
    async def main():
        svc = await make_service(tables, verifier, clock, ping_interval_s=0.2, ping_timeout_s=0.3)
        try:
            tok = token(issuer, clock)
            async with _ws(svc.url, tok, ping_interval=None, close_timeout=0.5) as silent, \
                       _ws(svc.url, tok, ping_interval=None, close_timeout=0.5) as alive:
                await wait_for(lambda: len(svc._conns) == 2)
                silent.transport.pause_reading()  # it stops answering pings
                await wait_for(lambda: len(svc._conns) == 1, timeout=5)
                await alive.send(json.dumps({"type": "ping", "id": 1}))
                assert (await _recv(alive)) == {"type": "pong", "id": 1}  # the live peer is unaffected
                claims = verifier.verify(tok, clock.now_ns())
                revocations.revoke(claims.token_id, claims.expires_ns // 10**9, clock.now_ns())
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        await asyncio.wait_for(alive.recv(), 5)
                assert info.value.rcvd.code == 1008 and "revoked" in info.value.rcvd.reason
        finally:
            await svc.stop()

    run(main())


def test_unsubscribe_stops_delivery_and_resubscribe_replays_the_gap(tables, verifier, issuer, clock):
    async def main():
        svc = await make_service(tables, verifier, clock)
        try:
            async with _ws(svc.url, token(issuer, clock)) as ws:
                await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:rsi"], "symbols": SYMBOLS[:2], "from_seq": 0}))
                assert (await _recv(ws))["type"] == "subscribed"
                tables["factors"].append(factor_batch(0))
                assert [r["seq"] for r in (await _recv(ws))["rows"]] == [0, 1]
                await ws.send(json.dumps({"type": "unsubscribe", "topics": ["factors:rsi"], "id": 4}))
                assert await _recv(ws) == {"type": "unsubscribed", "topic": "factors:rsi", "id": 4}
                tables["factors"].append(factor_batch(100))
                await ws.send(json.dumps({"type": "ping", "id": 5}))
                assert await _recv(ws) == {"type": "pong", "id": 5}  # nothing was delivered in between
                await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:rsi"], "symbols": SYMBOLS[:2], "from_seq": 2}))
                ack = await _recv(ws)
                assert ack["mode"] == "replay" and ack["live_seq"] == 40
                assert [r["seq"] for r in (await _recv(ws))["rows"]] == [20, 21]
        finally:
            await svc.stop()

    run(main())
