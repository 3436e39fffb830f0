"""The main job: the whole platform end to end on the embedded backend.

    history (generated if absent) ──► exchange simulator (iTick protocol, loopback WebSocket)
      ──► iTick client ──► ticks ──► bar engine ──► bars ──► factor engine ──► factors
      ──► strategies ──► signals ──► risk ──► paper broker ──► OMS (positions, P&L)
      ──► signal service (WebSocket + JWT + Redis) ──► Dash app

Every component is the production one; only the market is simulated. The loop prints a
live table (ticks, bars, factor values, signals, positions, P&L, risk state) once a second.
With ``PYPLATFORM_ITICK_TOKEN`` set, the feed connects to iTick instead of the simulator.

History: twelve years of one-minute bars by default (the platform's promise is ten-plus
years), generated once with a progress bar and reused on the next run, so the Dash app opens
on a decade of daily candles that zoom down to minutes.

Trading: besides the library strategies, the demo drafts a strategy from the seed's own
sentence (:data:`DRAFT_SENTENCE`) with :func:`pyplatform.research.drafting.draft_strategy`
and runs the draft's ``kind: "rule"`` configuration live on its symbol, sized by the
sentence's "2% position" (a per-symbol concentration limit) with its 100-point stop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from contextlib import suppress
from pathlib import Path

import pandas as pd

from rich.console import Console
from rich.live import Live
from rich.table import Table

from pyplatform.config import Settings, configured_port, get_settings

__all__ = ["run_demo", "DemoReport"]

log = logging.getLogger(__name__)

#: The seed's sentence: drafted into a rule strategy that the demo trades live.
DRAFT_SENTENCE = ("When the 5-day moving average of EURUSD crosses above the 20-day moving average, buy; when it "
                  "crosses below, sell; use 2% position for each trade, and set stop-loss at 100 points.")
#: Default years of history the demo generates (ten-plus, as the platform promises).
DEMO_YEARS = 12.0
_DEMO_END = "2026-01-01"
_DEMO_SEED = 42
_MARKER = "demo_market.json"

#: Library factors the demo's engine computes besides the strategies' own inputs.
DEMO_FACTORS = {
    "mom_10": "close / move(close, 10) - 1",
    "zscore_10": "zscore(close, 10)",
    "rsi_6": "rsi(close, 6)",
    "vwap_ratio_10": "close / mvwap(close, volume, 10) - 1",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Redis:
    """A throwaway redis-server on a free loopback port (skipped if the binary is missing).

    With ``password`` it refuses clients that do not ``AUTH`` (``requirepass``), so a process
    that can merely reach the port cannot inject snapshot rows or delete revocations. The
    configuration, password included, goes to the server on its stdin (``redis-server -``),
    never on its command line, where any user could read it in the process list.
    """

    def __init__(self, workdir: Path, password: str | None = None) -> None:
        self.proc = None
        self.url = None
        self.port = None
        exe = shutil.which("redis-server")
        if exe is None:
            return
        port = _free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        conf = [f"port {port}", "bind 127.0.0.1", 'save ""', "appendonly no", f'dir "{workdir}"']
        if password is not None:
            if not password.isalnum():
                raise ValueError("the demo's redis password must be alphanumeric")
            conf.append(f"requirepass {password}")
        self.proc = subprocess.Popen([exe, "-"], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.proc.stdin.write(("\n".join(conf) + "\n").encode())
        self.proc.stdin.close()
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        deadline = time.time() + 5
        while time.time() < deadline:
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            with suppress(Exception):
                self.proc.wait(5)


class DemoReport:
    """What the demo saw; returned for tests and printed at the end."""

    def __init__(self) -> None:
        self.ticks = self.bars = self.factor_rows = self.signals = self.orders = 0
        self.positions: list[dict] = []
        self.pnl = 0.0
        self.equity = 0.0
        self.latest_factors: list[dict] = []
        self.service_url = ""
        self.dash_url = ""
        self.subscribe_example = ""
        self.health: dict = {}
        self.risk: dict = {}
        self.published: list[str] = []
        self.broker = "paper"
        self.history: dict = {}
        #: the drafted strategy: sentence, config (or what was not understood), its signals
        self.drafted: dict = {}
        #: its backtest over the daily history (run id and headline metrics, or the error)
        self.drafted_backtest: dict = {}

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _history_span(settings: Settings) -> tuple[list[str], float]:
    """Symbols with daily bars and the years their history spans (0 when there is none)."""
    from pyplatform.backends import open_store

    store = open_store(settings)
    try:
        syms = list(store.symbols("bars_1d"))
    except Exception:  # noqa: BLE001 - an empty or missing store
        return [], 0.0
    if not syms:
        return [], 0.0
    d = store.read("bars_1d", symbols=syms[:1], columns=["close"])
    ts = d.index.get_level_values("datetime")
    return syms, float((ts.max() - ts.min()).days / 365.25) if len(ts) else 0.0


def _ensure_history(settings: Settings, n_symbols: int, console: Console, years: float = DEMO_YEARS) -> list[str]:
    """The demo's history: reused when present, else ``years`` of 1-minute bars generated once.

    A market the demo generated itself (it leaves ``demo_market.json`` in the data directory)
    that is shorter than ``years`` is regenerated; any other history is the user's and is
    used as it is, with a note when it spans less than asked.
    """
    import json

    marker = Path(settings.data_dir) / _MARKER
    syms, span = _history_span(settings)
    made = json.loads(marker.read_text()) if marker.exists() else None
    if syms and made is not None and float(made.get("years", 0)) + 1e-9 < years:
        console.print(f"[bold]1/6 history[/]: the demo's market spans {made.get('years')} years, "
                      f"{years:g} asked: generating it again")
        shutil.rmtree(settings.path("history"), ignore_errors=True)
        syms = []
    if syms:
        console.print(f"[bold]1/6 history[/]: {len(syms)} symbols, {span:.1f} years of bars already in "
                      f"{settings.data_dir}")
        if span + 0.05 < years and made is None:
            console.print(f"    (less than the {years:g} years the demo would generate; "
                          "point PYPLATFORM_DATA_DIR at an empty folder for a full decade)")
        return syms
    from pyplatform.data import generate_market

    end = pd.Timestamp(_DEMO_END)
    start = end - pd.DateOffset(months=max(1, int(round(years * 12))))
    console.print(f"[bold]1/6 history[/]: generating {years:g} years ({start:%Y-%m-%d} → {end:%Y-%m-%d}) of "
                  f"1-minute bars for {n_symbols} symbols (stocks, forex, crypto) into {settings.data_dir}; "
                  "once only, the next run reuses them ...")
    t0 = time.perf_counter()
    summary = generate_market(settings.data_dir, n_symbols=n_symbols, start=start, end=end, tick_days=1,
                              seed=_DEMO_SEED, progress=True)
    took = time.perf_counter() - t0
    rows = summary.rows.get("bars_1m", 0)
    console.print(f"    {rows:,} minute bars in {took:.0f} s")
    marker.write_text(json.dumps({"years": years, "n_symbols": n_symbols, "seed": _DEMO_SEED,
                                  "start": str(start.date()), "end": str(end.date()), "minute_bars": rows,
                                  "seconds": round(took, 1)}))
    syms, _ = _history_span(settings)
    return syms


def draft_demo_strategy(symbols: list[str], sentence: str = DRAFT_SENTENCE) -> tuple[dict | None, dict]:
    """Draft ``sentence`` against the demo's symbols.

    Returns
    -------
    (config or None, report)
        The draft's ``kind: "rule"`` configuration (None when a clause was not understood or
        its symbol is not in the market) and what the demo reports about it.
    """
    from pyplatform.research.drafting import draft_strategy

    d = draft_strategy(sentence, known_symbols=symbols)
    report = {"sentence": sentence, "understood": list(d.understood), "unparsed": list(d.unparsed)}
    if not d.ok:
        return None, report
    cfg = d.to_config(name="drafted")
    report["config"] = cfg
    return cfg, report


def backtest_draft(settings: Settings, symbols: list[str], console: Console) -> dict:
    """Backtest the drafted strategy over the daily history and save the run (the Backtests page
    lists it as "drafted (rule)"); returns its headline metrics, or why it did not run."""
    cfg, report = draft_demo_strategy(symbols)
    if cfg is None:
        return {"error": "not understood: " + "; ".join(report["unparsed"])}
    try:
        from pyplatform.research.session import run_backtest

        t0 = time.perf_counter()
        r = run_backtest(cfg, settings=settings, save=True)
    except Exception as exc:  # noqa: BLE001 - the live demo goes on; the reason is shown
        console.print(f"[yellow]drafted strategy not backtested: {exc}[/]")
        return {"error": str(exc)}
    out = {"run_id": r.run_id, "seconds": round(time.perf_counter() - t0, 1)}
    out.update({k: r.metrics.get(k) for k in ("total_return", "sharpe", "max_drawdown", "n_trades")})
    console.print(f"[bold]drafted[/]: backtested on {cfg['symbols']} daily history: total return "
                  f"{out['total_return']:+.2%}, Sharpe {out['sharpe']:+.2f}, {out['n_trades']} trades "
                  f"(run {r.run_id}, on the Backtests page)")
    return out


def _draft_risk(cfg: dict):
    """Risk limits giving the draft's symbols its sizing (see ``strategies.rule.risk_overrides``),
    per symbol so that the library strategies keep the account's defaults."""
    from pyplatform.risk.config import AccountLimits, RiskConfig
    from pyplatform.strategies.rule import risk_overrides

    over = risk_overrides(cfg.get("params", {}), cfg.get("symbols") or ())
    per: dict = {s: dict(v) for s, v in over.pop("symbols", {}).items()}
    for sym in cfg.get("symbols") or ():
        if "concentration" in over:
            per.setdefault(sym, {})["concentration"] = over["concentration"]
        if "fixed_stop" in over:
            per.setdefault(sym, {})["fixed_stop"] = over["fixed_stop"]
    extra = {k: v for k, v in over.items() if k == "risk_per_trade"}
    return RiskConfig(default=AccountLimits(symbols=per, **extra))


def _last_closes(settings: Settings, symbols: list[str]) -> tuple[tuple[str, float], ...]:
    from pyplatform.backends import open_store

    cs = open_store(settings).cross_section("bars_1d", at="2100-01-01", symbols=symbols)  # last bar of each
    close = cs["close"]
    return tuple((sym, float(px)) for (_, sym), px in close.items())


def _render(rep: DemoReport, elapsed: float, seconds: float) -> Table:
    t = Table(title=f"pyplatform demo — {elapsed:4.0f}s / {seconds:.0f}s   (Ctrl-C stops)", expand=False)
    t.add_column("stage")
    t.add_column("value", overflow="fold")
    t.add_row("ticks in", f"{rep.ticks:,}")
    t.add_row("bars (1 s)", f"{rep.bars:,}")
    t.add_row("factor rows", f"{rep.factor_rows:,}")
    for f in rep.latest_factors[:4]:
        vals = "  ".join(f"{k}={v:+.4f}" for k, v in f.items() if k not in ("symbol", "ts") and v == v)
        t.add_row(f"  {f['symbol']}", vals)
    t.add_row("signals", f"{rep.signals:,}")
    if rep.drafted.get("config"):
        t.add_row("drafted strategy", f"{rep.drafted['config']['symbols'][0]}: {rep.drafted.get('signals', 0)} signals "
                                      f"(rules from the seed's sentence)")
    t.add_row("orders", f"{rep.orders:,}")
    t.add_row("positions", ", ".join(f"{p['symbol']} {p['quantity']:g}" for p in rep.positions[:6]) or "-")
    t.add_row("P&L / equity", f"{rep.pnl:+,.2f} / {rep.equity:,.2f}")
    t.add_row("risk", f"kill switch={rep.risk.get('kill', 'OFF')}  daily loss limit hit={rep.risk.get('loss_hit', False)}  "
                      f"decisions={rep.risk.get('decisions', 0)} refused={rep.risk.get('refused', 0)}")
    t.add_row("signal service", f"{rep.service_url}  {rep.health.get('status', '')} (redis {rep.health.get('redis', '-')})")
    t.add_row("dash app", rep.dash_url or "-")
    return t


def _start_dash(settings: Settings, port: int, console: Console):
    """Serve the Dash app in a daemon thread (werkzeug); returns its URL or None."""
    try:
        from werkzeug.serving import make_server

        from pyplatform.dashboard.app import create_app

        app = create_app(settings)
        server = make_server("127.0.0.1", port, app.server, threaded=True)
        server.app = app  # the demo feeds app.pyplatform.live
        threading.Thread(target=server.serve_forever, daemon=True, name="dash").start()
        return f"http://127.0.0.1:{port}/", server
    except Exception as exc:  # the research views are not essential to the live path
        console.print(f"[yellow]dash app not started: {exc}[/]")
        return None, None


async def _main(settings: Settings, symbols: list[str], seconds: float, keep_running: bool,
                console: Console, rep: DemoReport, live_table: bool, broker: str = "paper",
                venue: str | None = None) -> None:
    from pyplatform.clock import LiveClock
    from pyplatform.domain.schemas import QUOTES, SIGNALS
    from pyplatform.execution.node import TradingNode
    from pyplatform.feeds import run_feed, start_simulator
    from pyplatform.factors import FactorEngine  # noqa: F401  (warm numba before the clock starts)
    from pyplatform.signals.service import build_issuer, serve, subscribe_example
    from pyplatform.stream import StreamTables
    from pyplatform.stream.pipelines import market_pipeline
    from pyplatform.strategies.library import DualMACrossover, Momentum, ZScoreMeanReversion

    clock = LiveClock()
    stream_dir = settings.path("streams", "demo")
    shutil.rmtree(stream_dir, ignore_errors=True)  # each demo run starts its live day afresh
    tables = StreamTables(stream_dir, clock=clock)
    stop = asyncio.Event()

    # the seed's sentence, drafted and traded live on its symbol; the library strategies keep
    # to the other symbols so the draft's position is its own
    from pyplatform.strategies import build

    draft_cfg, rep.drafted = draft_demo_strategy(symbols)
    risk_config = None
    others = None
    if draft_cfg is not None:
        drafted = build(draft_cfg)
        risk_config = _draft_risk(draft_cfg)
        others = [s for s in symbols if s not in set(draft_cfg.get("symbols") or ())]
        console.print(f"[bold]drafted[/]: \"{DRAFT_SENTENCE}\"\n    -> {draft_cfg['rules']} "
                      f"{draft_cfg['params']} on {draft_cfg.get('symbols')}")
    else:
        console.print("[yellow]drafted strategy not run: not understood: " + "; ".join(rep.drafted["unparsed"]) + "[/]")
    # windows short enough to warm up within the demo's first half-minute of 1-second bars
    strategies = [DualMACrossover(fast=3, slow=8, symbols=others), ZScoreMeanReversion(symbols=others),
                  Momentum(symbols=others)]
    if draft_cfg is not None:
        strategies.append(drafted)
    factors = dict(DEMO_FACTORS)
    for s in strategies:
        factors.update(s.factors())

    # 2. exchange simulator (or the real iTick service when a token is configured)
    token = settings.itick_token.get_secret_value() if settings.itick_token else None
    sim = None
    if token:
        console.print("[bold]2/6 feed[/]: PYPLATFORM_ITICK_TOKEN set: connecting to iTick at " + settings.itick_ws_url)
        url = None
    else:
        sim_token = secrets.token_urlsafe(16)
        sim = await start_simulator(symbols=tuple(symbols), token=sim_token, rate=400.0, depth=True,
                                    port=configured_port(settings, "simulator_port") or 0,
                                    sessions=False, start_prices=_last_closes(settings, symbols), seed=42)
        url, token = sim.ws_url, sim_token
        console.print(f"[bold]2/6 feed[/]: exchange simulator on {sim.ws_url} streaming {len(symbols)} symbols")

    # 3. stream tables and engines: ticks -> 5 s bars -> factors
    pipe = market_pipeline(tables, window="1s", accepted_delay="200ms", factors=factors)
    quotes = tables.get_table("quotes", QUOTES)
    signals = tables.get_table("signals", SIGNALS)
    console.print(f"[bold]3/6 engines[/]: bar engine (1 s bars) and factor engine with {len(factors)} factors: "
                  + ", ".join(list(factors)[:6]) + ", ...")

    # factors published while the demo runs (`pyplatform factors publish NAME EXPR` in another
    # terminal) join the running engine; the runner adds their columns to the factors table
    from pyplatform.registry import FactorRegistry
    from pyplatform.registry.watcher import RegistryWatcher

    watcher = RegistryWatcher(FactorRegistry.from_settings(settings), pipe.factor_engine)
    _poll_registry(watcher, rep, console)

    # 4. trading: strategies -> risk -> paper broker -> OMS
    exchange = quote_sub = None
    fix_kw = {}
    if broker == "fix" and venue is not None:
        # an outside venue (quickfix session file or host:port): no simulator is started
        from pyplatform.execution.fix.session import parse_venue

        fix_kw["fix_session"] = parse_venue(venue, settings.path("trading", "demo", "fix"))
    elif broker == "fix":
        # a FIX 4.4 exchange simulator (quickfix acceptor) on loopback, matching like the paper
        # broker against the live quotes; the node talks to it through its quickfix initiator
        import tempfile

        from pyplatform.execution.fix.exchange import FixExchange
        from pyplatform.stream import OFFSET_NEW

        shutil.rmtree(settings.path("trading", "demo"), ignore_errors=True)  # fresh FIX sequence numbers
        exchange = FixExchange(Path(tempfile.mkdtemp(prefix="pyplatform-fixex-")), clock=clock).start()
        quote_sub = quotes.subscribe("fix_exchange", offset=OFFSET_NEW)
        fix_kw["fix_port"] = exchange.port
    node = TradingNode(settings, tables={"factors": pipe.factors, "quotes": quotes, "signals": signals},
                       clock=clock, broker=broker, strategies=strategies, account="demo", risk_config=risk_config,
                       journal=settings.path("streams", "demo", "orders.journal"), **fix_kw)
    rep.broker = broker
    console.print("[bold]4/6 trading[/]: " + ", ".join(s.name for s in strategies) + " -> risk -> "
                  + ("FIX 4.4 initiator -> exchange simulator on 127.0.0.1:%d" % exchange.port if exchange
                     else f"FIX 4.4 initiator -> {venue}" if venue else "paper broker"))

    # 5. signal service with Redis, and a token for the example subscriber
    # Redis with authentication by default: the password lives in a mode-600 secret file that
    # the signal service and `pyplatform tokens revoke` read (signals.service.redis_password)
    from pyplatform.signals.service import redis_password, redis_password_path

    pw_file = redis_password_path(settings)
    if not pw_file.exists():
        from pyplatform.fsio import atomic_write

        pw_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(pw_file, secrets.token_hex(24) + "\n", mode=0o600)
    redis = _Redis(settings.path("streams", "demo", "redis"), password=redis_password(settings))
    svc_port = configured_port(settings, "signal_port") or _free_port()  # PYPLATFORM_SIGNAL_PORT wins
    secret_file = settings.jwt_secret_file
    if secret_file is None and not os.environ.get("PYPLATFORM_JWT_SECRET"):
        # the demo makes its own signing secret (a file only the user can read), never one in code
        secret_file = settings.path("secrets", "jwt.secret")
        if not secret_file.exists():
            secret_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
    svc_settings = settings.model_copy(update={"signal_port": svc_port, "redis_url": redis.url or settings.redis_url,
                                               "jwt_secret_file": secret_file})
    service_box: dict = {}
    svc_tables = {"quotes": quotes, "bars": pipe.bars, "factors": pipe.factors, "signals": signals}
    svc_task = asyncio.create_task(serve(svc_settings, svc_tables, stop, clock=clock, use_redis=redis.url is not None,
                                         ready=lambda s: service_box.setdefault("svc", s)))
    for _ in range(100):
        if "svc" in service_box or svc_task.done():
            break
        await asyncio.sleep(0.05)
    if svc_task.done() and svc_task.exception():
        raise svc_task.exception()
    service = service_box["svc"]
    rep.service_url = service.url
    demo_token = build_issuer(svc_settings).issue("demo", topics=["factors:*", "signals:*", "bars", "quotes"],
                                                  symbols=["*"], now_ns=clock.now_ns(), ttl_s=3600)
    token_file = settings.path("streams", "demo", "demo.token")
    token_file.write_text(demo_token)
    os.chmod(token_file, 0o600)
    rep.subscribe_example = (f"PP_TOKEN=$(cat {token_file}) " + subscribe_example(service.url, "factors:*", symbols[0])).split("  #")[0]
    console.print(f"[bold]5/6 signal service[/]: {service.url} (Redis "
                  f"{'on ' + redis.url + ', AUTH from ' + str(pw_file) if redis.url else 'off'})")
    console.print(f"    subscribe: {rep.subscribe_example}   (token in {token_file})")

    # 6. Dash research app
    rep.dash_url, dash_server = _start_dash(svc_settings, configured_port(settings, "dash_port") or _free_port(), console)
    live_feed = None
    if rep.dash_url:
        from pyplatform.dashboard.live_feed import LiveFeed

        # the Live and Market pages follow the signal service like any other subscriber
        live_feed = LiveFeed(dash_server.app.pyplatform.live, service.url, demo_token, clock=clock).start()
        console.print(f"[bold]6/6 dash[/]: research app on {rep.dash_url} (live pages fed by the signal service)")

    feed_task = asyncio.create_task(run_feed(settings, tables, symbols, stop, url=url, token=token, clock=clock,
                                             rest_url=sim.rest_url if sim is not None else None))

    t0 = time.monotonic()
    last_draw = 0.0
    live = Live(_render(rep, 0, seconds), console=console, refresh_per_second=2) if live_table else None
    if live:
        live.start()
    try:
        while keep_running or time.monotonic() - t0 < seconds:
            if feed_task.done():
                exc = feed_task.exception()
                if exc:
                    raise exc
                break
            _poll_registry(watcher, rep, console)  # between engine steps: the engine is not thread-safe
            pipe.on_clock(clock.now_ns())  # closes windows of quiet symbols
            await asyncio.to_thread(pipe.run_until_idle)
            if exchange is not None:
                from pyplatform.execution.node import _latest_quotes

                qb = quote_sub.poll()
                if qb is not None and qb.num_rows:
                    for q in _latest_quotes(qb):
                        exchange.on_quote(q)
            report = node.step()
            rep.orders += len(report.orders)
            now = time.monotonic()
            if now - last_draw >= 1.0:
                last_draw = now
                _update(rep, pipe, signals, node, service)
                if dash_server is not None:
                    from pyplatform.dashboard.node_bridge import push_node_status

                    st = node.status()
                    push_node_status(dash_server.app.pyplatform.live, st, clock.now_ns())
                    if st.get("session"):  # the FIX session's state on the Live page, next to risk
                        buf = dash_server.app.pyplatform.live
                        buf.on_risk({**buf.risk(), "fix_session": st["session"]})
                if live:
                    live.update(_render(rep, now - t0, seconds))
                else:
                    console.print(f"t={now - t0:4.0f}s ticks={rep.ticks} bars={rep.bars} factors={rep.factor_rows} "
                                  f"signals={rep.signals} orders={rep.orders} pnl={rep.pnl:+.2f}")
            await asyncio.sleep(0.1)
    finally:
        if live:
            live.stop()
        stop.set()
        with suppress(Exception):
            await asyncio.wait_for(asyncio.gather(feed_task, svc_task, return_exceptions=True), 10)
        _update(rep, pipe, signals, node, service)
        if sim is not None:
            await sim.stop()
        with suppress(Exception):
            node.close()
        if exchange is not None:
            with suppress(Exception):
                exchange.stop()
        pipe.close()
        redis.stop()
        if live_feed is not None:
            with suppress(Exception):
                live_feed.stop()
        if dash_server is not None:
            dash_server.shutdown()


def _poll_registry(watcher, rep: DemoReport, console: Console) -> None:
    """Apply published/retired factors to the live engine; report what changed."""
    try:
        actions = watcher.poll()
    except Exception as exc:  # an unreadable registry must not stop the live path
        log.error("factor registry poll failed: %s", exc)
        return
    for action, name in actions:
        if action == "add":
            rep.published.append(name)
        console.print(f"[bold]registry[/]: {action} factor {name} "
                      + ("(subscribe to factors:" + name + ")" if action == "add" else ""))
    for msg in watcher.errors:
        console.print(f"[red]registry[/]: {msg}")
    watcher.errors.clear()


def _update(rep: DemoReport, pipe, signals, node, service) -> None:
    rep.ticks = pipe.ticks.next_offset
    rep.bars = pipe.bars.next_offset
    rep.factor_rows = pipe.factors.next_offset if pipe.factors is not None else 0
    rep.signals = signals.next_offset
    if rep.drafted.get("config"):
        # count the draft's signals incrementally: only rows appended since the last look
        start = max(rep.drafted.get("read_offset", 0), signals.oldest_offset)
        if rep.signals > start:
            sig = signals.read(start).column("strategy").to_numpy(zero_copy_only=False)
            rep.drafted["signals"] = rep.drafted.get("signals", 0) + int((sig == rep.drafted["config"]["name"]).sum())
            rep.drafted["read_offset"] = rep.signals
        # and the rows on which its rules were evaluated live (warmed-up entry condition)
        col = f"{rep.drafted['config']['name']}_entry_long"
        f_start = max(rep.drafted.get("factor_offset", 0), pipe.factors.oldest_offset) if pipe.factors is not None else 0
        if pipe.factors is not None and rep.factor_rows > f_start:
            tb = pipe.factors.read(f_start)
            if col in tb.column_names:
                import numpy as np

                syms = tb.column("symbol").to_numpy(zero_copy_only=False).astype(str)
                vals = tb.column(col).to_numpy(zero_copy_only=False).astype(float)
                mine = np.isin(syms, rep.drafted["config"].get("symbols") or [])
                rep.drafted["evaluated_rows"] = rep.drafted.get("evaluated_rows", 0) + int((mine & np.isfinite(vals)).sum())
            rep.drafted["factor_offset"] = rep.factor_rows
    if rep.factor_rows:
        tail = pipe.factors.read(max(pipe.factors.oldest_offset, rep.factor_rows - 200))
        df = tail.to_pandas().drop(columns=["offset"], errors="ignore").groupby("symbol").last().reset_index()
        rep.latest_factors = df[["symbol"] + [c for c in df.columns if c in DEMO_FACTORS]].to_dict("records")
    st = node.status()
    rep.positions = [{"symbol": p.get("symbol"), "quantity": float(p.get("quantity", 0))} for p in st.get("positions", [])]
    rep.pnl = float(st.get("realised", 0.0)) + float(st.get("unrealised", 0.0))
    rep.equity = float(st.get("equity", 0.0))
    rep.risk = {"kill": st.get("kill_switch", "OFF"), "loss_hit": bool(st.get("daily_loss_hit")),
                "refused": st.get("refused", 0), "decisions": st.get("decisions", 0)}
    rep.health = service.health()


def configure_logging(settings: Settings) -> None:
    """Logging for the command-line demo (a library call must not reconfigure the caller's)."""
    logging.basicConfig(level=getattr(logging, settings.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def run_demo(seconds: float = 20.0, n_symbols: int = 20, keep_running: bool = False,
             settings: Settings | None = None, live_table: bool | None = None, broker: str = "paper",
             venue: str | None = None, years: float = DEMO_YEARS) -> DemoReport:
    """Run the platform end to end; returns what it saw (see :class:`DemoReport`).

    Parameters
    ----------
    seconds : float
        How long the live part runs.
    n_symbols : int
        Symbols of a market generated on the first run.
    years : float
        Years of 1-minute history generated on the first run (12 by default; tests pass a
        fraction of a year). Existing history is reused.
    venue : str, optional
        With ``broker="fix"``: a quickfix session file or ``host:port`` of an outside FIX
        venue instead of the built-in exchange simulator.
    """
    settings = settings or get_settings()
    console = Console()
    if live_table is None:
        live_table = console.is_terminal
    symbols = _ensure_history(settings, n_symbols, console, years)
    rep = DemoReport()
    rep.history = {"symbols": len(symbols), "years": round(_history_span(settings)[1], 2)}
    rep.drafted_backtest = backtest_draft(settings, symbols, console)
    try:
        if broker not in ("paper", "fix"):
            raise ValueError(f"broker must be 'paper' or 'fix', got {broker!r}")
        if venue is not None and broker != "fix":
            raise ValueError("venue needs broker='fix'")
        asyncio.run(_main(settings, symbols, seconds, keep_running, console, rep, live_table, broker, venue))
    except KeyboardInterrupt:
        console.print("stopped by Ctrl-C")
    console.print(_render(rep, seconds, seconds))
    console.print(f"subscribe from another terminal: {rep.subscribe_example}")
    return rep
