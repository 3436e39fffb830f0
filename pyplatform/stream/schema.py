"""Schema evolution of a stream table: what a reopened or extended table's schema becomes.

A table's schema only grows: nullable columns are appended at the end, each stamped with
the offset of the first row that may hold it (``added_at`` in the field metadata, which the
log reads to decode older frames). These functions decide the new schema; the table applies
it under its lock (log first, then ``schema.arrow``, then the memory window).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pyplatform.stream.coerce import ADDED_AT_KEY, OFFSET_COLUMN, is_optional
from pyplatform.stream.errors import SchemaError
from pyplatform.stream.log import added_at, read_schema, write_schema

__all__ = ["reconcile", "open_schema", "new_fields", "extend", "repair_added_at"]


def reconcile(name: str, directory: Path | None, stored: pa.Schema, passed: pa.Schema) -> list[pa.Field]:
    """Columns to add when a table is reopened with ``passed`` but was stored as ``stored``.

    Accepted differences are the ones schema evolution makes: the stored table has
    columns added since (``passed`` is what the creator still asks for), or ``passed``
    asks for new nullable columns. Anything else (a type change, a missing required
    column) is an error naming both schemas.

    Raises
    ------
    SchemaError
        The schemas differ in any other way.
    """
    def mismatch(why: str) -> SchemaError:
        return SchemaError(f"stream table {name!r} in {directory} was created with schema {stored} "
                           f"which differs from the schema passed now {passed}: {why}")

    for f in passed:
        if f.name in stored.names and stored.field(f.name).type != f.type:
            raise mismatch(f"column {f.name!r} is {stored.field(f.name).type} on disk, {f.type} now")
    gone = [f.name for f in stored if f.name not in passed.names and not is_optional(f)]
    if gone:
        raise mismatch(f"stored column(s) {gone} are not in the schema passed now")
    new = [f for f in passed if f.name not in stored.names]
    if any(not f.nullable for f in new):
        raise mismatch(f"new column(s) {[f.name for f in new if not f.nullable]} are not nullable")
    return new


def open_schema(name: str, directory: Path | None, schema: pa.Schema | None) -> tuple[pa.Schema, list[pa.Field]]:
    """The schema a table opens with, and the columns a reopen with ``schema`` adds.

    A persisted table keeps its stored schema (written now if the folder is new); a
    ``schema`` passed at reopen may only differ by evolution (see :func:`reconcile`).

    Raises
    ------
    ValueError
        No schema is stored or passed.
    SchemaError
        ``schema`` conflicts with the stored one, or uses the reserved ``offset`` column.
    """
    evolve: list[pa.Field] = []
    if directory is not None:
        stored = read_schema(directory)
        if schema is None and stored is None:
            raise ValueError(f"stream table {name!r} has no stored schema in {directory}: pass schema=")
        if schema is not None and stored is not None and not stored.equals(schema):
            evolve = reconcile(name, directory, stored, schema)
        if stored is None:
            write_schema(directory, schema)
        else:
            schema = stored
    if schema is None:
        raise ValueError(f"stream table {name!r}: schema is required for an in-memory table")
    if OFFSET_COLUMN in schema.names:
        raise SchemaError(f"stream table {name!r}: column name {OFFSET_COLUMN!r} is reserved for row offsets")
    return schema, evolve


def new_fields(name: str, fields) -> list[pa.Field]:
    """``fields`` (Fields or (name, type) pairs) checked as columns to add to table ``name``.

    Raises
    ------
    SchemaError
        A field is not nullable (earlier rows have no value), is named ``offset``, or is
        listed twice.
    """
    wanted: list[pa.Field] = []
    for f in fields:
        f = f if isinstance(f, pa.Field) else pa.field(*f)
        if f.name == OFFSET_COLUMN:
            raise SchemaError(f"stream table {name!r}: column name {OFFSET_COLUMN!r} is reserved for row offsets")
        if not f.nullable:
            raise SchemaError(f"stream table {name!r}: added column {f.name!r} must be nullable "
                              "(rows appended before it have no value)")
        if any(w.name == f.name for w in wanted):
            raise SchemaError(f"stream table {name!r}: column {f.name!r} is listed twice")
        wanted.append(f)
    return wanted


def extend(name: str, schema: pa.Schema, wanted: list[pa.Field], at: int) -> tuple[pa.Schema, list[pa.Field]]:
    """``schema`` with the ``wanted`` columns it lacks appended, stamped as added at offset ``at``.

    Returns the new schema and the fields actually added (a column that exists with the same
    type is skipped; none added returns ``schema`` itself).

    Raises
    ------
    SchemaError
        A wanted column exists with another type.
    """
    added: list[pa.Field] = []
    for f in wanted:
        if f.name in schema.names:
            have = schema.field(f.name)
            if have.type != f.type:
                raise SchemaError(f"stream table {name!r}: column {f.name!r} exists as {have.type}, "
                                  f"cannot add it as {f.type}")
            continue
        added.append(f.with_metadata({**(f.metadata or {}), ADDED_AT_KEY: str(at).encode()}))
    if not added:
        return schema, []
    return pa.schema(list(schema) + added, metadata=schema.metadata), added


def repair_added_at(schema: pa.Schema, next_offset: int) -> pa.Schema | None:
    """``schema`` with every column stamped beyond ``next_offset`` moved to start there, or
    None when none is.

    ``add_columns`` fsyncs the log before writing the schema, so on disk no evolved column
    starts beyond the last row. If one does (the log was cut by hand, or lost un-fsynced
    rows under ``fsync="never"``), no frame holds it yet: it starts at the next row instead,
    which keeps every frame decodable.
    """
    late = [f for f in schema if added_at(f) > next_offset]
    if not late:
        return None
    stamp = str(next_offset).encode()
    return pa.schema([f.with_metadata({**(f.metadata or {}), ADDED_AT_KEY: stamp}) if f in late else f
                      for f in schema], metadata=schema.metadata)
