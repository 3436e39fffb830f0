"""The stream runtime of a single factor: incremental per-symbol state, micro-batches in,
one value per input row out (the FactorEngine runs many factors the same way)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pyplatform.factors.batch import frame_layout
from pyplatform.factors.core import StreamCore
from pyplatform.factors.factor import Factor, as_factor
from pyplatform.factors.tree import Expr

__all__ = ["StreamFactor", "compile_stream", "batch_columns"]


def batch_columns(batch, needed: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray | pa.Array]:
    """Float64 input columns and the symbol column of a batch (Arrow, dict of arrays, pandas).

    Only the needed columns are converted; an Arrow symbol column stays Arrow (no per-row
    Python objects are made for it).
    """
    if isinstance(batch, (pa.RecordBatch, pa.Table)):
        names = batch.schema.names
        get = batch.column
    else:
        if isinstance(batch, pd.DataFrame) and "symbol" not in batch.columns and "symbol" in (batch.index.names or []):
            batch = batch.reset_index()
        if not isinstance(batch, (dict, pd.DataFrame)):
            raise TypeError(f"unsupported batch type {type(batch).__name__}: expected Arrow, pandas or dict of arrays")
        names = list(batch.keys()) if isinstance(batch, dict) else list(batch.columns)
        get = batch.__getitem__
    if "symbol" not in names:
        raise KeyError(f"batch has no 'symbol' column (columns: {sorted(names)})")
    out = {}
    for name in needed:
        if name not in names:
            raise KeyError(f"batch has no column {name!r} needed by the factors (columns: {sorted(names)})")
        col = _one_chunk(get(name))
        if isinstance(col, (pa.Array, pa.ChunkedArray)):
            if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type)):
                raise TypeError(f"column {name!r} must be numeric, got Arrow type {col.type}")
            arr = col.to_numpy() if isinstance(col, pa.Array) and col.null_count == 0 else \
                np.asarray(pc.fill_null(col.cast(pa.float64()), np.nan))
        else:
            arr = np.asarray(col)
        if arr.dtype != np.float64:
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"column {name!r} must be numeric, got dtype {arr.dtype}") from None
        out[name] = arr
    sym = _one_chunk(get("symbol"))
    if isinstance(sym, pa.ChunkedArray):
        sym = sym.combine_chunks()
    if isinstance(sym, pa.Array):
        if pa.types.is_dictionary(sym.type) or pa.types.is_large_string(sym.type):
            sym = sym.cast(pa.string())
        return out, sym
    return out, np.asarray(sym, dtype=object)


def _one_chunk(col):
    """A single-chunk ChunkedArray as its Array (zero-copy); anything else unchanged."""
    if isinstance(col, pa.ChunkedArray) and col.num_chunks == 1:
        return col.chunk(0)
    return col


class StreamFactor:
    """Incremental runtime of one factor (see :func:`compile_stream`)."""

    def __init__(self, expr: Factor | Expr | str) -> None:
        self.expr = as_factor(expr)
        self._core = StreamCore({"value": (self.expr, 0)})
        self._needed = list(self.expr.input_columns)

    @property
    def lookback(self) -> int:
        return self.expr.lookback

    def update(self, batch) -> np.ndarray:
        """Feed rows (in time order per symbol); return the factor value of each row."""
        cols, sym = batch_columns(batch, self._needed)
        sid = self._core.symbol_ids(sym)
        return self._core.run(cols, sid)["value"]

    def warm_up(self, history: pd.DataFrame) -> np.ndarray:
        """Feed a history frame (indexed by (datetime, symbol) or with ts/symbol columns),
        sorted by time, so the next live row continues from it."""
        order, _ = frame_layout(history)  # per symbol, in time order: all the state depends on
        frame = history.reset_index() if "symbol" not in history.columns else history
        return self.update(frame.iloc[order])


def compile_stream(expr: Factor | Expr | str) -> StreamFactor:
    """Compile a factor for live use.

    Parameters
    ----------
    expr : Factor, Expr or str
        A parsed factor, a tree, or text (parsed here).

    Returns
    -------
    StreamFactor
        ``update(batch) -> ndarray`` advances per-symbol state (O(1) amortised per row, one
        compiled kernel call per batch) and ``warm_up(history)`` primes it from history.
    """
    return StreamFactor(expr)
