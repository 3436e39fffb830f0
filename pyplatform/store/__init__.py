"""The history store: ticks, bars and factor values over years, behind one small interface.

``open_store()`` returns the configured backend: the embedded Parquet + DuckDB store by
default, or the DolphinDB store when the configured backend is a ``dolphindb://`` URI.
Both answer ``write``, ``read``, ``cross_section``, ``resample``, ``asof_join``,
``symbols`` and ``instruments`` with the same shapes (see ``docs/history.md``).
"""

from __future__ import annotations

from typing import Any, Protocol

from pyplatform.config import Settings, get_settings
from pyplatform.store.embedded import EmbeddedStore
from pyplatform.store.tables import TABLES, TableSpec, table_spec

__all__ = ["HistoryStore", "EmbeddedStore", "open_store", "TABLES", "TableSpec", "table_spec"]


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


def open_store(settings: Settings | None = None, **options: Any) -> HistoryStore:
    """The history store the configuration names.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to :func:`pyplatform.config.get_settings`. The embedded store lives in
        ``settings.data_dir / "history"``.
    **options
        Passed to the backend (for the embedded store e.g. ``row_group_size``, ``fsync``).
    """
    settings = settings or get_settings()
    backend = settings.effective_backend
    if backend.startswith("dolphindb://"):
        # Imported lazily: the DolphinDB client is an optional extra.
        from pyplatform.dolphindb.store import DolphinDBStore

        return DolphinDBStore(settings, **options)
    if "fsync" not in options:
        options["fsync"] = settings.fsync != "never"
    return EmbeddedStore(settings.path("history"), **options)
