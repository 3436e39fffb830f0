"""Column schemas shared by stream tables, the history store and the wire.

These are contracts: every backend stores and returns exactly these columns.
A batch is columnar: a ``pyarrow.RecordBatch``/``Table`` or a ``dict`` of NumPy arrays.
``ts`` is int64 nanoseconds UTC in stream tables and on the wire; the history store
returns it as ``datetime`` (datetime64[ns], UTC, tz-naive) in the index of frames.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["TICKS", "BARS", "QUOTES", "SIGNALS", "factor_schema", "to_columns"]

TICKS = pa.schema([
    ("ts", pa.int64()), ("symbol", pa.string()), ("price", pa.float64()),
    ("volume", pa.float64()), ("side", pa.int8()), ("bid", pa.float64()), ("ask", pa.float64()),
])

BARS = pa.schema([
    ("ts", pa.int64()), ("symbol", pa.string()), ("open", pa.float64()), ("high", pa.float64()),
    ("low", pa.float64()), ("close", pa.float64()), ("volume", pa.float64()),
    ("vwap", pa.float64()), ("trades", pa.int64()),
])

QUOTES = pa.schema([
    ("ts", pa.int64()), ("symbol", pa.string()), ("last", pa.float64()), ("open", pa.float64()),
    ("high", pa.float64()), ("low", pa.float64()), ("volume", pa.float64()),
    ("turnover", pa.float64()), ("bid", pa.float64()), ("ask", pa.float64()),
    ("bid_size", pa.float64()), ("ask_size", pa.float64()),
])

SIGNALS = pa.schema([
    ("ts", pa.int64()), ("symbol", pa.string()), ("strategy", pa.string()),
    ("direction", pa.int8()), ("strength", pa.float64()), ("reason", pa.string()),
    ("factors", pa.string()),  # JSON object of the factor values behind the signal
])


def factor_schema(names: list[str]) -> pa.Schema:
    """Schema of a factor output table: ts, symbol, one float64 column per factor."""
    return pa.schema([("ts", pa.int64()), ("symbol", pa.string())] + [(n, pa.float64()) for n in names])


def to_columns(batch) -> dict[str, np.ndarray]:
    """Any supported batch (Arrow batch/table, pandas frame, dict of arrays) as a dict of NumPy arrays."""
    if isinstance(batch, dict):
        return {k: np.asarray(v) for k, v in batch.items()}
    if isinstance(batch, (pa.RecordBatch, pa.Table)):
        return {name: batch.column(i).to_numpy(zero_copy_only=False) for i, name in enumerate(batch.schema.names)}
    import pandas as pd

    if isinstance(batch, pd.DataFrame):
        return {c: batch[c].to_numpy() for c in batch.columns}
    raise TypeError(f"unsupported batch type {type(batch).__name__}: expected Arrow, pandas or dict of arrays")
