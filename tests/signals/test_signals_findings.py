"""Issue #18 findings that had no test of their own, each over a real service (and real Redis).

Finding 4: revocations survive a Redis restart; 7: a dropped slow consumer leaves /health's
count at once; 8: an open connection is closed when its key is retired, snapshot rows from
Redis are checked against the table's offsets, a stopped Redis does not hold a snapshot,
the public /health shows no host/PID/cursors; 1: the per-address connection limit; 6: a
hypothesis fuzz over handshake headers never gets a 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import urllib.error
import urllib.request

import pytest
import redis
from hypothesis import HealthCheck, given, settings, strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from signals_support import SYMBOLS, factor_batch, make_service, recv_msg, run, token, wait_for
from pyplatform.clock import LiveClock, SimClock
from pyplatform.signals.auth import SecretKeys, TokenIssuer, TokenVerifier, load_master_secret
from pyplatform.signals.protocol import CloseCode


def _connect(url, tok, **kw):
    return connect(url, additional_headers={"Authorization": f"Bearer {tok}"}, proxy=None, compression=None, **kw)


async def _status(url, headers):
    try:
        async with connect(url, additional_headers=headers, proxy=None, compression=None, open_timeout=5):
            return 101, ""
    except InvalidStatus as exc:
        return exc.response.status_code, exc.response.body.decode(errors="replace")


def test_revocations_are_rewritten_to_a_restarted_redis(redis_server, tables, verifier, issuer, clock, revocations):
    """Finding 4: a Redis restarted empty gets this host's revocations back with the latest rows."""
    tok = token(issuer, clock)
    claims = verifier.verify(tok, clock.now_ns())
    revocations.revoke(claims.token_id, claims.expires_ns // 10**9, clock.now_ns())

    async def main():
        tables["factors"].append(factor_batch(0))
        svc = await make_service(tables, verifier, clock, redis_url=redis_server.url)
        try:
            r = redis.Redis(port=redis_server.port)
            await wait_for(lambda: r.hget("pp:revoked", claims.token_id) is not None, timeout=10)
            redis_server.stop()
            await wait_for(lambda: svc.health()["status"] == "degraded", timeout=10)
            redis_server.start()  # same port, nothing in it
            r = redis.Redis(port=redis_server.port)
            assert r.hget("pp:revoked", claims.token_id) is None
            await wait_for(lambda: svc.health()["status"] == "ok", timeout=10)
            await wait_for(lambda: r.hget("pp:revoked", claims.token_id) is not None, timeout=10)
            assert int(r.hget("pp:revoked", claims.token_id)) == claims.expires_ns // 10**9
        finally:
            await svc.stop()

    run(main(), timeout=60)


def test_open_connection_is_closed_when_its_secret_is_replaced_past_grace(tmp_path, tables, clock):
    """Finding 8 (and 2): a new master secret is picked up live; connections on the old one end after the grace."""
    path = tmp_path / "jwt.secret"
    path.write_bytes(b"a" * 40)
    path.chmod(0o600)
    keys = SecretKeys(lambda: load_master_secret(path, env={}), path, secret_grace_s=60, poll_s=0)
    verifier = TokenVerifier(keys)
    old = TokenIssuer(keys.current).issue("u", topics=["*"], symbols=["*"], now_ns=clock.now_ns(), ttl_s=900)

    async def main():
        svc = await make_service(tables, verifier, clock)
        try:
            async with _connect(svc.url, old) as ws:
                path.write_bytes(b"b" * 41)  # `pyplatform tokens init-secret --force`
                path.chmod(0o600)
                await wait_for(lambda: keys.reloads == 1)  # noticed by the service's periodic check
                await ws.send(json.dumps({"type": "ping", "id": 1}))
                assert (await recv_msg(ws))["type"] == "pong"  # within the grace it stays open
                clock.offset_ns += 62 * 10**9
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        await asyncio.wait_for(ws.recv(), 5)
                assert info.value.rcvd.code == CloseCode.POLICY_VIOLATION and "rotated" in info.value.rcvd.reason
            st_, body = await _status(svc.url, {"Authorization": f"Bearer {old}"})
            assert st_ == 401 and "signature" in body
        finally:
            await svc.stop()

    run(main())


def test_snapshot_rows_from_redis_must_fit_the_tables_offsets(redis_server, tables, verifier, issuer, clock):
    """Finding 8: a row injected into Redis with an offset the table never produced is not served."""
    async def main():
        tables["factors"].append(factor_batch(0))  # offsets 0..19
        svc = await make_service(tables, verifier, clock, redis_url=redis_server.url)
        try:
            await wait_for(lambda: svc.redis.status == "ok")
            forged = {"ts": 1, "symbol": SYMBOLS[0], "mom": -999.0, "rsi": 1.0, "offset": 10**9}
            redis.Redis(port=redis_server.port).hset("pp:latest:factors", SYMBOLS[0], json.dumps(forged))
            async with _connect(svc.url, token(issuer, clock)) as ws:
                await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:mom"], "symbols": SYMBOLS[:2]}))
                assert (await recv_msg(ws))["type"] == "subscribed"
                snap = await recv_msg(ws)
                assert snap["type"] == "snapshot"
                assert [(r["seq"], r["mom"]) for r in snap["rows"]] == [(0, 0.0), (1, 1.0)]  # the table's rows
        finally:
            await svc.stop()

    run(main())


def test_snapshot_is_served_from_memory_while_redis_is_hung(redis_server, tables, verifier, issuer, clock, caplog):
    """Finding 8: a Redis that accepts connections but never answers (SIGSTOP) does not hold the snapshot."""
    async def main():
        tables["factors"].append(factor_batch(0))
        svc = await make_service(tables, verifier, clock, redis_url=redis_server.url)
        try:
            await wait_for(lambda: svc.redis.status == "ok")
            os.kill(redis_server.proc.pid, signal.SIGSTOP)
            try:
                async with _connect(svc.url, token(issuer, clock)) as ws:
                    await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:mom"], "symbols": SYMBOLS[:3]}))
                    assert (await recv_msg(ws, 10))["type"] == "subscribed"
                    snap = await recv_msg(ws, 10)
                    assert snap["type"] == "snapshot" and [r["seq"] for r in snap["rows"]] == [0, 1, 2]
            finally:
                os.kill(redis_server.proc.pid, signal.SIGCONT)
        finally:
            await svc.stop()

    with caplog.at_level(logging.WARNING):
        run(main())
    assert "serving from memory" in caplog.text


def test_dropped_slow_consumer_leaves_health_at_once_and_public_health_hides_the_host(tables, verifier, issuer, clock):
    """Findings 7 and 8: /health counts a dropped consumer out at the drop; without a token it shows no host/PID."""
    import socket

    wide = [f"W{i:04d}.US" for i in range(300)]

    async def main():
        from pyplatform.domain.schemas import factor_schema
        from pyplatform.stream import StreamTable

        table = StreamTable("factors", factor_schema(["mom", "rsi"]), clock=SimClock())
        svc = await make_service({"factors": table}, verifier, clock, queue_frames=8, write_limit=4096, close_timeout_s=30)
        tok = token(issuer, clock)
        slow_sock = socket.socket()
        slow_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow_sock.connect(("127.0.0.1", svc.port))
        try:
            async with _connect(svc.url, tok, sock=slow_sock, max_queue=1, max_size=None) as slow:
                await slow.send(json.dumps({"type": "subscribe", "topics": ["factors"], "symbols": "*"}))
                await wait_for(lambda: svc.fanout.subscriber_count() == 1)
                slow.transport.pause_reading()
                assert svc.health()["connections"] == 1
                i = 0
                while svc.dropped_slow == 0 and i < 2_000:
                    table.append(factor_batch(i * 1000, symbols=wide, value0=i))
                    i += 1
                    await asyncio.sleep(0)
                assert svc.dropped_slow == 1
                # counted out at once, although its close waits (close_timeout_s=30) on a full socket
                assert svc.health()["connections"] == 0
                url = svc.url.replace("ws://", "http://") + "/health"
                public = await asyncio.to_thread(lambda: json.loads(urllib.request.urlopen(url, timeout=5).read()))
                assert set(public) == {"status", "redis", "connections", "subscribers", "dropped_slow"}
                assert public["dropped_slow"] == 1 and str(os.getpid()) not in json.dumps(public)
                req = urllib.request.Request(url, headers={"Authorization": f"Bearer {tok}"})
                detail = await asyncio.to_thread(lambda: json.loads(urllib.request.urlopen(req, timeout=5).read()))
                assert "instance" in detail and "cursors" in detail  # the details need a valid token
                slow.transport.abort()
        finally:
            await svc.stop()

    run(main(), timeout=60)


def test_connections_per_address_are_limited_with_429(tables, verifier, issuer, clock):
    """Finding 1: one address cannot hold more than ``max_conns_per_ip`` connections, whatever its tokens."""
    async def main():
        svc = await make_service(tables, verifier, clock, max_conns_per_ip=2)
        try:
            async with _connect(svc.url, token(issuer, clock, subject="a")), \
                       _connect(svc.url, token(issuer, clock, subject="b")):
                st_, body = await _status(svc.url, {"Authorization": f"Bearer {token(issuer, clock, subject='c')}"})
                assert st_ == 429 and "limit" in body
            await wait_for(lambda: svc.health()["connections"] == 0)
            assert (await _status(svc.url, {"Authorization": f"Bearer {token(issuer, clock, subject='c')}"}))[0] == 101
        finally:
            await svc.stop()

    run(main())


_HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(auth=st.lists(st.one_of(_HEADER_TEXT, st.builds(lambda t: "Bearer " + t, _HEADER_TEXT)), max_size=3),
       path=st.sampled_from(["/", "/?token=x", "/health", "/x?access_token=1", "/%00", "/?a=" + "b" * 500]),
       extra=st.dictionaries(st.sampled_from(["X-Forwarded-For", "Cookie", "Sec-WebSocket-Protocol", "Origin"]),
                             _HEADER_TEXT, max_size=2))
def test_fuzzed_handshake_headers_get_a_documented_status_never_a_500(tables, verifier, clock, auth, path, extra):
    """Finding 6: any Authorization values (none, several, garbage) and paths end in 101/200/400/401/429/503."""
    from websockets.datastructures import Headers

    async def main():
        svc = await make_service(tables, verifier, clock)
        try:
            headers = Headers()
            for a in auth:
                headers["Authorization"] = a
            for k, v in extra.items():
                headers[k] = v
            if path == "/health":
                req = urllib.request.Request(svc.url.replace("ws://", "http://") + path,
                                             headers={"Authorization": auth[0]} if auth else {})
                try:
                    code = await asyncio.to_thread(lambda: urllib.request.urlopen(req, timeout=5).status)
                except urllib.error.HTTPError as exc:
                    code = exc.code
            else:
                code, _ = await _status(svc.url + path, headers)
            assert code in (101, 200, 400, 401, 429, 503), code
        finally:
            await svc.stop()

    run(main())


def test_redis_with_a_password_from_the_secret_file(tmp_path, caplog):
    """Finding 8 (unauthenticated Redis): a redis-server with ``requirepass`` is used with the password
    from DATA_DIR/secrets/redis.password; without the file the service runs degraded (never open)."""
    import shutil
    import subprocess
    import time

    from signals_support import free_port
    from pyplatform.config import Settings
    from pyplatform.domain.schemas import factor_schema
    from pyplatform.signals.server import ServiceConfig
    from pyplatform.signals.service import redis_password_path, serve
    from pyplatform.stream import StreamTable

    password = "rEd1s-pw-" + os.urandom(6).hex()
    port = free_port()
    proc = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--requirepass", password, "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    admin = redis.Redis(port=port, password=password)
    for _ in range(200):
        try:
            admin.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.02)
    secret = tmp_path / "jwt.secret"
    secret.write_bytes(b"k" * 40)
    secret.chmod(0o600)
    settings = Settings(data_dir=tmp_path / "data", redis_url=f"redis://127.0.0.1:{port}/0", jwt_secret_file=secret)

    async def one_run() -> dict:
        stop = asyncio.Event()
        started: asyncio.Future = asyncio.get_running_loop().create_future()
        tables = {"factors": StreamTable("factors", factor_schema(["mom", "rsi"]), clock=SimClock())}
        tables["factors"].append(factor_batch(0))
        task = asyncio.create_task(serve(settings, tables, stop, clock=LiveClock(), ready=started.set_result, audit=False,
                                         config=ServiceConfig(port=0, check_interval_s=0.1)))
        svc = await asyncio.wait_for(started, 10)
        try:
            await wait_for(lambda: svc.health(detail=True)["redis"] in ("ok", "degraded"), timeout=10)
            return svc.health(detail=True)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    try:
        with caplog.at_level(logging.DEBUG):
            refused = run(one_run())
            assert refused["redis"] == "degraded" and "auth" in (refused["redis_error"] or "").lower()
            assert admin.hlen("pp:latest:factors") == 0  # nothing written without the password
            path = redis_password_path(settings)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(password + "\n")
            path.chmod(0o600)
            ok = run(one_run())
        assert ok["redis"] == "ok", ok
        assert admin.hlen("pp:latest:factors") == len(SYMBOLS)  # the hot cache was written
        assert password not in caplog.text
    finally:
        proc.terminate()
        proc.wait(5)
