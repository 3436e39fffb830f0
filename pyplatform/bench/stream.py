"""``pyplatform bench stream``: stream-table append/delivery and the bar engine, beside the
obvious alternatives, measured in the same run (medians of ``--repeat`` runs, as ratios).

* append: ``StreamTable.append`` of columnar batches (in memory, and to disk with each
  fsync policy) vs a Python list of row dicts vs ``pandas.concat`` per batch;
* delivery: a subscriber polling every row vs iterating the list of dicts / slicing the
  concatenated frame;
* bars: :class:`BarEngine` on micro-batches vs pandas ``groupby`` of each micro-batch
  together with the still-open window's ticks.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable

from pyplatform.bench.report import machine_line, median_time

__all__ = ["register", "run_stream_bench", "format_results", "N_MEASUREMENTS"]


def _ticks(n: int, n_symbols: int = 500, seed: int = 0) -> dict[str, np.ndarray]:
    import numpy as np

    rng = np.random.default_rng(seed)
    syms = np.array([f"S{i:04d}.US" for i in range(n_symbols)])
    return {
        "ts": np.arange(n, dtype=np.int64) * 1_000_000,  # 1000 ticks per second across symbols
        "symbol": syms[rng.integers(0, n_symbols, n)],
        "price": 100 + rng.normal(0, 1, n).round(2),
        "volume": rng.integers(1, 100, n).astype(np.float64),
        "side": rng.choice(np.array([-1, 1], np.int8), n),
        "bid": np.full(n, 99.0), "ask": np.full(n, 101.0),
    }


def _batches(data: dict, batch: int) -> list[pa.RecordBatch]:
    import pyarrow as pa

    from pyplatform.domain.schemas import TICKS

    table = pa.table(data, schema=TICKS)
    return [b for i in range(0, table.num_rows, batch) for b in table.slice(i, batch).to_batches()]


#: Measurements one run makes (for progress bars).
N_MEASUREMENTS = 13


def run_stream_bench(rows: int = 200_000, batch: int = 1_000, repeat: int = 5, n_symbols: int = 500,
                     on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Time the stream hot paths and their naive alternatives; one dict per measurement.

    ``on_result`` is called with each measurement as it completes (progress display).
    """
    import pandas as pd

    from pyplatform.clock import LiveClock
    from pyplatform.domain.schemas import TICKS
    from pyplatform.stream.bar_engine import BarEngine
    from pyplatform.stream.table import StreamTable

    clock = LiveClock()  # the bench is an edge: it measures on the wall clock

    data = _ticks(rows, n_symbols)
    batches = _batches(data, batch)
    frames = [b.to_pandas() for b in batches]
    dict_batches = [{k: v[i:i + batch] for k, v in data.items()} for i in range(0, rows, batch)]
    results: list[dict] = []

    def add(group: str, what: str, seconds: float, vs_python: float | None = None,
            vs_pandas: float | None = None) -> None:
        results.append({"group": group, "what": what, "rows_per_s": rows / seconds, "median_s": seconds,
                        "vs_python": None if vs_python is None else vs_python / seconds,
                        "vs_pandas": None if vs_pandas is None else vs_pandas / seconds})
        if on_result is not None:
            on_result(results[-1])

    # -- append ---------------------------------------------------------------------
    def naive_list():
        out: list[dict] = []
        for frame in frames:
            out.extend(frame.to_dict("records"))
        return out

    def naive_concat():
        df = pd.DataFrame(columns=TICKS.names)
        for frame in frames:
            df = pd.concat([df, frame], ignore_index=True) if len(df) else frame

    t_list = median_time(naive_list, repeat)
    t_concat = median_time(naive_concat, repeat)
    add("append", "python list of row dicts", t_list)
    add("append", "pandas concat per batch", t_concat)

    def mem_append():
        t = StreamTable("bench", TICKS, memory_rows=rows, clock=clock)
        for b in batches:
            t.append(b)

    def mem_append_dicts():
        t = StreamTable("bench", TICKS, memory_rows=rows, clock=clock)
        for b in dict_batches:
            t.append(b)
    add("append", "StreamTable, memory, Arrow batches", median_time(mem_append, repeat), t_list, t_concat)
    add("append", "StreamTable, memory, dicts of NumPy arrays", median_time(mem_append_dicts, repeat), t_list, t_concat)
    with tempfile.TemporaryDirectory() as root:
        for policy in ("never", "batch", "always"):
            runs = iter(range(10**6))

            def open_table(policy=policy):  # creating the folder and schema file is not timed
                return StreamTable(f"t{next(runs)}", TICKS, root, fsync=policy, memory_rows=rows, clock=clock)

            def disk_append(t):
                for b in batches:
                    t.append(b)
                t.flush()  # the rows are durable when the clock stops, whatever the policy
            add("append", f"StreamTable, disk, fsync={policy}",
                median_time(disk_append, repeat, setup=open_table, teardown=lambda t: t.close()), t_list, t_concat)

    # -- delivery -------------------------------------------------------------------
    records = naive_list()
    whole = pd.concat(frames, ignore_index=True)

    def naive_iter():
        total = 0.0
        for r in records:
            total += r["price"]

    def naive_slices():
        for i in range(0, rows, batch):
            whole.iloc[i:i + batch]

    t_iter = median_time(naive_iter, repeat)
    add("delivery", "iterate the list of row dicts", t_iter)
    t_slices = median_time(naive_slices, repeat)
    add("delivery", "pandas iloc slices of one frame", t_slices)
    with tempfile.TemporaryDirectory() as d:
        for where, directory, mem in (("memory", None, rows), ("disk log", d, 1)):
            t = StreamTable("bench", TICKS, directory, fsync="never", memory_rows=mem, clock=clock)
            for b in batches:
                t.append(b)
            counter = iter(range(10**9))

            def poll_all(t=t):
                sub = t.subscribe(f"s{next(counter)}", offset=0, batch_size=batch)
                while sub.poll() is not None:
                    pass
                sub.close()
            add("delivery", f"Subscription.poll from {where}", median_time(poll_all, repeat), t_iter, t_slices)
            t.close()

    # -- bars -----------------------------------------------------------------------
    size = 1_000_000_000  # 1 s bars: 1000 ticks each across symbols

    def engine_bars():
        eng = BarEngine(size)
        for b in batches:
            eng.feed(b)

    def pandas_bars():
        pending = frames[0].iloc[:0]
        for frame in frames:
            df = pd.concat([pending, frame], ignore_index=True)
            df["w"] = df.ts // size * size
            wm = df.groupby("symbol").ts.transform("max")
            done = df.w + size <= wm
            g = df[done].groupby(["symbol", "w"])
            g.agg(open=("price", "first"), high=("price", "max"), low=("price", "min"),
                  close=("price", "last"), volume=("volume", "sum"), trades=("price", "size"))
            pending = df[~done].drop(columns="w")

    engine_bars()  # compile the kernels outside the timing
    t_pandas = median_time(pandas_bars, repeat)
    add("bars", "pandas groupby per micro-batch", t_pandas)
    add("bars", "BarEngine.feed per micro-batch", median_time(engine_bars, repeat), None, t_pandas)
    return results


def format_results(results: list[dict], rows: int, batch: int) -> str:
    lines = [f"{machine_line()}; {rows:,} rows in batches of {batch:,}", ""]
    lines.append(f"{'group':9} {'what':45} {'rows/s':>14} {'median s':>10} {'vs python':>10} {'vs pandas':>10}")
    for r in results:
        a = "" if r["vs_python"] is None else f"{r['vs_python']:.1f}x"
        b = "" if r["vs_pandas"] is None else f"{r['vs_pandas']:.1f}x"
        lines.append(f"{r['group']:9} {r['what']:45} {r['rows_per_s']:>14,.0f} {r['median_s']:>10.4f} {a:>10} {b:>10}")
    lines.append("")
    lines.append("vs python / vs pandas: the naive alternative's median time / this median time, same run "
                 "(append: list of row dicts / pandas.concat per batch; delivery: iterating the dicts / "
                 "iloc slices; bars: pandas groupby of each micro-batch plus the open window's ticks).")
    return "\n".join(lines)


def register(app) -> None:
    """Add ``bench stream`` to the shared bench CLI."""
    import typer

    @app.command("stream")
    def stream_bench(
        rows: int = typer.Option(200_000, help="Tick rows per run."),
        batch: int = typer.Option(1_000, help="Rows per appended batch / delivered batch / engine micro-batch."),
        repeat: int = typer.Option(5, help="Runs per measurement; medians are printed."),
        symbols: int = typer.Option(500, help="Distinct symbols in the ticks."),
        quick: bool = typer.Option(False, "--quick", help="2,000 rows in batches of 500, one run (a smoke test of the "
                                                          "command: every measurement runs, figures mean nothing)."),
    ) -> None:
        """Stream-table append and delivery, and the bar engine, beside naive Python/pandas."""
        from tqdm import tqdm

        if quick:
            rows, batch, repeat, symbols = 2_000, 500, 1, 20

        with tqdm(total=N_MEASUREMENTS, desc="bench stream", unit="measurement") as bar:
            def step(result: dict) -> None:
                bar.set_postfix_str(result["what"][:40])
                bar.update()
            results = run_stream_bench(rows, batch, repeat, symbols, on_result=step)
        typer.echo(format_results(results, rows, batch))
