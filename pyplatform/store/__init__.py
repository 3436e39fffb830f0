"""The history store: ticks, bars and factor values over years, behind one small interface.

:func:`pyplatform.backends.open_store` returns the configured backend: the embedded Parquet +
DuckDB store by default, or the DolphinDB store when the configured backend is a
``dolphindb://`` URI (the factory sits above this package because the DolphinDB store is
built on it). Both answer ``write``, ``read``, ``cross_section``, ``resample``, ``asof_join``,
``symbols`` and ``instruments`` with the same shapes (see ``docs/history.md``).
"""

from __future__ import annotations

from typing import Any, Protocol

from pyplatform.store.embedded import EmbeddedStore
from pyplatform.store.tables import TABLES, TableSpec, table_spec

__all__ = ["HistoryStore", "EmbeddedStore", "TABLES", "TableSpec", "table_spec"]


class HistoryStore(Protocol):
    """What every history backend answers (frames are indexed by (datetime, symbol))."""

    def write(self, table: str, data: Any) -> int: ...
    def read(self, table: str, symbols=None, start=None, end=None, columns=None, as_arrow: bool = False): ...
    def cross_section(self, table: str, at=None, day=None, symbols=None, columns=None, as_arrow: bool = False): ...
    def resample(self, source_table: str, freq: str, symbols=None, start=None, end=None, as_arrow: bool = False): ...
    def asof_join(self, left, right_table: str, columns=None, tolerance=None, as_arrow: bool = False): ...
    def symbols(self, table: str) -> list[str]: ...
    def instruments(self): ...
    def write_instruments(self, instruments) -> int: ...
