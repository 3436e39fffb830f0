"""Replays cannot stall everyone (issue #18, finding 1): a behaviour test over real sockets.

A real service runs in its own process (its RSS is its own), with a factor table holding a
long history and a publisher appending 20 batches/s of 200 symbols in the same process (as a
pipeline would). 50 normal clients subscribe to 10 symbols each and measure their delivered
rows/s and publish-to-receive latency, first alone (the baseline, measured in this test), then
while 3 clients that ask for a replay of the whole history never read, and 1 client replays
all of it in JSON and reads it. The normal clients must keep

- their rate: at least ``RATE_MARGIN`` (50 %) of the baseline rate,
- their p99 latency: at most ``max(P99_BOUND_MS, 2 x baseline p99)`` (250 ms; the machine is
  shared, so a noisy baseline widens the bound rather than failing the test),
- ``/health`` answered within ``HEALTH_BOUND_S`` (1 s) throughout,

and after the replaying clients leave the server's RSS returns to within ``RSS_MARGIN_MIB``
(100 MiB) of its baseline (before the fix it grew by ~620 MB and stayed there). These margins
are documented in ``docs/signals.md`` ("Replay fairness"). Not a benchmark: no figure from
this test is recorded anywhere.

The test can fail: with the replay served in one piece and the queue unbounded
(``PP_FAIRNESS_CONFIG='{"replay_chunk_rows": 1000000, "queue_bytes": 1000000000000}'``) the
normal clients' p99 went from 5 ms to 525 ms and the RSS grew by 189 MiB and stayed there;
with the defaults, p99 111 ms (baseline 63 ms on the loaded machine) and +10 MiB.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect

from pyplatform.signals.auth import KeyRing, TokenIssuer
from pyplatform.signals.wire import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, decode_messages

pytestmark = pytest.mark.slow

N_SYMBOLS, PREFILL_BATCHES, RATE = 200, 5_000, 20.0  # a 1,000,000-row history; 4,000 live rows/s
N_NORMAL, PER_CLIENT = 50, 10
RATE_MARGIN, P99_BOUND_MS, HEALTH_BOUND_S, RSS_MARGIN_MIB = 0.5, 250.0, 1.0, 100.0
BASELINE_S, ATTACK_S = 4.0, 8.0


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _masked_text_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    return head + mask + body


def _non_reading_replayer(port: int, tok: str, request: dict) -> socket.socket:
    """Upgrade, ask for a replay, then never read again (a small receive buffer fills at once)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {JSON_SUBPROTOCOL}\r\n"
               f"Authorization: Bearer {tok}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)  # byte by byte: nothing after the response headers is consumed
        if not chunk:
            raise RuntimeError("closed during the handshake")
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head[:200]
    s.sendall(_masked_text_frame(json.dumps(request).encode()))
    return s


class _Normal:
    """One normal subscriber: delivered rows and per-message latency, by phase."""

    def __init__(self) -> None:
        self.rows = {"baseline": 0, "attack": 0}
        self.lat_ms: dict[str, list[float]] = {"baseline": [], "attack": []}
        self.phase: str | None = None

    async def run(self, url: str, tok: str, symbols: list[str], ready: asyncio.Event, count: list[int]) -> None:
        async with connect(url, additional_headers={"Authorization": f"Bearer {tok}"},
                           subprotocols=[MSGPACK_SUBPROTOCOL], compression=None, proxy=None, max_size=None) as ws:
            await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:mom"], "symbols": symbols}))
            while True:
                raw = await ws.recv()
                now = time.time_ns()
                for msg in decode_messages(raw):
                    if msg["type"] == "subscribed":
                        count[0] += 1
                        if count[0] == N_NORMAL:
                            ready.set()
                    elif msg["type"] == "data" and self.phase is not None:
                        self.rows[self.phase] += len(msg["rows"])
                        self.lat_ms[self.phase].append((now - msg["rows"][0]["ts"]) / 1e6)
                    elif msg["type"] in ("error", "lagged"):
                        raise AssertionError(f"normal client got {msg}")


async def _reading_replayer(url: str, tok: str, got: dict) -> None:
    """Replays the whole history in JSON and reads all of it (bytes counted, not parsed)."""
    async with connect(url, additional_headers={"Authorization": f"Bearer {tok}"}, subprotocols=[JSON_SUBPROTOCOL],
                       compression=None, proxy=None, max_size=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:mom"], "symbols": "*", "from_seq": 0}))
        while True:
            frame = await ws.recv(decode=False)
            got["bytes"] += len(frame)
            got["rows"] += frame.count(b'"seq":')


def _stats(normals: list[_Normal], phase: str, seconds: float) -> tuple[float, float]:
    rate = sum(n.rows[phase] for n in normals) / seconds
    lat = np.concatenate([np.asarray(n.lat_ms[phase]) for n in normals])
    return rate, float(np.percentile(lat, 99)) if len(lat) else float("inf")


def test_replaying_and_non_reading_clients_leave_normal_clients_rate_p99_health_and_memory_alone(tmp_path):
    secret = secrets.token_bytes(32)
    script = Path(__file__).with_name("signals_fairness_server.py")
    # PP_FAIRNESS_CONFIG (JSON ServiceConfig overrides) lets a developer check that the test fails
    # on an unbounded configuration; unset, the service runs with its defaults
    extra = [os.environ["PP_FAIRNESS_CONFIG"]] if os.environ.get("PP_FAIRNESS_CONFIG") else []
    proc = subprocess.Popen([sys.executable, str(script), secret.hex(), str(N_SYMBOLS), str(PREFILL_BATCHES), str(RATE),
                             *extra],
                            stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["rows"] == N_SYMBOLS * PREFILL_BATCHES
        result = asyncio.run(asyncio.wait_for(_scenario(info["port"], info["pid"], secret), 180))
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    base_rate, base_p99, att_rate, att_p99, health_max, rss, replayed = result
    assert base_rate > 0.8 * N_NORMAL * PER_CLIENT * RATE, result  # the baseline really streamed
    assert replayed["rows"] > 10_000, replayed  # the reading replayer was served, not starved
    assert att_rate >= RATE_MARGIN * base_rate, result
    assert att_p99 <= max(P99_BOUND_MS, 2 * base_p99), result
    assert health_max <= HEALTH_BOUND_S, result
    assert rss["after"] <= rss["baseline"] + RSS_MARGIN_MIB, rss


async def _scenario(port: int, pid: int, secret: bytes):
    url = f"ws://127.0.0.1:{port}"
    issuer = TokenIssuer(KeyRing(secret))
    now = time.time_ns()
    tok = lambda subject: issuer.issue(subject, topics=["*"], symbols=["*"], now_ns=now, ttl_s=900)  # noqa: E731
    rng = np.random.default_rng(1)
    syms = [f"R{i:04d}.US" for i in range(N_SYMBOLS)]
    normals = [_Normal() for _ in range(N_NORMAL)]
    ready, count = asyncio.Event(), [0]
    tasks = [asyncio.create_task(n.run(url, tok(f"normal{i}"), [syms[j] for j in rng.choice(N_SYMBOLS, PER_CLIENT, replace=False)],
                                       ready, count)) for i, n in enumerate(normals)]
    health_s: list[float] = []

    async def poll_health(stop: asyncio.Event) -> None:
        req = f"http://127.0.0.1:{port}/health"
        while not stop.is_set():
            t0 = time.monotonic()
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(req, timeout=10).read())
            health_s.append(time.monotonic() - t0)
            assert json.loads(body)["status"] == "ok"
            await asyncio.sleep(0.2)

    try:
        await asyncio.wait_for(ready.wait(), 60)
        await asyncio.sleep(1.0)  # warm
        rss = {"baseline": _rss_mib(pid)}
        for n in normals:
            n.phase = "baseline"
        await asyncio.sleep(BASELINE_S)
        for n in normals:
            n.phase = None
        base_rate, base_p99 = _stats(normals, "baseline", BASELINE_S)
        # the attack: replays of the whole history that are never read, and one that is
        replay = {"type": "subscribe", "topics": ["factors:mom"], "symbols": "*", "from_seq": 0}
        stuck = [await asyncio.to_thread(_non_reading_replayer, port, tok(f"stuck{i}"), replay) for i in range(3)]
        replayed = {"bytes": 0, "rows": 0}
        reader = asyncio.create_task(_reading_replayer(url, tok("reader"), replayed))
        stop_health = asyncio.Event()
        health = asyncio.create_task(poll_health(stop_health))
        await asyncio.sleep(0.2)
        for n in normals:
            n.phase = "attack"
        await asyncio.sleep(ATTACK_S)
        for n in normals:
            n.phase = None
        att_rate, att_p99 = _stats(normals, "attack", ATTACK_S)
        rss["peak_seen"] = _rss_mib(pid)
        stop_health.set()
        await health
        # the replaying clients leave; memory must come back
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        for s in stuck:
            s.close()
        await asyncio.sleep(3.0)
        rss["after"] = _rss_mib(pid)
        print(f"baseline {base_rate:.0f} rows/s p99 {base_p99:.1f} ms; attack {att_rate:.0f} rows/s p99 {att_p99:.1f} ms; "
              f"health max {max(health_s):.3f} s; rss {rss}; replayed {replayed}")
        return base_rate, base_p99, att_rate, att_p99, max(health_s), rss, replayed
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
