"""Loopback streaming behaviour: resume without gap or duplicate, slow consumers, snapshot ordering, TLS."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import ssl
import threading

import numpy as np
import pyarrow.compute as pc
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from signals_support import recv_msg, SYMBOLS, factor_batch, make_service, run, token, wait_for
from pyplatform.clock import SimClock
from pyplatform.client import GapError, SignalClient, subscribe
from pyplatform.domain.schemas import factor_schema
from pyplatform.signals.wire import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL
from pyplatform.stream import StreamTable


def expected_seqs(table, symbols, start=0, end=None):
    rows = table.read(start, end)
    rows = rows.filter(pc.is_in(rows.column("symbol"), value_set=__import__("pyarrow").array(symbols)))
    return rows.column("offset").to_pylist()


async def _publish(table, batches, every_s=0.005, start_value=0.0):
    for i in range(batches):
        table.append(factor_batch(10_000 + i * 100, value0=start_value + i))
        await asyncio.sleep(every_s)


@pytest.mark.parametrize("encoding", ["msgpack", "json"])
def test_client_resumes_after_dropped_connections_without_gap_or_duplicate(tables, verifier, issuer, clock, encoding):
    syms = SYMBOLS[3:8]

    async def main():
        table = tables["factors"]
        table.append(factor_batch(0))
        svc = await make_service(tables, verifier, clock)
        client = SignalClient(svc.url, lambda: token(issuer, clock), ["factors:mom"], syms, encoding=encoding,
                              from_seq=0, backoff_s=0.01, backoff_max_s=0.05)
        got: list[int] = []

        async def consume():
            async for msg in client:
                got.append(msg.seq)

        task = asyncio.create_task(consume())
        pub = asyncio.create_task(_publish(table, 120))
        try:
            for _ in range(4):  # cut the network under the client a few times mid-stream
                await asyncio.sleep(0.08)
                for c in list(svc._conns.values()):
                    c.ws.transport.abort()
            await pub
            final = expected_seqs(table, syms)
            await wait_for(lambda: len(got) >= len(final), timeout=10)
            await asyncio.sleep(0.05)
            assert client.connects >= 3
            assert got == final  # in order, nothing missing, nothing twice
        finally:
            await client.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await svc.stop()

    run(main())


def test_resume_past_retention_names_the_oldest_sequence(verifier, issuer, clock):
    async def main():
        table = StreamTable("factors", factor_schema(["mom", "rsi"]), memory_rows=40, clock=SimClock())
        for i in range(5):
            table.append(factor_batch(i * 100))
        svc = await make_service({"factors": table}, verifier, clock)
        try:
            async with connect(svc.url, additional_headers={"Authorization": f"Bearer {token(issuer, clock)}"},
                               subprotocols=[JSON_SUBPROTOCOL], proxy=None) as ws:
                await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:mom"], "from_seq": 3}))
                err = await recv_msg(ws, 5)
                assert err["code"] == "retention" and err["oldest_seq"] == table.oldest_offset
                assert f"oldest available sequence is {table.oldest_offset}" in err["message"]
            client = SignalClient(svc.url, token(issuer, clock), ["factors:mom"], "*", from_seq=3, max_attempts=1)
            with pytest.raises(GapError) as info:
                async for _ in client:
                    pass
            assert info.value.oldest == table.oldest_offset
        finally:
            await svc.stop()

    run(main())


def test_slow_client_is_dropped_with_last_sequence_while_fast_client_keeps_its_rate(verifier, issuer, clock):
    wide = [f"W{i:04d}.US" for i in range(300)]

    async def main():
        table = StreamTable("factors", factor_schema(["mom", "rsi"]), clock=SimClock())
        svc = await make_service({"factors": table}, verifier, clock, queue_frames=8, write_limit=4096,
                                 close_timeout_s=30)
        tok = token(issuer, clock)
        slow_sock = socket.socket()
        slow_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # small kernel buffer: fills fast
        slow_sock.connect(("127.0.0.1", svc.port))
        fast_rows = 0
        try:
            async with connect(svc.url, additional_headers={"Authorization": f"Bearer {tok}"}, subprotocols=[MSGPACK_SUBPROTOCOL],
                               proxy=None, max_size=None) as fast, \
                       connect(svc.url, additional_headers={"Authorization": f"Bearer {tok}"}, subprotocols=[JSON_SUBPROTOCOL],
                               sock=slow_sock, max_queue=1, max_size=None) as slow:
                for ws in (fast, slow):
                    await ws.send(json.dumps({"type": "subscribe", "topics": ["factors"], "symbols": "*"}))
                assert (await recv_msg(fast))["type"] == "subscribed"
                await wait_for(lambda: svc.fanout.subscriber_count() == 2)
                slow.transport.pause_reading()  # an application that stopped reading
                n_batches = 400

                async def read_fast():
                    nonlocal fast_rows
                    while fast_rows < n_batches * len(wide):
                        msg = await recv_msg(fast, 10)
                        if msg["type"] == "data":
                            fast_rows += len(msg["rows"])

                reader = asyncio.create_task(read_fast())
                for i in range(n_batches):  # the publisher never waits for anyone
                    table.append(factor_batch(i * 1000, symbols=wide, value0=i))
                    await asyncio.sleep(0)
                await asyncio.wait_for(reader, 20)
                assert fast_rows == n_batches * len(wide)
                assert svc.dropped_slow == 1
                # the slow client finally reads: what was sent, then the notice, then a 1013 close
                slow.transport.resume_reading()
                last_seen, notice = -1, None
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        msg = await recv_msg(slow, 10)
                        if msg["type"] == "data":
                            last_seen = max(last_seen, max(r["seq"] for r in msg["rows"]))
                        elif msg["type"] == "lagged":
                            notice = msg
                assert info.value.rcvd.code == 1013 and "slow consumer" in info.value.rcvd.reason
                assert notice is not None and notice["delivered"]["factors"] == last_seen
                assert last_seen < table.next_offset - 1
        finally:
            await svc.stop()

    run(main(), timeout=60)


def test_new_subscribers_get_snapshot_before_stream_while_publishing(tables, verifier, issuer, clock):
    syms = SYMBOLS[:6]

    async def main():
        table = tables["factors"]
        table.append(factor_batch(0))
        svc = await make_service(tables, verifier, clock)
        pub = asyncio.create_task(_publish(table, 400, every_s=0.002))
        results = []
        try:
            for _ in range(4):
                await asyncio.sleep(0.03)
                async with connect(svc.url, additional_headers={"Authorization": f"Bearer {token(issuer, clock)}"},
                                   subprotocols=[MSGPACK_SUBPROTOCOL], proxy=None) as ws:
                    await ws.send(json.dumps({"type": "subscribe", "topics": ["factors:mom"], "symbols": syms}))
                    frames = []
                    end = asyncio.get_running_loop().time() + 0.1
                    while asyncio.get_running_loop().time() < end:
                        try:
                            frames.append(await recv_msg(ws, 0.05))
                        except asyncio.TimeoutError:
                            pass
                    results.append(frames)
            await pub
        finally:
            await svc.stop()
        for frames in results:
            assert frames[0]["type"] == "subscribed"
            assert frames[1]["type"] == "snapshot"
            live_seq = frames[0]["live_seq"]
            snap = {r["symbol"]: r["seq"] for r in frames[1]["rows"]}
            assert set(snap) == set(syms) and max(snap.values()) < live_seq
            # the snapshot is the latest row per symbol as of live_seq
            before = table.read(0, live_seq).to_pandas()
            before = before[before.symbol.isin(syms)].groupby("symbol").offset.max().to_dict()
            assert snap == before
            data = [r["seq"] for f in frames[2:] for r in f["rows"]]
            assert data, "the publisher was still running: live rows must follow the snapshot"
            assert all(f["type"] == "data" for f in frames[2:])
            assert sorted(data) == expected_seqs(table, syms, live_seq, max(data) + 1)

    run(main())


def test_threaded_callback_api_and_token_refresh_on_expiry(tables, verifier, issuer, clock):
    async def main():
        table = tables["factors"]
        svc = await make_service(tables, verifier, clock)
        issued = []

        def fresh_token():
            issued.append(token(issuer, clock, ttl_s=20))
            return issued[-1]

        got: list[int] = []
        lock = threading.Lock()

        def on_msg(msg):
            with lock:
                got.append(msg.seq)

        sub = await asyncio.to_thread(subscribe, svc.url, fresh_token, ["factors:mom"], SYMBOLS[:2], on_msg,
                                      backoff_s=0.01, encoding="json")
        try:
            await wait_for(lambda: svc.fanout.subscriber_count() == 1)
            await _publish(table, 10)
            clock.offset_ns += 40 * 10**9  # the token expires: the server closes, the client refreshes
            await wait_for(lambda: len(issued) >= 2, timeout=10)
            await wait_for(lambda: svc.fanout.subscriber_count() == 1)
            await _publish(table, 10, start_value=100)
            final = expected_seqs(table, SYMBOLS[:2])
            await wait_for(lambda: len(got) >= len(final), timeout=10)
            with lock:
                assert got == final
        finally:
            await asyncio.to_thread(sub.stop)
            await svc.stop()

    run(main())


def test_tls_when_a_certificate_is_configured(tmp_path, tables, verifier, issuer, clock):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    from pyplatform.config import get_settings
    from pyplatform.signals.server import ServiceConfig, SignalService
    from pyplatform.signals.service import tls_context

    settings = get_settings(tls_cert=tmp_path / "cert.pem", tls_key=tmp_path / "key.pem", data_dir=tmp_path)

    async def main():
        svc = SignalService(tables, verifier, ServiceConfig(host="localhost", port=0), clock=clock, ssl=tls_context(settings))
        await svc.start()
        try:
            assert svc.url.startswith("wss://")
            client_ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
            async with connect(svc.url, additional_headers={"Authorization": f"Bearer {token(issuer, clock)}"},
                               ssl=client_ctx, proxy=None) as ws:
                await ws.send(json.dumps({"type": "ping", "id": 5}))
                assert await recv_msg(ws, 5) == {"type": "pong", "id": 5}
        finally:
            await svc.stop()

    run(main())


def test_long_replay_in_chunks_while_publishing_has_no_gap_or_duplicate(tables, verifier, issuer, clock):
    syms = SYMBOLS[::3]

    async def main():
        table = tables["factors"]
        for i in range(30):
            table.append(factor_batch(i * 100, value0=i))
        svc = await make_service(tables, verifier, clock, replay_chunk_rows=50)
        client = SignalClient(svc.url, token(issuer, clock), ["factors:rsi"], syms, from_seq=7, backoff_s=0.01)
        got: list[int] = []

        async def consume():
            async for msg in client:
                got.append(msg.seq)

        task = asyncio.create_task(consume())
        try:
            await _publish(table, 40, every_s=0.001)  # appends race the chunked replay
            final = expected_seqs(table, syms, start=7)
            await wait_for(lambda: len(got) >= len(final), timeout=10)
            await asyncio.sleep(0.05)
            assert got == final
        finally:
            await client.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await svc.stop()

    run(main())
