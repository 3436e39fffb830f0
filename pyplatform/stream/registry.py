"""An in-process registry of stream tables, shared by services of one process by name.

Not a global: create one :class:`StreamTables` and pass it to whatever needs tables.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa

from pyplatform.clock import Clock
from pyplatform.stream.errors import SchemaError
from pyplatform.stream.options import TableOptions
from pyplatform.stream.schema import reconcile
from pyplatform.stream.table import StreamTable

__all__ = ["StreamTables"]


class StreamTables:
    """Tables by name under one directory (or all in memory when ``directory`` is None).

    Parameters
    ----------
    directory : path, optional
        Parent folder of every table's log (e.g. ``settings.path("stream")``).
    clock : Clock
        The clock of every table created here (keyword, required; see :class:`StreamTable`).
    options : TableOptions, optional
        Defaults for tables created here; ``get_table(..., **overrides)`` refines them.
    """

    def __init__(self, directory: str | Path | None = None, *, clock: Clock,
                 options: TableOptions | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.options = options or TableOptions()
        self.clock = clock
        self._tables: dict[str, StreamTable] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings=None, clock: Clock | None = None, **options) -> StreamTables:
        """Tables under ``settings.path("stream")`` with the configured fsync policy.

        A builder at the edge: ``clock`` defaults to the live clock here (and only here).
        ``options`` are further :class:`TableOptions` fields (e.g. ``retention_age_s``).
        """
        from pyplatform.clock import LiveClock
        from pyplatform.config import get_settings

        settings = settings or get_settings()
        return cls(settings.path("stream"), clock=clock if clock is not None else LiveClock(),
                   options=TableOptions(fsync=settings.fsync, **options))

    def get_table(self, name: str, schema: pa.Schema | None = None, **overrides) -> StreamTable:
        """The table ``name``: already open, reopened from disk, or created with ``schema``.

        Raises
        ------
        KeyError
            It does not exist and no schema was given.
        SchemaError
            It exists with a different schema.
        """
        with self._lock:
            table = self._tables.get(name)
            if table is not None:
                if schema is not None and not table.schema.equals(schema):
                    # The differences schema evolution makes (columns added since, or new
                    # nullable ones asked for) are fine; anything else is an error.
                    try:
                        new = reconcile(name, self.directory, table.schema, schema)
                    except SchemaError:
                        raise SchemaError(f"stream table {name!r} exists with schema {table.schema}, not {schema}") from None
                    if new:
                        table.add_columns(new)
                return table
            on_disk = self.directory is not None and (self.directory / name / "schema.arrow").exists()
            if schema is None and not on_disk:
                raise KeyError(f"no stream table {name!r} (known: {sorted(self._tables)}); pass schema= to create it")
            table = StreamTable(name, schema, self.directory, options=self.options, clock=self.clock, **overrides)
            self._tables[name] = table
            return table

    def names(self) -> list[str]:
        """Names of the open tables."""
        with self._lock:
            return sorted(self._tables)

    def __contains__(self, name: str) -> bool:
        with self._lock:
            return name in self._tables

    def close(self) -> None:
        """Close every table."""
        with self._lock:
            tables = list(self._tables.values())
            self._tables.clear()
        for table in tables:
            table.close()

    def __enter__(self) -> StreamTables:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
