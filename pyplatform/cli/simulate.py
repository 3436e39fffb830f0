"""``pyplatform simulate``: run the local exchange simulator (iTick protocol + REST K-lines)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Run the local exchange simulator (iTick WebSocket protocol and REST K-lines).",
                  no_args_is_help=False)


@app.callback(invoke_without_command=True)
def simulate(
    host: Optional[str] = typer.Option(None, help="Listen address (default: settings.simulator_host)."),
    port: Optional[int] = typer.Option(None, help="Port (default: settings.simulator_port; 0 = any free)."),
    symbols: int = typer.Option(20, help="Size of the synthetic universe (stocks, forex, crypto)."),
    indices: int = typer.Option(1, help="Extra index symbols."),
    seed: int = typer.Option(0, help="Universe and market seed."),
    rate: float = typer.Option(1000.0, help="Ticks per second over the whole universe."),
    sessions: bool = typer.Option(True, "--sessions/--always-open", help="Respect trading sessions per asset class."),
    frame_batch: int = typer.Option(1, help="Messages per WebSocket frame (1 = iTick framing)."),
    max_subscriptions: int = typer.Option(1000, help="Symbols one connection may subscribe to."),
    token_file: Optional[Path] = typer.Option(None, help="File holding the token clients must send "
                                              "(default: PYPLATFORM_ITICK_TOKEN; unset = any non-empty token)."),
    seconds: float = typer.Option(0.0, help="Stop after this many seconds (0 = until Ctrl-C)."),
    drop_after: Optional[int] = typer.Option(None, help="Fault: drop a connection after N data messages."),
    stall_after: Optional[int] = typer.Option(None, help="Fault: stall a connection after N data messages."),
    stall_seconds: float = typer.Option(5.0, help="Fault: how long a stall lasts."),
    malformed_every: int = typer.Option(0, help="Fault: inject a malformed message every N messages."),
    duplicate_every: int = typer.Option(0, help="Fault: send every N-th message twice."),
    reorder_every: int = typer.Option(0, help="Fault: swap every N-th message with the one before."),
    reject_auth: bool = typer.Option(False, help="Fault: refuse every token."),
) -> None:
    """Serve a simulated market until Ctrl-C; clients connect with the token in the ``token`` header."""
    from pyplatform.config import get_settings
    from pyplatform.feeds.simulator import FaultPlan, SimulatorConfig, start_simulator

    settings = get_settings()
    if token_file is not None:
        token = token_file.read_text().strip()
        if not token:
            raise typer.BadParameter(f"token file {token_file} is empty", param_hint="--token-file")
    else:
        token = settings.itick_token.get_secret_value() if settings.itick_token else None
    faults = FaultPlan(reject_auth=reject_auth, drop_after=drop_after, stall_after=stall_after, stall_s=stall_seconds,
                       malformed_every=malformed_every, duplicate_every=duplicate_every, reorder_every=reorder_every)
    cfg = SimulatorConfig.from_universe(
        symbols, seed=seed, indices=indices, host=host or settings.simulator_host,
        port=settings.simulator_port if port is None else port, token=token, rate=rate, sessions=sessions,
        frame_batch=frame_batch, max_subscriptions=max_subscriptions, faults=faults)

    async def main() -> None:
        sim = await start_simulator(cfg)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
                pass
        typer.echo(f"simulator: {len(cfg.symbols)} symbols at {rate:,.0f} ticks/s")
        typer.echo(f"  WebSocket {sim.ws_url}  (any path; iTick's /stock /forex /indices /crypto work)")
        typer.echo(f"  REST      {sim.rest_url}/stock/kline?region=US&code=...&kType=1")
        typer.echo(f"  symbols   {', '.join(cfg.symbols[:8])}{' ...' if len(cfg.symbols) > 8 else ''}")
        typer.echo("  token     " + ("required (from settings/--token-file)" if token else "any non-empty"))
        try:
            deadline = loop.time() + seconds if seconds > 0 else None
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), 5.0 if deadline is None else max(0.0, min(5.0, deadline - loop.time())))
                except TimeoutError:
                    pass
                live = sum(1 for c in sim.connections if c.authenticated and c.fault is None)
                typer.echo(f"  published {sim.published:,} ticks; {len(sim.connections)} connections ({live} ok)")
                if deadline is not None and loop.time() >= deadline:
                    break
        finally:
            await sim.stop()

    asyncio.run(main())
