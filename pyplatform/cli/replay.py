"""``pyplatform replay``: stored ticks or bars from the history store into a tick stream table."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Replay stored ticks or bars into the tick table.", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def replay(
    source: str = typer.Option("ticks", help="History table: ticks, bars_1m or bars_1d (bars become 4 ticks each)."),
    symbols: Optional[str] = typer.Option(None, help="Comma-separated symbols (default: all)."),
    start: Optional[str] = typer.Option(None, help="First timestamp (inclusive), e.g. 2024-03-05."),
    end: Optional[str] = typer.Option(None, help="Last timestamp (exclusive)."),
    speed: float = typer.Option(1.0, help="1 = real time, 10 = ten times faster, 0 = as fast as possible."),
    table: str = typer.Option("ticks", help="Stream table to append to."),
    table_dir: Optional[Path] = typer.Option(None, help="Stream tables directory (default: data_dir/stream)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Append history to a stream table on the live clock at the chosen speed."""
    from tqdm import tqdm

    from pyplatform.config import get_settings
    from pyplatform.domain.schemas import TICKS
    from pyplatform.feeds.replay import load_history, replay as run_replay
    from pyplatform.backends import open_store
    from pyplatform.stream import StreamTables
    from pyplatform.clock import LiveClock

    if speed < 0:
        raise typer.BadParameter(f"speed must be >= 0, got {speed}", param_hint="--speed")
    settings = get_settings()
    syms = [s.strip() for s in symbols.split(",") if s.strip()] if symbols else None
    try:
        rows = load_history(open_store(settings), source, syms, start, end)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--source") from None
    if rows.num_rows == 0:
        typer.echo(f"nothing to replay: no {source} rows for symbols={syms} in [{start}, {end})")
        raise typer.Exit(1)
    with StreamTables(table_dir or settings.path("stream"), clock=LiveClock()) as tables:
        target = tables.get_table(table, TICKS)
        bar = tqdm(total=rows.num_rows, unit="tick", disable=not progress)
        done = [0]

        def step(n: int) -> None:
            bar.update(n - done[0])
            done[0] = n

        result = asyncio.run(run_replay(rows, target, LiveClock(), speed=None if speed == 0 else speed, progress=step))
        bar.close()
        target.flush()
    typer.echo(f"replayed {result.rows:,} rows into {table!r} in {result.batches:,} appends "
               f"(offsets up to {target.next_offset - 1})")
