"""``generate_market``: a whole synthetic market written into the history store."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pyplatform.data.bar_simulator import BarSimulator, month_chunks
from pyplatform.data.ticks import generate_ticks
from pyplatform.data.universe import make_universe
from pyplatform.domain.instruments import AssetClass

__all__ = ["generate_market", "MarketSummary"]


@dataclass
class MarketSummary:
    """What :func:`generate_market` wrote and how long writing took (generation excluded)."""

    symbols: int
    rows: dict[str, int] = field(default_factory=dict)
    write_seconds: dict[str, float] = field(default_factory=dict)
    generate_seconds: float = 0.0

    def rows_per_second(self, table: str) -> float:
        s = self.write_seconds.get(table, 0.0)
        return self.rows.get(table, 0) / s if s else float("nan")


def generate_market(data_dir=None, n_symbols: int = 50, start="2014-01-01", end="2026-01-01",
                    tick_days: int = 2, seed: int = 0, progress: bool = True, store=None,
                    tick_rate: float = 0.5, indices: int = 0, compact: bool = True) -> MarketSummary:
    """Generate a synthetic market and write it into the embedded history store.

    Writes the ``instruments`` table, 1-minute bars (``bars_1m``) and daily bars derived from
    them (``bars_1d``) for sessions dated in ``[start, end)``, a month at a time, and ticks for
    the last ``tick_days`` days before ``end``, starting from the bars' prices there.

    Parameters
    ----------
    data_dir : path, optional
        Data directory (the store lives in ``data_dir/history``); default from settings.
    n_symbols : int
        Instruments across stocks, forex and crypto (see :func:`make_universe`).
    start, end : date-like
        Session dates of the bars, half-open.
    tick_days : int
        Calendar days of ticks before ``end`` (0 for none).
    seed : int
        Everything is a function of the seed and the arguments.
    progress : bool
        Show a progress bar (tqdm) over the months.
    store : HistoryStore, optional
        Write here instead of opening the store of ``data_dir``.
    tick_rate : float
        Mean trades per second per symbol while its market is open.
    indices : int
        Extra index symbols.
    compact : bool
        Merge the segments that appends leave in a partition at the end.

    Returns
    -------
    MarketSummary
    """
    if store is None:
        from pyplatform.config import get_settings
        from pyplatform.backends import open_store

        settings = get_settings(data_dir=Path(data_dir)) if data_dir is not None else get_settings()
        store = open_store(settings)
    universe = make_universe(n_symbols, seed, indices=indices)
    store.write_instruments(universe)
    sim = BarSimulator(universe, seed=seed)
    summary = MarketSummary(symbols=len(universe))
    chunks = month_chunks(start, end)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(chunks), unit="month", desc=f"bars {len(universe)} symbols")

    def timed_write(table: str, data) -> None:
        t0 = time.perf_counter()
        n = store.write(table, data)
        summary.write_seconds[table] = summary.write_seconds.get(table, 0.0) + time.perf_counter() - t0
        summary.rows[table] = summary.rows.get(table, 0) + n

    # Chunks hold whole sessions (by session date), but a forex session dated the 1st opens on
    # the evening before, in the previous month's partition. Holding each month's rows until the
    # next chunk has contributed its early rows keeps every partition to a single write.
    pending: list[pa.Table] = []
    dailies: list[pa.Table] = []
    for a, b in chunks:
        t0 = time.perf_counter()
        minute, daily = sim.chunk(a, b)
        summary.generate_seconds += time.perf_counter() - t0
        dailies.append(daily)
        if minute.num_rows and not pending:
            pending = [minute]  # the first chunk: nothing before it to complete
        elif minute.num_rows:
            early = pc.less(minute.column("ts"), pa.scalar(pd.Timestamp(a).value, pa.int64()))
            pending.append(minute.filter(early))
            if pending and sum(t.num_rows for t in pending):
                timed_write("bars_1m", pa.concat_tables(pending))
            pending = [minute.filter(pc.invert(early))]
        if bar is not None:
            bar.update(1)
            bar.set_postfix(rows=f"{summary.rows.get('bars_1m', 0):,}")
    if pending and sum(t.num_rows for t in pending):
        timed_write("bars_1m", pa.concat_tables(pending))
    if dailies:
        timed_write("bars_1d", pa.concat_tables(dailies))
    if bar is not None:
        bar.close()
    if compact and hasattr(store, "compact"):
        for table in ("bars_1m", "bars_1d"):
            t0 = time.perf_counter()
            store.compact(table)
            summary.write_seconds[table] = summary.write_seconds.get(table, 0.0) + time.perf_counter() - t0
    if tick_days > 0:
        end_t = pd.Timestamp(end)
        tradable = [i for i in universe if i.asset_class is not AssetClass.INDEX]
        for day in range(tick_days, 0, -1):
            a = end_t - pd.Timedelta(days=day)
            last = store.cross_section("bars_1m", at=a, columns=["close"])
            prices = {s: float(c) for (_, s), c in last["close"].items()}
            t0 = time.perf_counter()
            ticks = generate_ticks(tradable, a, a + pd.Timedelta("1D"), seed=seed, rate=tick_rate,
                                   start_prices=prices, as_arrow=True)
            summary.generate_seconds += time.perf_counter() - t0
            if ticks.num_rows:
                timed_write("ticks", ticks)
    return summary
