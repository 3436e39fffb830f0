"""Audit records of refused logins / entitlements, and credentials that leak nowhere (real sockets)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request

from typer.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from signals_support import SYMBOLS, factor_batch, make_service, recv_msg, run, token, wait_for
from pyplatform.clock import LiveClock, SimClock
from pyplatform.audit import AuditLog, read_audit, verify_file
from pyplatform.signals.auditing import AuditSink
from pyplatform.signals.wire import JSON_SUBPROTOCOL


def _ws(url, tok, path=""):
    headers = {"Authorization": f"Bearer {tok}"} if tok is not None else {}
    return connect(url + path, additional_headers=headers, subprotocols=[JSON_SUBPROTOCOL], compression=None, proxy=None)


async def _status(url, tok, path=""):
    try:
        async with _ws(url, tok, path):
            return 101, ""
    except InvalidStatus as exc:
        return exc.response.status_code, exc.response.body.decode()


def test_refused_logins_and_entitlements_are_audited_with_the_reason_never_the_token(tmp_path, tables, verifier,
                                                                                     issuer, clock):
    from pyplatform.signals.auth import KeyRing, TokenIssuer

    log_path = tmp_path / "audit.log"
    alog = AuditLog(log_path, clock, fsync=False)
    sink = AuditSink(lambda kind, subject, outcome, details: alog.append(kind, "service:test", subject, outcome, details))
    forged = TokenIssuer(KeyRing(b"z" * 40)).issue("mallory", topics=["*"], symbols=["*"], now_ns=clock.now_ns())
    url_token = token(issuer, clock, subject="leaky")
    limited = token(issuer, clock, topics=["factors:mom"], symbols=SYMBOLS[:2], subject="alice")

    async def main():
        tables["factors"].append(factor_batch(0))
        svc = await make_service(tables, verifier, clock, audit=sink, max_conns_per_subject=1)
        try:
            assert (await _status(svc.url, None))[0] == 401
            assert (await _status(svc.url, forged))[0] == 401
            assert (await _status(svc.url, None, f"/?token={url_token}"))[0] == 400
            async with _ws(svc.url, limited) as ws:
                # the subject's only allowed connection is open: a second one is refused (429)
                assert (await _status(svc.url, limited))[0] == 429
                await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:rsi"], "symbols": SYMBOLS[:1], "id": 5}))
                assert (await recv_msg(ws))["code"] == "forbidden"
                await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:mom"], "symbols": SYMBOLS[:3], "id": 6}))
                assert (await recv_msg(ws))["code"] == "forbidden"
                await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:mom"], "symbols": SYMBOLS[:2], "id": 7}))
                assert (await recv_msg(ws))["type"] == "subscribed"  # an allowed subscribe is not audited as refused
            # once that connection has closed, its place is free again (the count is released)
            await wait_for(lambda: svc.health()["connections"] == 0)
            assert (await _status(svc.url, limited))[0] == 101
        finally:
            await svc.stop()

    run(main())
    assert sink.flush(10)
    sink.close()
    frame = read_audit(log_path)
    assert list(frame["kind"]) == ["login.refused"] * 4 + ["entitlement.refused"] * 2
    reasons = [d["reason"] for d in frame["details"][:4]]
    assert "Authorization" in reasons[0]
    assert "signature" in reasons[1]
    assert "URL" in reasons[2]
    assert "limit" in reasons[3] and frame["subject"][3] == "alice"
    assert [d["status"] for d in frame["details"][:4]] == [401, 401, 400, 429]
    assert all(d["peer"] == "127.0.0.1" for d in frame["details"])
    ent = frame[frame["kind"] == "entitlement.refused"]
    assert list(ent["subject"]) == ["alice", "alice"]
    assert ent["details"].iloc[0]["topics"] == ["factors:rsi"] and ent["details"].iloc[0]["id"] == 5
    assert ent["details"].iloc[1]["symbols"] == [SYMBOLS[2]]
    assert ent["details"].iloc[1]["jti"] == verifier.verify(limited, clock.now_ns()).token_id
    assert verify_file(log_path).ok
    text = log_path.read_text()
    for tok in (forged, url_token, limited):  # a token (a bearer credential) is never written
        assert tok not in text and tok.split(".")[2] not in text


def test_a_flood_beyond_the_queue_is_counted_not_blocking():
    import threading

    gate, entered = threading.Event(), threading.Event()
    written = []

    def slow_write(kind, subject, outcome, details):
        entered.set()
        gate.wait(10)  # the "disk" is stuck until the flood is over
        written.append(details)

    sink = AuditSink(slow_write, max_pending=3)
    sink.submit("login.refused", None, "refused", {"i": 0})
    assert entered.wait(10)  # the writer thread holds record 0
    for i in range(1, 20):  # never blocks although nothing can be written
        sink.submit("login.refused", None, "refused", {"i": i})
    gate.set()
    assert sink.flush(10)
    sink.submit("login.refused", None, "refused", {"i": 99})
    assert sink.flush(10)
    sink.close()
    # the first was held by the thread, 3 waited in the queue, the other 16 were counted and the
    # count went into the next record written
    assert [d["i"] for d in written] == [0, 1, 2, 3, 99]
    assert written[1]["suppressed_before"] == 16
    assert "suppressed_before" not in written[0] and "suppressed_before" not in written[4]


# ----------------------------------------------------------------------------- masking

_SECRET = "Zq7SECRETpw91"  # one greppable secret put in every credential-carrying setting


def test_a_known_secret_in_every_credential_setting_leaks_nowhere(tmp_path, monkeypatch, caplog, redis_server):
    """``pyplatform config``, the service's logs, ``/health`` (public and detailed), refusal
    bodies, the Redis error text and the audit log: none shows the secret."""
    from pyplatform.cli.main import app
    from pyplatform.config import Settings, reset_settings_cache
    from pyplatform.signals.server import ServiceConfig
    from pyplatform.signals.service import build_issuer, serve
    from pyplatform.stream import StreamTable
    from pyplatform.domain.schemas import factor_schema

    secret_file = tmp_path / "jwt.secret"
    secret_file.write_bytes(b"m" * 48)
    secret_file.chmod(0o600)
    env = {
        "PYPLATFORM_DATA_DIR": str(tmp_path / "data"),
        "PYPLATFORM_JWT_SECRET_FILE": str(secret_file),
        # redis answers, but refuses the password (it has none): the error path must mask too
        "PYPLATFORM_REDIS_URL": f"redis://user:{_SECRET}u@127.0.0.1:{redis_server.port}/0?password={_SECRET}q",
        "PYPLATFORM_DOLPHINDB_URI": f"dolphindb://admin:{_SECRET}d@db.example:8848?token={_SECRET}t",
        "PYPLATFORM_DOLPHINDB_PASSWORD": _SECRET + "p",
        "PYPLATFORM_ITICK_TOKEN": _SECRET + "i",
        "PYPLATFORM_ITICK_WS_URL": f"wss://api.itick.org/stock?token={_SECRET}w",
        "PYPLATFORM_LOG_LEVEL": "DEBUG",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    reset_settings_cache()
    try:
        settings = Settings()
        assert _SECRET in settings.redis_url and _SECRET in settings.itick_token.get_secret_value()  # really set
        printed = [CliRunner().invoke(app, ["config", "--json"]).output,
                   CliRunner().invoke(app, ["config"], env={"COLUMNS": "400"}).output]
        assert "redis://" in printed[0]
        issuer = build_issuer(settings)
        good = issuer.issue("ops", topics=["*"], symbols=["*"], now_ns=time.time_ns())
        bodies: list[str] = []
        tables = {"factors": StreamTable("factors", factor_schema(["mom", "rsi"]), clock=SimClock())}
        tables["factors"].append(factor_batch(0))

        async def main():
            stop = asyncio.Event()
            started: asyncio.Future = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(serve(settings, tables, stop, clock=LiveClock(), ready=started.set_result,
                                             config=ServiceConfig(port=0, check_interval_s=0.1)))
            svc = await asyncio.wait_for(started, 10)
            try:
                for _ in range(100):  # the wrong password is found out (degraded) before we look
                    if svc.health()["redis"] == "degraded":
                        break
                    await asyncio.sleep(0.05)
                assert svc.health()["redis"] == "degraded"
                http = svc.url.replace("ws", "http", 1) + "/health"
                for headers in ({}, {"Authorization": f"Bearer {good}"}):
                    req = urllib.request.Request(http, headers=headers)
                    try:
                        body = await asyncio.to_thread(lambda: urllib.request.urlopen(req, timeout=5).read().decode())
                    except urllib.error.HTTPError as exc:  # 503 while degraded
                        body = exc.read().decode()
                    bodies.append(body)
                assert "redis_error" in bodies[1]  # the detailed form really carries the error text
                for tok, path in ((None, ""), ("x.y.z", ""), (None, f"/?token={_SECRET}")):
                    bodies.append((await _status(svc.url, tok, path))[1])
                async with _ws(svc.url, good) as ws:
                    await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:nope"], "id": 1}))
                    bodies.append(json.dumps(await recv_msg(ws)))
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)

        with caplog.at_level(logging.DEBUG):
            run(main())
        # the service's log records (the test's own websockets client logs its requests itself)
        service_log = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
                                 if not r.name.startswith("websockets.client"))
        assert "GET /" in service_log and "Authorization" in service_log  # request lines are logged ...
        audit_text = settings.audit_path.read_text() if settings.audit_path.exists() else ""
        assert "login.refused" in audit_text  # the refusals above were recorded ...
        everything = "\n".join(printed + bodies + [service_log, audit_text])
        assert "Authorization" in everything and "redis" in service_log  # the texts are really there
        # ... and neither the secret nor the bearer token appears in any of them
        for leak in (_SECRET, good, good.split(".")[2]):
            assert leak not in everything, [line for line in everything.splitlines() if leak in line][:5]
    finally:
        reset_settings_cache()
