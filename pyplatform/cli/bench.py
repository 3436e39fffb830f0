"""``pyplatform bench``: benchmarks of the hot paths, each beside the obvious alternative.

``bench history`` lives here; other domains add their commands through a ``register(app)``
function in the modules listed in :data:`BENCH_MODULES`. Every listed module must exist and
define ``register``: a missing one is an error that names it, so a renamed or deleted bench
module can never silently drop its commands.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="Benchmarks of the hot paths, each beside the obvious alternative, as ratios of medians.",
                  no_args_is_help=True)

#: Modules whose ``register(app)`` adds bench commands (add yours with a one-line edit).
BENCH_MODULES: list[str] = [
    "pyplatform.factors.bench",
    "pyplatform.feeds.bench",
    "pyplatform.stream.bench",
    "pyplatform.signals.bench",
    "pyplatform.execution.bench",
    "pyplatform.backtest.bench",
    "pyplatform.models.bench",
    "pyplatform.models.gpu_bench",
    "pyplatform.research.bench",
    "pyplatform.dashboard.bench",
    "pyplatform.dolphindb.bench",
]


@app.command("history")
def history(
    symbols: int = typer.Option(50, help="Symbols in the generated market (stocks, forex, crypto)."),
    years: float = typer.Option(12.0, help="Years of 1-minute bars, ending at --end."),
    days: int = typer.Option(0, help="Use this many days instead of --years (e.g. 1 for 5,000 symbols x 1 day)."),
    end: str = typer.Option("2026-01-01", help="End session date (exclusive)."),
    repeat: int = typer.Option(5, help="Timed runs per query; medians are printed."),
    data_dir: str = typer.Option(None, help="Write here and keep it (default: a temporary directory)."),
    seed: int = typer.Option(0, help="Seed of the generated market."),
    progress: bool = typer.Option(True, help="Show a progress bar while writing."),
    quick: bool = typer.Option(False, "--quick", help="A small market and one timed run: checks the command works "
                                                      "(rows equal on every side), not for figures."),
) -> None:
    """Write a generated market, then time store queries beside plain pandas on the same files."""
    import pandas as pd

    from pyplatform.store.bench import format_result, run_history_bench

    end_t = pd.Timestamp(end)
    start_t = end_t - (pd.Timedelta(days=days) if days else pd.DateOffset(months=int(round(years * 12))))
    # a one-day run must contain a weekday session for the stock markets
    if days:
        while pd.Timestamp(start_t).dayofweek >= 5:
            start_t -= pd.Timedelta("1D")
    result = run_history_bench(n_symbols=symbols, start=str(pd.Timestamp(start_t).date()), end=str(end_t.date()),
                               repeat=repeat, data_dir=data_dir, seed=seed, keep=data_dir is not None,
                               progress=progress, quick=quick)
    typer.echo(format_result(result))


def _register_modules() -> None:
    for name in BENCH_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:
            raise ImportError(f"bench module {name!r} listed in pyplatform.cli.bench.BENCH_MODULES "
                              f"cannot be imported: {exc}") from exc
        register = getattr(mod, "register", None)
        if not callable(register):
            raise ImportError(f"bench module {name!r} has no register(app) function")
        register(app)


_register_modules()
