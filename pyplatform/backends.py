"""Which backend answers the history store: the factory above ``store/`` and ``dolphindb/``.

The DolphinDB store is built on the embedded store's pieces (the write validation in
:mod:`pyplatform.store.frames`, the table specs, the embedded instruments file), so
``dolphindb`` depends on ``store``. The choice between them therefore lives here, above
both, rather than in ``store/__init__.py``, which would make the two packages import each
other.
"""

from __future__ import annotations

from typing import Any

from pyplatform.config import Settings, get_settings
from pyplatform.store import EmbeddedStore, HistoryStore

__all__ = ["open_store"]


def open_store(settings: Settings | None = None, **options: Any) -> HistoryStore:
    """The history store the configuration names.

    The embedded Parquet + DuckDB store by default, or the DolphinDB store when the
    configured backend is a ``dolphindb://`` URI. Both answer the calls of
    :class:`pyplatform.store.HistoryStore` with the same shapes (see ``docs/history.md``).

    Parameters
    ----------
    settings : Settings, optional
        Defaults to :func:`pyplatform.config.get_settings`. The embedded store lives in
        ``settings.data_dir / "history"``.
    **options
        Passed to the backend (for the embedded store e.g. ``row_group_size``, ``fsync``).

    Returns
    -------
    HistoryStore
        :class:`~pyplatform.store.EmbeddedStore` or
        :class:`~pyplatform.dolphindb.store.DolphinDBStore`.
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
