"""``pyplatform backtest``: event-driven runs, vectorised sweeps, and saved runs."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True,
                  help="Backtest strategies on history with the live code (run), sweep parameter grids "
                       "(sweep), and browse saved runs (list, show).")


def _settings(data_dir: Path | None):
    from pyplatform.config import get_settings

    return get_settings(data_dir=data_dir) if data_dir is not None else get_settings()


def _params(items: list[str] | None) -> dict[str, float]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--param {item!r}: expected NAME=VALUE, e.g. fast=10")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise typer.BadParameter(f"--param {item!r}: value {value!r} is not a number") from None
    return out


def _ints(text: str, what: str) -> list[int]:
    try:
        vals = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise typer.BadParameter(f"{what} {text!r}: expected comma-separated integers, e.g. 5,10,20") from None
    if not vals:
        raise typer.BadParameter(f"{what}: no window given")
    return vals


def _print_metrics(metrics: dict, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in metrics.items():
        t.add_row(k, f"{v:,.6g}" if isinstance(v, float) else str(v))
    Console(width=120).print(t)


@app.command("run")
def run(
    strategy: str = typer.Option("ma_cross", "--strategy", "-k", help="Strategy kind: ma_cross, zscore, momentum."),
    param: list[str] = typer.Option(None, "--param", "-p", help="Strategy parameter NAME=VALUE (repeat)."),
    name: str = typer.Option("", help="Strategy instance name (default: the kind)."),
    symbols: list[str] = typer.Option(None, "--symbol", "-s", help="Symbols (repeat; default: all)."),
    start: str = typer.Option(None, help="First timestamp (inclusive)."),
    end: str = typer.Option(None, help="Last timestamp (exclusive)."),
    freq: str = typer.Option("1d", help="Bars to replay: 1d or 1min."),
    capital: float = typer.Option(1_000_000.0, help="Starting equity."),
    latency_ms: float = typer.Option(75.0, help="Signal-to-market latency in milliseconds."),
    slippage: str = typer.Option("liquidity", help="Slippage model: none, fixed, liquidity, sqrt."),
    slippage_bps: float = typer.Option(1.0, help="Slippage in basis points (fixed and sqrt)."),
    participation: float = typer.Option(0.10, help="Largest share of a bar's volume to take (0: unlimited)."),
    vwap: bool = typer.Option(True, help="Slice large orders on a VWAP schedule."),
    sizing: str = typer.Option("risk", help="risk (the risk manager's sizing) or all_in."),
    long_only: bool = typer.Option(False, help="Short signals close longs instead of opening shorts."),
    max_gross: float = typer.Option(1.0, help="Gross exposure limit, x equity (0: no limit)."),
    frictionless: bool = typer.Option(False, help="Switch every friction off (the vectorised path's assumptions)."),
    config: Path = typer.Option(None, help="JSON file with a full BacktestConfig (options above override it)."),
    save: bool = typer.Option(True, help="Save the run under data_dir/backtests/<run_id>/."),
    report: Path = typer.Option(None, help="Write the Plotly report to this .html file."),
    data_dir: Path = typer.Option(None, help="Data directory (default: PYPLATFORM_DATA_DIR)."),
    checkpoint: Path = typer.Option(None, help="Save the run's state here after each window (deleted at the end)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its checkpoint "
                                "(--checkpoint, or the default one under data_dir/backtests/checkpoints/)."),
    checkpoint_every: int = typer.Option(1, min=1, help="With --checkpoint/--resume: save after every N-th "
                                         "window (fewer saves, more replayed after a crash)."),
) -> None:
    """Replay history through the live factor engine, strategy, risk manager, order manager and
    paper broker under a simulated clock, with realistic costs; print the metrics."""
    from pydantic import ValidationError
    from tqdm import tqdm

    from pyplatform.backtest import BacktestConfig, SlippageConfig, run_backtest
    from pyplatform.backtest.checkpoint import CheckpointWarning

    try:
        base = json.loads(config.read_text()) if config is not None else {}
        over = dict(freq=freq, capital=capital, latency_ms=latency_ms,
                    slippage=SlippageConfig(kind=slippage, bps=slippage_bps),
                    participation=participation or None, vwap_slicing=vwap, sizing=sizing, long_only=long_only,
                    max_gross=max_gross or None)
        cfg = BacktestConfig.frictionless(freq=freq, capital=capital) if frictionless else \
            BacktestConfig(**{**base, **over})
    except (ValidationError, ValueError, OSError) as exc:
        typer.echo(f"bad backtest settings: {exc}", err=True)
        raise typer.Exit(2) from None
    settings = _settings(data_dir)
    strat = {"kind": strategy, "name": name, "params": _params(param)}
    with tqdm(desc="signals + execution", unit="bar", unit_scale=True) as bar:
        # run_backtest counts every bar twice (its signals phase, then its execution phase); the
        # user is shown bars, so a 105M-bar run reads 105M and the rate is bars per second
        def total(n: int) -> None:  # known once the bars are read: gives the bar its ETA
            bar.total = n / 2
            bar.refresh()

        def advance(k: int) -> None:
            bar.update(k / 2)

        def say(message, category, *args, **kwargs) -> None:  # a warning as one line, not a traceback
            bar.write(f"warning: {message}", file=sys.stderr)

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", CheckpointWarning)
                warnings.showwarning = say
                result = run_backtest(strat, symbols=list(symbols) if symbols else None, start=start, end=end,
                                      settings=settings, backtest=cfg, save=save, progress=advance,
                                      on_start=total, checkpoint=checkpoint if checkpoint is not None else (
                                          True if resume else None), resume=resume,
                                      checkpoint_every=checkpoint_every)
        except KeyboardInterrupt:
            bar.close()
            if checkpoint is not None or resume:
                typer.echo("interrupted: the last finished window is checkpointed; run the same command "
                           "with --resume to continue", err=True)
            else:
                typer.echo("interrupted (no checkpoint: pass --resume or --checkpoint PATH to make a long "
                           "run resumable)", err=True)
            raise typer.Exit(130) from None
        except (ValueError, KeyError) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
    _print_metrics(result.metrics, f"backtest {result.run_id}")
    if save:
        typer.echo(f"saved under {settings.path('backtests', result.run_id)}")
    if report is not None:
        result.report().write_html(str(report), include_plotlyjs="cdn")
        typer.echo(f"report written to {report}")


@app.command("sweep")
def sweep(
    fast: str = typer.Option("5,10,20", help="Fast windows, comma-separated."),
    slow: str = typer.Option("50,100,200", help="Slow windows, comma-separated."),
    symbols: list[str] = typer.Option(None, "--symbol", "-s", help="Symbols (repeat; default: all)."),
    start: str = typer.Option(None, help="First timestamp (inclusive)."),
    end: str = typer.Option(None, help="Last timestamp (exclusive)."),
    freq: str = typer.Option("1d", help="Bars: 1d or 1min."),
    top: int = typer.Option(10, help="Rows to print, best Sharpe first."),
    output: Path = typer.Option(None, "--output", "-o", help="Write every row to .parquet or .csv."),
    data_dir: Path = typer.Option(None, help="Data directory (default: PYPLATFORM_DATA_DIR)."),
) -> None:
    """Vectorised dual moving-average sweep over every (fast < slow) pair, per symbol (no frictions)."""
    import pandas as pd
    from tqdm import tqdm

    from pyplatform.backtest.vectorized import sweep_dual_ma
    from pyplatform.backends import open_store

    fw, sw = _ints(fast, "--fast"), _ints(slow, "--slow")
    if not any(f < s for f in fw for s in sw):
        typer.echo("no (fast, slow) pair with fast < slow", err=True)
        raise typer.Exit(2)
    table = "bars_1m" if freq in ("1min", "1m") else "bars_1d"
    store = open_store(_settings(data_dir))
    syms = list(symbols) if symbols else store.symbols(table)
    parts = []
    for sym in tqdm(syms, desc="symbols", unit="sym"):
        b = store.read(table, symbols=[sym], start=start, end=end, columns=["open", "close"])
        if len(b):
            # each symbol annualised on its own calendar (crypto 365 days, stocks 252 sessions)
            parts.append(sweep_dual_ma(b, fw, sw, freq="1d" if table == "bars_1d" else "1min"))
    if not parts:
        typer.echo(f"no {table} rows for {syms[:5]} in [{start}, {end})", err=True)
        raise typer.Exit(1)
    res = pd.concat(parts)
    if output is not None:
        res.reset_index().to_parquet(output) if output.suffix == ".parquet" else res.to_csv(output)
        typer.echo(f"{len(res)} rows written to {output}")
    typer.echo(res.sort_values("sharpe", ascending=False).head(top).to_string())


@app.command("list")
def list_(data_dir: Path = typer.Option(None, help="Data directory (default: PYPLATFORM_DATA_DIR)."),
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Saved runs, newest first."""
    from pyplatform.backtest import list_runs

    runs = list_runs(_settings(data_dir))
    if as_json:
        typer.echo(runs.to_json(orient="records"))
    elif not len(runs):
        typer.echo("no saved backtest runs")
    else:
        typer.echo(runs.to_string(index=False))


@app.command("show")
def show(run_id: str = typer.Argument(..., help="A run id from `backtest list`."),
         report: Path = typer.Option(None, help="Write the Plotly report to this .html file."),
         data_dir: Path = typer.Option(None, help="Data directory (default: PYPLATFORM_DATA_DIR).")) -> None:
    """A saved run: its settings, metrics and last trades."""
    from pyplatform.backtest import load_run

    settings = _settings(data_dir)
    try:
        r = load_run(run_id, settings)
    except KeyError as exc:
        typer.echo(exc.args[0], err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps({k: r.config[k] for k in ("strategies", "symbols", "start", "end")}, indent=2))
    _print_metrics(r.metrics, f"backtest {run_id}")
    if len(r.round_trips):
        typer.echo(r.round_trips.tail(10).to_string(index=False))
    if report is not None:
        from pyplatform.backends import open_store

        table = "bars_1d" if r.config["backtest"]["freq"] == "1d" else "bars_1m"
        bars = open_store(settings).read(table, symbols=[r.symbol], start=r.config["start"], as_arrow=True)
        r.report(bars=bars.to_pandas().tail(3000).reset_index(drop=True) if bars.num_rows else None) \
            .write_html(str(report), include_plotlyjs="cdn")
        typer.echo(f"report written to {report}")
