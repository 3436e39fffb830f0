"""Between user-facing Arrow tables and the on-disk Parquet layout (see :mod:`.tables`)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pyplatform.domain.instruments import PRICE_DECIMALS, asset_class_of
from pyplatform.store.tables import TableSpec

__all__ = ["to_storage", "select_sql", "value_exprs", "storage_schema", "parquet_options", "scale_divisors"]

_FINE_DECIMALS = 2  # averaged prices (vwap) keep two more decimals than the price
_FINE = 10**_FINE_DECIMALS
_VOLUME_DECIMALS = 8
_MAX_INT = 2.0**62  # keep scaled integers (and their deltas) inside int64


def _needed_decimals(values: np.ndarray, cap: np.ndarray, offset: int) -> np.ndarray:
    """Per row: fewest decimals (<= cap + offset, int64-safe) that represent the value, minus ``offset``.

    Vectorised over the rows still undecided at each number of decimals (at most ~10 passes
    over shrinking subsets).
    """
    need = cap + offset
    todo = np.flatnonzero(np.isfinite(values))
    need = need.copy()
    need[~np.isfinite(values)] = offset
    k = 0
    while todo.size and k <= int(cap.max()) + offset:
        x = values[todo] * (10.0**k)
        done = (np.abs(x - np.rint(x)) <= 1e-9 + np.abs(x) * 4e-16) | (np.abs(x) * 10.0 >= _MAX_INT) \
            | (k >= need[todo])
        need[todo[done]] = np.minimum(k, need[todo[done]])
        todo = todo[~done]
        k += 1
    return need - offset


def _groups(spec: TableSpec) -> list[tuple[str, list[tuple[str, int]], str]]:
    """(divisor column, [(value column, extra decimals)], cap kind) for each scaled group."""
    out = []
    if spec.prices or spec.fine_prices:
        out.append(("px_div", [(c, 0) for c in spec.prices] + [(c, _FINE_DECIMALS) for c in spec.fine_prices],
                    "price"))
    if spec.volumes:
        out.append(("vol_div", [(c, 0) for c in spec.volumes], "volume"))
    return out


def scale_divisors(table: pa.Table, columns: list[tuple[str, int]], cap_kind: str) -> np.ndarray:
    """``10**d`` per row: the fewest decimals that hold every value of the row's symbol in ``columns``.

    The cap is the asset class's precision for prices (stocks 2, forex 5, crypto 8) and 8 for
    volumes; a symbol whose values need fewer (BTC quoted in cents, whole share volumes) is
    stored with fewer, which keeps its integers and their deltas small. ``table`` must be
    sorted by symbol. Values finer than the cap are rounded to it (documented policy).

    Raises
    ------
    ValueError
        If a symbol has no known region suffix (from :func:`asset_class_of`).
    """
    symbols = table.column("symbol")
    enc = pc.dictionary_encode(symbols)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    codes = enc.indices.to_numpy(zero_copy_only=False)
    if cap_kind == "price":
        cap = np.array([PRICE_DECIMALS[asset_class_of(s)] for s in enc.dictionary.to_pylist()], dtype=np.int64)[codes]
    else:
        cap = np.full(len(codes), _VOLUME_DECIMALS, dtype=np.int64)
    need = np.zeros(len(codes), dtype=np.int64)
    for name, off in columns:
        vals = np.ascontiguousarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)
        np.maximum(need, _needed_decimals(vals, cap, off), out=need)
    if len(codes):
        starts = np.flatnonzero(np.diff(codes, prepend=codes[0] - 1) != 0)
        need = np.repeat(np.maximum.reduceat(need, starts), np.diff(np.append(starts, len(codes))))
    return (10 ** need).astype(np.int64)


def storage_schema(spec: TableSpec) -> pa.Schema:
    fields = [pa.field("ts", pa.timestamp("ns"), nullable=False), pa.field("symbol", pa.string(), nullable=False)]
    if spec.has_factor:
        fields.append(pa.field("factor", pa.string(), nullable=False))
    scaled = set()
    for div, cols, _ in _groups(spec):
        fields.append(pa.field(div, pa.int64(), nullable=False))
        scaled.update(c for c, _ in cols)
    for name, typ in spec.columns:
        fields.append(pa.field(name, pa.int64() if name in scaled else typ))
    return pa.schema(fields)


def to_storage(spec: TableSpec, table: pa.Table) -> pa.Table:
    """A canonical table (``ts`` int64, float prices), sorted by symbol, in the on-disk schema."""
    cols: dict[str, pa.Array] = {
        "ts": table.column("ts").cast(pa.int64()).cast(pa.timestamp("ns")),
        "symbol": table.column("symbol"),
    }
    if spec.has_factor:
        cols["factor"] = table.column("factor")
    scale_of: dict[str, np.ndarray] = {}
    for div_name, members, cap_kind in _groups(spec):
        div = scale_divisors(table, members, cap_kind)
        cols[div_name] = pa.array(div)
        for name, off in members:
            scale_of[name] = div * (10**off)
    for name, typ in spec.columns:
        col = table.column(name)
        if name in scale_of:
            vals = col.to_numpy(zero_copy_only=False).astype(np.float64)
            mask = np.isnan(vals)
            ints = np.rint(vals * scale_of[name])
            ints[mask] = 0
            cols[name] = pa.array(ints.astype(np.int64), mask=mask if mask.any() else None)
        else:
            cols[name] = col.cast(typ)
    return pa.table(cols, schema=storage_schema(spec))


def select_sql(spec: TableSpec, columns: list[str] | None, ts_as: str = "datetime") -> list[str]:
    """SELECT expressions turning stored columns back into user-facing ones.

    ``ts`` comes out as a TIMESTAMP_NS named ``ts_as``; prices as DOUBLE (an IEEE division of the
    stored integer by a power of ten, which is the double nearest the decimal price).
    """
    out = [f"ts AS {ts_as}", "symbol"]
    if spec.has_factor:
        out.append("factor")
    return out + [f"{expr} AS {name}" for expr, name in value_exprs(spec, columns)]


def value_exprs(spec: TableSpec, columns: list[str] | None) -> list[tuple[str, str]]:
    """(SQL expression over stored columns, output name) for each requested value column.

    Raises
    ------
    ValueError
        Naming a column the table does not have.
    """
    divisor = {}
    for div, members, _ in _groups(spec):
        for name, off in members:
            divisor[name] = div if off == 0 else f"({div} * {10**off})"
    out = []
    for name in columns if columns is not None else spec.value_names:
        if name in divisor:
            out.append((f"{name} / {divisor[name]}", name))
        elif name in spec.value_names:
            out.append((name, name))
        else:
            raise ValueError(f"table {spec.name!r} has no column {name!r}: expected some of {spec.value_names}")
    return out


def parquet_options(spec: TableSpec, row_group_size: int) -> dict:
    """``pyarrow.parquet.write_table`` options.

    zstd; dictionary-encoded symbols and divisors (runs cost nothing); DELTA_BINARY_PACKED for
    time and prices (small steps); BYTE_STREAM_SPLIT for volumes, counts and floats (noisy
    values whose high bytes repeat).
    """
    schema = storage_schema(spec)
    dict_cols = [n for n in ("symbol", "factor", "px_div", "vol_div", "side") if n in schema.names]
    encodings = {}
    for f in schema:
        if f.name in dict_cols:
            continue
        if f.name == "ts" or f.name in spec.prices or f.name in spec.fine_prices:
            encodings[f.name] = "DELTA_BINARY_PACKED"
        else:
            encodings[f.name] = "BYTE_STREAM_SPLIT"
    return dict(
        compression="zstd", compression_level=3, row_group_size=row_group_size,
        use_dictionary=dict_cols, column_encoding=encodings,
        write_statistics=True, data_page_version="2.0",
    )
