"""The embedded history store: Hive-partitioned Parquet (zstd) under a directory, queried with DuckDB.

Layout (one directory per table)::

    <root>/<table>/_manifest.json              the visible files (see :mod:`.manifest`)
    <root>/<table>/.writer.lock                one writer at a time (see :mod:`.locking`)
    <root>/<table>/year=2024/month=03/seg-<uuid>.parquet   (bars_1d: year=2024/seg-<uuid>.parquet)
    <root>/<table>/year=2023/seg-<uuid>.parquet            a closed year rolled up by compact()

Inside each month partition rows are sorted by (symbol, ts) and cut into small row groups,
so both query shapes are cheap: one symbol over many years touches one small run of row
groups per month (DuckDB skips the rest by their symbol min/max statistics), and all symbols
on one day touch one row group run per symbol in a single month file (skipped by ts
statistics). A date-only layout would make the first query read every row of every file.

Guarantees:

- **Idempotent appends.** The key is (symbol, ts) ((symbol, factor, ts) for factors). Rows of a
  write whose keys already exist replace the stored ones, so writing the same rows twice
  leaves one copy. A write that cannot collide with stored keys (checked by ts range, then by
  a key semi-join) is added as a new segment; otherwise the month is rewritten merged.
- **Crash safety.** Files are written under a temporary name, fsynced, renamed, and only then
  published by an atomic manifest replace. A writer killed at any point leaves the previous
  manifest, which lists only complete files; its leftovers are deleted by the next writer.
- **Concurrent readers.** Readers take no lock: they read one manifest version and files that
  are never modified. Superseded files are deleted only after a grace period, and a reader that
  still misses one re-reads the manifest and retries.

:class:`EmbeddedStore` composes three parts that share the directory and one DuckDB
connection: :class:`~.writer.StoreWriter` (appends), :class:`~.compaction.Compactor`
(merging, rolling years up, freeing space) and :class:`~.query.StoreQuery` (reads, with the
day and symbol files).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import duckdb
import pandas as pd

from pyplatform.store.compaction import Compactor
from pyplatform.store.daycache import DayCache
from pyplatform.store.instruments import read_instruments, write_instruments
from pyplatform.store.manifest import Manifest
from pyplatform.store.query import StoreQuery
from pyplatform.store.symbolcache import SymbolCache
from pyplatform.store.writer import StoreWriter

__all__ = ["EmbeddedStore"]


class EmbeddedStore:
    """History store on local Parquet files.

    Parameters
    ----------
    root : path
        Directory holding one sub-directory per table.
    row_group_size : int
        Rows per Parquet row group (small groups let DuckDB skip more; 16k balances that
        against per-group overhead).
    max_segments : int
        Segments a month partition may collect from appends before it is compacted.
    fsync : bool
        Fsync files and directories before publishing (turn off only for throwaway data).
    grace_s : float
        Seconds a superseded file stays on disk for readers holding an older manifest.
    rollup_rows : int
        Rows held in memory at a time while :meth:`compact` merges a partition or rolls a
        year of month files up into one file (rewritten a range of symbols at a time).
    day_cache_days : int
        Days of ``bars_1m`` kept as memory-mapped day files (see :mod:`.daycache`) for
        whole-market reads of one day and "as of" snapshots; 0 turns them off.
    symbol_cache_symbols : int
        Symbols of ``bars_1m`` kept as memory-mapped symbol files (see :mod:`.symbolcache`)
        for one-symbol reads over years; 0 turns them off.
    warm_days : int
        Newest full session days of ``bars_1m`` whose day files :meth:`compact` builds at once
        (see :meth:`warm_day_files`), so the first whole-market read of the latest day is
        warm; 0 leaves every day file to be built on demand.
    """

    backend = "embedded"

    def __init__(self, root: str | os.PathLike, row_group_size: int = 16_384, max_segments: int = 8,
                 fsync: bool = True, grace_s: float = 60.0, threads: int | None = None,
                 rollup_rows: int = 2_000_000, day_cache_days: int = 4, symbol_cache_symbols: int = 4,
                 warm_days: int = 1) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(config={"threads": threads or min(4, os.cpu_count() or 1)})
        # Files are immutable once published (a rewrite gets a new name), so caching their
        # footers across queries is safe and saves re-parsing them on every warm query.
        self._con.execute("SET GLOBAL parquet_metadata_cache = true")
        _progress_off(self._con)
        self._local = threading.local()
        self.days = DayCache(self.root, day_cache_days)
        self.symbol_files = SymbolCache(self.root, symbol_cache_symbols)
        self._writer = StoreWriter(self.root, self._cursor, row_group_size, max_segments, fsync, grace_s)
        self._compactor = Compactor(self._writer, rollup_rows)
        self._query = StoreQuery(self.root, self._cursor, self.days, self.symbol_files)
        self.warm_days = int(warm_days)

    # Each part keeps the settings it uses (copied at construction), so they are read-only here.
    @property
    def row_group_size(self) -> int:
        return self._writer.row_group_size

    @property
    def max_segments(self) -> int:
        return self._writer.max_segments

    @property
    def fsync(self) -> bool:
        return self._writer.fsync

    @property
    def grace_s(self) -> float:
        return self._writer.grace_s

    @property
    def rollup_rows(self) -> int:
        return self._compactor.rollup_rows

    # ------------------------------------------------------------------ paths and metadata
    def table_dir(self, table: str) -> Path:
        """The directory of ``table`` (a known table name)."""
        return self._writer.table_dir(table)

    def manifest(self, table: str) -> Manifest:
        """The current manifest of ``table``."""
        return self._query.manifest(table)

    def symbols(self, table: str) -> list[str]:
        """Symbols with at least one row in ``table``, sorted."""
        return sorted(self.manifest(table).symbols)

    def tables(self) -> list[str]:
        """Tables written at least once."""
        return self._writer.tables()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._local.cur = self._con.cursor()
            cur.execute("SET parquet_metadata_cache = true")
            _progress_off(cur)
        return cur

    # ------------------------------------------------------------------ writing
    def write(self, table: str, data) -> int:
        """Append rows idempotently; returns the number of distinct keys written.

        Parameters
        ----------
        table : str
            ``ticks``, ``bars_1m``, ``bars_1d`` or ``factors``.
        data : pandas.DataFrame, pyarrow.Table or dict of arrays
            Columns of the table's schema (``ts`` int64 ns or datetime, or a ``(datetime,
            symbol)`` index as :meth:`read` returns). Missing optional columns are NULL.

        Raises
        ------
        ValueError, NormalizationError
            Naming the missing column or each bad row; nothing is written then.
        """
        return self._writer.write(table, data)

    # ------------------------------------------------------------------ compaction and space
    def collect_garbage(self, table: str | None = None, grace_s: float | None = 0.0) -> tuple[int, int]:
        """Delete superseded files now (not at the next write) and return (files, bytes) freed.

        Parameters
        ----------
        table : str, optional
            One table (default: every table).
        grace_s : float or None
            Keep superseded files younger than this (``None``: the store's grace period).
            ``0`` deletes them all: right for a batch job such as ``data generate`` at its
            end; a reader still holding the previous manifest re-reads it and retries.
        """
        return self._compactor.collect_garbage(table, grace_s)

    def disk_usage(self) -> pd.DataFrame:
        """Bytes actually on disk per table: live files, superseded files awaiting deletion, leftovers.

        ``live`` are the files the manifest lists (what queries read); ``superseded`` the
        files a rewrite replaced, kept for the grace period for readers of an older manifest;
        ``cache`` the memory-mapped day files (derived, rebuilt on demand); ``other``
        anything else under the table (the manifest, the lock file, a crashed writer's
        temporary files).
        """
        return self._compactor.disk_usage()

    def compact(self, table: str, roll_up: bool = True) -> int:
        """Merge each multi-segment partition into one sorted file and roll closed years up.

        Parameters
        ----------
        table : str
            The table to compact.
        roll_up : bool
            For month-partitioned tables, replace the month files of every year before the
            year of the table's newest row (a closed year) by one file ``year=YYYY/seg-*.parquet``,
            sorted by (symbol, ts) with symbol-aligned row groups. A decade then is a dozen
            files instead of 120+, and reading one symbol's history pays the per-file cost
            (footer, pruning, scan set-up) a dozen times. Later writes to a rolled year go to
            its partition (checked, replaced and appended like any other).

        Returns
        -------
        int
            Partitions rewritten (months merged plus years rolled up). Each is published by
            its own atomic manifest replace, so a crash keeps the work already published and
            leaves no partial file visible; replaced files are deleted after the grace period.

        Notes
        -----
        Compaction is where a batch job (``data generate``, an import, the daily flush)
        ends, so it then also builds the day files of the newest ``warm_days`` full session
        days (:meth:`warm_day_files`): their first whole-market read needs no Parquet query.
        """
        merged = self._compactor.compact(table, roll_up)
        self._query.warm_days(table, self.warm_days)
        return merged

    def warm_day_files(self, table: str = "bars_1m", days: int | None = None) -> list[pd.Timestamp]:
        """Build the day files of the newest full session days now, instead of on their second read.

        A full session day has at least half the rows of the busiest of the table's last eight
        days (a weekend with only 24/7 markets is passed over). A day file that is already
        current is only checked. Costs one Parquet read and one file write per day built (about
        0.6 s and 240 MB for a 5,000-symbol day).

        Parameters
        ----------
        table : str
            Only ``bars_1m`` has day files; other tables return ``[]``.
        days : int, optional
            How many days (default: the store's ``warm_days``; at most ``day_cache_days``).

        Returns
        -------
        list of pandas.Timestamp
            The days whose files are now current, newest first.
        """
        n = self.warm_days if days is None else int(days)
        return [pd.Timestamp(d0) for d0 in self._query.warm_days(table, n)]

    # ------------------------------------------------------------------ instruments
    def write_instruments(self, instruments) -> int:
        """Upsert instruments (a list of :class:`~pyplatform.domain.Instrument` or a frame)."""
        return write_instruments(self.root, instruments, durable=self.fsync)

    def instruments(self) -> pd.DataFrame:
        """All known instruments: symbol, asset_class, sector, currency, tick_size, lot_size."""
        return read_instruments(self.root)

    # ------------------------------------------------------------------ reading
    def read(self, table: str, symbols=None, start=None, end=None, columns=None, as_arrow: bool = False):
        """Rows of ``symbols`` (all if None) with ``start <= ts < end``.

        One symbol of ``bars_1m`` into pandas is answered from its memory-mapped symbol file
        (built on the first such read, rebuilt after any write to the table; see
        :mod:`.symbolcache`).

        Returns
        -------
        pandas.DataFrame or pyarrow.Table
            A frame indexed by (datetime, symbol) sorted by time then symbol, or with
            ``as_arrow`` an Arrow table in the table's schema (``ts`` int64 ns first).
        """
        return self._query.read(table, symbols, start, end, columns, as_arrow)

    def cross_section(self, table: str, at=None, day=None, symbols=None, columns=None,
                      as_arrow: bool = False, lookback: str | pd.Timedelta | None = None):
        """All symbols at one moment.

        Parameters
        ----------
        at : time-like, optional
            The last row of every symbol with ``ts <= at``. The search widens from one day
            back to the whole history until every symbol in the table is found (or, with
            ``lookback``, stops at that distance).
        day : date-like, optional
            Every row with ts on that UTC day.

        Returns
        -------
        pandas.DataFrame or pyarrow.Table
            Indexed by (datetime, symbol); with ``at``, ``datetime`` is each symbol's last
            row time.
        """
        return self._query.cross_section(table, at, day, symbols, columns, as_arrow, lookback)

    def resample(self, source_table: str, freq: str, symbols=None, start=None, end=None,
                 as_arrow: bool = False):
        """OHLCV bars of width ``freq`` built from ``ticks`` or from finer bars.

        First open, max high, min low, last close, summed volume, volume-weighted average
        price and trade count (ticks: rows; bars: summed ``trades``). Buckets are aligned to
        the Unix epoch (UTC midnight for days) and stamped with their start.
        """
        return self._query.resample(source_table, freq, symbols, start, end, as_arrow)

    def asof_join(self, left, right_table: str, columns=None, tolerance=None, as_arrow: bool = False):
        """For each row of ``left``, the last ``right_table`` row of the same symbol at or before it.

        Parameters
        ----------
        left : pandas.DataFrame or pyarrow.Table
            Rows with ``ts``/``datetime`` and ``symbol`` (a ``(datetime, symbol)`` index is fine).
        tolerance : Timedelta-like, optional
            Leave the right columns NULL where the match is older than this.

        Returns
        -------
        pandas.DataFrame or pyarrow.Table
            ``left``'s rows in their order with the right columns appended (``right_ts`` is the
            matched row's time).
        """
        return self._query.asof_join(left, right_table, columns, tolerance, as_arrow)

    def info(self) -> pd.DataFrame:
        """One row per table: rows, files, bytes on disk, symbols, first and last time."""
        return self._query.info()

    def close(self) -> None:
        self._con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _progress_off(con) -> None:
    """Turn DuckDB's progress bar off. Under Jupyter without ipywidgets DuckDB refuses to
    change the setting at all (it is then never shown), which must not break a query."""
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.InvalidInputException:
        pass
