"""``pyplatform bench trading``: signal-to-acknowledged-order latency and strategy throughput.

Three figures, each beside the obvious alternative measured in the same run:

* signal -> risk -> order manager (journal fsync) -> paper broker -> acknowledged, p50/p99,
  beside the same path with the pandas-style risk check that recomputes positions from the
  whole fill history on every order;
* the same through the FIX initiator to the exchange simulator over loopback (p50/p99),
  beside the in-process paper broker;
* strategy evaluation rows/s (vectorised per batch) beside a per-row Python loop.

``pyplatform bench journal`` times the durable order journal alone: appends of order
records from several threads (each returns only once its record is on disk), with group
commit beside one ``fsync`` per append, in the same run; and the paper signal->ack path
with each journal. ``--quick`` is the form the tests run (correctness, not timing).
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pyplatform.bench.report import machine_line

if TYPE_CHECKING:
    import numpy as np

    from pyplatform.risk import RiskConfig

__all__ = ["register", "paper_latency", "fix_latency", "strategy_throughput", "journal_latency", "JournalRun"]

_SYMBOLS = [f"S{i:02d}.US" for i in range(20)]


def _permissive() -> RiskConfig:
    from pyplatform.risk import AccountLimits, RiskConfig

    # limits out of the way: the benchmark times the checks, not refusals (slippage on 2000
    # round trips would otherwise touch the daily loss limit)
    return RiskConfig(default=AccountLimits(rate_per_s=1e9, burst=10**9, concentration=100.0, price_band=0.5,
                                            daily_loss_limit=0.99, kill_on_breach="none"))


def _signals(n: int):
    from pyplatform.domain import Direction, Signal

    dirs = (Direction.LONG, Direction.SHORT, Direction.FLAT)
    for i in range(n):
        yield Signal(time.time_ns() + i, _SYMBOLS[i % len(_SYMBOLS)], "bench", dirs[(i // len(_SYMBOLS)) % 3], 0.5)


def _quotes(node) -> None:
    from pyplatform.domain import Quote

    for s in _SYMBOLS:
        node.on_quote(Quote(time.time_ns(), s, 100.0, bid=99.99, ask=100.01, bid_size=1e9, ask_size=1e9))


def _pct(a) -> tuple[float, float]:
    import numpy as np

    a = np.asarray(a, dtype=np.float64) / 1e3
    return float(np.median(a)), float(np.percentile(a, 99))


def paper_latency(n: int = 2000, fsync: bool = True, naive_risk: bool = False, directory=None,
                  group_commit: bool = True) -> np.ndarray:
    """Per-signal nanoseconds from signal to an acknowledged (accepted/filled) paper order.

    ``group_commit=False`` swaps in a journal that holds its lock across each ``fsync`` (one
    ``fsync`` per record, strictly one after another): the baseline for group commit.
    """
    import numpy as np

    from pyplatform.clock import LiveClock
    from pyplatform.execution.journal import Journal
    from pyplatform.execution.node import TradingNode

    with tempfile.TemporaryDirectory(dir=directory) as d:
        node = TradingNode(None, {}, LiveClock(), "paper", risk_config=_permissive(), journal=Path(d) / "j",
                           fsync=fsync)
        if not group_commit and node.oms.journal is not None:
            node.oms.journal.close()
            node.oms.journal = Journal(Path(d) / "j", fsync=fsync, group_commit=False)
        _quotes(node)
        if naive_risk:
            _install_naive_risk(node)
        out = []
        for sig in _signals(n):
            t0 = time.perf_counter_ns()
            cmd = node.on_signal(sig)
            t1 = time.perf_counter_ns()
            if cmd is not None:
                assert node.oms.orders[cmd.client_order_id].status.value != "pending_new"
                out.append(t1 - t0)
        node.close()
    return np.asarray(out)


def _install_naive_risk(node) -> None:
    """The obvious alternative: rebuild positions from every fill with pandas before each check."""
    import pandas as pd

    from pyplatform.execution.messages import OrderFilled
    from pyplatform.risk import AccountSnapshot

    fills: list[dict] = []
    apply = node._apply_all

    def recording_apply(events):
        done = apply(events)
        for e in done:
            if isinstance(e, OrderFilled):
                o = node.oms.orders[node.oms.live_id(e.client_order_id)]
                fills.append({"symbol": o.symbol, "qty": float(e.last_qty) * int(o.side), "px": float(e.last_px)})
        return done

    def snapshot():
        df = pd.DataFrame(fills, columns=["symbol", "qty", "px"])
        pos = df.groupby("symbol")["qty"].sum()
        cash = -(df["qty"] * df["px"]).sum()
        marks = {s: float(node.risk.last_price.get(s, 0)) for s in pos.index}
        equity = float(node.capital) + cash + sum(q * marks[s] for s, q in pos.items())
        return AccountSnapshot(node.account, Decimal(str(round(equity, 2))),
                               {s: Decimal(str(q)) for s, q in pos.items() if q})

    node._apply_all = recording_apply
    node.snapshot = snapshot


def fix_latency(n: int = 500, directory=None) -> np.ndarray:
    """Per-signal nanoseconds from signal to the venue's acknowledgement applied, over FIX loopback."""
    import numpy as np

    from pyplatform.clock import LiveClock
    from pyplatform.domain import Quote
    from pyplatform.execution.fix.exchange import FixExchange
    from pyplatform.execution.node import TradingNode

    with tempfile.TemporaryDirectory(dir=directory) as d:
        ex = FixExchange(Path(d) / "venue", clock=LiveClock()).start()
        node = TradingNode(None, {}, LiveClock(), "fix", risk_config=_permissive(), journal=Path(d) / "j",
                           fix_port=ex.port)
        acked = threading.Condition()
        handler = node.broker.on_event

        def on_event(ev):
            handler(ev)
            with acked:
                acked.notify_all()

        node.broker.on_event = on_event
        try:
            _quotes(node)
            for s in _SYMBOLS:
                ex.on_quote(Quote(time.time_ns(), s, 100.0, bid=99.99, ask=100.01, bid_size=1e9, ask_size=1e9))
            out = []
            for sig in _signals(n):
                t0 = time.perf_counter_ns()
                cmd = node.on_signal(sig)
                if cmd is None:
                    continue
                with acked:
                    ok = acked.wait_for(lambda: node.oms.orders[cmd.client_order_id].status.value != "pending_new",
                                        timeout=10)
                t1 = time.perf_counter_ns()
                if not ok:
                    raise RuntimeError(f"no acknowledgement for {cmd.client_order_id} within 10 s")
                out.append(t1 - t0)
        finally:
            node.close()
            ex.stop()
    return np.asarray(out)


def strategy_throughput(rows: int = 200_000, symbols: int = 50, repeats: int = 3) -> tuple[float, float]:
    """Rows/s of ``DualMACrossover.on_batch`` (vectorised) and of a per-row Python loop that
    builds the same signals (the outputs are compared), medians of ``repeats`` runs."""
    import numpy as np

    from pyplatform.domain import Direction, Signal
    from pyplatform.strategies import DualMACrossover

    rng = np.random.default_rng(0)
    per = rows // symbols
    rows = per * symbols
    price = 100 + np.cumsum(rng.normal(0, 0.1, (per, symbols)), axis=0)
    c = np.cumsum(np.vstack([np.zeros(symbols), price]), axis=0)
    fast = np.full_like(price, np.nan)
    slow = np.full_like(price, np.nan)
    fast[4:] = (c[5:] - c[:-5]) / 5
    slow[19:] = (c[20:] - c[:-20]) / 20
    names = np.array([f"X{i}.US" for i in range(symbols)])
    batch = {"ts": np.repeat(np.arange(per, dtype=np.int64), symbols), "symbol": np.tile(names, per),
             "ma_cross_fast": fast.ravel(), "ma_cross_slow": slow.ravel()}

    def vectorised():
        return DualMACrossover(fast=5, slow=20).on_batch(batch)

    def per_row():
        strat = DualMACrossover(fast=5, slow=20)
        last: dict[str, int] = {}
        out = []
        ts, sym, fa, sl = batch["ts"], batch["symbol"], batch["ma_cross_fast"], batch["ma_cross_slow"]
        for i in range(rows):
            d = fa[i] - sl[i]
            r = 1 if d > 0 else -1 if d < 0 else 0
            if r == 0:
                continue
            s = str(sym[i])
            p = last.get(s)
            if p is not None and p != r:
                f = {"fast": float(fa[i]), "slow": float(sl[i])}
                strength = 1.0
                out.append(Signal(int(ts[i]), s, strat.name, Direction(r), strength, strat.describe(p, r, f),
                                  {"ma_cross_fast": f["fast"], "ma_cross_slow": f["slow"]}))
            last[s] = r
        return out

    tv, tr = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a = vectorised()
        t1 = time.perf_counter()
        b = per_row()
        t2 = time.perf_counter()
        if a != b:
            raise RuntimeError(f"strategy bench: vectorised found {len(a)} signals, per-row loop {len(b)}")
        tv.append(t1 - t0)
        tr.append(t2 - t1)
    return rows / float(np.median(tv)), rows / float(np.median(tr))


@dataclass
class JournalRun:
    """One journal benchmark run: per-append latencies and the fsyncs they took."""

    threads: int
    group_commit: bool
    latencies_ns: np.ndarray
    wall_s: float
    records: int
    fsyncs: int

    @property
    def per_s(self) -> float:
        """Durable records per second over the run."""
        return self.records / self.wall_s if self.wall_s else float("nan")


def journal_latency(n: int = 2000, threads: int = 8, group_commit: bool = True, directory=None,
                    check: bool = True) -> JournalRun:
    """Append ``n`` order records from ``threads`` threads, each waiting for its own durability.

    Each thread appends its share one after another (a closed loop: the next order is placed
    when the previous one is acknowledged), timing every ``append`` call; the records are
    ``SubmitOrder`` commands like the order manager writes. With ``check`` the file is read
    back: every record present once, each thread's records in its order.
    """
    import numpy as np

    from pyplatform.execution.journal import Journal
    from pyplatform.execution.messages import OrdType, Side, SubmitOrder

    per = max(1, n // threads)
    lat = np.zeros((threads, per), dtype=np.int64)
    with tempfile.TemporaryDirectory(dir=directory) as d:
        path = Path(d) / "j"
        journal = Journal(path, fsync=True, group_commit=group_commit)
        cmds = [[SubmitOrder(f"t{t}-{i}", "bench", _SYMBOLS[i % len(_SYMBOLS)], Side.BUY, Decimal(100),
                             OrdType.LIMIT, Decimal("100.01"), ts=i) for i in range(per)] for t in range(threads)]
        start = threading.Barrier(threads + 1)

        def worker(t: int) -> None:
            row, mine = lat[t], cmds[t]
            start.wait()
            for i in range(per):
                t0 = time.perf_counter_ns()
                journal.append(mine[i])
                row[i] = time.perf_counter_ns() - t0

        pool = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
        for th in pool:
            th.start()
        start.wait()
        t0 = time.perf_counter()
        for th in pool:
            th.join()
        wall = time.perf_counter() - t0
        journal.close()
        if check:
            ids = [m.client_order_id for m in Journal.read(path)]
            if len(ids) != threads * per or len(set(ids)) != len(ids):
                raise RuntimeError(f"journal bench: {len(ids)} records read back, {len(set(ids))} distinct, "
                                   f"{threads * per} appended")
            for t in range(threads):
                seq = [int(x.split("-")[1]) for x in ids if x.startswith(f"t{t}-")]
                if seq != list(range(per)):
                    raise RuntimeError(f"journal bench: thread {t}'s records out of order")
    return JournalRun(threads, group_commit, lat.ravel(), wall, threads * per, journal.fsyncs)


def _journal_report(n: int, threads: int, signals: int, repeats: int, echo) -> None:
    import numpy as np

    echo(machine_line())
    for th in sorted({1, threads}):
        rows = {True: [], False: []}
        for _ in range(repeats):  # alternate the two modes so drifting load hits both alike
            for gc in (True, False):
                rows[gc].append(journal_latency(n, th, group_commit=gc))
        for gc in (True, False):
            rs = rows[gc]
            p50 = float(np.median([np.median(r.latencies_ns) for r in rs])) / 1e3
            p99 = float(np.median([np.percentile(r.latencies_ns, 99) for r in rs])) / 1e3
            rate = float(np.median([r.per_s for r in rs]))
            per_fsync = float(np.median([r.records / max(r.fsyncs, 1) for r in rs]))
            name = "group commit        " if gc else "fsync per append    "
            echo(f"journal append, {th:2d} thread(s), {name}: p50 {p50:8.1f} us  p99 {p99:8.1f} us  "
                 f"{rate:9,.0f} durable records/s  {per_fsync:5.1f} records per fsync")
        g = float(np.median([r.per_s for r in rows[True]])) / float(np.median([r.per_s for r in rows[False]]))
        echo(f"  -> group commit {g:.2f}x the records/s of fsync per append ({th} thread(s))")
    if signals:
        res = {}
        for gc in (True, False):
            runs = [paper_latency(signals, fsync=True, group_commit=gc) for _ in range(repeats)]
            res[gc] = (float(np.median([np.median(r) for r in runs])) / 1e3,
                       float(np.median([np.percentile(r, 99) for r in runs])) / 1e3)
        nof = paper_latency(signals, fsync=False)
        q50, q99 = _pct(nof)
        echo(f"signal->ack, risk + OMS + paper, group-commit journal:  p50 {res[True][0]:8.1f} us  "
             f"p99 {res[True][1]:8.1f} us  (n={signals} x {repeats})")
        echo(f"  same, fsync-per-append journal:                      p50 {res[False][0]:8.1f} us  "
             f"p99 {res[False][1]:8.1f} us  -> {res[False][0] / res[True][0]:.2f}x the median")
        echo(f"  same, journal without fsync (not durable):           p50 {q50:8.1f} us  p99 {q99:8.1f} us")


def register(app: typer.Typer) -> None:
    @app.command("journal")
    def journal_bench(
        records: int = typer.Option(4000, help="Order records appended per run (split over the threads)."),
        threads: int = typer.Option(8, help="Appending threads (a 1-thread run is always added)."),
        signals: int = typer.Option(1000, help="Signals through risk + paper broker per run (0 skips)."),
        repeats: int = typer.Option(3, help="Runs per mode; medians are printed."),
        quick: bool = typer.Option(False, "--quick", help="A tiny run (for the tests: correctness, not timing)."),
    ) -> None:
        """Durable order journal: group commit beside fsync per append, and signal->ack with each."""
        if quick:
            records, threads, signals, repeats = 64, 4, 20, 1
        _journal_report(records, threads, signals, repeats, typer.echo)

    @app.command("trading")
    def trading_bench(
        signals: int = typer.Option(2000, help="Signals through risk + paper broker."),
        fix_signals: int = typer.Option(500, help="Signals through FIX on loopback (0 skips FIX)."),
        rows: int = typer.Option(200_000, help="Factor rows for the strategy throughput figure."),
        quick: bool = typer.Option(False, "--quick", help="50 paper signals, 10 over FIX, 5,000 strategy rows "
                                                          "(a smoke test of the command, not figures)."),
    ) -> None:
        """Signal-to-acknowledged-order latency (paper and FIX) and strategy throughput, with ratios."""
        if quick:
            signals, fix_signals, rows = 50, 10, 5_000
        typer.echo(machine_line())
        fsynced = paper_latency(signals, fsync=True)
        naive = paper_latency(signals, fsync=True, naive_risk=True)
        nofsync = paper_latency(signals, fsync=False)
        (p50, p99), (n50, n99), (q50, q99) = _pct(fsynced), _pct(naive), _pct(nofsync)
        typer.echo(f"signal->ack, risk + OMS (fsync journal) + paper: p50 {p50:9.1f} us  p99 {p99:9.1f} us  "
                   f"(n={len(fsynced)})")
        typer.echo(f"  same, journal without fsync:                   p50 {q50:9.1f} us  p99 {q99:9.1f} us")
        typer.echo(f"  alternative, pandas positions per check:       p50 {n50:9.1f} us  p99 {n99:9.1f} us  "
                   f"-> {n50 / p50:.2f}x the median")
        if fix_signals:
            fx = fix_latency(fix_signals)
            f50, f99 = _pct(fx)
            typer.echo(f"signal->ack through FIX 4.4 loopback (quickfix): p50 {f50:9.1f} us  p99 {f99:9.1f} us  "
                       f"(n={len(fx)}; {f50 / p50:.2f}x the in-process paper median)")
        vec, loop = strategy_throughput(rows)
        typer.echo(f"strategy (dual MA cross) rows/s: vectorised {vec:,.0f}  per-row loop {loop:,.0f}  "
                   f"-> {vec / loop:.1f}x")
