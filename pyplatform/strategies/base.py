"""Strategies: configuration over factor expressions plus a small class for the logic.

A strategy turns factor rows (``ts``, ``symbol``, factor columns) into
:class:`~pyplatform.domain.Signal` s. The logic is a *regime* per row -- long, short, flat,
or "keep the previous one" -- computed with NumPy from that row's factor values only; a
signal fires when a symbol's regime changes. The previous regime per symbol is carried
between batches, so feeding rows one at a time or all at once gives the same signals, and
a strategy cannot look ahead: nothing in a row's decision depends on a later row.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from pyplatform.domain import Direction, Signal
from pyplatform.domain.schemas import SIGNALS, to_columns

__all__ = ["StrategyConfig", "Strategy", "KEEP", "signals_to_batch"]

#: Regime value meaning "no new information in this row: keep the previous regime".
KEEP = np.int8(2)


class StrategyConfig(BaseModel):
    """A strategy instance: which class, its name, and parameter overrides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    name: str = ""
    params: dict[str, float] = Field(default_factory=dict)
    symbols: tuple[str, ...] | None = None  # None: every symbol in the factor stream
    #: kind "rule" only: entry_long / exit_long / entry_short / exit_short expressions
    rules: dict[str, str] = Field(default_factory=dict)


class Strategy:
    """Base class: subclasses set ``KIND``, ``PARAMS``, ``FACTORS`` and implement ``regime``.

    Parameters
    ----------
    name : str, optional
        Instance name (prefix of its factor columns); defaults to ``KIND``.
    **params
        Overrides of ``PARAMS`` (unknown names are an error).
    """

    KIND: ClassVar[str] = ""
    #: Regime assumed before a symbol's first row: KEEP (no signal until a regime is known)
    #: or 0 (flat, so the first long/short regime is a signal).
    INITIAL: ClassVar[np.int8] = KEEP
    PARAMS: ClassVar[dict[str, float]] = {}
    #: factor key -> DolphinDB-style expression template with ``{param}`` placeholders
    FACTORS: ClassVar[dict[str, str]] = {}

    def __init__(self, name: str | None = None, symbols=None, **params: float) -> None:
        unknown = set(params) - set(self.PARAMS)
        if unknown:
            raise ValueError(f"strategy {self.KIND}: unknown parameter(s) {sorted(unknown)} "
                             f"(known: {sorted(self.PARAMS)})")
        self.params: dict[str, float] = {**self.PARAMS, **params}
        self.validate(self.params)
        self.name = name or self.KIND
        self.symbols = None if symbols is None else frozenset(symbols)
        self._last: dict[str, int] = {}  # symbol -> last regime (-1, 0, 1)

    # ------------------------------------------------------------------ configuration
    def validate(self, params: dict[str, float]) -> None:
        """Raise ValueError naming a bad parameter (override to add checks)."""

    def column(self, key: str) -> str:
        return f"{self.name}_{key}"

    def factors(self) -> dict[str, str]:
        """Factor column name -> expression, for the factor engine."""
        fmt = {k: (int(v) if float(v).is_integer() else v) for k, v in self.params.items()}
        return {self.column(k): t.format(**fmt) for k, t in self.FACTORS.items()}

    # ------------------------------------------------------------------ logic
    def regime(self, f: dict[str, np.ndarray]) -> np.ndarray:
        """Row-wise regime (int8: 1 long, -1 short, 0 flat, KEEP) from factor arrays keyed by FACTORS keys."""
        raise NotImplementedError

    def _regime_rows(self, f: dict[str, np.ndarray], symbols: np.ndarray) -> np.ndarray:
        """Regime per row; strategies whose regime depends on a symbol's earlier rows (the
        rule kind) override this and see the rows' symbols. Default: :meth:`regime`."""
        return self.regime(f)

    def strength(self, f: dict[str, np.ndarray]) -> np.ndarray:
        return np.ones(len(next(iter(f.values()))))

    def describe(self, prev: int, new: int, row: dict[str, float]) -> str:
        return f"{self.KIND}: regime {prev:+d} -> {new:+d}"

    # ------------------------------------------------------------------ driving
    def on_batch(self, batch) -> list[Signal]:
        """Signals from a batch of factor rows (in time order per symbol)."""
        cols = to_columns(batch)
        n = len(cols.get("ts", ()))
        if n == 0:
            return []
        missing = [c for c in (self.column(k) for k in self.FACTORS) if c not in cols]
        if missing:
            raise KeyError(f"strategy {self.name}: factor column(s) {missing} missing from the batch "
                           f"(columns: {sorted(cols)})")
        f = {k: np.asarray(cols[self.column(k)], dtype=np.float64) for k in self.FACTORS}
        ts = np.asarray(cols["ts"], dtype=np.int64)
        symbols = np.asarray(cols["symbol"]).astype(str)
        regime = np.asarray(self._regime_rows(f, symbols), dtype=np.int8)
        strength = np.asarray(self.strength(f), dtype=np.float64)
        uniq, inverse = np.unique(symbols, return_inverse=True)
        # Group rows by symbol (stable: time order kept inside a group) and forward-fill the
        # regime within each group, seeded by the regime carried from earlier batches --
        # all vectorised; a per-symbol Python loop would cost O(rows x symbols).
        order = np.argsort(inverse, kind="stable")
        code = inverse[order]
        r = regime[order]
        carry = np.array([self._last.get(sym, self.INITIAL) for sym in uniq], dtype=np.int8)
        m = len(order)
        pos = np.arange(m)
        first = np.ones(m, dtype=bool)
        first[1:] = code[1:] != code[:-1]
        start = np.maximum.accumulate(np.where(first, pos, 0))
        idx = np.maximum.accumulate(np.where(r != KEEP, pos, -1))
        after = np.where(idx >= start, r[np.maximum(idx, 0)], carry[code])
        before = np.empty_like(after)
        before[1:] = after[:-1]
        before[first] = carry[code[first]]
        change = (after != before) & (before != KEEP) & (after != KEEP)
        if self.symbols is not None:
            change &= np.isin(uniq, list(self.symbols))[code]
        last_row = np.ones(m, dtype=bool)
        last_row[:-1] = first[1:]
        for c, v in zip(code[last_row], after[last_row]):
            if v != KEEP:
                self._last[str(uniq[c])] = int(v)
        sel = np.flatnonzero(change)
        rows = order[sel]
        by_row = np.argsort(rows, kind="stable")  # signals in input-row order
        rows, prev, new = rows[by_row], before[sel][by_row].tolist(), after[sel][by_row].tolist()
        # only the (few) rows that fire become Python objects
        keys = list(self.FACTORS)
        cols_out = [self.column(k) for k in keys]
        vals = [f[k][rows].tolist() for k in keys]
        strength_h = np.clip(strength[rows], 0.0, 1.0).tolist()
        ts_h, sym_h = ts[rows].tolist(), symbols[rows].tolist()
        directions = {d: Direction(d) for d in (-1, 0, 1)}
        out = []
        for j in range(len(rows)):
            row_vals = [v[j] for v in vals]
            out.append(Signal(ts_h[j], sym_h[j], self.name, directions[new[j]], strength_h[j],
                              self.describe(prev[j], new[j], dict(zip(keys, row_vals))),
                              dict(zip(cols_out, row_vals))))
        return out

    def state(self) -> dict[str, Any]:
        """Per-symbol carried regime (for snapshots)."""
        return dict(self._last)

    def restore(self, state: dict[str, Any]) -> None:
        self._last = {str(k): int(v) for k, v in state.items()}


def signals_to_batch(signals: list[Signal]) -> pa.RecordBatch:
    """Signals as a record batch in the ``SIGNALS`` schema (factor values as JSON)."""
    def clean(d):
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}

    return pa.RecordBatch.from_pydict({
        "ts": [s.ts for s in signals],
        "symbol": [s.symbol for s in signals],
        "strategy": [s.strategy for s in signals],
        "direction": [int(s.direction) for s in signals],
        "strength": [float(s.strength) for s in signals],
        "reason": [s.reason for s in signals],
        "factors": [json.dumps(clean(s.factors), sort_keys=True) for s in signals],
    }, schema=SIGNALS)
