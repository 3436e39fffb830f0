"""A bounded soak of the live ingest path: memory and latency drift over minutes, zero loss.

The exchange simulator runs in its own process at a steady rate; this process runs
:func:`~pyplatform.feeds.run_feed` into durable stream tables (fsync ``batch``, the LMDB
write-ahead cache), a downstream consumer that polls and acks the tick table, and an audit
writer appending one record per second (as an OMS would). Every ``window_s`` it samples the
process RSS, ticks/s into the table, receive-to-table latency p50/p99 and the consumer's lag.
The figures of the last window are printed beside the first (after warm-up) as ratios: a
leak or a slowdown shows as drift. At the end the tick table is checked against the
simulator's per-symbol sequence numbers (recorded from the write-ahead cache to a file):
no number skipped (nothing lost), none stored twice, table rows == cached rows.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["SoakWindow", "SoakResult", "run_soak", "format_soak", "rss_mib", "rss_parts_mib"]


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux ``/proc``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_parts_mib() -> tuple[float, float]:
    """``(anonymous, file-backed)`` resident MiB of this process.

    The split tells a leak from a cache: heap growth is anonymous memory, while the pages of
    a memory-mapped file (the LMDB write-ahead cache, the stream tables' segment files) are
    file-backed, count in the RSS as they are touched and are reclaimable by the kernel.
    """
    anon = file = 0.0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    anon = int(line.split()[1]) / 1024
                elif line.startswith(("RssFile:", "RssShmem:")):
                    file += int(line.split()[1]) / 1024
    except OSError:  # not Linux: the total only
        return rss_mib(), 0.0
    return anon, file


@dataclass(frozen=True)
class SoakWindow:
    t_s: float
    ticks_per_s: float
    p50_ms: float
    p99_ms: float
    rss_mib: float
    consumer_lag: int
    anon_mib: float = 0.0  # of rss_mib: heap (a leak shows here)
    file_mib: float = 0.0  # of rss_mib: mapped file pages (LMDB cache, segments)


@dataclass
class SoakResult:
    seconds: float
    rate: float
    symbols: int
    windows: list[SoakWindow] = field(default_factory=list)
    rows: int = 0
    missing: int = 0
    duplicates_stored: int = 0
    duplicates_dropped: int = 0
    reconnects: int = 0
    audit_records: int = 0
    audit_ok: bool = False


def _keyed_cache(path: Path, keys_file: Path):
    """The feed's LMDB write-ahead cache, also appending each batch's (symbol, seq) keys to a
    file: the oracle of the integrity check (every batch put here is appended to the table
    exactly once), kept on disk so it does not count in the RSS being measured."""
    from pyplatform.feeds.cache import RecentCache

    class KeyedCache(RecentCache):
        def __init__(self) -> None:
            super().__init__(path)
            self._sym: dict[str, int] = {}
            self._out = open(keys_file, "ab")

        def put(self, ticks):
            syms = ticks.column("symbol").to_pylist()
            codes = np.fromiter((self._sym.setdefault(s, len(self._sym)) for s in syms), np.int64, len(syms))
            seq = ticks.column("seq").to_numpy(zero_copy_only=False).astype(np.int64)
            self._out.write(((codes << 40) | seq).tobytes())
            return super().put(ticks)

        def close(self) -> None:
            self._out.close()
            super().close()

    return KeyedCache()


async def _soak(seconds: float, rate: float, symbols: int, window_s: float, port: int, work: Path) -> SoakResult:
    from pyplatform.audit import AuditLog
    from pyplatform.bench.feeds import TOKEN
    from pyplatform.feeds.client import FeedConfig, ITickClient
    from pyplatform.feeds.ingest import Ingestor
    from pyplatform.feeds.schemas import TICKS
    from pyplatform.feeds.simulator import SimulatorConfig
    from pyplatform.stream import OFFSET_NEW, StreamTables, TableOptions
    from pyplatform.clock import LiveClock

    syms = list(SimulatorConfig.from_universe(symbols).symbols)
    # a bounded in-memory window: the steady state is reached within the first minute
    tables = StreamTables(work / "stream", options=TableOptions(fsync="batch", memory_rows=100_000), clock=LiveClock())
    ticks = tables.get_table("ticks", TICKS)
    sub = ticks.subscribe("soak_consumer", offset=OFFSET_NEW)
    audit = AuditLog(work / "audit" / "audit.log", clock=LiveClock())
    keys_file = work / "keys.bin"
    cache = _keyed_cache(work / "cache", keys_file)
    # the pieces run_feed wires, with the keyed cache in place of the plain one
    client = ITickClient(FeedConfig(url=f"ws://127.0.0.1:{port}/all", token=TOKEN, symbols=tuple(syms),
                                    types=("tick",)), Ingestor(ticks, cache=cache), clock=LiveClock())
    stop = asyncio.Event()
    res = SoakResult(seconds, rate, symbols)
    feed = asyncio.create_task(client.run(stop))
    await asyncio.wait_for(client.connected.wait(), 60)
    t_start = time.perf_counter()
    last_t, last_n, next_audit, acked = t_start, ticks.next_offset, t_start, -1
    client.stats.latency_ns.clear()
    while (now := time.perf_counter()) - t_start < seconds:
        await asyncio.sleep(0.05)
        if feed.done():
            feed.result()  # a feed that died is the soak's failure: say why
        batch = sub.poll()  # the downstream stage: consume and ack what it has handled
        if batch is not None and batch.num_rows:
            acked = int(batch.column("offset")[-1].as_py())
            ticks.ack("soak_consumer", acked)
        if now >= next_audit:
            await asyncio.to_thread(audit.append, "order.submit", "soak", f"o{res.audit_records}")
            res.audit_records += 1
            next_audit += 1.0
        if now - last_t >= window_s:
            n = ticks.next_offset
            lat = client.stats.latency_percentiles()
            client.stats.latency_ns.clear()
            anon, file = rss_parts_mib()
            res.windows.append(SoakWindow(now - t_start, (n - last_n) / (now - last_t), lat[50] / 1e3, lat[99] / 1e3,
                                          rss_mib(), n - 1 - acked, anon, file))
            last_t, last_n = now, n
    stop.set()
    await feed
    cache.close()
    st = client.stats
    res.duplicates_dropped, res.reconnects = st.duplicates, st.reconnects
    res.rows = ticks.next_offset
    tables.close()
    keys = np.fromfile(keys_file, dtype=np.int64)
    uniq = np.unique(keys)
    res.duplicates_stored = int(len(keys) - len(uniq)) + abs(res.rows - len(keys))
    # per symbol the simulator numbers ticks 1, 2, 3...: a hole between a symbol's first and
    # last stored number is a tick lost
    sym, seq = uniq >> 40, uniq & ((1 << 40) - 1)
    starts = np.r_[0, np.flatnonzero(np.diff(sym)) + 1]
    ends = np.r_[starts[1:], len(uniq)]
    res.missing = int(sum(seq[e - 1] - seq[s] + 1 - (e - s) for s, e in zip(starts, ends)))
    res.audit_ok = audit.verify().ok
    return res


def run_soak(seconds: float = 180.0, rate: float = 5_000.0, symbols: int = 50, window_s: float = 10.0) -> SoakResult:
    """Run the soak for ``seconds`` at ``rate`` offered ticks/s (simulator in its own process)."""
    from pyplatform.bench.feeds import SimulatorProcess

    if seconds < 2 * window_s:
        raise ValueError(f"seconds ({seconds}) must cover at least two windows of {window_s}s")
    with SimulatorProcess(rate, 1, symbols) as port, tempfile.TemporaryDirectory(prefix="pyplatform-soak-") as d:
        return asyncio.run(_soak(seconds, rate, symbols, window_s, port, Path(d)))


def format_soak(r: SoakResult) -> str:
    lines = [f"soak: {r.seconds:.0f} s at {r.rate:,.0f} offered ticks/s, {r.symbols} symbols "
             "(simulator process -> iTick client + ingestor + LMDB cache -> durable tick table -> consumer + audit log)",
             f"{'t (s)':>7} {'ticks/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'RSS MiB':>8} {'anon':>7} {'file':>7} "
             f"{'lag rows':>9}"]
    for w in r.windows:
        lines.append(f"{w.t_s:7.0f} {w.ticks_per_s:9,.0f} {w.p50_ms:8.1f} {w.p99_ms:8.1f} {w.rss_mib:8.1f} "
                     f"{w.anon_mib:7.1f} {w.file_mib:7.1f} {w.consumer_lag:9,d}")
    # the first window includes warm-up (imports, numba, caches): compare from the second
    first, last = (r.windows[1] if len(r.windows) > 2 else r.windows[0]), r.windows[-1]
    ratio = lambda a, b: a / b if b else float("nan")  # noqa: E731
    rss = np.array([w.rss_mib for w in r.windows])
    lines += [
        f"drift, last window / first steady window: RSS {ratio(last.rss_mib, first.rss_mib):.2f}x "
        f"({first.rss_mib:.0f} -> {last.rss_mib:.0f} MiB, peak {rss.max():.0f}), "
        f"p99 {ratio(last.p99_ms, first.p99_ms):.2f}x ({first.p99_ms:.1f} -> {last.p99_ms:.1f} ms), "
        f"ticks/s {ratio(last.ticks_per_s, first.ticks_per_s):.2f}x",
        f"of the RSS: anonymous (heap) {first.anon_mib:.0f} -> {last.anon_mib:.0f} MiB "
        f"({ratio(last.anon_mib, first.anon_mib):.2f}x), file-backed (mapped LMDB cache and segments) "
        f"{first.file_mib:.0f} -> {last.file_mib:.0f} MiB",
        f"integrity: {r.rows:,} ticks stored, {r.missing} sequence numbers missing, {r.duplicates_stored} stored twice, "
        f"{r.duplicates_dropped} duplicates dropped, {r.reconnects} reconnects; audit log {r.audit_records} records "
        f"{'verified' if r.audit_ok else 'FAILED verification'}",
    ]
    return "\n".join(lines)
