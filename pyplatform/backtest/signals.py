"""Signal generation over history: the live factor engine and strategies in micro-batches.

Bars go through one :class:`~pyplatform.factors.FactorEngine` (every strategy's factors)
and each strategy's ``on_batch`` in chunks of ``chunk_rows`` rows in time order. The engine
is causal per row and a strategy carries its regime between batches, so the chunk size does
not change the result -- unless a strategy looks at later rows of its batch. The look-ahead
audit recomputes the first timestamps one timestamp per batch (as live trading feeds them)
and refuses a run whose signals differ.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa

from pyplatform.domain import Direction, Signal
from pyplatform.factors import FactorEngine
from pyplatform.strategies.base import Strategy

__all__ = ["LookAheadError", "generate_signals", "signal_engine", "fresh_copy", "audit_lookahead"]


class LookAheadError(RuntimeError):
    """A strategy's signals depend on rows after the one they are stamped with."""


def fresh_copy(strategy: Strategy) -> Strategy:
    """The same strategy with no carried state."""
    return type(strategy)(name=strategy.name, symbols=strategy.symbols, **strategy.params)


def signal_engine(strategies: list[Strategy]) -> FactorEngine:
    """One factor engine computing every strategy's factors (fed across windows of a long run)."""
    return _engine(strategies)


def _engine(strategies: list[Strategy]) -> FactorEngine:
    factors: dict[str, str] = {}
    for s in strategies:
        for col, text in s.factors().items():
            if col in factors and factors[col] != text:
                raise ValueError(f"factor column {col!r} defined twice with different expressions: give the "
                                 f"strategies distinct names")
            factors[col] = text
    return FactorEngine(factors)


def generate_signals(strategies: list[Strategy], bars: pa.Table, chunk_rows: int, progress=None,
                     engine: FactorEngine | None = None) -> list[Signal]:
    """Signals of ``strategies`` over ``bars`` (sorted by ts then symbol), in (ts, symbol, strategy) order.

    ``progress`` is called with the number of rows done after each chunk. ``engine`` (from
    :func:`signal_engine`) continues a run from an earlier window; the strategies carry their
    own state.
    """
    engine = engine if engine is not None else _engine(strategies)
    out: list[Signal] = []
    for batch in bars.to_batches(max_chunksize=chunk_rows):
        if not batch.num_rows:
            continue
        rows = engine.feed(batch)
        for s in strategies:
            out += s.on_batch(rows)
        if progress is not None:
            progress(batch.num_rows)
    out.sort(key=lambda s: (s.ts, s.symbol, s.strategy))
    return out


def audit_lookahead(strategies: list[Strategy], bars: pa.Table, signals: list[Signal], n_timestamps: int) -> None:
    """Recompute the first ``n_timestamps`` timestamps one at a time; raise if signals differ.

    Raises
    ------
    LookAheadError
        Naming the strategy, symbol and time of the first signal that differs.
    """
    if n_timestamps <= 0 or not bars.num_rows:
        return
    ts = bars.column("ts").to_numpy()
    uniq = np.unique(ts)
    last = uniq[min(n_timestamps, len(uniq)) - 1]
    cut = int(np.searchsorted(ts, last, side="right"))
    head = bars.slice(0, cut)
    copies = [fresh_copy(s) for s in strategies]
    engine = _engine(copies)
    bounds = np.flatnonzero(np.diff(ts[:cut])) + 1
    slow: list[Signal] = []
    for a, b in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [cut]])):
        rows = engine.feed(head.slice(int(a), int(b - a)))
        for s in copies:
            slow += s.on_batch(rows)
    key = lambda s: (s.ts, s.symbol, s.strategy, int(s.direction))  # noqa: E731
    slow_k = sorted(map(key, slow))
    fast_k = sorted(key(s) for s in signals if s.ts <= last)
    if slow_k != fast_k:
        diff = sorted(set(slow_k) ^ set(fast_k))
        first = diff[0] if diff else (slow_k + fast_k)[0]
        raise LookAheadError(
            f"strategy {first[2]!r} looks ahead: its signal for {first[1]} at ts={first[0]} differs when rows are "
            f"fed one timestamp at a time ({len(slow_k)} signals) versus in micro-batches ({len(fast_k)}): a "
            f"strategy may only use the row it decides on and earlier rows")


def long_only(signals: list[Signal]) -> list[Signal]:
    """Short signals become flat (close a long, never open a short)."""
    return [replace(s, direction=Direction.FLAT) if s.direction is Direction.SHORT else s for s in signals]
