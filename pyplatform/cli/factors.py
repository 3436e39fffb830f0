"""``pyplatform factors``: browse the built-in factor library and compute factors over history."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Browse, show and compute factors.")


def _resolve(name_or_expr: str):
    """(display name, canonical expression) for a library name or an expression text."""
    from pyplatform.factors import FactorError, parse
    from pyplatform.factors.library import load_library

    lib = {f.name: f for f in load_library()}
    if name_or_expr in lib:
        return name_or_expr, lib[name_or_expr].factor
    try:
        return None, parse(name_or_expr)
    except FactorError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command("list")
def list_factors(
    tag: str = typer.Option(None, help="Only factors carrying this tag."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the library factors with their tags, input kind and look-back."""
    from pyplatform.factors.library import load_library

    lib = [f for f in load_library() if tag is None or tag in f.tags]
    if as_json:
        typer.echo(json.dumps([{"name": f.name, "expression": f.expression, "description": f.description,
                                "tags": list(f.tags), "input": f.input, "lookback": f.lookback} for f in lib], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"factor library ({len(lib)} factors)")
    for col in ("name", "input", "lookback", "tags", "expression"):
        table.add_column(col)
    for f in lib:
        table.add_row(f.name, f.input, str(f.lookback), ", ".join(f.tags), f.expression)
    Console(width=200).print(table)


@app.command("show")
def show(name: str = typer.Argument(..., help="A library factor name or an expression.")) -> None:
    """Show a factor: expression, canonical form, look-back, and its DolphinDB metacode."""
    from pyplatform.factors import to_dolphindb
    from pyplatform.factors.library import load_library

    lib_name, expr = _resolve(name)
    if lib_name:
        f = {f.name: f for f in load_library()}[lib_name]
        typer.echo(f"name:        {f.name}\ndescription: {f.description}\ntags:        {', '.join(f.tags)}\n"
                   f"input:       {f.input}\nsource:      factors/{f.source}")
    typer.echo(f"expression:  {expr}\nlookback:    {expr.lookback} rows\ncolumns:     {', '.join(sorted(expr.columns()))}")
    typer.echo(f"dolphindb:   {to_dolphindb(expr)}")


@app.command("compute")
def compute(
    factor: str = typer.Argument(..., help="A library factor name or an expression, e.g. 'mavg(close, 20)'."),
    table: str = typer.Option("bars_1d", help="History table to read (bars_1d, bars_1m, ticks)."),
    symbols: list[str] = typer.Option(None, "--symbol", "-s", help="Symbols (repeat; default: all in the table)."),
    start: str = typer.Option(None, help="First timestamp (inclusive)."),
    end: str = typer.Option(None, help="Last timestamp (exclusive)."),
    output: Path = typer.Option(None, "--output", "-o", help="Write values to .parquet or .csv."),
    write: bool = typer.Option(False, "--write", help="Also store values in the history store's factors table."),
    chunk: int = typer.Option(200, help="Symbols read and computed per step."),
    warmup: bool = typer.Option(True, help="Read extra history before --start so the first rows are warm."),
) -> None:
    """Compute a factor over history, per symbol, with a progress bar."""
    import pandas as pd
    from tqdm import tqdm

    from pyplatform.factors import compile_batch
    from pyplatform.backends import open_store

    lib_name, expr = _resolve(factor)
    name = lib_name or str(expr)
    store = open_store()
    syms = list(symbols) if symbols else store.symbols(table)
    if not syms:
        typer.echo(f"table {table!r} has no symbols in the history store", err=True)
        raise typer.Exit(1)
    cols = sorted(expr.columns())
    run = compile_batch(expr)
    read_start = start
    if warmup and start is not None and expr.lookback > 0:
        # Rows before --start warm the factor up; read a generous calendar margin and trim after.
        step = pd.Timedelta("1D") if table.endswith("1d") else pd.Timedelta("1min") if table.endswith("1m") else pd.Timedelta("1s")
        read_start = pd.Timestamp(start) - step * (expr.lookback * 2 + 10)
    parts = []
    for i in tqdm(range(0, len(syms), chunk), desc=f"computing {name}", unit="chunk"):
        frame = store.read(table, symbols=syms[i:i + chunk], start=read_start, end=end, columns=cols)
        if frame is None or len(frame) == 0:
            continue
        values = run(frame)
        if start is not None:
            values = values[values.index.get_level_values("datetime") >= pd.Timestamp(start)]
        parts.append(values.rename("value"))
    if not parts:
        typer.echo("no rows in the requested range", err=True)
        raise typer.Exit(1)
    result = pd.concat(parts).sort_index()
    valid = result.notna().sum()
    typer.echo(f"{name}: {len(result)} rows, {valid} non-NULL, {result.index.get_level_values('symbol').nunique()} symbols")
    typer.echo(result.dropna().describe().to_string())
    if output is not None:
        frame = result.to_frame(name="value").reset_index()
        frame["factor"] = name
        if output.suffix == ".csv":
            frame.to_csv(output, index=False)
        else:
            frame.to_parquet(output, index=False)
        typer.echo(f"wrote {len(frame)} rows to {output}")
    if write:
        long = result.dropna().to_frame(name="value").reset_index()
        long["factor"] = name
        n = store.write("factors", long.set_index(["datetime", "symbol"]))
        typer.echo(f"stored {n} rows in the factors table as {name!r}")


# the registry commands (publish, retire, published) live with the research workflow
from pyplatform.cli.factors_publish import register as _register_publish  # noqa: E402

_register_publish(app)
