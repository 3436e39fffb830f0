"""Replay stored ticks (or bars) into the tick table: real time, N x real time, or flat out.

The schedule is pure: :func:`release_times` maps each row's timestamp to the clock time it
is due (``start + (ts - ts0) / speed``). :func:`replay` then waits on the given clock and
appends every due row in one batch, so at high rates many rows go per wake-up and with a
:class:`~pyplatform.clock.SimClock` (and a ``sleep`` that advances it) a test runs an hour
of market in milliseconds, exactly.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pyplatform.clock import Clock
from pyplatform.domain.schemas import BARS, TICKS

__all__ = ["release_times", "replay", "bars_to_ticks", "load_history", "ReplayResult"]


@dataclass(frozen=True)
class ReplayResult:
    rows: int
    batches: int
    first_ts: int | None
    last_ts: int | None
    max_lag_ns: int  #: largest (append time - due time) observed on the clock


def release_times(ts: np.ndarray, speed: float | None, start_ns: int) -> np.ndarray:
    """Clock time (ns) at which each row is due; ``speed`` None means all at ``start_ns``.

    Raises
    ------
    ValueError
        If ``speed`` is not positive.
    """
    ts = np.asarray(ts, np.int64)
    if speed is None or np.isinf(speed):
        return np.full(len(ts), int(start_ns), np.int64)
    if speed <= 0:
        raise ValueError(f"speed must be > 0 (1 = real time) or None (as fast as possible), got {speed}")
    if not len(ts):
        return ts
    return int(start_ns) + ((ts - ts[0]) / float(speed)).astype(np.int64)


def bars_to_ticks(bars: pa.Table, bar_ns: int = 60_000_000_000) -> pa.Table:
    """Four ticks per bar (open, the extreme first reached, the other extreme, close).

    An up bar (close >= open) is assumed to visit the low first, a down bar the high first;
    the ticks sit at 0, 1/4, 2/4 and 3/4 of the bar and share its volume equally.
    """
    n = bars.num_rows
    o, h, l, c = (bars.column(k).to_numpy() for k in ("open", "high", "low", "close"))
    up = c >= o
    prices = np.stack([o, np.where(up, l, h), np.where(up, h, l), c], axis=1).ravel()
    ts = (bars.column("ts").to_numpy()[:, None] + (np.arange(4) * (bar_ns // 4))[None, :]).ravel()
    vol = np.repeat(np.nan_to_num(bars.column("volume").to_numpy()) / 4.0, 4)
    sym = pc.take(bars.column("symbol"), pa.array(np.repeat(np.arange(n), 4)))
    return pa.Table.from_arrays([pa.array(ts, pa.int64()), sym, pa.array(prices), pa.array(vol),
                                 pa.array(np.zeros(4 * n, np.int8)), pa.array(np.full(4 * n, np.nan)),
                                 pa.array(np.full(4 * n, np.nan))], schema=TICKS)


def load_history(store, source: str = "ticks", symbols=None, start=None, end=None) -> pa.Table:
    """Stored ``ticks`` (or ``bars_1m``/``bars_1d`` converted by :func:`bars_to_ticks`) as TICKS."""
    if source == "ticks":
        t = store.read("ticks", symbols=symbols, start=start, end=end, as_arrow=True)
        return t.select(TICKS.names).cast(TICKS)
    if source in ("bars_1m", "bars_1d"):
        t = store.read(source, symbols=symbols, start=start, end=end, as_arrow=True).select(BARS.names)
        return bars_to_ticks(t, 60_000_000_000 if source == "bars_1m" else 86_400_000_000_000).sort_by("ts")
    raise ValueError(f"source must be 'ticks', 'bars_1m' or 'bars_1d', got {source!r}")


async def _sleep_live(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def replay(rows: pa.Table, table, clock: Clock, speed: float | None = 1.0, *,
                 sleep: Callable[[float], Awaitable[None]] | None = None, max_batch: int = 65_536,
                 stop: asyncio.Event | None = None, progress: Callable[[int], object] | None = None) -> ReplayResult:
    """Append ``rows`` (sorted by ``ts`` here) into ``table`` on ``clock`` at ``speed``.

    Parameters
    ----------
    rows : pyarrow.Table
        TICKS columns (``ts`` int64 ns).
    table : StreamTable-like
        ``append(batch)``.
    clock : Clock
        Required: ``LiveClock()`` to replay in real time, a SimClock and a ``sleep`` that
        advances it in tests.
    speed : float or None
        1 = real time, 10 = ten times faster, None = as fast as possible.
    sleep : async callable(seconds)
        How to wait (default ``asyncio.sleep``).
    max_batch : int
        Most rows per append.
    progress : callable(rows_done), optional
    """
    sleep = sleep or _sleep_live
    rows = rows.sort_by("ts") if rows.num_rows else rows
    ts = rows.column("ts").to_numpy() if rows.num_rows else np.empty(0, np.int64)
    due = release_times(ts, speed, clock.now_ns())
    i, n, batches, max_lag = 0, len(ts), 0, 0
    while i < n:
        if stop is not None and stop.is_set():
            break
        now = clock.now_ns()
        j = int(np.searchsorted(due, now, side="right"))
        if j <= i:
            await sleep((int(due[i]) - now) / 1e9)
            continue
        j = min(j, i + max_batch)
        table.append(rows.slice(i, j - i))
        max_lag = max(max_lag, now - int(due[i]))
        batches += 1
        i = j
        if progress is not None:
            progress(i)
        if speed is None:
            await sleep(0)  # let the loop breathe between flat-out batches
    return ReplayResult(rows=i, batches=batches, first_ts=int(ts[0]) if n else None,
                        last_ts=int(ts[i - 1]) if i else None, max_lag_ns=max_lag)
