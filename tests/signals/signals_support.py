"""Fixtures and helpers of the signal-service tests: a real redis-server, real stream tables,
keys, a clock. A uniquely named module (conftest.py star-imports it): several test folders have a
conftest.py, and ``from conftest import`` would pick whichever was imported last."""

from __future__ import annotations

import asyncio
import collections
import shutil
import weakref
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import redis

from pyplatform.clock import SimClock
from pyplatform.domain.schemas import QUOTES, SIGNALS, factor_schema
from pyplatform.signals.auth import KeyRing, RevocationList, TokenIssuer, TokenVerifier
from pyplatform.signals.server import ServiceConfig, SignalService
from pyplatform.stream import StreamTable

SECRET = b"test-master-secret-0123456789-abcdefghijkl"
SYMBOLS = [f"S{i:03d}.US" for i in range(20)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throw-away redis-server on a free port (no persistence), restartable on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture()
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    srv = RedisServer(tmp_path)
    srv.start()
    yield srv
    srv.stop()


class OffsetClock:
    """Wall-clock time plus an offset the test moves (token expiry, key rotation)."""

    def __init__(self) -> None:
        self.offset_ns = 0

    def now_ns(self) -> int:
        return time.time_ns() + self.offset_ns


@pytest.fixture()
def clock():
    return OffsetClock()


@pytest.fixture()
def keys():
    return KeyRing(SECRET, rotation_s=86_400, grace_s=3_600)


@pytest.fixture()
def issuer(keys):
    return TokenIssuer(keys)


@pytest.fixture()
def revocations(tmp_path):
    return RevocationList(tmp_path / "revoked.json")


@pytest.fixture()
def verifier(keys, revocations):
    return TokenVerifier(keys, revocations)


@pytest.fixture()
def tables():
    return {
        "quotes": StreamTable("quotes", QUOTES, clock=SimClock()),
        "factors": StreamTable("factors", factor_schema(["mom", "rsi"]), memory_rows=10_000, clock=SimClock()),
        "signals": StreamTable("signals", SIGNALS, clock=SimClock()),
    }


def factor_batch(ts0: int, symbols=SYMBOLS, value0: float = 0.0) -> dict:
    n = len(symbols)
    return {"ts": np.arange(ts0, ts0 + n, dtype=np.int64), "symbol": list(symbols),
            "mom": value0 + np.arange(n, dtype=float), "rsi": np.full(n, 50.0)}


def token(issuer, clock, topics=("*",), symbols=("*",), ttl_s=900, subject="tester", at_ns=None) -> str:
    return issuer.issue(subject, topics=list(topics), symbols=list(symbols),
                        now_ns=clock.now_ns() if at_ns is None else at_ns, ttl_s=ttl_s)


async def make_service(tables, verifier, clock, *, redis_url=None, audit=None, **cfg) -> SignalService:
    """A started service on a free loopback port (stop it with ``await svc.stop()``)."""
    cfg.setdefault("port", 0)
    cfg.setdefault("check_interval_s", 0.1)
    svc = SignalService(tables, verifier, ServiceConfig(**cfg), clock=clock, redis_url=redis_url, audit=audit)
    await svc.start()
    return svc


def run(coro, timeout: float = 30.0):
    """Run one test coroutine with an overall time limit."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def wait_for(pred, timeout=5.0, step=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


_BUFFERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


async def recv_msg(ws, timeout: float = 5.0) -> dict:
    """The next server message (several may share one WebSocket message under load)."""
    from pyplatform.signals.wire import decode_messages

    buf = _BUFFERS.setdefault(ws, collections.deque())
    while not buf:
        buf.extend(decode_messages(await asyncio.wait_for(ws.recv(), timeout)))
    return buf.popleft()
