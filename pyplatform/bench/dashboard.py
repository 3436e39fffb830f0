"""Benchmark: K-line callback latency on years of one-minute history.

What a chart change costs end to end on the server: choose the timeframe, read the window
from the history store, re-aggregate to at most ``cap`` candles, build the Plotly figure and
serialise it to JSON (what Dash sends). The obvious alternative, measured in the same run, is
what a naive chart does: read the symbol's whole one-minute history and resample it with
pandas to the requested timeframe on every change (and then send every candle).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pyplatform.bench.report import median_time

if TYPE_CHECKING:
    import numpy as np

__all__ = ["run_bench", "register", "print_table", "NAIVE_FIGURE_MAX"]

#: The naive chart also builds and serialises its figure when it has at most this many
#: candles; beyond that only its read + resample is timed (a figure of ~1M candles takes
#: minutes and would not render), which flatters the naive side.
NAIVE_FIGURE_MAX = 120_000


def _median_ms(fn, repeats: int) -> float:
    return median_time(fn, repeats) * 1e3


def _scenarios(daily_ts: np.ndarray) -> list[tuple[str, str, int | None, int | None]]:
    day = 86_400_000_000_000
    end = int(daily_ts[-1]) + day
    year, month, week = daily_ts[-252] if len(daily_ts) > 252 else daily_ts[0], daily_ts[-21], daily_ts[-5]
    return [
        ("whole history, 1m requested", "1m", None, None),
        ("whole history, 1w", "1w", None, None),
        ("zoom: last year, 1m requested", "1m", int(year), end),
        ("zoom: last month, 1m requested", "1m", int(month), end),
        ("zoom: last week, 1m", "1m", int(week), end),
    ]


def run_bench(data_dir: Path | None = None, symbol: str | None = None, repeats: int = 5, years: int = 10,
              naive: bool = True, echo=print) -> list[dict]:
    """Measure :func:`build_chart` latency (median of ``repeats``) beside a naive pandas chart.

    Parameters
    ----------
    data_dir : Path, optional
        A data directory holding a generated market; when omitted one symbol's ``years`` of
        one-minute bars are generated into a temporary directory first.
    symbol : str, optional
        Symbol to chart (the first one with the most one-minute bars by default).
    """
    import numpy as np
    import pandas as pd
    import plotly.io as pio

    from pyplatform.config import get_settings
    from pyplatform.dashboard.context import AppContext
    from pyplatform.dashboard.data import StoreBarSource
    from pyplatform.dashboard.live_buffer import LiveBuffer
    from pyplatform.clock import LiveClock
    from pyplatform.dashboard.pages.market import build_chart
    from pyplatform.plots.price_charts import candlestick_figure
    from pyplatform.backends import open_store

    tmp = None
    if data_dir is None:
        from pyplatform.data import generate_market

        tmp = tempfile.TemporaryDirectory(prefix="pyplatform-dash-bench-")
        data_dir = Path(tmp.name)
        end = pd.Timestamp("2026-01-01")
        echo(f"generating {years} years of 1-minute bars for 1 symbol into {data_dir} ...")
        generate_market(data_dir, n_symbols=1, start=end - pd.DateOffset(years=years), end=end, tick_days=0,
                        progress=True)
    settings = get_settings(data_dir=Path(data_dir))
    store = open_store(settings)
    bars = StoreBarSource(store)
    symbol = symbol or bars.symbols()[0]
    actx = AppContext(settings=settings, bars=bars, live=LiveBuffer(), clock=LiveClock())
    daily = bars.daily(symbol)
    n_minutes = len(store.read("bars_1m", symbols=[symbol], columns=["close"], as_arrow=True))
    echo(f"{symbol}: {len(daily):,} sessions, {n_minutes:,} one-minute bars "
         f"({pd.Timestamp(int(daily['ts'].iloc[0])):%Y-%m-%d} → {pd.Timestamp(int(daily['ts'].iloc[-1])):%Y-%m-%d})")

    def ours(tf, start, end):
        fig, _, view = build_chart(actx, symbol, tf, [], [], start, end, False)
        pio.to_json(fig)
        return view["n"]

    def naive_chart(tf, start, end):
        f = store.read("bars_1m", symbols=[symbol], start=None if start is None else pd.Timestamp(start),
                       end=None if end is None else pd.Timestamp(end))
        f = f.droplevel("symbol")
        rule = {"1m": "1min", "1w": "W-MON"}[tf]
        agg = f.resample(rule, label="left", closed="left").agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}).dropna()
        if len(agg) <= NAIVE_FIGURE_MAX:
            frame = agg.reset_index(names="datetime")
            frame["ts"] = frame["datetime"].to_numpy().astype("datetime64[ns]").astype(np.int64)
            pio.to_json(candlestick_figure(frame, tf, symbol=symbol))
        return len(agg)

    results = []
    ours("1d", None, None)  # warm caches (daily bars, minutes-per-day), as a running app has them
    for name, tf, start, end in _scenarios(daily["ts"].to_numpy(np.int64)):
        n = ours(tf, start, end)
        ms = _median_ms(lambda: ours(tf, start, end), repeats)
        row = {"scenario": name, "candles": n, "ours_ms": ms}
        if naive:
            n_naive = naive_chart(tf, start, end)
            row["naive_candles"] = n_naive
            row["naive_ms"] = _median_ms(lambda: naive_chart(tf, start, end), max(1, repeats // 2))
            row["ratio"] = row["naive_ms"] / ms
        results.append(row)
        echo("  " + ", ".join(f"{k}={v:,.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    if tmp is not None:
        tmp.cleanup()
    return results


def register(bench_app) -> None:
    """Add ``dashboard`` to the shared ``pyplatform bench`` command."""
    import typer

    @bench_app.command("dashboard")
    def _dashboard(
        data_dir: Path = typer.Option(None, help="Data dir with a generated market (default: generate one)."),
        symbol: str = typer.Option(None, help="Symbol to chart."),
        repeats: int = typer.Option(5, help="Runs per scenario (median reported)."),
        years: int = typer.Option(10, help="Years of 1-minute bars to generate when no data dir is given."),
        quick: bool = typer.Option(False, "--quick", help="One year of bars generated, one run per scenario "
                                                          "(a smoke test of the command, not figures)."),
    ) -> None:
        """K-line callback latency on years of 1-minute bars, beside a naive pandas resample."""
        if quick:
            repeats, years = 1, 1
        print_table(run_bench(data_dir, symbol, repeats, years))


def print_table(rows: list[dict]) -> None:
    """Print :func:`run_bench`'s rows as a table (``pyplatform bench dashboard``, ``pyplatform dash bench``)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title="dashboard: K-line callback latency (median ms; read + down-sample + figure + JSON)")
    for col in ("scenario", "candles", "ours ms", "naive candles", "naive ms", "naive/ours"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["scenario"], f"{r['candles']:,}", f"{r['ours_ms']:.1f}", f"{r.get('naive_candles', 0):,}",
                  f"{r.get('naive_ms', float('nan')):.1f}", f"{r.get('ratio', float('nan')):.1f}x")
    Console().print(t)
