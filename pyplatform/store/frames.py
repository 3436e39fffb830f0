"""Accepting writes in any supported shape and returning reads as pandas or Arrow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pyplatform.normalize import BadValue, NormalizationError, to_ns
from pyplatform.store.tables import TableSpec

__all__ = ["as_canonical", "to_frame"]


def _from_pandas(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    if isinstance(frame.index, pd.MultiIndex) or frame.index.name in ("datetime", "ts", "symbol"):
        frame = frame.reset_index()
    cols = {str(c): frame[c].to_numpy() for c in frame.columns}
    return cols


def as_canonical(spec: TableSpec, data) -> pa.Table:
    """A write's rows as an Arrow table in ``spec``'s user-facing schema, validated.

    Accepts a pandas frame (columns or a ``(datetime, symbol)`` index, as :meth:`read`
    returns), an Arrow table/record batch, or a dict of arrays. Time may be ``ts`` (int64 ns
    or datetime64) or ``datetime``.

    Raises
    ------
    ValueError
        For a missing required column.
    NormalizationError
        Naming each row with a missing timestamp/symbol or a negative/NaN/infinite price.
    """
    if isinstance(data, pd.DataFrame):
        cols = _from_pandas(data)
    elif isinstance(data, (pa.Table, pa.RecordBatch)):
        cols = {n: data.column(i) for i, n in enumerate(data.schema.names)}
    elif isinstance(data, dict):
        cols = dict(data)
    else:
        raise TypeError(f"cannot write {type(data).__name__} to {spec.name!r}: expected a pandas "
                        "DataFrame, an Arrow table or a dict of arrays")
    if "ts" not in cols and "datetime" in cols:
        cols["ts"] = cols.pop("datetime")
    schema = spec.arrow_schema()
    missing = [n for n in ["ts", "symbol", *(["factor"] if spec.has_factor else []), *spec.required]
               if n not in cols]
    if missing:
        raise ValueError(f"{spec.name}: missing required column(s) {missing}; got {sorted(cols)}")
    n = len(cols["ts"])
    ts = cols["ts"]
    if isinstance(ts, (pa.Array, pa.ChunkedArray)):
        if pa.types.is_timestamp(ts.type):
            ts = ts.cast(pa.timestamp("ns")).cast(pa.int64())
        ts = ts.to_numpy(zero_copy_only=False)
    ts = np.asarray(ts)
    if ts.dtype.kind in "iu":
        ts_ns = ts.astype(np.int64)  # already the internal unit: no unit guessing on writes
    else:
        ts_ns = to_ns(ts, field="ts", max_future=None)
    arrays: dict[str, pa.Array] = {"ts": pa.array(ts_ns, pa.int64())}
    errors: list[BadValue] = []
    for name in ["symbol", "factor"] if spec.has_factor else ["symbol"]:
        arr = pa.array(np.asarray(cols[name], dtype=object)) if not isinstance(cols[name], (pa.Array, pa.ChunkedArray)) \
            else cols[name]
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(pa.string())
        arr = arr.cast(pa.string())
        nulls = np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))
        errors += [BadValue(name, int(r), None, "missing") for r in nulls[:100]]
        arrays[name] = arr
    for name, typ in spec.columns:
        if name not in cols:
            arrays[name] = pa.nulls(n, typ) if typ == pa.float64() else pa.array(np.zeros(n), typ)
            continue
        col = cols[name]
        if isinstance(col, (pa.Array, pa.ChunkedArray)):
            col = col.to_numpy(zero_copy_only=False)
        col = np.asarray(col)
        if pa.types.is_floating(typ):
            vals = col.astype(np.float64)
            nan = np.isnan(vals)
            if name in spec.required and (name in spec.prices or name in spec.volumes):
                # factor values may be NULL (warm-up); a bar without a price is an error
                errors += [BadValue(name, int(r), float(vals[r]), "missing or NaN") for r in np.flatnonzero(nan)[:100]]
            if name in spec.prices or name in spec.fine_prices or name in spec.volumes:
                errors += [BadValue(name, int(r), float(vals[r]), "negative") for r in np.flatnonzero(vals < 0)[:100]]
                errors += [BadValue(name, int(r), float(vals[r]), "infinite") for r in np.flatnonzero(np.isinf(vals))[:100]]
            arrays[name] = pa.array(vals, typ, from_pandas=True)
        else:
            arrays[name] = pa.array(col).cast(typ)
    if errors:
        raise NormalizationError(sorted(errors, key=lambda e: e.row))
    return pa.table(arrays, schema=schema)


def _values_frame(values: pa.Table) -> pd.DataFrame:
    """The value columns as a DataFrame; columns without nulls go over as NumPy arrays.

    A column of many chunks (one per file a query read) is concatenated once by ``to_numpy``;
    ``pa.Table.to_pandas`` costs several times that on such tables. Columns with nulls take
    Arrow's conversion (NaN for floats, float for nullable integers), as before.
    """
    if values.num_columns == 0 or any(values.column(i).null_count for i in range(values.num_columns)) \
            or not all(pa.types.is_floating(t) or pa.types.is_integer(t) for t in values.schema.types):
        return values.to_pandas(split_blocks=True)
    return pd.DataFrame({name: values.column(name).to_numpy() for name in values.schema.names}, copy=False)


def to_frame(table: pa.Table, index: bool = True) -> pd.DataFrame:
    """An Arrow result (``datetime``, ``symbol``, ...) as pandas indexed by (datetime, symbol).

    The MultiIndex is built from codes without hashing the timestamps: results come sorted
    by time, so a timestamp's code is the count of changes before it.
    """
    if not index:
        return table.to_pandas()
    values = table.drop_columns([c for c in ("datetime", "symbol") if c in table.schema.names])
    frame = _values_frame(values)
    dt = table.column("datetime").cast(pa.timestamp("ns")).to_numpy().astype("datetime64[ns]", copy=False)
    n = len(dt)
    if n and (dt[1:] > dt[:-1]).all():
        # every time distinct (one symbol's history): the times are the level, codes 0..n-1
        dt_codes = np.arange(n, dtype=np.int64)
        dt_levels = pd.DatetimeIndex(dt, name="datetime", copy=False)
    elif n and (dt[1:] >= dt[:-1]).all():
        change = np.empty(n, dtype=bool)
        change[0] = True
        np.not_equal(dt[1:], dt[:-1], out=change[1:])
        dt_codes = np.cumsum(change) - 1
        dt_levels = pd.DatetimeIndex(dt[change], name="datetime")
    else:
        dt_codes, dt_levels = pd.factorize(dt)
        dt_levels = pd.DatetimeIndex(dt_levels)
    sym = table.column("symbol")
    if not pa.types.is_dictionary(sym.type):
        sym = pc.dictionary_encode(sym)
    if isinstance(sym, pa.ChunkedArray):
        sym = sym.unify_dictionaries().combine_chunks() if sym.num_chunks \
            else pa.array([], pa.dictionary(pa.int32(), pa.string()))
    names = np.asarray(sym.dictionary.to_pylist(), dtype=object)
    order = np.argsort(names)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    sym_codes = rank[sym.indices.to_numpy(zero_copy_only=False).astype(np.int64)] if n else np.zeros(0, np.int64)
    frame.index = pd.MultiIndex(levels=[dt_levels, pd.Index(names[order], dtype=object)],
                                codes=[dt_codes, sym_codes], names=["datetime", "symbol"], verify_integrity=False)
    return frame


def ts_ns(value) -> int | None:
    """A query bound (int ns, datetime-like, ISO text; zoned values converted to UTC) as int64 ns."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    t = pd.Timestamp(value)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return int(t.as_unit("ns").value)


def symbol_list(symbols) -> list[str] | None:
    """``None`` (all symbols), one symbol, or an iterable of symbols as a list of str."""
    if symbols is None:
        return None
    if isinstance(symbols, str):
        return [symbols]
    return [str(s) for s in symbols]
