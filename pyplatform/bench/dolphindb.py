"""``pyplatform bench dolphindb``: the client-side hot paths of the DolphinDB backend.

Without a server only the Python side can be timed (the server side is DolphinDB's own):

* tick ingestion: validating a batch and laying it out as rows for the
  MultithreadedTableWriter (:func:`~pyplatform.dolphindb.ingest.tick_rows`, vectorised
  checks + one ``zip`` in C) vs the obvious per-row loop (``itertuples`` with a check per
  row), in rows per second;
* query results: turning a server result frame into the store's Arrow shape
  (:func:`~pyplatform.dolphindb.store.result_to_arrow`) vs building it row by row.

Medians of ``--repeat`` runs, measured in the same process, printed as ratios.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pyplatform.bench.report import machine_line, median_time

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["register", "run_dolphindb_bench", "format_results"]


def _ticks(n: int, seed: int = 0) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    syms = np.array([f"S{i:04d}.US" for i in range(500)], dtype=object)
    return pd.DataFrame({
        "ts": np.arange(n, dtype=np.int64) * 1_000_000, "symbol": syms[rng.integers(0, 500, n)],
        "price": 100 + rng.normal(0, 1, n).round(2), "volume": rng.integers(1, 100, n).astype(np.float64),
        "side": rng.choice(np.array([-1, 1], np.int8), n), "bid": np.full(n, 99.0), "ask": np.full(n, 101.0),
    })


def _naive_rows(frame: pd.DataFrame) -> list[list]:
    """What one writes first: a loop over rows checking and converting each."""
    import numpy as np

    rows = []
    for r in frame.itertuples(index=False):
        if not (math.isfinite(r.price) and r.price >= 0 and math.isfinite(r.volume) and r.volume >= 0):
            raise ValueError(f"bad row {r}")
        if not r.symbol:
            raise ValueError("no symbol")
        rows.append([np.datetime64(int(r.ts), "ns").astype("datetime64[ms]"), r.symbol, r.price, r.volume,
                     r.side, r.bid, r.ask])
    return rows


def _naive_result(frame: pd.DataFrame) -> list[dict]:
    import pandas as pd

    return [{"datetime": pd.Timestamp(r.datetime), "symbol": str(r.symbol), "open": r.open, "high": r.high,
             "low": r.low, "close": r.close, "volume": r.volume, "vwap": r.vwap, "trades": int(r.trades)}
            for r in frame.itertuples(index=False)]


def run_dolphindb_bench(rows: int = 200_000, repeat: int = 5) -> list[dict]:
    """Time the client-side paths and their per-row alternatives; one dict per measurement."""
    import numpy as np
    import pandas as pd

    from pyplatform.dolphindb.ingest import tick_rows
    from pyplatform.dolphindb.render import DeployConfig
    from pyplatform.dolphindb.store import result_to_arrow

    cfg = DeployConfig()
    ticks = _ticks(rows)
    cols = {c: ticks[c].to_numpy() for c in ticks.columns}
    fast = median_time(lambda: tick_rows(cols, cfg), repeat)
    slow = median_time(lambda: _naive_rows(ticks), repeat)
    rng = np.random.default_rng(1)
    result = pd.DataFrame({
        "datetime": pd.to_datetime(np.arange(rows, dtype=np.int64) * 60_000_000_000).astype("datetime64[ms]"),
        "symbol": ticks["symbol"], "open": rng.random(rows), "high": rng.random(rows), "low": rng.random(rows),
        "close": rng.random(rows), "volume": rng.random(rows), "vwap": rng.random(rows),
        "trades": rng.integers(1, 9, rows).astype(np.int32)})
    fast_r = median_time(lambda: result_to_arrow(result, "bars_1m", None), repeat)
    slow_r = median_time(lambda: _naive_result(result), repeat)
    return [
        {"what": "ticks -> writer rows (tick_rows)", "median_s": fast, "rows_per_s": rows / fast,
         "alternative": "itertuples + per-row checks", "alt_median_s": slow, "speedup": slow / fast},
        {"what": "server result -> store Arrow (result_to_arrow)", "median_s": fast_r, "rows_per_s": rows / fast_r,
         "alternative": "itertuples -> list of dicts", "alt_median_s": slow_r, "speedup": slow_r / fast_r},
    ]


def format_results(results: list[dict], rows: int, repeat: int) -> str:
    lines = [f"pyplatform bench dolphindb --rows {rows} --repeat {repeat}", machine_line()]
    for r in results:
        lines.append(f"{r['what']:<48} {r['median_s'] * 1e3:9.1f} ms  {r['rows_per_s']:>13,.0f} rows/s   "
                     f"vs {r['alternative']}: {r['alt_median_s'] * 1e3:9.1f} ms  = {r['speedup']:.1f}x")
    return "\n".join(lines)


def register(app) -> None:
    """Add ``dolphindb`` to the ``pyplatform bench`` app."""
    import typer

    @app.command("dolphindb")
    def dolphindb_bench(rows: int = typer.Option(200_000, help="Rows per measured batch."),
                        repeat: int = typer.Option(5, help="Timed runs; medians are printed."),
                        quick: bool = typer.Option(False, "--quick", help="2,000 rows, one run (a smoke test of the "
                                                                          "command, not figures).")) -> None:
        """DolphinDB client side: tick rows for the writer and result conversion, beside per-row loops."""
        if quick:
            rows, repeat = 2_000, 1
        typer.echo(format_results(run_dolphindb_bench(rows, repeat), rows, repeat))
