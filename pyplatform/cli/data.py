"""``pyplatform data``: generate a synthetic market, import your own files, inspect the store."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Generate a synthetic market or import your own files into the history store.",
                  no_args_is_help=True)


def _settings(data_dir: Path | None):
    from pyplatform.config import get_settings

    return get_settings(data_dir=data_dir) if data_dir is not None else get_settings()


@app.command("generate")
def generate(
    symbols: int = typer.Option(50, help="Instruments: ~70% stocks (.US), 15% forex (.GB), 15% crypto (.BA)."),
    years: float = typer.Option(12.0, help="Years of 1-minute bars ending at --end."),
    start: str = typer.Option(None, help="First session date (overrides --years)."),
    end: str = typer.Option("2026-01-01", help="End session date (exclusive)."),
    tick_days: int = typer.Option(2, help="Days of ticks before --end."),
    tick_rate: float = typer.Option(0.5, help="Mean trades per second per symbol while open."),
    indices: int = typer.Option(0, help="Extra index symbols (.IDX)."),
    seed: int = typer.Option(0, help="Same seed, same market."),
    data_dir: Path = typer.Option(None, help="Data directory (default: PYPLATFORM_DATA_DIR or ./data)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Build a synthetic market (stochastic volatility, jumps, U-shaped volume, spreads, sectors) into the store."""
    import pandas as pd

    from pyplatform.data.synthetic_market import generate_market
    from pyplatform.backends import open_store

    end_t = pd.Timestamp(end)
    start_t = pd.Timestamp(start) if start else end_t - pd.DateOffset(months=int(round(years * 12)))
    settings = _settings(data_dir)
    store = open_store(settings)
    s = generate_market(store=store, n_symbols=symbols, start=start_t, end=end_t, tick_days=tick_days,
                        seed=seed, progress=progress, tick_rate=tick_rate, indices=indices)
    typer.echo(f"wrote {s.symbols} symbols into {settings.path('history')}:")
    for table, rows in s.rows.items():
        typer.echo(f"  {table}: {rows:,} rows ({s.rows_per_second(table):,.0f} rows/s written)")
    collect = getattr(store, "collect_garbage", None)
    if collect is not None:
        # generating rewrites partitions (merges, the yearly roll-up): the files it replaced
        # would otherwise stay on disk until the next write, doubling the folder for a while
        files, freed = collect(grace_s=0)
        if files:
            typer.echo(f"removed {files} superseded file(s), {_size(freed)}")


@app.command("import")
def import_(
    paths: list[Path] = typer.Argument(..., help="CSV (.csv/.tsv) or Parquet files."),
    table: str = typer.Option("bars_1m", help="Target table: bars_1m, bars_1d, ticks or factors."),
    map_: list[str] = typer.Option([], "--map", help="Column mapping target=source, e.g. --map ts=time --map close=Close."),
    symbol: str = typer.Option(None, help="Symbol of every row, for files without a symbol column."),
    ts_unit: str = typer.Option("auto", help="auto, s, ms, us, ns or iso."),
    tz: str = typer.Option("UTC", help="Zone of timestamps given without one."),
    price_scale: int = typer.Option(None, help="Prices are integers with this many implied decimals."),
    denominator: list[str] = typer.Option([], help="price=column: divide a price column by this column."),
    report: Path = typer.Option(None, help="On failure, write every bad row to this CSV."),
    data_dir: Path = typer.Option(None, help="Data directory (default: PYPLATFORM_DATA_DIR or ./data)."),
) -> None:
    """Import files, normalised; if any row is bad nothing is imported and every bad row is listed."""
    from pyplatform.clock import LiveClock
    from pyplatform.data.importer import ImportFailed, import_files
    from pyplatform.backends import open_store

    def pairs(items: list[str], what: str) -> dict[str, str]:
        out = {}
        for item in items:
            if "=" not in item:
                raise typer.BadParameter(f"{what} {item!r}: expected target=source")
            k, v = item.split("=", 1)
            out[k.strip()] = v.strip()
        return out

    try:
        result = import_files(paths, table=table, store=open_store(_settings(data_dir)),
                              mapping=pairs(map_, "--map"), symbol=symbol, ts_unit=ts_unit, assume_tz=tz,
                              price_scale=price_scale, denominators=pairs(denominator, "--denominator"),
                              report_path=report, clock=LiveClock())
    except ImportFailed as exc:
        typer.echo(str(exc), err=True)
        if report is not None:
            typer.echo(f"full report: {report}", err=True)
        raise typer.Exit(code=1) from None
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(f"imported {result.rows:,} rows from {result.files} file(s) into {result.table} "
               f"({len(result.symbols)} symbols)")


@app.command("info")
def info(data_dir: Path = typer.Option(None, help="Data directory (default: PYPLATFORM_DATA_DIR or ./data).")) -> None:
    """Rows, files, bytes per row, symbols and time span of each history table."""
    from rich.console import Console
    from rich.table import Table

    from pyplatform.backends import open_store

    store = open_store(_settings(data_dir))
    frame = store.info()
    usage = store.disk_usage() if hasattr(store, "disk_usage") else None
    t = Table(title=f"history store ({getattr(store, 'root', store)})")
    for c in ["table", "rows", "files", "bytes", "bytes/row", "symbols", "first", "last"]:
        t.add_column(c)
    for name, r in frame.iterrows():
        t.add_row(name, f"{r['rows']:,}", str(r["files"]), f"{r['bytes']:,}",
                  "" if r["rows"] == 0 else f"{r['bytes_per_row']:.2f}", str(r["symbols"]),
                  str(r["first"]), str(r["last"]))
    Console().print(t)
    if usage is not None:
        # what is on disk, not only what queries read: superseded files wait out a grace
        # period for readers of an older manifest, and they count against the disk too
        tot = usage.sum()
        typer.echo(f"on disk: {_size(tot['total_bytes'])} = live {_size(tot['live_bytes'])} "
                   f"({int(tot['live_files'])} files) + superseded {_size(tot['superseded_bytes'])} "
                   f"({int(tot['superseded_files'])} files, deleted by the next write or `data generate`) "
                   f"+ day files {_size(tot['cache_bytes'])} (a cache) "
                   f"+ other {_size(tot['other_bytes'])} (manifests, leftovers)")
    typer.echo(f"instruments: {len(store.instruments())}")


def _size(n: float) -> str:
    """Bytes for people (exact count in parentheses, so scripts can parse it)."""
    n = int(n)
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"
