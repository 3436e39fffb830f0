"""The Redis hot cache with a real redis-server: snapshots, shared registry, Redis restart mid-stream."""

from __future__ import annotations

import asyncio
import json

import redis

from signals_support import recv_msg, SYMBOLS, factor_batch, make_service, run, token, wait_for
from pyplatform.clock import SimClock
from pyplatform.domain.schemas import factor_schema
from pyplatform.signals.wire import MSGPACK_SUBPROTOCOL
from pyplatform.stream import StreamTable
from websockets.asyncio.client import connect


def _connect(svc, issuer, clock):
    return connect(svc.url, additional_headers={"Authorization": f"Bearer {token(issuer, clock)}"},
                   subprotocols=[MSGPACK_SUBPROTOCOL], proxy=None)


def test_latest_rows_in_redis_serve_the_snapshot_of_a_fresh_process(redis_server, verifier, issuer, clock):
    async def main():
        t1 = StreamTable("factors", factor_schema(["mom", "rsi"]), clock=SimClock())
        svc = await make_service({"factors": t1}, verifier, clock, redis_url=redis_server.url)
        t1.append(factor_batch(0))
        t1.append(factor_batch(100, symbols=SYMBOLS[:5], value0=1000))
        r = redis.Redis(port=redis_server.port)
        await wait_for(lambda: r.hlen("pp:latest:factors") == len(SYMBOLS) and svc.redis.status == "ok")
        row = json.loads(r.hget("pp:latest:factors", SYMBOLS[1]))
        assert row == {"ts": 101, "symbol": SYMBOLS[1], "mom": 1001, "rsi": 50, "offset": 21}
        assert svc.health()["status"] == "ok"
        await svc.stop()
        # a new process with an empty table: its snapshot comes from Redis
        t2 = StreamTable("factors", factor_schema(["mom", "rsi"]), clock=SimClock())
        svc2 = await make_service({"factors": t2}, verifier, clock, redis_url=redis_server.url)
        try:
            async with _connect(svc2, issuer, clock) as ws:
                await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:mom"], "symbols": SYMBOLS[:7]}))
                assert (await recv_msg(ws))["type"] == "subscribed"
                snap = await recv_msg(ws, 5)
                assert snap["type"] == "snapshot"
                got = {r["symbol"]: (r["seq"], r["mom"]) for r in snap["rows"]}
                want = {s: (20 + i, 1000.0 + i) for i, s in enumerate(SYMBOLS[:5])}
                want.update({s: (i, float(i)) for i, s in enumerate(SYMBOLS[:7]) if i >= 5})
                assert got == want
                t2.append(factor_batch(500, symbols=SYMBOLS[:2]))
                live = await recv_msg(ws, 5)
                assert live["type"] == "data" and [r["seq"] for r in live["rows"]] == [0, 1]
        finally:
            await svc2.stop()

    run(main())


def test_subscription_registry_is_shared_by_service_processes(redis_server, verifier, issuer, clock):
    async def main():
        a = await make_service({"factors": StreamTable("factors", factor_schema(["mom", "rsi"]), clock=SimClock())}, verifier, clock,
                               redis_url=redis_server.url)
        b = await make_service({"factors": StreamTable("factors", factor_schema(["mom", "rsi"]), clock=SimClock())}, verifier, clock,
                               redis_url=redis_server.url)
        try:
            async with _connect(a, issuer, clock) as ws:
                await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:rsi"], "symbols": SYMBOLS[:2]}))
                await recv_msg(ws)
                seen = []

                async def poll():
                    seen[:] = await b.redis.subscriptions()
                    return seen

                for _ in range(200):
                    if await poll():
                        break
                    await asyncio.sleep(0.02)
                assert [(e["instance"], e["topic"], e["symbols"], e["subject"]) for e in seen] == [
                    (a.instance, "factors:rsi", SYMBOLS[:2], "tester")]
            for _ in range(200):
                if not await poll():
                    break
                await asyncio.sleep(0.02)
            assert seen == []
        finally:
            await a.stop()
            await b.stop()

    run(main())


def test_redis_restart_during_streaming_degrades_then_recovers(redis_server, verifier, issuer, clock):
    async def main():
        table = StreamTable("factors", factor_schema(["mom", "rsi"]), clock=SimClock())
        svc = await make_service({"factors": table}, verifier, clock, redis_url=redis_server.url)
        r = redis.Redis(port=redis_server.port)
        try:
            async with _connect(svc, issuer, clock) as ws:
                await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:mom"], "symbols": "*"}))
                assert (await recv_msg(ws))["type"] == "subscribed"  # no rows yet: no snapshot frame
                table.append(factor_batch(0))
                assert [row["seq"] for row in (await recv_msg(ws, 5))["rows"]] == list(range(20))
                await wait_for(lambda: svc.redis.status == "ok" and svc.redis.writes > 0)
                redis_server.stop()
                received = []
                for i in range(1, 6):  # streaming goes on from memory while Redis is down
                    table.append(factor_batch(i * 100, value0=10 * i))
                    msg = await recv_msg(ws, 5)
                    received += [row["seq"] for row in msg["rows"]]
                    await asyncio.sleep(0.05)
                assert received == list(range(20, 120))
                await wait_for(lambda: svc.health()["status"] == "degraded")
                assert "Connection" in (svc.health()["redis_error"] or "")
                redis_server.start()  # same port, empty (no persistence)
                await wait_for(lambda: svc.health()["status"] == "ok", timeout=10)
                r = redis.Redis(port=redis_server.port)
                await wait_for(lambda: r.hlen("pp:latest:factors") == len(SYMBOLS))
                assert json.loads(r.hget("pp:latest:factors", SYMBOLS[3]))["mom"] == 53
                table.append(factor_batch(900, value0=77))
                msg = await recv_msg(ws, 5)
                assert [row["seq"] for row in msg["rows"]] == list(range(120, 140))
                await wait_for(lambda: json.loads(r.hget("pp:latest:factors", SYMBOLS[3]))["mom"] == 80)
        finally:
            await svc.stop()

    run(main(), timeout=60)


def test_revocation_shared_through_redis_closes_and_refuses_the_token(redis_server, tables, verifier, issuer, clock):
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    async def main():
        svc = await make_service(tables, verifier, clock, redis_url=redis_server.url)
        tok = token(issuer, clock)
        try:
            async with _connect(svc, issuer, clock) as other, connect(
                    svc.url, additional_headers={"Authorization": f"Bearer {tok}"}, proxy=None) as ws:
                await wait_for(lambda: svc.redis.status == "ok")
                claims = verifier.verify(tok, clock.now_ns())
                # another host revokes it: only Redis knows
                redis.Redis(port=redis_server.port).hset("pp:revoked", claims.token_id, claims.expires_ns // 10**9)
                try:
                    await asyncio.wait_for(ws.recv(), 5)
                    raise AssertionError("the revoked connection stayed open")
                except ConnectionClosed as exc:
                    assert exc.rcvd.code == 1008 and "revoked" in exc.rcvd.reason
                await other.send(json.dumps({"type": "ping", "id": 1}))
                assert (await recv_msg(other))["type"] == "pong"  # another token is unaffected
            try:
                async with connect(svc.url, additional_headers={"Authorization": f"Bearer {tok}"}, proxy=None):
                    raise AssertionError("a revoked token was accepted")
            except InvalidStatus as exc:
                assert exc.response.status_code == 401 and b"revoked" in exc.response.body
        finally:
            await svc.stop()

    run(main())


def test_signal_snapshots_are_per_strategy_and_symbol(redis_server, verifier, issuer, clock):
    from pyplatform.domain.schemas import SIGNALS

    rows = {"ts": [1, 2, 3, 4], "symbol": ["AA.US", "AA.US", "BB.US", "AA.US"], "strategy": ["x", "y", "x", "x"],
            "direction": [1, -1, 1, 0], "strength": [1.0, 0.5, float("nan"), 0.0], "reason": ["r1", "r2", "r3", "r4"],
            "factors": ['{"m": 1}'] * 4}

    async def main():
        t1 = StreamTable("signals", SIGNALS, clock=SimClock())
        svc = await make_service({"signals": t1}, verifier, clock, redis_url=redis_server.url)
        t1.append(rows)
        r = redis.Redis(port=redis_server.port)
        await wait_for(lambda: r.hlen("pp:latest:signals") == 3)
        assert sorted(r.hkeys("pp:latest:signals")) == [b"x|AA.US", b"x|BB.US", b"y|AA.US"]
        await svc.stop()
        svc2 = await make_service({"signals": StreamTable("signals", SIGNALS, clock=SimClock())}, verifier, clock, redis_url=redis_server.url)
        try:
            tok = token(issuer, clock, topics=["signals:x"])
            async with connect(svc2.url, additional_headers={"Authorization": f"Bearer {tok}"}, proxy=None) as ws:
                await ws.send(json.dumps({"type": "subscribe", "topics": ["signals:y"], "symbols": ["AA.US"]}))
                assert (await recv_msg(ws))["code"] == "forbidden"
                await ws.send(json.dumps({"type": "subscribe", "topics": ["signals:x"], "symbols": ["AA.US", "BB.US"]}))
                assert (await recv_msg(ws))["type"] == "subscribed"
                snap = await recv_msg(ws)
                assert [(x["seq"], x["symbol"], x["strategy"], x["direction"], x["strength"]) for x in snap["rows"]] == [
                    (2, "BB.US", "x", 1, None), (3, "AA.US", "x", 0, 0)]
        finally:
            await svc2.stop()

    run(main())
