"""SQL fragments for DuckDB over the store's Parquet files.

Symbols and times are inlined as escaped literals rather than bound parameters so DuckDB
sees constants and pushes them into the Parquet scan (row-group skipping by statistics).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pyplatform.store.encoding import select_sql
from pyplatform.store.tables import TableSpec

__all__ = ["file_list", "where", "resample_sql", "left_table", "empty_result", "empty_right", "literal"]


def literal(text: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + str(text).replace("'", "''") + "'"


def file_list(paths: list[str]) -> str:
    return "[" + ", ".join(literal(p) for p in paths) + "]"


def ts_literal(ns: int) -> str:
    return f"make_timestamp_ns({int(ns)})"


def where(symbols: list[str] | None, lo: int | None, hi: int | None) -> str:
    """``WHERE`` for a symbol list and a half-open ns range (any part may be None)."""
    conds = []
    if symbols is not None:
        if not symbols:
            conds.append("FALSE")
        elif len(symbols) == 1:
            conds.append(f"symbol = {literal(symbols[0])}")
        else:
            conds.append(f"symbol IN ({', '.join(literal(s) for s in symbols)})")
    if lo is not None:
        conds.append(f"ts >= {ts_literal(lo)}")
    if hi is not None:
        conds.append(f"ts < {ts_literal(hi)}")
    return ("WHERE " + " AND ".join(conds)) if conds else ""


def resample_sql(spec: TableSpec, step_ns: int) -> str:
    """A query template (``{files}``, ``{where}``) computing OHLCV buckets from ``spec``'s rows."""
    bucket = f"(epoch_ns(ts) // {step_ns}) * {step_ns}"
    if spec.name == "ticks":
        inner = f"SELECT ts, symbol, price / px_div AS price, volume FROM read_parquet({{files}}) {{where}}"
        aggs = ("arg_min(price, ts) AS open, max(price) AS high, min(price) AS low, "
                "arg_max(price, ts) AS close, sum(volume) AS volume, "
                "sum(price * volume) / nullif(sum(volume), 0) AS vwap, count(*) AS trades")
    elif spec.name.startswith("bars"):
        sel = ", ".join(select_sql(spec, None, ts_as="ts"))
        inner = f"SELECT {sel} FROM read_parquet({{files}}) {{where}}"
        aggs = ("arg_min(open, ts) AS open, max(high) AS high, min(low) AS low, "
                "arg_max(close, ts) AS close, sum(volume) AS volume, "
                "sum(coalesce(vwap, close) * volume) / nullif(sum(volume), 0) AS vwap, "
                "sum(trades)::BIGINT AS trades")
    else:
        raise ValueError(f"cannot resample {spec.name!r}: only ticks and bars tables")
    return (f"SELECT make_timestamp_ns({bucket}) AS datetime, symbol, {aggs} FROM ({inner}) "
            f"GROUP BY {bucket}, symbol ORDER BY datetime, symbol")


def left_table(left) -> pa.Table:
    """The left side of an as-of join as Arrow (ts TIMESTAMP_NS, symbol, other columns, _row)."""
    if isinstance(left, pd.DataFrame):
        frame = left.reset_index() if isinstance(left.index, pd.MultiIndex) or left.index.name else left
        frame = frame.rename(columns={"datetime": "ts"})
        if "ts" not in frame or "symbol" not in frame:
            raise ValueError(f"asof_join: left needs ts/datetime and symbol columns, got {list(frame.columns)}")
        ts = frame["ts"].to_numpy()
        ts = ts.astype("datetime64[ns]") if ts.dtype.kind == "M" else ts.astype(np.int64).astype("datetime64[ns]")
        cols = {"ts": pa.array(ts), "symbol": pa.array(frame["symbol"].astype(str).to_numpy(), pa.string())}
        for c in frame.columns:
            if c not in ("ts", "symbol"):
                cols[str(c)] = pa.array(frame[c].to_numpy())
        table = pa.table(cols)
    elif isinstance(left, (pa.Table, pa.RecordBatch)):
        table = pa.table(left) if isinstance(left, pa.RecordBatch) else left
        if "datetime" in table.schema.names and "ts" not in table.schema.names:
            table = table.rename_columns(["ts" if n == "datetime" else n for n in table.schema.names])
        ts = table.column("ts")
        if not pa.types.is_timestamp(ts.type):
            ts = ts.cast(pa.int64()).cast(pa.timestamp("ns"))
        table = table.set_column(table.schema.get_field_index("ts"), "ts", ts.cast(pa.timestamp("ns")))
    else:
        raise TypeError(f"asof_join: left must be a pandas DataFrame or Arrow table, got {type(left).__name__}")
    return table.append_column("_row", pa.array(np.arange(table.num_rows, dtype=np.int64)))


def empty_result(spec: TableSpec, columns) -> pa.Table:
    names = columns if columns is not None else spec.value_names
    types = dict(spec.columns)
    fields = [("datetime", pa.timestamp("ns")), ("symbol", pa.string())]
    if spec.has_factor:
        fields.append(("factor", pa.string()))
    fields += [(n, types[n]) for n in names]
    return pa.schema(fields).empty_table()


def empty_right(spec: TableSpec, columns) -> str:
    types = dict(spec.columns)
    duck = {pa.float64(): "DOUBLE", pa.int64(): "BIGINT", pa.int8(): "TINYINT"}
    cols = ", ".join(f"NULL::{duck[types[c]]} AS {c}" for c in columns)
    return f"(SELECT NULL::TIMESTAMP_NS AS ts, NULL::VARCHAR AS symbol, {cols} WHERE FALSE)"
