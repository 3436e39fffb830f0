"""``pyplatform dash``: run the Dash research app, or benchmark its chart callback."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=False, add_completion=False, invoke_without_command=True,
                  help="Run the Dash research app (market, factors, backtests, live).")


@app.callback()
def run(
    ctx: typer.Context,
    host: str = typer.Option(None, help="Interface to bind (default: settings.dash_host)."),
    port: int = typer.Option(None, help="Port (default: settings.dash_port)."),
    data_dir: Path = typer.Option(None, help="Data directory (default: settings.data_dir)."),
    signal_url: str = typer.Option(None, help="Signal-service URL to follow live (ws://host:port)."),
    token_file: Path = typer.Option(None, help="File holding the signal-service token (never pass tokens inline)."),
    debug: bool = typer.Option(False, help="Dash debug mode (reloader, dev tools)."),
) -> None:
    """Serve the research app until Ctrl-C."""
    if ctx.invoked_subcommand is not None:
        return
    from pyplatform.config import get_settings
    from pyplatform.dashboard import create_app

    settings = get_settings(data_dir=data_dir) if data_dir else get_settings()
    dash_app = create_app(settings)
    feed = None
    if signal_url:
        if token_file is None:
            raise typer.BadParameter("--signal-url needs --token-file (the token is a secret)", param_hint="--token-file")
        from pyplatform.clock import LiveClock
        from pyplatform.dashboard.live_feed import LiveFeed

        token = token_file.read_text().strip()
        feed = LiveFeed(dash_app.pyplatform.live, signal_url, token, clock=LiveClock()).start()
    for page, why in dash_app.pyplatform.unavailable.items():
        typer.echo(f"note: {page} page: {why}", err=True)
    host = host or settings.dash_host
    port = port or settings.dash_port
    typer.echo(f"pyplatform research app on http://{host}:{port}/")
    try:
        dash_app.run(host=host, port=port, debug=debug)
    finally:
        if feed is not None:
            feed.stop()


@app.command()
def bench(
    data_dir: Path = typer.Option(None, help="Data dir with a generated market (default: generate 1 symbol)."),
    symbol: str = typer.Option(None, help="Symbol to chart."),
    repeats: int = typer.Option(5, help="Runs per scenario (median reported)."),
    years: int = typer.Option(10, help="Years of 1-minute bars to generate when no data dir is given."),
) -> None:
    """K-line callback latency on years of 1-minute bars, beside a naive pandas resample."""
    from pyplatform.bench.dashboard import print_table, run_bench

    print_table(run_bench(data_dir, symbol, repeats, years))
