"""The ``pyplatform`` command line.

Each domain contributes a Typer sub-app from its own module ``pyplatform.cli.<name>``
exposing ``app``; they are listed in ``_SUBCOMMANDS`` so one module's import error names
itself instead of breaking the whole CLI.
"""

from __future__ import annotations

import importlib
import json

import typer

from pyplatform.config import get_settings, masked

app = typer.Typer(
    name="pyplatform",
    help="Time-series analytics platform for quantitative trading: history, streaming "
    "factors, signals, risk, execution, backtests and research views.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

# (module under pyplatform.cli, command name, one-line help)
_SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("data", "data", "Generate a synthetic market or import your own files into the history store."),
    ("bench", "bench", "Benchmarks of the hot paths, each beside the obvious alternative."),
    ("factors", "factors", "Browse, compute and publish factors."),
    ("simulate", "simulate", "Run the local exchange simulator (iTick protocol over WebSocket)."),
    ("replay", "replay", "Replay stored ticks or bars into the tick table."),
    ("backtest", "backtest", "Event-driven and vectorised backtests."),
    ("serve", "serve", "Run the live signal service (WebSocket + Redis)."),
    ("tokens", "tokens", "Issue and revoke signal-service tokens."),
    ("dash", "dash", "Run the Dash research app."),
    ("dolphindb", "dolphindb", "Deploy to / undeploy from a DolphinDB server."),
    ("models", "models", "Train, export and serve model factors."),
    ("trade", "trade", "Strategies, risk and order routing (paper or FIX)."),
    ("audit", "audit", "Verify and query the hash-chained audit log."),
]


def _register() -> None:
    for module, name, help_text in _SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"pyplatform.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"pyplatform.cli.{module}":
                continue  # that domain is not part of this build
            raise
        sub = getattr(mod, "app", None)
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=name, help=help_text)
        elif callable(sub):
            app.command(name=name, help=help_text)(sub)


@app.command()
def config(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Print the effective configuration (environment + optional file), secrets masked."""
    values = masked(get_settings())
    if as_json:
        typer.echo(json.dumps(values, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="pyplatform configuration (PYPLATFORM_* environment, secrets masked)")
    table.add_column("setting")
    table.add_column("value")
    for k, v in values.items():
        table.add_row(k, str(v))
    Console().print(table)


@app.command()
def demo(
    seconds: float = typer.Option(45.0, help="How long the live part runs (factors warm up in ~20 s)."),
    symbols: int = typer.Option(20, help="Symbols in the simulated market."),
    keep_running: bool = typer.Option(False, "--keep-running", help="Keep services up until Ctrl-C."),
    broker: str = typer.Option("paper", help="paper, or fix: orders go over a real FIX 4.4 session (quickfix) "
                               "to an exchange simulator on loopback."),
    venue: str = typer.Option(None, help="With --broker fix: an outside FIX venue (quickfix session file or "
                              "HOST:PORT) instead of the simulator."),
    years: float = typer.Option(12.0, min=0.1, help="Years of 1-minute history the first run generates (reused "
                                "afterwards; 12 years of 20 symbols take ~3 minutes and ~1 GB)."),
) -> None:
    """Run the whole platform end to end on the embedded backend with a simulated market."""
    from pyplatform.demo import configure_logging, run_demo

    configure_logging(get_settings())
    if broker not in ("paper", "fix"):
        raise typer.BadParameter(f"broker must be 'paper' or 'fix', got {broker!r}", param_hint="--broker")
    if venue is not None and broker != "fix":
        raise typer.BadParameter("--venue needs --broker fix", param_hint="--venue")
    run_demo(seconds=seconds, n_symbols=symbols, keep_running=keep_running, broker=broker, venue=venue,
             years=years)


_register()


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
