"""``pyplatform bench signals``: loopback load test of the signal service.

N concurrent subscribers (default 1,000), each on ``k`` random symbols (default 10) of an
``S``-symbol factor stream (default 5,000), all connected from a separate client process
so the server has its own core. The publisher appends one row per symbol per batch at a
fixed rate, stamping ``ts`` with the append time; clients measure publish-to-receive
latency per frame. The same run is repeated with the naive fan-out that serialises each
message once per client (:class:`~pyplatform.bench.naive_fanout.NaiveSignalService`), and with the socket floor (a bare TCP server writing one ready
frame per client per batch: no WebSocket library, no fan-out), and the medians of several
runs are printed with their ratios.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import resource
import secrets
import statistics
import struct
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["register", "run_signals_bench", "BenchResult"]


@dataclass(frozen=True)
class BenchResult:
    mode: str
    encoding: str
    msgs_per_s: float
    frames_per_s: float
    p50_ms: float
    p99_ms: float
    bytes_per_msg: float
    dropped: int
    cpu_ms_per_batch: float = float("nan")  # server process CPU (user + sys) per published batch


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --------------------------------------------------------------------------- client process


class _RawSubscriber(asyncio.Protocol):
    """A minimal WebSocket client for the load generator.

    The ``websockets`` client costs far more CPU per frame than the server's fan-out, so
    with it the benchmark would measure the client. This one does the HTTP upgrade, sends
    one masked subscribe frame, then parses unmasked server frames straight from the
    socket buffer (server frames are never fragmented here).
    """

    def __init__(self, host: str, token: str, proto: str, request: bytes, on_msgs: Any) -> None:
        import base64
        import os as _os

        self.key = base64.b64encode(_os.urandom(16)).decode()
        self.handshake = (f"GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Key: {self.key}\r\nSec-WebSocket-Version: 13\r\n"
                          f"Sec-WebSocket-Protocol: {proto}\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
        self.request = request
        self.on_msgs = on_msgs
        self.buf = bytearray()
        self.upgraded = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.handshake)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(f"handshake refused: {bytes(buf[:200])!r}")
            del buf[: end + 4]
            self.upgraded = True
            self._send_text(self.request)
        pos, n = 0, len(buf)
        frames = []
        while n - pos >= 2:
            b1 = buf[pos + 1] & 0x7F
            head = 2
            if b1 == 126:
                if n - pos < 4:
                    break
                b1, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif b1 == 127:
                if n - pos < 10:
                    break
                b1, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if n - pos < head + b1:
                break
            opcode = buf[pos] & 0x0F
            if opcode in (1, 2):
                frames.append(bytes(buf[pos + head:pos + head + b1]) if opcode == 2 else buf[pos + head:pos + head + b1].decode())
            elif opcode == 8 and not self.closed.done():
                self.closed.set_result(bytes(buf[pos + head:pos + head + b1]))
            pos += head + b1
        if pos:
            del buf[:pos]
        if frames:
            self.on_msgs(frames)

    def _send_text(self, payload: bytes) -> None:
        import os as _os

        mask = _os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        n = len(payload)
        head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
        self.transport.write(head + mask + masked)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(b"")


def _scan_messages(frame: str | bytes) -> list[tuple[str, int, int, Any]]:
    """``(type, row count, first row's ts, message or None)`` of every message in a frame.

    The load generator must cost less than the server it loads: a data message's rows are
    counted and skipped by msgpack's C unpacker instead of being built as dicts (only the
    first row, whose ``ts`` is the batch's publish time, is decoded). Other messages and
    JSON frames are decoded whole.
    """
    from pyplatform.signals.wire import decode_messages

    if isinstance(frame, str) or not frame or frame[0] != 0:  # JSON or compressed: decode whole
        out = []
        for m in decode_messages(frame):
            rows = m.get("rows") if m.get("type") == "data" else None
            out.append((m.get("type"), len(rows) if rows else 0, rows[0]["ts"] if rows else 0, m))
        return out
    import msgpack

    up = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(frame))
    up.feed(memoryview(frame)[1:])
    out = []
    while True:
        try:
            n_keys = up.read_map_header()
        except msgpack.OutOfData:
            return out
        msg: dict[str, Any] = {}
        n_rows, first_ts = 0, 0
        for _ in range(n_keys):
            key = up.unpack()
            if key == "rows":
                n_rows = up.read_array_header()
                if n_rows:
                    first_ts = up.unpack()["ts"]
                    for _ in range(n_rows - 1):
                        up.skip()
            else:
                msg[key] = up.unpack()
        kind = msg.get("type")
        out.append((kind, n_rows, first_ts, None if kind == "data" else msg))


async def _clients_main(url: str, token: str, subs: list[list[str]], encoding: str, conn: Any) -> None:
    import numpy as np

    from pyplatform.signals.wire import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL

    proto = MSGPACK_SUBPROTOCOL if encoding == "msgpack" else JSON_SUBPROTOCOL
    hostport = url.split("://", 1)[1]
    host, port = hostport.rsplit(":", 1)
    state = {"measure": False, "rows": 0, "frames": 0, "bytes": 0, "ready": 0, "last": 0.0}
    lat: list[int] = []
    cnt: list[int] = []
    all_ready = asyncio.Event()
    errors: list[Any] = []

    def on_msgs(frames: list) -> None:
        measure = state["measure"]
        now = time.time_ns()
        for frame in frames:
            if measure:
                state["frames"] += 1
                state["bytes"] += len(frame)
            for kind, n_rows, first_ts, msg in _scan_messages(frame):
                if kind == "data":
                    if measure:
                        state["last"] = time.monotonic()
                        state["rows"] += n_rows
                        lat.append(now - first_ts)  # all rows of a message share the batch's publish time
                        cnt.append(n_rows)
                elif kind == "subscribed":
                    state["ready"] += 1
                    if state["ready"] == len(subs):
                        all_ready.set()
                elif kind == "error":
                    errors.append(msg)
                    all_ready.set()

    loop = asyncio.get_running_loop()
    transports = []
    for symbols in subs:
        req = json.dumps({"type": "subscribe", "topics": ["factors:mom"], "symbols": symbols}).encode()
        tr, _ = await loop.create_connection(lambda r=req: _RawSubscriber(hostport, token, proto, r, on_msgs), host, int(port))
        transports.append(tr)
    await asyncio.wait_for(all_ready.wait(), 120)
    if errors:
        raise RuntimeError(errors[0])
    conn.send("ready")
    assert await loop.run_in_executor(None, conn.recv) == "go"
    state["measure"] = True
    t0 = time.monotonic()
    assert await loop.run_in_executor(None, conn.recv) == "stop"
    state["measure"] = False
    # delivered rate over go .. last delivery (the tail wait for stragglers is not counted)
    elapsed = max(state["last"], t0 + 1e-3) - t0
    conn.send({"rows": state["rows"], "frames": state["frames"], "bytes": state["bytes"], "elapsed": elapsed,
               "lat": np.asarray(lat, dtype=np.int64), "cnt": np.asarray(cnt, dtype=np.int64)})
    for tr in transports:
        tr.abort()


def _client_process(url: str, token: str, subs: list[list[str]], encoding: str, conn: Any) -> None:
    _raise_nofile()
    try:
        asyncio.run(_clients_main(url, token, subs, encoding, conn))
    except BaseException as exc:  # report instead of hanging the parent
        conn.send({"error": repr(exc)})


# --------------------------------------------------------------------------- server side


class _FloorConn(asyncio.Protocol):
    """The socket floor's server end: a bare upgrade, one ack, then only the publisher writes.

    No WebSocket library, no per-client fan-out work: it measures what one ``write`` of a
    ready frame per client per batch costs on this machine (the floor any fan-out pays).
    """

    def __init__(self, conns: list, ack: bytes) -> None:
        self.conns, self.ack, self.buf, self.state = conns, ack, b"", 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.state == 0:
            self.buf += data
            if b"\r\n\r\n" not in self.buf:
                return
            data = self.buf.split(b"\r\n\r\n", 1)[1]
            self.buf, self.state = b"", 1
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        if self.state == 1 and data:  # the subscribe request (its content is not needed here)
            self.state = 2
            self.transport.write(self.ack)
            self.conns.append(self.transport)


def _ws_header(n: int) -> bytes:
    """RFC 6455 header of a final, unmasked binary frame of ``n`` payload bytes (the floor
    builds its frames itself: one header per batch, shared by every client)."""
    if n < 126:
        return bytes([0x82, n])
    return struct.pack("!BBH", 0x82, 126, n) if n < 65536 else struct.pack("!BBQ", 0x82, 127, n)


async def _floor_server(per_client: int) -> tuple[Any, list, Any]:
    """A bare TCP server for the floor run; returns (server, transports, frame builder)."""
    import numpy as np
    import pyarrow as pa

    from pyplatform.signals.wire import MsgpackZstdCodec

    codec = MsgpackZstdCodec(compress_min_bytes=1 << 30)
    ack = codec.control({"type": "subscribed", "id": None, "topic": "factors:mom"})
    ack = _ws_header(len(ack)) + ack
    conns: list = []
    server = await asyncio.get_running_loop().create_server(lambda: _FloorConn(conns, ack), "127.0.0.1", 0)
    syms = pa.array([f"F{i:05d}.US" for i in range(per_client)])

    def frame(ts: int, seq0: int) -> bytes:
        rows = pa.table({"seq": pa.array(np.arange(seq0, seq0 + per_client), pa.int64()),
                         "ts": pa.array(np.full(per_client, ts), pa.int64()), "symbol": syms,
                         "mom": pa.array(np.zeros(per_client))})
        payload = codec.frame("data", "factors:mom", [codec.encode_rows(rows)[0]], per_client)
        return _ws_header(len(payload)) + payload

    return server, conns, frame


async def _one_run(*, mode: str, encoding: str, n_clients: int, per_client: int, n_symbols: int, rate: float,
                   seconds: float, seed: int) -> BenchResult:
    """One measured run: ``mode`` is ``shared`` (the service), ``naive`` (the service with
    per-client serialisation) or ``floor`` (a bare socket server writing one ready frame of
    ``per_client`` rows to every client per batch)."""
    import numpy as np

    from pyplatform.bench.naive_fanout import NaiveSignalService
    from pyplatform.clock import LiveClock
    from pyplatform.domain.schemas import factor_schema
    from pyplatform.signals.auth import KeyRing, TokenIssuer, TokenVerifier
    from pyplatform.signals.server import ServiceConfig, SignalService
    from pyplatform.stream import StreamTable

    rng = np.random.default_rng(seed)
    symbols = [f"F{i:05d}.US" for i in range(n_symbols)]
    subs = [[symbols[i] for i in rng.choice(n_symbols, size=per_client, replace=False)] for _ in range(n_clients)]
    clock = LiveClock()  # publish-to-receive latency is wall time (the clients stamp with time.time_ns)
    table = StreamTable("factors", factor_schema(["mom"]), memory_rows=max(50 * n_symbols, 100_000), clock=clock)
    keys = KeyRing(secrets.token_bytes(32))  # an ephemeral secret: this run only
    token = TokenIssuer(keys).issue("bench", topics=["*"], symbols=["*"], now_ns=time.time_ns(), ttl_s=3600)
    svc = floor = None
    if mode == "floor":
        floor, conns, floor_frame = await _floor_server(per_client)
        url = f"ws://127.0.0.1:{floor.sockets[0].getsockname()[1]}"
    else:
        # the baseline is a subclass with the per-client fan-out, not a flag of the service
        service_class = NaiveSignalService if mode == "naive" else SignalService
        svc = service_class({"factors": table}, TokenVerifier(keys),
                            ServiceConfig(port=0, ping_interval_s=None, queue_frames=100_000, write_limit=1 << 20,
                                          max_conns_per_subject=n_clients + 1, max_conns_per_ip=n_clients + 1),
                            clock=clock)
        await svc.start()
        url = svc.url
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_client_process, args=(url, token, subs, encoding, child), daemon=True)
    proc.start()
    loop = asyncio.get_running_loop()
    try:
        msg = await loop.run_in_executor(None, parent.recv)
        if msg != "ready":
            raise RuntimeError(f"client process failed: {msg}")
        sym_arr = symbols
        values = rng.standard_normal(n_symbols)
        parent.send("go")
        period = 1.0 / rate
        t_end = time.monotonic() + seconds
        next_t = time.monotonic()
        seq = n_batches = 0
        cpu0 = time.process_time()
        while time.monotonic() < t_end:
            now_ns = time.time_ns()
            if floor is not None:
                data = floor_frame(now_ns, seq)
                for tr in conns:
                    tr.write(data)
                seq += per_client
            else:
                table.append({"ts": np.full(n_symbols, now_ns, dtype=np.int64), "symbol": sym_arr, "mom": values})
            n_batches += 1
            next_t += period
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))
        await asyncio.sleep(0.5)  # let in-flight frames land
        # CPU time is what a loaded, shared machine distorts least: the server's cost per batch
        cpu_ms = (time.process_time() - cpu0) * 1e3 / max(n_batches, 1)
        parent.send("stop")
        stats = await loop.run_in_executor(None, parent.recv)
        if "error" in stats:
            raise RuntimeError(f"client process failed: {stats['error']}")
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
        dropped = svc.dropped_slow if svc is not None else 0
        if svc is not None:
            await svc.stop()
        if floor is not None:
            for tr in conns:
                tr.abort()
            floor.close()
    lat_ms = np.repeat(stats["lat"], stats["cnt"]) / 1e6 if stats["rows"] else np.array([np.nan])
    return BenchResult(mode=mode, encoding=encoding,
                       msgs_per_s=stats["rows"] / stats["elapsed"], frames_per_s=stats["frames"] / stats["elapsed"],
                       p50_ms=float(np.percentile(lat_ms, 50)), p99_ms=float(np.percentile(lat_ms, 99)),
                       bytes_per_msg=stats["bytes"] / max(stats["rows"], 1), dropped=dropped, cpu_ms_per_batch=cpu_ms)


def run_signals_bench(*, clients: int = 1000, per_client: int = 10, symbols: int = 5000, rate: float = 20.0,
                      seconds: float = 4.0, repeat: int = 3, encodings: tuple[str, ...] = ("msgpack",),
                      seed: int = 0, progress: bool = True,
                      modes: tuple[str, ...] = ("shared", "naive", "floor")) -> dict[tuple[str, str], list[BenchResult]]:
    """Run each fan-out mode ``repeat`` times per encoding; returns every run's result.

    ``floor`` (the bare-socket floor) only exists for msgpack: it is skipped for JSON.
    """
    _raise_nofile()
    out: dict[tuple[str, str], list[BenchResult]] = {}
    for enc in encodings:
        for i in range(repeat):
            for mode in modes:  # interleaved so machine noise hits every mode alike
                if mode == "floor" and enc != "msgpack":
                    continue
                r = asyncio.run(_one_run(mode=mode, encoding=enc, n_clients=clients, per_client=per_client,
                                         n_symbols=symbols, rate=rate, seconds=seconds, seed=seed + i))
                out.setdefault((r.mode, enc), []).append(r)
                if progress:
                    print(f"  run {i + 1}/{repeat} {enc:7s} {r.mode:6s}: {r.msgs_per_s:10,.0f} msg/s "
                          f"p50 {r.p50_ms:7.1f} ms p99 {r.p99_ms:7.1f} ms  {r.bytes_per_msg:5.1f} B/msg  "
                          f"server CPU {r.cpu_ms_per_batch:5.1f} ms/batch", flush=True)
    return out


def format_results(results: dict[tuple[str, str], list[BenchResult]], clients: int, per_client: int, symbols: int,
                   rate: float) -> str:
    med = lambda rs, f: statistics.median(getattr(r, f) for r in rs)  # noqa: E731
    lines = [f"signal fan-out, loopback: {clients} subscribers x {per_client} symbols of {symbols}, "
             f"{rate:g} batches/s offered ({rate * clients * per_client:,.0f} msg/s); medians of "
             f"{len(next(iter(results.values())))} runs",
             f"{'encoding':9s} {'fan-out':7s} {'msg/s':>11s} {'frames/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'B/msg':>6s} "
             f"{'dropped':>7s} {'CPU ms/batch':>12s}"]
    order = {"shared": 0, "naive": 1, "floor": 2}
    for (mode, enc), rs in sorted(results.items(), key=lambda kv: (kv[0][1], order.get(kv[0][0], 3))):
        lines.append(f"{enc:9s} {mode:7s} {med(rs, 'msgs_per_s'):11,.0f} {med(rs, 'frames_per_s'):9,.0f} "
                     f"{med(rs, 'p50_ms'):8.1f} {med(rs, 'p99_ms'):8.1f} {med(rs, 'bytes_per_msg'):6.1f} "
                     f"{max(r.dropped for r in rs):7d} {med(rs, 'cpu_ms_per_batch'):12.1f}")
    for enc in sorted({e for _, e in results}):
        if ("shared", enc) in results and ("naive", enc) in results:
            s, n = results[("shared", enc)], results[("naive", enc)]
            lines.append(f"{enc}: shared/naive throughput x{med(s, 'msgs_per_s') / med(n, 'msgs_per_s'):.2f}, "
                         f"p99 latency naive/shared x{med(n, 'p99_ms') / med(s, 'p99_ms'):.2f}")
        if ("shared", enc) in results and ("floor", enc) in results:
            s, f = results[("shared", enc)], results[("floor", enc)]
            lines.append(f"{enc}: shared/socket-floor throughput x{med(s, 'msgs_per_s') / med(f, 'msgs_per_s'):.2f}, "
                         f"p99 shared/floor x{med(s, 'p99_ms') / med(f, 'p99_ms'):.2f}, server CPU per batch "
                         f"shared/floor x{med(s, 'cpu_ms_per_batch') / med(f, 'cpu_ms_per_batch'):.2f}")
    return "\n".join(lines)


def wire_sizes(n_symbols: int = 5000, per_frame: int = 10, replay_rows: int = 2000, seed: int = 0) -> list[tuple[str, float, float]]:
    """Bytes per message of each encoding on factor rows like the benchmark's.

    Returns ``(encoding, live bytes/msg, replay bytes/msg)``: live frames carry
    ``per_frame`` rows (one subscriber's symbols of one batch), replay frames
    ``replay_rows`` rows; zstd is only worth its CPU on the latter.
    """
    import numpy as np
    import pyarrow as pa

    from pyplatform.signals.wire import JsonCodec, MsgpackZstdCodec

    rng = np.random.default_rng(seed)
    n = max(replay_rows, per_frame)
    rows = pa.table({"seq": pa.array(np.arange(10_000_000, 10_000_000 + n), pa.int64()),
                     "ts": pa.array(np.full(n, time.time_ns()) + np.arange(n) // n_symbols, pa.int64()),
                     "symbol": [f"F{i % n_symbols:05d}.US" for i in rng.permutation(n)],
                     "mom": rng.standard_normal(n)})
    out = []
    for name, codec in (("json", JsonCodec()), ("msgpack", MsgpackZstdCodec(compress_min_bytes=1 << 30)),
                        ("msgpack+zstd", MsgpackZstdCodec(compress_min_bytes=0))):
        live = codec.frame("data", "factors:mom", [codec.encode_rows(rows.slice(0, per_frame))[0]], per_frame)
        replay = codec.frame("data", "factors:mom", [codec.encode_rows(rows.slice(0, replay_rows))[0]], replay_rows)
        out.append((name, len(live) / per_frame, len(replay) / replay_rows))
    return out


def register(app: Any) -> None:
    """Add ``signals`` to the ``pyplatform bench`` Typer app."""
    import typer

    @app.command("signals")
    def signals(
        clients: int = typer.Option(1000, help="Concurrent subscribers (one client process)."),
        per_client: int = typer.Option(10, help="Symbols per subscriber."),
        symbols: int = typer.Option(5000, help="Symbols in the factor stream."),
        rate: float = typer.Option(20.0, help="Batches (one row per symbol) published per second (20 x 1,000 x 10 = 200,000 msg/s)."),
        seconds: float = typer.Option(4.0, help="Measured seconds per run."),
        repeat: int = typer.Option(3, help="Runs per mode; medians are printed."),
        encoding: list[str] = typer.Option(["msgpack"], help="msgpack and/or json (repeatable)."),
        mode: list[str] = typer.Option(["shared", "naive", "floor"],
                                       help="shared (the service), naive (per-client serialisation), floor (bare sockets, "
                                            "one ready frame per client per batch); repeatable."),
        quick: bool = typer.Option(False, "--quick", help="A seconds-long smoke run (20 clients x 3 of 200 symbols, "
                                                          "1 s, 1 repeat): checks the benchmark, not the service."),
    ) -> None:
        """Loopback load test: shared encode-once fan-out beside naive per-client serialisation and the socket floor."""
        if quick:
            clients, per_client, symbols, rate, seconds, repeat = 20, 3, 200, 10.0, 1.0, 1
        for e in encoding:
            if e not in ("msgpack", "json"):
                raise typer.BadParameter(f"encoding must be msgpack or json, got {e!r}")
        for m in mode:
            if m not in ("shared", "naive", "floor"):
                raise typer.BadParameter(f"mode must be shared, naive or floor, got {m!r}")
        res = run_signals_bench(clients=clients, per_client=per_client, symbols=symbols, rate=rate, seconds=seconds,
                                repeat=repeat, encodings=tuple(encoding), modes=tuple(mode))
        typer.echo(format_results(res, clients, per_client, symbols, rate))
        typer.echo("bytes per message on the same factor rows (live frame of %d rows / replay frame of 2000 rows):" % per_client)
        for name, live, replay in wire_sizes(symbols, per_client):
            typer.echo(f"  {name:13s} live {live:6.1f} B/msg   replay {replay:6.1f} B/msg")
