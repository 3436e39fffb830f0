"""``pyplatform bench feed`` and ``pyplatform bench codec``.

* feed: the simulator (in its own process) -> loopback WebSocket -> our client -> tick
  table, beside the obvious client (``json.loads`` per message, one table append per
  tick) in the same run: ticks/s at saturation and receive-to-table latency p50/p99 at a
  fixed moderate rate.
* codec: bytes per tick and encode/decode rates of the columnar MessagePack codec (with and
  without zstd) beside iTick JSON messages (one per tick, with and without zstd) on ticks
  from the synthetic market.

Every figure is the median of ``repeat`` runs.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from pyplatform.bench.report import median_rate

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["register", "run_codec_bench", "run_feed_bench", "format_codec", "format_feed", "SimulatorProcess",
           "TOKEN"]

#: The simulator's token in every bench run (loopback only; nothing to protect).
TOKEN = "bench-token"


# ---------------------------------------------------------------------------- codec
@dataclass(frozen=True)
class CodecRow:
    name: str
    bytes_per_tick: float
    encode_per_s: float
    decode_per_s: float


def _json_lines(ticks: pa.Table) -> list[dict]:
    cols = {k: ticks.column(k).to_pylist() for k in ("symbol", "price", "volume", "ts")}
    return [{"code": 1, "data": {"s": s, "ld": p, "v": v, "t": t // 1_000_000, "type": "tick"}}
            for s, p, v, t in zip(cols["symbol"], cols["price"], cols["volume"], cols["ts"])]


def run_codec_bench(n_symbols: int = 20, hours: float = 1.0, rate: float = 5.0, repeat: int = 5) -> list[CodecRow]:
    """Encode/decode the same generated ticks with JSON and with the codec."""
    import numpy as np
    import pyarrow as pa
    import zstandard

    from pyplatform.data import generate_ticks
    from pyplatform.feeds.codec import decode_batch, encode_batch

    start = "2024-03-05 14:30"
    end = str(np.datetime64("2024-03-05T14:30") + np.timedelta64(int(hours * 3600), "s"))
    ticks = generate_ticks(n_symbols, start, end, rate=rate, as_arrow=True)
    # the wire carries milliseconds: compare like with like
    ticks = ticks.set_column(0, "ts", pa.array((ticks.column("ts").to_numpy() // 1_000_000) * 1_000_000))
    n = ticks.num_rows
    objs = _json_lines(ticks)
    encoded_json = "\n".join(json.dumps(o, separators=(",", ":")) for o in objs).encode()
    zc, zd = zstandard.ZstdCompressor(level=3), zstandard.ZstdDecompressor()
    json_z = zc.compress(encoded_json)
    ours = encode_batch(ticks, compress=False)
    ours_z = encode_batch(ticks, compress=True)
    four = ticks.select(["ts", "symbol", "price", "volume"])  # exactly the fields the JSON carries
    four_raw, four_z = encode_batch(four, compress=False), encode_batch(four, compress=True)
    assert decode_batch(ours_z).select(["ts", "symbol", "price", "volume", "side"]).equals(
        ticks.select(["ts", "symbol", "price", "volume", "side"]))
    rows = [
        CodecRow("iTick JSON (one message per tick)", len(encoded_json) / n,
                 median_rate(lambda: "\n".join(json.dumps(o, separators=(",", ":")) for o in _json_lines(ticks)), n, repeat),
                 median_rate(lambda: [json.loads(x) for x in encoded_json.split(b"\n")], n, repeat)),
        CodecRow("iTick JSON + zstd", len(json_z) / n,
                 median_rate(lambda: zc.compress("\n".join(json.dumps(o, separators=(",", ":")) for o in _json_lines(ticks)).encode()), n, repeat),
                 median_rate(lambda: [json.loads(x) for x in zd.decompress(json_z).split(b"\n")], n, repeat)),
        CodecRow("columnar, JSON's 4 fields", len(four_raw) / n,
                 median_rate(lambda: encode_batch(four, compress=False), n, repeat),
                 median_rate(lambda: decode_batch(four_raw), n, repeat)),
        CodecRow("columnar, JSON's 4 fields + zstd", len(four_z) / n,
                 median_rate(lambda: encode_batch(four, compress=True), n, repeat),
                 median_rate(lambda: decode_batch(four_z), n, repeat)),
        CodecRow("columnar, all 7 TICKS columns", len(ours) / n,
                 median_rate(lambda: encode_batch(ticks, compress=False), n, repeat),
                 median_rate(lambda: decode_batch(ours), n, repeat)),
        CodecRow("columnar, all 7 TICKS columns + zstd", len(ours_z) / n,
                 median_rate(lambda: encode_batch(ticks, compress=True), n, repeat),
                 median_rate(lambda: decode_batch(ours_z), n, repeat)),
    ]
    return rows


def format_codec(rows: list[CodecRow], n_ticks: int | None = None) -> str:
    base = rows[0]
    out = [f"{'encoding':36} {'bytes/tick':>10} {'vs JSON':>8} {'encode ticks/s':>15} {'x':>6} "
           f"{'decode ticks/s':>15} {'x':>6}"]
    for r in rows:
        out.append(f"{r.name:36} {r.bytes_per_tick:10.1f} {r.bytes_per_tick / base.bytes_per_tick:8.2f} "
                   f"{r.encode_per_s:15,.0f} {r.encode_per_s / base.encode_per_s:6.1f} "
                   f"{r.decode_per_s:15,.0f} {r.decode_per_s / base.decode_per_s:6.1f}")
    return "\n".join(out)


# ----------------------------------------------------------------------------- feed
def _simulator_process(port_q, stop_ev, rate: float, frame_batch: int, symbols: int) -> None:
    from pyplatform.feeds.simulator import SimulatorConfig, start_simulator

    async def main():
        cfg = SimulatorConfig.from_universe(symbols, sessions=False, rate=rate, frame_batch=frame_batch,
                                            token=TOKEN, quotes=False, depth=False, max_pending=100_000,
                                            period_s=0.002, max_burst_s=0.05)
        sim = await start_simulator(cfg)
        port_q.put(sim.port)
        parent = os.getppid()
        while not stop_ev.is_set() and os.getppid() == parent:  # also stop if orphaned
            await asyncio.sleep(0.05)
        await sim.stop()

    asyncio.run(main())


class SimulatorProcess:
    """The simulator in a separate process, so it does not share our event loop or core."""

    def __init__(self, rate: float, frame_batch: int, symbols: int) -> None:
        ctx = mp.get_context("spawn")
        self._q, self._stop = ctx.Queue(), ctx.Event()
        self._p = ctx.Process(target=_simulator_process, args=(self._q, self._stop, rate, frame_batch, symbols),
                              daemon=True)

    def __enter__(self) -> int:
        self._p.start()
        return self._q.get(timeout=60)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._p.join(10)
        if self._p.is_alive():
            self._p.kill()


class _TimedTable:
    """A real in-memory stream table that notes, per appended row, exchange-to-table latency:
    wall clock at append minus the tick's exchange timestamp (ms on the wire). Unlike the
    receive-to-table figure it includes time spent queued before the client read the frame,
    so a client that cannot keep up shows it."""

    def __init__(self) -> None:
        from pyplatform.clock import LiveClock
        from pyplatform.feeds.schemas import TICKS
        from pyplatform.stream import StreamTable

        self.table = StreamTable("ticks", TICKS, clock=LiveClock())
        self.lat: list[np.ndarray] = []
        self.measure = False

    @property
    def next_offset(self) -> int:
        return self.table.next_offset

    @property
    def last_tag(self):
        return self.table.last_tag

    def append(self, batch, **kw):
        import numpy as np

        out = self.table.append(batch, **kw)
        if self.measure:
            ts = batch.column("ts").to_numpy() if hasattr(batch, "column") else np.asarray(batch["ts"])
            self.lat.append(time.time_ns() - ts)
        return out

    def e2e(self) -> dict:
        import numpy as np

        a = np.concatenate(self.lat) / 1e3 if self.lat else np.array([np.nan])
        return {50: float(np.percentile(a, 50)), 99: float(np.percentile(a, 99))}


async def _ours(url: str, symbols: list[str], seconds: float) -> tuple[float, dict, dict]:
    import tempfile

    from pyplatform.clock import LiveClock
    from pyplatform.feeds.cache import RecentCache
    from pyplatform.feeds.client import FeedConfig, ITickClient
    from pyplatform.feeds.ingest import Ingestor
    table = _TimedTable()
    with tempfile.TemporaryDirectory() as d:
        cache = RecentCache(d)
        client = ITickClient(FeedConfig(url=url, token=TOKEN, symbols=tuple(symbols), types=("tick",)),
                             Ingestor(table, cache=cache), clock=LiveClock())
        stop = asyncio.Event()
        task = asyncio.create_task(client.run(stop))
        await asyncio.wait_for(client.connected.wait(), 30)
        await asyncio.sleep(0.5)  # warm-up
        n0, t0 = table.next_offset, time.perf_counter()
        client.stats.latency_ns.clear()
        table.measure = True
        await asyncio.sleep(seconds)
        n1, t1 = table.next_offset, time.perf_counter()
        table.measure = False
        lat = client.stats.latency_percentiles()
        stop.set()
        await task
        cache.close()
    return (n1 - n0) / (t1 - t0), lat, table.e2e()


async def _naive(url: str, symbols: list[str], seconds: float) -> tuple[float, dict, dict]:
    """The obvious client: parse each message with json.loads, append each tick as one row."""
    import numpy as np
    from websockets.asyncio.client import connect

    from pyplatform.feeds.messages import subscribe_message

    table = _TimedTable()
    lat: list[int] = []
    async with connect(url, additional_headers={"token": TOKEN}, max_queue=4096) as ws:
        await ws.recv()
        await ws.recv()
        await ws.send(subscribe_message(symbols, ["tick"]))
        end_warm = time.perf_counter() + 0.5
        n0 = t0 = None
        async for frame in ws:
            t_rx = time.monotonic_ns()
            for line in frame.split("\n"):
                msg = json.loads(line)
                d = msg.get("data")
                if isinstance(d, dict) and d.get("type") == "tick":
                    table.append({"ts": [d["t"] * 1_000_000], "symbol": [d["s"]], "price": [d["ld"]],
                                  "volume": [d["v"]], "side": [0], "bid": [float("nan")], "ask": [float("nan")]})
                    if n0 is not None:
                        lat.append(time.monotonic_ns() - t_rx)
            now = time.perf_counter()
            if n0 is None and now >= end_warm:
                n0, t0 = table.next_offset, now
                table.measure = True
            elif n0 is not None and now - t0 >= seconds:
                rate = (table.next_offset - n0) / (now - t0)
                break
    a = np.asarray(lat) / 1e3 if lat else np.array([np.nan])
    return rate, {50: float(np.percentile(a, 50)), 99: float(np.percentile(a, 99))}, table.e2e()


@dataclass(frozen=True)
class FeedResult:
    mode: str
    ours_ticks_per_s: float
    naive_ticks_per_s: float
    ours_latency_us: dict
    naive_latency_us: dict
    ours_e2e_us: dict
    naive_e2e_us: dict


def run_feed_bench(seconds: float = 3.0, max_rate: float = 300_000, latency_rate: float = 5_000,
                   repeat: int = 3, symbols: int = 50, frame_batch: int = 1) -> list[FeedResult]:
    """Throughput at saturation (``max_rate`` offered) and latency at ``latency_rate``."""
    from pyplatform.feeds.simulator import SimulatorConfig

    syms = list(SimulatorConfig.from_universe(symbols).symbols)
    out = []
    for mode, rate in (("saturation", max_rate), ("latency", latency_rate)):
        ours, naive = [], []
        for _ in range(repeat):
            for runner, acc in ((_ours, ours), (_naive, naive)):
                with SimulatorProcess(rate, frame_batch, symbols) as port:
                    acc.append(asyncio.run(runner(f"ws://127.0.0.1:{port}/all", syms, seconds)))
        med = lambda xs, i: statistics.median(x[i] for x in xs) if i == 0 else {  # noqa: E731
            p: statistics.median(x[i][p] for x in xs) for p in (50, 99)}
        out.append(FeedResult(f"{mode} (offered {rate:,.0f} ticks/s, {frame_batch} msg/frame)",
                              med(ours, 0), med(naive, 0), med(ours, 1), med(naive, 1), med(ours, 2), med(naive, 2)))
    return out


def simulator_capacity(rate: float = 500_000, seconds: float = 2.0, symbols: int = 50) -> float:
    """Ticks/s the simulator generates and renders to iTick JSON with no client attached."""
    from pyplatform.feeds.simulator import SimulatorConfig, start_simulator

    async def main() -> float:
        cfg = SimulatorConfig.from_universe(symbols, sessions=False, rate=rate, quotes=False, depth=False,
                                            period_s=0.002, max_burst_s=0.05)
        sim = await start_simulator(cfg)
        # a subscriber-less exchange still renders every cycle: that is the capacity measured
        await asyncio.sleep(0.3)
        n0, t0 = sim.published, time.perf_counter()
        await asyncio.sleep(seconds)
        n1, t1 = sim.published, time.perf_counter()
        await sim.stop()
        return (n1 - n0) / (t1 - t0)

    return asyncio.run(main())


def format_feed(results: list[FeedResult]) -> str:
    lines = []
    for r in results:
        lines.append(r.mode)
        for who, rate, lat, e2e in (("ours ", r.ours_ticks_per_s, r.ours_latency_us, r.ours_e2e_us),
                                    ("naive", r.naive_ticks_per_s, r.naive_latency_us, r.naive_e2e_us)):
            lines.append(f"  {who}: {rate:10,.0f} ticks/s into the table | receive->table p50 {lat[50]:9,.0f} us "
                         f"p99 {lat[99]:9,.0f} us | exchange->table p50 {e2e[50]:11,.0f} us p99 {e2e[99]:11,.0f} us")
        lines.append(f"  ratio (ours / naive ticks/s): {r.ours_ticks_per_s / max(r.naive_ticks_per_s, 1e-9):.1f}x")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ CLI
def register(bench_app: typer.Typer) -> None:
    """Add ``feed``, ``soak`` and ``codec`` to the ``pyplatform bench`` app."""

    @bench_app.command("feed")
    def feed(seconds: float = typer.Option(3.0, help="Measured seconds per run (after 0.5 s warm-up)."),
             max_rate: float = typer.Option(300_000, help="Offered ticks/s for the throughput runs."),
             latency_rate: float = typer.Option(5_000, help="Offered ticks/s for the latency runs."),
             repeat: int = typer.Option(3, help="Runs per figure (medians are printed)."),
             symbols: int = typer.Option(50, help="Symbols in the simulated market."),
             frame_batch: int = typer.Option(1, help="Messages per WebSocket frame (1 = iTick framing)."),
             quick: bool = typer.Option(False, "--quick", help="Half-second runs of 5 symbols at low rates, one repeat "
                                                               "(a smoke test of the command, not figures).")) -> None:
        """Simulator -> loopback WebSocket -> tick table: ticks/s and receive-to-table latency."""
        capacity_s = 2.0
        if quick:
            seconds, max_rate, latency_rate, repeat, symbols, capacity_s = 0.5, 20_000, 1_000, 1, 5, 0.5
        typer.echo(format_feed(run_feed_bench(seconds, max_rate, latency_rate, repeat, symbols, frame_batch)))
        cap = statistics.median(simulator_capacity(max_rate, capacity_s, symbols) for _ in range(repeat))
        typer.echo(f"simulator alone (no client): generates and renders {cap:,.0f} ticks/s (offered {max_rate:,.0f})")

    @bench_app.command("soak")
    def soak(seconds: float = typer.Option(180.0, help="How long to run (CI: a few minutes; longer on demand)."),
             rate: float = typer.Option(5_000, help="Offered ticks/s (steady)."),
             symbols: int = typer.Option(50, help="Symbols in the simulated market."),
             window_s: float = typer.Option(10.0, help="Seconds per sampled window."),
             quick: bool = typer.Option(False, "--quick", help="20 s with 4 s windows (a smoke run).")) -> None:
        """Feed -> durable tables -> consumer + audit for minutes: RSS/latency drift and zero loss."""
        from pyplatform.bench.soak import format_soak, run_soak

        if quick:
            seconds, window_s = 20.0, 4.0
        res = run_soak(seconds, rate, symbols, window_s)
        typer.echo(format_soak(res))
        if res.missing or res.duplicates_stored or not res.audit_ok:
            raise typer.Exit(1)

    @bench_app.command("codec")
    def codec(symbols: int = typer.Option(20, help="Symbols of generated ticks."),
              hours: float = typer.Option(1.0, help="Hours of generated ticks."),
              rate: float = typer.Option(5.0, help="Mean trades/s per symbol."),
              repeat: int = typer.Option(5, help="Runs per figure (medians are printed)."),
              quick: bool = typer.Option(False, "--quick", help="3 minutes of 2 symbols, one run (a smoke test of the "
                                                                "command, not figures).")) -> None:
        """Bytes/tick and encode/decode rates: columnar MessagePack (+zstd) vs iTick JSON (+zstd)."""
        if quick:
            symbols, hours, repeat = 2, 0.05, 1
        typer.echo(format_codec(run_codec_bench(symbols, hours, rate, repeat)))
