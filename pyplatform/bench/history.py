"""``pyplatform bench history``: write a generated market, then time the store's queries
beside the same queries done with plain pandas (``pd.read_parquet`` with filters) and with
DuckDB reading the same Parquet files straight into Arrow, as medians of several warm runs.

The store answers a whole-day or as-of query, or one symbol's history, from a memory-mapped
day or symbol file (:mod:`pyplatform.store.daycache`, :mod:`pyplatform.store.symbolcache`)
built on the second request; the first call (Parquet) and the second (Parquet plus the file
write) are timed and printed apart, the medians are of the warm calls that follow. ``quick=True`` is the tiny form the tests run
(correctness of the benchmark: every side returns the same rows; not timing)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import typer

from pyplatform.bench.report import median_time

__all__ = ["register", "run_history_bench", "format_result", "HistoryBenchResult", "QueryTiming"]


@dataclass
class QueryTiming:
    name: str
    rows: int
    store_s: float
    pandas_s: float
    goal_s: float | None
    duckdb_s: float = float("nan")
    first_s: float = float("nan")
    second_s: float = float("nan")

    @property
    def duckdb_ratio(self) -> float:
        """How many times faster the store (into pandas) is than DuckDB (into Arrow)."""
        return self.duckdb_s / self.store_s if self.store_s else float("nan")

    @property
    def ratio(self) -> float:
        """How many times faster the store is than plain pandas."""
        return self.pandas_s / self.store_s if self.store_s else float("nan")


@dataclass
class HistoryBenchResult:
    symbols: int
    start: str
    end: str
    bars: int
    write_rows_per_s: float
    generate_s: float
    write_s: float
    bytes_per_bar: float
    queries: list[QueryTiming]
    load_avg: tuple[float, float, float]
    cpus: int


def _median_time(fn, repeat: int) -> float:
    # warm: file footers cached, pages in the OS cache
    return median_time(fn, repeat, warm=True)


def _pandas_read(files: list[str], filters, columns=None) -> pd.DataFrame:
    """The obvious alternative: pandas reads the Parquet files (filters pushed to pyarrow), then
    decodes the scaled integers and indexes the frame like the store does."""
    import pandas as pd

    frame = pd.read_parquet(files, filters=filters, columns=columns)
    out = pd.DataFrame({
        "open": frame["open"] / frame["px_div"], "high": frame["high"] / frame["px_div"],
        "low": frame["low"] / frame["px_div"], "close": frame["close"] / frame["px_div"],
        "volume": frame["volume"] / frame["vol_div"], "vwap": frame["vwap"] / (frame["px_div"] * 100),
        "trades": frame["trades"],
    })
    out.index = pd.MultiIndex.from_arrays([frame["ts"], frame["symbol"].astype(str)], names=["datetime", "symbol"])
    return out.sort_index()


def _duckdb_alternative(files: list[str], where: str, group_last: bool = False, table: str = "bars_1m"):
    """DuckDB over the same files into Arrow, decoding prices as the store does (a fresh
    connection with the footer cache on, like the store's; warm runs)."""
    import duckdb

    from pyplatform.store.encoding import value_exprs
    from pyplatform.store.sql import file_list
    from pyplatform.store.tables import TABLES

    con = duckdb.connect(config={"threads": min(4, os.cpu_count() or 1)})
    con.execute("SET parquet_metadata_cache = true")
    exprs = value_exprs(TABLES[table], None)
    src = f"read_parquet({file_list(files)})"
    if group_last:
        sel = ", ".join(f"arg_max({e}, ts) AS {n}" for e, n in exprs)
        sql = f"SELECT symbol, max(ts) AS datetime, {sel} FROM {src} {where} GROUP BY symbol"
    else:
        sel = ", ".join(f"{e} AS {n}" for e, n in exprs)
        sql = f"SELECT ts AS datetime, symbol, {sel} FROM {src} {where}"
    return lambda: con.sql(sql).to_arrow_table()


def run_history_bench(n_symbols: int = 50, start: str = "2014-01-01", end: str = "2026-01-01",
                      repeat: int = 5, data_dir: str | None = None, seed: int = 0, keep: bool = False,
                      progress: bool = True, quick: bool = False) -> HistoryBenchResult:
    """Generate and write a market, then time the three queries of the issue plus the as-of cross-section.

    Parameters
    ----------
    n_symbols : int
        Symbols in the market (stocks, forex, crypto).
    start, end : str
        Session dates of the 1-minute bars.
    repeat : int
        Timed runs per query (after one warm-up); medians are reported.
    data_dir : str, optional
        Where to write (a temporary directory by default, removed unless ``keep``).
    quick : bool
        4 symbols, 3 days, one timed run: the form the tests run (checks that every side
        returns the same rows; the figures mean nothing).
    """
    import pandas as pd

    from pyplatform.data.synthetic_market import generate_market
    from pyplatform.store.embedded import EmbeddedStore
    from pyplatform.store.sql import where as sql_where

    if quick:
        n_symbols, start, end, repeat = 4, "2024-03-04", "2024-03-07", 1

    root = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="pyplatform-bench-"))
    try:
        store = EmbeddedStore(root / "history")
        summary = generate_market(store=store, n_symbols=n_symbols, start=start, end=end, tick_days=0,
                                  seed=seed, progress=progress)
        bars = summary.rows.get("bars_1m", 0)
        info = store.info()
        bytes_per_bar = float(info.loc["bars_1m", "bytes"]) / max(bars, 1)
        tdir = store.table_dir("bars_1m")
        man = store.manifest("bars_1m")
        files_1m = [str(tdir / f.path) for f in man.files()]
        last_ts = pd.Timestamp(max(f.max_ts for f in man.files()))
        symbols = store.symbols("bars_1m")
        stock = next((s for s in symbols if s.endswith(".US")), symbols[0])
        # a busy day: the last session day every market trades on
        day = last_ts.normalize()
        while day.dayofweek >= 5:
            day -= pd.Timedelta("1D")
        if day == last_ts.normalize() and last_ts.hour < 21:
            day -= pd.Timedelta("1D")
            while day.dayofweek >= 5:
                day -= pd.Timedelta("1D")
        at = day + pd.Timedelta(hours=15, minutes=30)
        d0, d1 = day.value, (day + pd.Timedelta("1D")).value
        files_day = [str(tdir / f.path) for f in man.files(d0, d1)]
        files_at = [str(tdir / f.path) for f in man.files(at.value - pd.Timedelta("1D").value, at.value + 1)]
        dman = store.manifest("bars_1d")
        last_d = pd.Timestamp(max(f.max_ts for f in dman.files()))
        d30 = last_d - pd.Timedelta("30D")
        files_1d = [str(store.table_dir("bars_1d") / f.path) for f in dman.files(d30.value, None)]

        def pandas_at():
            f = _pandas_read(files_at, [("ts", "<=", at), ("ts", ">", at - pd.Timedelta("1D"))])
            return f.reset_index().groupby("symbol").last()

        queries = [
            ("one symbol, all years of 1-min bars", 0.05,
             lambda: store.read("bars_1m", symbols=[stock]),
             lambda: _pandas_read(files_1m, [("symbol", "==", stock)]),
             _duckdb_alternative(files_1m, sql_where([stock], None, None))),
            ("all symbols, one day of 1-min bars", 0.1,
             lambda: store.cross_section("bars_1m", day=day),
             lambda: _pandas_read(files_day, [("ts", ">=", day), ("ts", "<", day + pd.Timedelta("1D"))]),
             _duckdb_alternative(files_day, sql_where(None, d0, d1))),
            ("last 30 days of daily bars, all symbols", None,
             lambda: store.read("bars_1d", start=d30),
             lambda: _pandas_read(files_1d, [("ts", ">=", d30)]),
             _duckdb_alternative(files_1d, sql_where(None, d30.value, None), table="bars_1d")),
            ("last bar of every symbol at a time", 0.02,
             lambda: store.cross_section("bars_1m", at=at),
             pandas_at,
             _duckdb_alternative(files_at, sql_where(None, at.value - pd.Timedelta("1D").value, at.value + 1),
                                 group_last=True)),
        ]
        timings = []
        for name, goal, ours, theirs, duck in queries:
            t0 = time.perf_counter()
            a = ours()  # the first call: the Parquet query
            t1 = time.perf_counter()
            ours()  # the second: builds the day/symbol file where the query uses one
            first, second = t1 - t0, time.perf_counter() - t1
            b, c = theirs(), duck()
            if not (len(a) == len(b) == c.num_rows):
                raise AssertionError(f"bench {name!r}: store returned {len(a)} rows, pandas {len(b)}, "
                                     f"DuckDB {c.num_rows}")
            _same_rows(name, a, b)
            timings.append(QueryTiming(name, len(a), _median_time(ours, repeat), _median_time(theirs, repeat), goal,
                                       duckdb_s=_median_time(duck, repeat), first_s=first,
                                       second_s=second))
        write_s = summary.write_seconds.get("bars_1m", 0.0) + summary.write_seconds.get("bars_1d", 0.0)
        rows = bars + summary.rows.get("bars_1d", 0)
        store.close()
        return HistoryBenchResult(
            symbols=n_symbols, start=str(start), end=str(end), bars=bars,
            write_rows_per_s=rows / write_s if write_s else float("nan"),
            generate_s=summary.generate_seconds, write_s=write_s, bytes_per_bar=bytes_per_bar,
            queries=timings, load_avg=os.getloadavg(), cpus=os.cpu_count() or 1,
        )
    finally:
        if not keep and not data_dir:
            shutil.rmtree(root, ignore_errors=True)


def _same_rows(name: str, ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """The store and plain pandas return the same values (row order aside for the as-of)."""
    import pandas as pd

    a = ours.reset_index().sort_values(["symbol", "datetime"]).reset_index(drop=True)
    b = theirs.reset_index().sort_values(["symbol", "datetime"]).reset_index(drop=True)
    cols = [c for c in a.columns if c in b.columns]
    try:
        pd.testing.assert_frame_equal(a[cols], b[cols], check_dtype=False, check_categorical=False,
                                      check_index_type=False, check_column_type=False)
    except AssertionError as exc:
        raise AssertionError(f"bench {name!r}: store and pandas disagree: {exc}") from None


def format_result(r: HistoryBenchResult) -> str:
    """The result as a Markdown table (the CLI prints it; docs/benchmarks/history.md records it)."""
    lines = [
        f"history store: {r.symbols} symbols, sessions {r.start} .. {r.end}, {r.bars:,} 1-min bars",
        f"machine: {r.cpus} CPUs, load average {r.load_avg[0]:.1f} / {r.load_avg[1]:.1f} / {r.load_avg[2]:.1f}",
        f"generate: {r.generate_s:.1f} s   write: {r.write_s:.1f} s   rows written/s: {r.write_rows_per_s:,.0f}",
        f"bytes on disk per 1-min bar: {r.bytes_per_bar:.2f} (goal <= 12)",
        "",
        "| query | rows | store (median s) | pandas (median s) | store speed-up | goal "
        "| DuckDB into Arrow (median s) | store vs DuckDB | store first / second call (s) |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for q in r.queries:
        goal = f"<= {q.goal_s} s" if q.goal_s else ""
        lines.append(f"| {q.name} | {q.rows:,} | {q.store_s:.4f} | {q.pandas_s:.4f} | {q.ratio:.1f}x | {goal} "
                     f"| {q.duckdb_s:.4f} | {q.duckdb_ratio:.1f}x | {q.first_s:.4f} / {q.second_s:.4f} |")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``history`` to the ``pyplatform bench`` app."""

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
