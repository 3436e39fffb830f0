"""Turning any accepted batch into one Arrow record batch of a table's schema.

Validation happens before anything is written, so a bad batch is rejected whole and the
error names the column (and, where Arrow reports it, the value) that did not fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import pyarrow as pa

from pyplatform.stream.errors import SchemaError

__all__ = ["coerce_batch", "conform_batch", "is_optional", "OFFSET_COLUMN", "ADDED_AT_KEY", "OPTIONAL_KEY"]

#: Name of the column that :meth:`StreamTable.read` and ``poll`` add to every row.
OFFSET_COLUMN = "offset"
#: Field metadata key of a column added by schema evolution: the first offset that has it.
ADDED_AT_KEY = b"pyplatform.added_at"
#: Field metadata key marking a nullable column that appends may omit (filled with nulls).
OPTIONAL_KEY = b"pyplatform.optional"


def is_optional(field: pa.Field) -> bool:
    """Whether appends may omit ``field``: nullable and added later or marked optional.

    Plain nullable columns stay required, so a batch that forgot ``price`` is still
    refused; only columns the table was told may be absent (an added factor column, or
    one marked with :data:`OPTIONAL_KEY`) are filled with nulls.
    """
    md = field.metadata or {}
    return field.nullable and (ADDED_AT_KEY in md or OPTIONAL_KEY in md)


@lru_cache(maxsize=256)
def _non_nullable(schema: pa.Schema) -> tuple[str, ...]:
    return tuple(f.name for f in schema if not f.nullable)


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` (of an earlier version of ``schema``) with the columns it lacks as nulls.

    Used for rows written before columns were added: they read back under the current
    schema, the new columns null. Columns are matched by name.
    """
    if batch.schema.equals(schema):
        return batch
    n = batch.num_rows
    names = batch.schema.names
    arrays = [batch.column(names.index(f.name)) if f.name in names else pa.nulls(n, f.type) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _from_mapping(batch: Mapping, schema: pa.Schema) -> pa.Table:
    arrays, names, length = [], [], None
    for name, values in batch.items():
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            arr = values
        else:
            field = schema.field(name) if name in schema.names else None
            np_values = np.asarray(values)
            if np_values.ndim != 1:
                raise SchemaError(f"column {name!r}: expected a 1-D array, got shape {np_values.shape}")
            # NaN in a float column stays NaN (a value); only object columns (strings from
            # pandas) read NaN/None as null, as pandas means it there.
            from_pandas = np_values.dtype == object
            try:
                # Arrow converts straight to the target type where it can (strings, numbers),
                # which avoids a second pass and gives value-level messages on failure.
                arr = pa.array(np_values, type=field.type if field is not None else None, from_pandas=from_pandas)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError):
                try:
                    arr = pa.array(np_values, from_pandas=from_pandas)
                except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                    raise SchemaError(f"column {name!r}: cannot convert values to Arrow: {exc}") from None
        if length is None:
            length = len(arr)
        elif len(arr) != length:
            raise SchemaError(
                f"column {name!r} has {len(arr)} rows but column {names[0]!r} has {length}: "
                "all columns of a batch must have the same length"
            )
        arrays.append(arr)
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)


def _as_table(batch, schema: pa.Schema) -> pa.Table:
    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, pa.RecordBatch):
        return pa.Table.from_batches([batch])
    if isinstance(batch, Mapping):
        return _from_mapping(batch, schema)
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(batch, pd.DataFrame):
        return _from_mapping({str(c): batch[c].to_numpy() for c in batch.columns}, schema)
    raise TypeError(
        f"unsupported batch type {type(batch).__name__}: expected a pyarrow RecordBatch/Table, "
        "a dict of NumPy arrays or a pandas DataFrame"
    )


def coerce_batch(batch, schema: pa.Schema, table_name: str = "") -> pa.RecordBatch:
    """Validate ``batch`` against ``schema`` and return it as one record batch.

    Columns are matched by name (order does not matter); each is cast safely to the
    schema's type (an int column into a float64 field is fine, 1.5 into int64 is not).

    Raises
    ------
    SchemaError
        A required column is missing (columns :func:`is_optional` says may be omitted
        become nulls), a column is unexpected, of the wrong length, not convertible, or null in
        a non-nullable field. The message names the column.
    TypeError
        ``batch`` is not a supported container.
    """
    where = f"stream table {table_name!r}: " if table_name else ""
    if isinstance(batch, (pa.RecordBatch, pa.Table)) and batch.schema.equals(schema):
        # Fast path for producers that already build batches of the table's schema: only
        # the non-nullable check is left to do.
        if all(batch.column(name).null_count == 0 for name in _non_nullable(schema)):
            if isinstance(batch, pa.RecordBatch):
                return batch
            batches = batch.combine_chunks().to_batches()
            return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=schema)
    table = _as_table(batch, schema)
    names = table.schema.names
    wanted = schema.names
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise SchemaError(f"{where}duplicate column(s) {dup}")
    missing = [n for n in wanted if n not in names and not is_optional(schema.field(n))]
    extra = [n for n in names if n not in wanted]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {missing}")
        if extra:
            hint = " (drop the 'offset' column that read()/poll() add)" if OFFSET_COLUMN in extra else ""
            parts.append(f"unexpected column(s) {extra}{hint}")
        raise SchemaError(f"{where}" + "; ".join(parts) + f"; expected {schema.names}")
    columns = []
    for field in schema:
        if field.name not in names:  # an optional column the batch omitted: null, by policy
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        col = table.column(field.name)
        if col.type != field.type:
            try:
                col = col.cast(field.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise SchemaError(
                    f"{where}column {field.name!r}: cannot convert {col.type} to {field.type}: {exc}"
                ) from None
        if not field.nullable and col.null_count:
            first = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise SchemaError(f"{where}column {field.name!r} is not nullable but row {first} is null")
        columns.append(col)
    out = pa.Table.from_arrays(columns, schema=schema).combine_chunks()
    batches = out.to_batches()
    if not batches:
        return pa.RecordBatch.from_pylist([], schema=schema)
    return batches[0]
