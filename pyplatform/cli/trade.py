"""``pyplatform trade``: run strategies into the paper or FIX broker, inspect, kill."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

app = typer.Typer(help="Strategies, risk and order routing (paper or FIX).", no_args_is_help=True)


def _print_status(status: dict, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title=title)
    for c in ("symbol", "quantity", "avg_price", "realised", "unrealised"):
        t.add_column(c, justify="right" if c != "symbol" else "left")
    for p in status["positions"]:
        t.add_row(p["symbol"], p["quantity"], p["avg_price"], p["realised"], p["unrealised"])
    con.print(t)
    con.print(f"equity {status['equity']}  realised {status['realised']}  unrealised {status['unrealised']}  "
              f"open orders {status['open_orders']}")
    con.print(f"risk: kill switch {status['kill_switch']} {status['kill_reason']}  daily loss limit hit: "
              f"{status['daily_loss_hit']}  decisions {status['decisions']} (refused {status['refused']}: "
              f"{status['refused_by_rule']})")


@app.command()
def run(
    broker: str = typer.Option("paper", help="paper, or fix (the exchange simulator on loopback, or --venue)."),
    venue: str = typer.Option(None, help="With --broker fix: an outside venue, as a quickfix session file or "
                                         "HOST:PORT; no simulator is started."),
    sender_comp_id: str = typer.Option(None, help="SenderCompID (overrides the session file; default PYPLATFORM)."),
    target_comp_id: str = typer.Option(None, help="TargetCompID (overrides the session file; default SIMEX)."),
    reset_on_logon: bool = typer.Option(None, "--reset-on-logon/--no-reset-on-logon",
                                        help="Start sequence numbers at 1 on every logon (match the venue)."),
    on_sequence_reset: str = typer.Option("report", help="When the venue resets its sequence numbers: report "
                                                         "(refuse the session, visibly) or follow."),
    on_session_down: str = typer.Option("refuse", help="Orders while the session is down: refuse or queue."),
    symbols: int = typer.Option(5, help="Symbols in the generated market."),
    days: int = typer.Option(1, help="Trading days of 1-minute bars to run through."),
    start: str = typer.Option("2024-01-02", help="First session date."),
    strategy: list[str] = typer.Option(["ma_cross"], help="Strategy kind(s): ma_cross, zscore, momentum."),
    capital: float = typer.Option(1_000_000, help="Starting equity of the account."),
    journal: Path = typer.Option(None, help="Order journal (default: <data_dir>/trading/main/orders.journal)."),
    seed: int = typer.Option(0, help="Seed of the generated market."),
    minutes: int = typer.Option(0, help="Stop after this many minutes (0: all)."),
) -> None:
    """Replay a generated market through factors -> strategies -> risk -> orders -> broker."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    from tqdm import tqdm

    from pyplatform.clock import SimClock
    from pyplatform.config import get_settings
    from pyplatform.data import generate_bars
    from pyplatform.domain.schemas import QUOTES, SIGNALS, factor_schema
    from pyplatform.execution.node import TradingNode
    from pyplatform.strategies import build
    from pyplatform.strategies.run import factor_rows
    from pyplatform.stream import StreamTable

    if broker not in ("paper", "fix"):
        raise typer.BadParameter(f"broker must be 'paper' or 'fix', got {broker!r}", param_hint="--broker")
    if venue is not None and broker != "fix":
        raise typer.BadParameter("--venue needs --broker fix", param_hint="--venue")
    settings = get_settings()
    if venue is None and broker == "fix":
        venue = settings.fix_venue  # PYPLATFORM_FIX_VENUE
    session_cfg = None
    if venue is not None:
        from pyplatform.execution.fix.session import parse_venue

        overrides = {k: v for k, v in (("sender_comp_id", sender_comp_id), ("target_comp_id", target_comp_id),
                                       ("reset_on_logon", reset_on_logon)) if v is not None}
        try:
            session_cfg = parse_venue(venue, settings.path("trading", "main", "fix"), **overrides)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--venue") from None
    strats = [build({"kind": k}) for k in strategy]
    end = (pd.Timestamp(start) + pd.tseries.offsets.BDay(days)).date()
    bars = generate_bars(symbols, start, str(end), seed=seed)
    rows = factor_rows(strats, bars)
    names = [c for c in rows.columns if c not in ("ts", "symbol")]
    clock = SimClock(int(rows["ts"].iloc[0]))
    tables = {"factors": StreamTable("factors", factor_schema(names), clock=clock), "quotes": StreamTable("quotes", QUOTES, clock=clock),
              "signals": StreamTable("signals", SIGNALS, clock=clock)}
    exchange = None
    kwargs = {}
    if broker == "fix" and session_cfg is not None:
        kwargs.update(fix_session=session_cfg, on_sequence_reset=on_sequence_reset, on_session_down=on_session_down)
    elif broker == "fix":
        import tempfile

        from pyplatform.execution.fix.exchange import FixExchange

        exchange = FixExchange(Path(tempfile.mkdtemp(prefix="pyplatform-simex-")), clock=clock).start()
        kwargs["fix_port"] = exchange.port
    journal = journal or settings.path("trading", "main", "orders.journal")
    try:
        node = TradingNode(settings, tables, clock, broker, strategies=strats, capital=capital, journal=journal,
                           **kwargs)
    except TimeoutError as exc:  # the venue never logged us on: say why, in its words
        if exchange is not None:
            exchange.stop()
        raise typer.BadParameter(str(exc), param_hint="--venue") from None
    b = bars.reset_index()
    b["ts"] = b["datetime"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    if minutes:
        b = b[b["ts"].isin(np.sort(b["ts"].unique())[:minutes])]
    try:
        for t, grp in tqdm(b.groupby("ts", sort=True), desc="minutes", unit="min"):
            clock.set(int(t))
            c = grp["close"].to_numpy()
            q = pa.table({"ts": grp["ts"].to_numpy(), "symbol": grp["symbol"].astype(str).to_numpy(), "last": c,
                          "open": grp["open"].to_numpy(), "high": grp["high"].to_numpy(), "low": grp["low"].to_numpy(),
                          "volume": grp["volume"].to_numpy(), "turnover": (grp["volume"] * grp["vwap"]).to_numpy(),
                          "bid": c * 0.9999, "ask": c * 1.0001, "bid_size": grp["volume"].to_numpy(),
                          "ask_size": grp["volume"].to_numpy()}, schema=QUOTES)
            tables["quotes"].append(q)
            if exchange is not None:
                from pyplatform.execution.node import _latest_quotes

                for quote in _latest_quotes(q):
                    exchange.on_quote(quote)
            for s, v in zip(grp["symbol"], grp["volume"]):
                node.minute_volume[str(s)] = float(v)
            r = rows[rows["ts"] == t]
            if len(r):
                tables["factors"].append(pa.Table.from_pandas(r, preserve_index=False).cast(tables["factors"].schema))
            node.step()
            if broker == "fix":
                time.sleep(0.001)  # let FIX reports arrive
        if broker == "fix":
            time.sleep(0.5)
            node.step()
        _print_status(node.status(), f"account main after {len(b['ts'].unique())} minutes ({broker})")
        sess = node.status().get("session")
        if sess:
            typer.echo(f"FIX session {sess['session']} at {sess['venue']}: {sess['state']}"
                       + (f" ({sess['down_reason']})" if sess["down_reason"] else "")
                       + f", logons {sess['logons']}, errors {len(sess['errors'])}")
        typer.echo(f"signals: {tables['signals'].next_offset}  orders: {len(node.oms.orders)}  journal: {journal}")
    finally:
        node.close()
        if exchange is not None:
            exchange.stop()


@app.command()
def status(
    journal: Path = typer.Option(None, help="Order journal (default: <data_dir>/trading/main/orders.journal)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Positions, realised P&L and open orders rebuilt from the order journal."""
    from pyplatform.config import get_settings
    from pyplatform.execution.oms import OrderManager
    from pyplatform.execution.positions import to_decimal

    journal = journal or get_settings().path("trading", "main", "orders.journal")
    if not Path(journal).exists():
        raise typer.BadParameter(f"no order journal at {journal}", param_hint="--journal")
    oms = OrderManager.recover(journal, reopen=False)
    out = {
        "positions": [{"account": p.account, "symbol": p.symbol, "quantity": str(p.quantity),
                       "avg_price": str(None if p.avg_price is None else to_decimal(p.avg_price, 4)),
                       "realised": str(to_decimal(p.realised, 2))} for p in oms.positions.positions()],
        "open_orders": [{"id": o.client_order_id, "symbol": o.symbol, "side": o.side.name, "qty": str(o.quantity),
                         "filled": str(o.cum_qty), "status": o.status.value} for o in oms.open_orders()],
        "orders": len(oms.orders),
        # what the venue/session said (logons refused, resets, unreadable reports), newest last
        "session_notices": [{"ts": n.ts, "session": n.session, "kind": n.kind, "text": n.text}
                            for n in oms.notices[-20:]],
        "late_fills": {o.client_order_id: str(o.late_fill_qty) for o in oms.orders.values() if o.late_fill_qty},
        "stale_rejects": len(oms.stale),
    }
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"positions from {journal}")
    for c in ("account", "symbol", "quantity", "avg_price", "realised"):
        t.add_column(c)
    for p in out["positions"]:
        t.add_row(*(p[c] for c in ("account", "symbol", "quantity", "avg_price", "realised")))
    Console().print(t)
    typer.echo(f"{out['orders']} orders, {len(out['open_orders'])} open")
    for o in out["open_orders"]:
        typer.echo(f"  open {o['id']} {o['side']} {o['qty']} {o['symbol']} filled {o['filled']} ({o['status']})")
    for cl, q in out["late_fills"].items():
        typer.echo(f"  late fill: {cl} filled {q} after its cancel")
    for n in out["session_notices"]:
        typer.echo(f"  session {n['session']} {n['kind']}: {n['text']}")


@app.command()
def kill(
    mode: str = typer.Argument("halt", help="halt (no orders), reduce_only (closing orders only) or off."),
    reason: str = typer.Option("operator command", help="Recorded with every refusal."),
    account: str = typer.Option("main", help="Account whose node should pick it up."),
) -> None:
    """Throw or reset the kill switch of a running node (it reads the file on its next step)."""
    from pyplatform.config import get_settings

    if mode not in ("halt", "reduce_only", "off"):
        raise typer.BadParameter(f"mode must be halt, reduce_only or off, got {mode!r}", param_hint="MODE")
    path = get_settings().path("trading", account, "kill.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"mode": mode, "reason": reason, "at": time.time_ns()}))
    typer.echo(f"kill switch {mode!r} written to {path}")


@app.command()
def transitions() -> None:
    """Print the order lifecycle transition table (Markdown)."""
    from pyplatform.execution.states import render_markdown

    typer.echo(render_markdown())
