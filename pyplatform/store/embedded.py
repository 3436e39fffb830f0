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
"""

from __future__ import annotations

import io
import os
import threading
import time
import uuid
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pyplatform.fsio import atomic_write
from pyplatform.store import sql as q
from pyplatform.store.daycache import DAY_NS, DayCache, DayView
from pyplatform.store.encoding import parquet_options, select_sql, storage_schema, to_storage, value_exprs
from pyplatform.store.frames import as_canonical, symbol_list, to_frame, ts_ns
from pyplatform.store.locking import writer_lock
from pyplatform.store.symbolcache import SymbolCache
from pyplatform.store.manifest import FileEntry, Manifest, fsync_dir, load_manifest, save_manifest
from pyplatform.store.tables import TABLES, TableSpec, table_spec

__all__ = ["EmbeddedStore"]

_CRASH_ENV = "PYPLATFORM_STORE_CRASH_AT"  # test hook: die at a named point of a write


def _crash_point(name: str) -> None:
    if os.environ.get(_CRASH_ENV) == name:
        os._exit(137)


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
    """

    backend = "embedded"

    def __init__(self, root: str | os.PathLike, row_group_size: int = 16_384, max_segments: int = 8,
                 fsync: bool = True, grace_s: float = 60.0, threads: int | None = None,
                 rollup_rows: int = 2_000_000, day_cache_days: int = 4, symbol_cache_symbols: int = 4) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.row_group_size = int(row_group_size)
        self.max_segments = int(max_segments)
        self.fsync = fsync
        self.grace_s = float(grace_s)
        self.rollup_rows = int(rollup_rows)
        self._con = duckdb.connect(config={"threads": threads or min(4, os.cpu_count() or 1)})
        # Files are immutable once published (a rewrite gets a new name), so caching their
        # footers across queries is safe and saves re-parsing them on every warm query.
        self._con.execute("SET GLOBAL parquet_metadata_cache = true")
        _progress_off(self._con)
        self._local = threading.local()
        self.days = DayCache(self.root, day_cache_days)
        self.symbol_files = SymbolCache(self.root, symbol_cache_symbols)

    # ------------------------------------------------------------------ paths and metadata
    def table_dir(self, table: str) -> Path:
        table_spec(table)
        return self.root / table

    def manifest(self, table: str) -> Manifest:
        """The current manifest of ``table``."""
        return load_manifest(self.table_dir(table))

    def symbols(self, table: str) -> list[str]:
        """Symbols with at least one row in ``table``, sorted."""
        return sorted(self.manifest(table).symbols)

    def tables(self) -> list[str]:
        return [t for t in TABLES if (self.root / t / "_manifest.json").exists()]

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
        spec = table_spec(table)
        canon = as_canonical(spec, data)
        if canon.num_rows == 0:
            return 0
        stored = to_storage(spec, _dedupe_sorted(spec, canon))
        unit = "datetime64[Y]" if spec.partition == "year" else "datetime64[M]"
        months = stored.column("ts").cast(pa.int64()).to_numpy().astype("datetime64[ns]").astype(unit)
        order = np.argsort(months, kind="stable")
        months_sorted = months[order]
        bounds = np.flatnonzero(months_sorted[1:] != months_sorted[:-1]) + 1
        groups = np.split(order, bounds)
        tdir = self.table_dir(table)
        tdir.mkdir(parents=True, exist_ok=True)
        with writer_lock(tdir / ".writer.lock"):
            man = load_manifest(tdir)
            self._collect_garbage(tdir, man)
            by_part: dict[str, list[np.ndarray]] = {}
            for idx in groups:
                month = months[idx[0]].astype(object)
                part = f"year={month.year:04d}"
                if spec.partition == "month" and part not in man.partitions:
                    # months of a year that compact() rolled into one file go to that file's
                    # partition, so its keys are checked and replaced like any other
                    part = f"{part}/month={month.month:02d}"
                by_part.setdefault(part, []).append(idx)
            for part, idxs in by_part.items():
                # positions in `stored` order keep the rows sorted by (symbol, ts)
                idx = idxs[0] if len(idxs) == 1 else np.sort(np.concatenate(idxs))
                rows = stored.take(pa.array(idx)) if len(by_part) > 1 or len(idxs) > 1 else stored
                self._write_partition(spec, tdir, man, part, rows)
            new_syms = pc.unique(stored.column("symbol")).to_pylist()
            man.symbols = sorted(set(man.symbols).union(new_syms))
            man.version += 1
            _crash_point("before_manifest")
            save_manifest(tdir, man, fsync=self.fsync)
            _crash_point("after_manifest")
        return stored.num_rows

    def _write_partition(self, spec: TableSpec, tdir: Path, man: Manifest, part: str, rows: pa.Table) -> None:
        existing = man.partitions.get(part, [])
        ts = rows.column("ts").cast(pa.int64())
        lo, hi = pc.min(ts).as_py(), pc.max(ts).as_py()
        disjoint = all(f.max_ts < lo or f.min_ts > hi for f in existing)
        if not disjoint:
            disjoint = not self._keys_overlap(spec, tdir, existing, rows)
        if disjoint and len(existing) < self.max_segments:
            man.partitions[part] = existing + [self._write_file(spec, tdir, part, rows)]
            return
        if disjoint and len(existing) > 1:
            # Tiered: fold the small appended segments and the new rows into one segment, and
            # leave the big base file alone, so frequent appends never rewrite a whole month.
            base = max(existing, key=lambda f: f.rows)
            small = [f for f in existing if f is not base]
            tail = pq.read_table([str(tdir / f.path) for f in small], schema=storage_schema(spec))
            merged = _dedupe_sorted(spec, pa.concat_tables([tail, rows]), stored=True)
            man.garbage.extend((f.path, time.time()) for f in small)
            man.partitions[part] = [base, self._write_file(spec, tdir, part, merged)]
            return
        old = pq.read_table([str(tdir / f.path) for f in existing], schema=storage_schema(spec)) \
            if len(existing) > 1 else pq.read_table(str(tdir / existing[0].path), schema=storage_schema(spec))
        merged = _dedupe_sorted(spec, pa.concat_tables([old, rows]), stored=True)
        entry = self._write_file(spec, tdir, part, merged)
        now = time.time()
        man.garbage.extend((f.path, now) for f in existing)
        man.partitions[part] = [entry]

    def _keys_overlap(self, spec: TableSpec, tdir: Path, existing: list[FileEntry], rows: pa.Table) -> bool:
        keys = rows.select(list(spec.key))
        cur = self._cursor()
        cur.register("_new_keys", keys)
        try:
            files = q.file_list([str(tdir / f.path) for f in existing])
            on = " AND ".join(f"e.{k} = n.{k}" for k in spec.key)
            hit = cur.execute(
                f"SELECT count(*) FROM read_parquet({files}) e SEMI JOIN _new_keys n ON {on}"
            ).fetchall()[0][0]
        finally:
            cur.unregister("_new_keys")
        return hit > 0

    def _write_file(self, spec: TableSpec, tdir: Path, part: str, rows) -> FileEntry:
        """Write ``rows`` (a table, or an iterable of tables that follow each other in key order)."""
        pdir = tdir / part
        pdir.mkdir(parents=True, exist_ok=True)
        name = f"seg-{uuid.uuid4().hex}.parquet"
        tmp = pdir / f".tmp-{name}"
        if isinstance(rows, pa.Table):
            write_aligned(rows, tmp, spec, self.row_group_size)
            n, lo, hi = rows.num_rows, *_ts_range(rows)
        else:
            n, lo, hi = write_aligned_batches(rows, tmp, spec, self.row_group_size)
        if self.fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        _crash_point("after_data")
        os.rename(tmp, pdir / name)
        if self.fsync:
            fsync_dir(pdir)
        return FileEntry(f"{part}/{name}", n, lo, hi)

    def _collect_garbage(self, tdir: Path, man: Manifest) -> None:
        """Delete superseded files past their grace period and leftovers of crashed writers.

        Runs under the writer lock: no other writer can be creating files now, so any file
        the manifest neither lists nor keeps as garbage is a crashed writer's leftover.
        """
        now = time.time()
        keep_garbage, drop = [], []
        for path, at in man.garbage:
            (drop if now - at > self.grace_s else keep_garbage).append((path, at))
        man.garbage = keep_garbage
        live = {f.path for fs in man.partitions.values() for f in fs} | {p for p, _ in keep_garbage}
        for p in [*tdir.glob("year=*/*.parquet"), *tdir.glob("year=*/.tmp-*"),
                  *tdir.glob("year=*/month=*/*.parquet"), *tdir.glob("year=*/month=*/.tmp-*")]:
            rel = p.relative_to(tdir).as_posix()
            if rel not in live and (p.name.startswith(".tmp-") or p.suffix == ".parquet"):
                p.unlink(missing_ok=True)
        for p in tdir.glob(".*.tmp"):
            p.unlink(missing_ok=True)

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
        files = freed = 0
        for t in [table] if table is not None else self.tables():
            tdir = self.table_dir(t)
            before = _disk_files(tdir)
            with writer_lock(tdir / ".writer.lock"):
                man = load_manifest(tdir)
                if grace_s is None:
                    self._collect_garbage(tdir, man)
                else:
                    # <= 0: everything, including files superseded a moment ago
                    saved, self.grace_s = self.grace_s, float(grace_s) if grace_s > 0 else -1.0
                    try:
                        self._collect_garbage(tdir, man)
                    finally:
                        self.grace_s = saved
                # publish the shorter garbage list (files listed there are gone)
                if man.garbage != load_manifest(tdir).garbage:
                    man.version += 1
                    save_manifest(tdir, man, fsync=self.fsync)
            after = _disk_files(tdir)
            gone = set(before) - set(after)
            files += len(gone)
            freed += sum(before[p] for p in gone)
        return files, freed

    def disk_usage(self) -> pd.DataFrame:
        """Bytes actually on disk per table: live files, superseded files awaiting deletion, leftovers.

        ``live`` are the files the manifest lists (what queries read); ``superseded`` the
        files a rewrite replaced, kept for the grace period for readers of an older manifest;
        ``cache`` the memory-mapped day files (derived, rebuilt on demand); ``other``
        anything else under the table (the manifest, the lock file, a crashed writer's
        temporary files).
        """
        rows = []
        for t in TABLES:
            tdir = self.root / t
            on_disk = _disk_files(tdir) if tdir.exists() else {}
            man = self.manifest(t)
            live = {f.path for f in man.files()}
            garbage = {p for p, _ in man.garbage}
            rows.append({
                "table": t,
                "live_files": sum(1 for p in on_disk if p in live),
                "live_bytes": sum(b for p, b in on_disk.items() if p in live),
                "superseded_files": sum(1 for p in on_disk if p in garbage),
                "superseded_bytes": sum(b for p, b in on_disk.items() if p in garbage),
                "cache_bytes": sum(b for p, b in on_disk.items() if p.startswith(("_days/", "_symbols/"))),
                "other_bytes": sum(b for p, b in on_disk.items()
                                   if p not in live and p not in garbage and not p.startswith(("_days/", "_symbols/"))),
            })
        frame = pd.DataFrame(rows).set_index("table")
        frame["total_bytes"] = (frame["live_bytes"] + frame["superseded_bytes"] + frame["cache_bytes"]
                                + frame["other_bytes"])
        return frame

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
        """
        spec = table_spec(table)
        tdir = self.table_dir(table)
        merged = 0
        with writer_lock(tdir / ".writer.lock"):
            man = load_manifest(tdir)
            self._collect_garbage(tdir, man)
            for part, files in list(man.partitions.items()):
                if len(files) < 2:
                    continue
                # a range of symbols at a time: a rolled-up year with appended segments is big
                entry = self._write_file(spec, tdir, part, _symbol_batches(
                    spec, [str(tdir / f.path) for f in files], files, man.symbols, self.rollup_rows))
                man.garbage.extend((f.path, time.time()) for f in files)
                man.partitions[part] = [entry]
                merged += 1
            if merged:
                man.version += 1
                save_manifest(tdir, man, fsync=self.fsync)
            if roll_up and spec.partition == "month":
                merged += self._roll_up_years(spec, tdir, man)
        return merged

    def _roll_up_years(self, spec: TableSpec, tdir: Path, man: Manifest) -> int:
        """Replace the month partitions of each closed year by one yearly file (writer lock held)."""
        files = man.files()
        if not files:
            return 0
        newest_year = pd.Timestamp(max(f.max_ts for f in files)).year
        years: dict[int, list[str]] = {}
        for part in man.partitions:
            year = int(part[5:9])
            if "/month=" in part and year < newest_year:
                years.setdefault(year, []).append(part)
        for year, parts in sorted(years.items()):
            yparts = sorted(parts)
            target = f"year={year:04d}"
            # defensive: writes to a rolled year go to its partition, but merge one found there too
            old_files = man.partitions.get(target, []) + [f for p in yparts for f in man.partitions[p]]
            batches = _symbol_batches(spec, [str(tdir / f.path) for f in old_files], old_files,
                                      man.symbols, self.rollup_rows)
            entry = self._write_file(spec, tdir, target, batches)
            now = time.time()
            man.garbage.extend((f.path, now) for f in old_files)
            for p in yparts:
                del man.partitions[p]
            man.partitions[target] = [entry]
            man.version += 1
            _crash_point("before_rollup_manifest")
            save_manifest(tdir, man, fsync=self.fsync)
        return len(years)

    # ------------------------------------------------------------------ instruments
    def write_instruments(self, instruments) -> int:
        """Upsert instruments (a list of :class:`~pyplatform.domain.Instrument` or a frame)."""
        from pyplatform.store.instruments import merge_instruments

        path = self.root / "instruments.parquet"
        with writer_lock(self.root / ".instruments.lock"):
            frame = merge_instruments(self.instruments(), instruments)
            buf = io.BytesIO()
            frame.to_parquet(buf, index=False)
            atomic_write(path, buf.getvalue(), durable=self.fsync)
        return len(frame)

    def instruments(self) -> pd.DataFrame:
        """All known instruments: symbol, asset_class, sector, currency, tick_size, lot_size."""
        from pyplatform.store.instruments import EMPTY_INSTRUMENTS

        path = self.root / "instruments.parquet"
        if not path.exists():
            return EMPTY_INSTRUMENTS.copy()
        return pd.read_parquet(path)

    # ------------------------------------------------------------------ reading
    def _run(self, table: str, build, empty_columns: list[str]) -> pa.Table:
        """Run ``build(files) -> sql`` over the current files; retry if a rewrite raced us."""
        tdir = self.table_dir(table)
        for attempt in range(20):
            man = load_manifest(tdir)
            sql = build(man, lambda fs: q.file_list([str(tdir / f.path) for f in fs]))
            if sql is None:
                return None
            try:
                return self._cursor().sql(sql).to_arrow_table()
            except duckdb.Error:
                # A writer replaced the manifest and deleted a file we were about to open
                # (after its grace period): read the new version. Any other error is real.
                if load_manifest(tdir).version == man.version or attempt == 19:
                    raise
                time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

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
        syms = symbol_list(symbols)
        if not as_arrow and syms is not None and len(syms) == 1 and table == "bars_1m" \
                and self.symbol_files.max_days > 0:
            value_exprs(table_spec(table), columns)  # an unknown column is named, as below
            view = self._symbol_view(table, syms[0])
            if view is not None:
                return view.frame(ts_ns(start), ts_ns(end), columns)
        return self._read_parquet(table, symbols, start, end, columns, as_arrow)

    def _symbol_view(self, table: str, symbol: str):
        tdir = self.table_dir(table)
        man = load_manifest(tdir)
        if symbol not in man.symbols:
            return None  # the Parquet path answers (an empty frame of the right shape)
        sources = tuple(f.path for f in man.files())

        def from_parquet():
            frame = self._read_parquet(table, [symbol], None, None, None, False)
            return frame, tuple(f.path for f in load_manifest(tdir).files())

        return self.symbol_files.get(table, symbol, sources, from_parquet)

    def _read_parquet(self, table: str, symbols=None, start=None, end=None, columns=None, as_arrow: bool = False):
        spec = table_spec(table)
        lo, hi = ts_ns(start), ts_ns(end)
        syms = symbol_list(symbols)
        sel = select_sql(spec, columns, ts_as="datetime")
        single = syms is not None and len(syms) == 1 and not spec.has_factor
        presorted: list[bool] = []

        def build(man: Manifest, files):
            fs = man.files(lo, hi)
            if not fs:
                return None
            where = q.where(syms, lo, hi)
            order = "datetime, symbol, factor" if spec.has_factor else "datetime, symbol"
            presorted.clear()
            if not spec.has_factor and _time_ordered(fs):
                # Files sorted by (symbol, ts) whose time ranges follow each other arrive (DuckDB
                # preserves scan order) as time-sorted runs, one per symbol and file: a stable
                # sort by time alone then gives (time, symbol) order, several times cheaper than
                # DuckDB's ORDER BY on strings. One symbol needs no sort and no symbol column
                # (strings are a third of the decode work).
                presorted.append(True)
                cols = [c for c in sel if c != "symbol"] if single else sel
                return f"SELECT {', '.join(cols)} FROM read_parquet({files(fs)}) {where}"
            return f"SELECT {', '.join(sel)} FROM read_parquet({files(fs)}) {where} ORDER BY {order}"

        result = self._run(table, build, sel)
        if result is not None and "symbol" not in result.schema.names:
            sym = pa.DictionaryArray.from_arrays(pa.array(np.zeros(result.num_rows, np.int32)), pa.array(syms))
            result = result.add_column(1, "symbol", sym)
        elif result is not None and presorted and result.num_rows > 1:
            ts = result.column("datetime").cast(pa.timestamp("ns")).cast(pa.int64()).to_numpy()
            if not (ts[1:] >= ts[:-1]).all():
                result = result.take(pa.array(np.argsort(ts, kind="stable")))
        return _finish(spec, result, columns, as_arrow)

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
        if (at is None) == (day is None):
            raise ValueError("cross_section needs exactly one of at= or day=")
        if day is not None:
            d0 = pd.Timestamp(day).normalize()
            if not as_arrow:
                value_exprs(table_spec(table), columns)  # an unknown column is named, as below
                # a whole-market day builds its day file; a few symbols only use one that exists
                view = self._day_view(table, ts_ns(d0), build=symbols is None)
                if view is not None:
                    return view.frame(symbol_list(symbols), columns)
            return self._read_parquet(table, symbols, d0, d0 + pd.Timedelta("1D"), columns, as_arrow)
        spec = table_spec(table)
        t = ts_ns(at)
        syms = symbol_list(symbols)
        cols = columns if columns is not None else spec.value_names
        if not as_arrow and lookback is None and self._caches(table):
            value_exprs(spec, cols)
            got = self._as_of_from_day(table, t, syms, cols)
            if got is not None:
                return got
        return _finish(spec, self._as_of_parquet(table, t, syms, cols, lookback), columns, as_arrow)

    def _as_of_parquet(self, table: str, t: int, syms: list[str] | None, cols: list[str], lookback=None):
        """The last row of each symbol at or before ``t`` by a Parquet query (Arrow, or None)."""
        spec = table_spec(table)
        aggs = [f"arg_max({expr}, ts) AS {name}" for expr, name in value_exprs(spec, cols)]
        group = "symbol, factor" if spec.has_factor else "symbol"
        windows = [pd.Timedelta(w).value for w in ("1h", "1D", "7D", "35D", "400D")] + [None]
        if lookback is not None:
            limit = pd.Timedelta(lookback).value
            windows = [w for w in windows if w is not None and w < limit] + [limit]
        result = None
        # windows count back from the table's last row when `at` is past it (at="2100-01-01")
        files = self.manifest(table).files(None, t + 1)
        anchor = min(t, max((f.max_ts for f in files), default=t))
        for w in windows:
            lo = None if w is None else anchor - w + 1

            def build(man: Manifest, files, lo=lo):
                fs = man.files(lo, t + 1)
                if not fs:
                    return None
                where = q.where(syms, lo, t + 1)
                return (f"SELECT max(ts) AS datetime, {group}, {', '.join(aggs)} "
                        f"FROM read_parquet({files(fs)}) {where} GROUP BY {group} ORDER BY {group}")

            result = self._run(table, build, cols)
            wanted = set(syms) if syms is not None else set(self.manifest(table).symbols)
            found = set(result.column("symbol").to_pylist()) if result is not None else set()
            if wanted <= found:
                break
        return result

    # ------------------------------------------------------------------ day files
    def _caches(self, table: str) -> bool:
        return table == "bars_1m" and self.days.max_days > 0

    def _day_view(self, table: str, day0: int, man: Manifest | None = None, build: bool = True) -> DayView | None:
        """The memory-mapped day file of ``table`` for the UTC day at ``day0`` (built if needed)."""
        if not self._caches(table):
            return None
        tdir = self.table_dir(table)
        man = man or load_manifest(tdir)
        sources = tuple(f.path for f in man.files(day0, day0 + DAY_NS))

        def from_parquet():
            frame = self._read_parquet(table, None, day0, day0 + DAY_NS)
            after = tuple(f.path for f in load_manifest(tdir).files(day0, day0 + DAY_NS))
            return frame, after

        if not build:
            return self.days.get(table, day0, sources, None, build_missing=False)
        return self.days.get(table, day0, sources, from_parquet)

    def _as_of_from_day(self, table: str, t: int, syms: list[str] | None, cols: list[str]):
        """``cross_section(at=t)`` answered from day files; symbols not on that day (a market
        closed since the day before, a symbol that stopped trading) are looked up in earlier
        day files already built, then by the Parquet query for whatever is left."""
        spec = table_spec(table)
        man = load_manifest(self.table_dir(table))
        files = man.files(None, t + 1)
        if not files:
            return None
        anchor = min(t, max(f.max_ts for f in files))
        day0 = anchor - anchor % DAY_NS
        wanted = set(syms) if syms is not None else set(man.symbols)
        parts: list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []
        missing = set(wanted)
        for back in range(8):
            d = day0 - back * DAY_NS
            # a whole-market snapshot may build the few days before too (a weekend's stocks
            # are on Friday); later days back only use files already there
            view = self._day_view(table, d, man, build=back <= 3 and syms is None)
            if view is None:
                if back == 0:
                    return None  # no day file (caching off, or the day cannot be one)
                continue
            codes, rows = view.last_at(anchor)
            names = view.symbols[codes]
            # hashed membership (np.isin on object arrays compares pairwise)
            keep = pd.Index(names, dtype=object).isin(list(missing))
            if keep.any():
                rows = rows[keep]
                parts.append((names[keep], view.times[view.tcode[rows]], {c: view.values[c][rows] for c in cols}))
                missing.difference_update(names[keep].tolist())
            if not missing:
                break
        if missing:
            rest = self._as_of_parquet(table, t, sorted(missing), cols)
            if rest is not None and rest.num_rows:
                parts.append((np.asarray(rest.column("symbol").to_pylist(), dtype=object),
                              rest.column("datetime").cast(pa.timestamp("ns")).cast(pa.int64()).to_numpy(),
                              {c: rest.column(c).to_numpy(zero_copy_only=False) for c in cols}))
        if not parts:
            return _finish(spec, None, cols, False)
        names = np.concatenate([p[0] for p in parts])
        order = np.argsort(names, kind="stable")  # by symbol, as the Parquet query orders them
        ts = np.concatenate([p[1] for p in parts])[order]
        arrays = {"datetime": pa.array(ts.astype("datetime64[ns]")),
                  "symbol": pa.array(names[order].tolist(), pa.string())}
        for c in cols:
            arrays[c] = pa.array(np.concatenate([p[2][c] for p in parts])[order])
        return to_frame(pa.table(arrays))

    def resample(self, source_table: str, freq: str, symbols=None, start=None, end=None,
                 as_arrow: bool = False):
        """OHLCV bars of width ``freq`` built from ``ticks`` or from finer bars.

        First open, max high, min low, last close, summed volume, volume-weighted average
        price and trade count (ticks: rows; bars: summed ``trades``). Buckets are aligned to
        the Unix epoch (UTC midnight for days) and stamped with their start.
        """
        spec = table_spec(source_table)
        step = pd.Timedelta(freq).value
        if step <= 0:
            raise ValueError(f"resample freq must be positive, got {freq!r}")
        lo, hi = ts_ns(start), ts_ns(end)
        syms = symbol_list(symbols)
        inner = q.resample_sql(spec, step)

        def build(man: Manifest, files):
            fs = man.files(lo, hi)
            if not fs:
                return None
            return inner.format(files=files(fs), where=q.where(syms, lo, hi))

        result = self._run(source_table, build, [])
        return _finish(TABLES["bars_1m"], result, None, as_arrow)

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
        spec = table_spec(right_table)
        lt = q.left_table(left)
        if lt.num_rows == 0:
            raise ValueError("asof_join: left has no rows")
        lts = lt.column("ts").cast(pa.int64())
        hi = pc.max(lts).as_py() + 1
        syms = pc.unique(lt.column("symbol")).to_pylist()
        cols = columns if columns is not None else spec.value_names
        sel = select_sql(spec, cols, ts_as="ts")
        tol = None if tolerance is None else pd.Timedelta(tolerance).value
        lo = None if tol is None else pc.min(lts).as_py() - tol
        cur = self._cursor()
        left_cols = [c for c in lt.schema.names if c not in ("ts", "symbol", "_row")]

        def build(man: Manifest, files):
            fs = man.files(lo, hi)
            right = (f"(SELECT {', '.join(sel)} FROM read_parquet({files(fs)}) {q.where(syms, lo, hi)})"
                     if fs else q.empty_right(spec, cols))
            picks = []
            for c in cols:
                picks.append(f"r.{c} AS {c}" if tol is None else
                             f"CASE WHEN l.ts - r.ts <= INTERVAL ({tol // 1000}) MICROSECONDS THEN r.{c} END AS {c}")
            rts = "r.ts" if tol is None else \
                f"CASE WHEN l.ts - r.ts <= INTERVAL ({tol // 1000}) MICROSECONDS THEN r.ts END"
            lsel = ", ".join(["l.ts AS datetime", "l.symbol"] + [f'l."{c}"' for c in left_cols])
            return (f"SELECT {lsel}, {rts} AS right_ts, {', '.join(picks)} FROM _left l "
                    f"ASOF LEFT JOIN {right} r ON l.symbol = r.symbol AND l.ts >= r.ts ORDER BY l._row")

        cur.register("_left", lt)
        try:
            result = self._run(right_table, build, cols)
        finally:
            cur.unregister("_left")
        if as_arrow:
            return result
        return to_frame(result)

    def info(self) -> pd.DataFrame:
        """One row per table: rows, files, bytes on disk, symbols, first and last time."""
        rows = []
        for t in TABLES:
            man = self.manifest(t)
            files = man.files()
            size = sum((self.root / t / f.path).stat().st_size for f in files)
            rows.append({
                "table": t, "rows": man.rows, "files": len(files), "bytes": size,
                "bytes_per_row": size / man.rows if man.rows else float("nan"),
                "symbols": len(man.symbols),
                "first": pd.Timestamp(min(f.min_ts for f in files)) if files else pd.NaT,
                "last": pd.Timestamp(max(f.max_ts for f in files)) if files else pd.NaT,
            })
        return pd.DataFrame(rows).set_index("table")

    def close(self) -> None:
        self._con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _disk_files(tdir: Path) -> dict[str, int]:
    """Every file under a table directory (relative path -> bytes), the manifest included."""
    out = {}
    for dirpath, _, names in os.walk(tdir):
        for n in names:
            p = Path(dirpath) / n
            try:
                out[p.relative_to(tdir).as_posix()] = p.stat().st_size
            except FileNotFoundError:  # deleted by a writer while we walked
                pass
    return out


def row_group_slices(symbols: pa.ChunkedArray | pa.Array, row_group_size: int,
                     min_rows: int | None = None) -> list[tuple[int, int]]:
    """(offset, length) of row groups aligned to symbol boundaries (rows sorted by symbol).

    A symbol with at least ``min_rows`` rows gets row groups of its own (split every
    ``row_group_size``), so a one-symbol query decodes only its own rows; smaller symbols
    share row groups of about ``min_rows`` so thousands of thin symbols do not bloat the
    footer. The loop is over symbols, not rows.
    """
    min_rows = min_rows or max(row_group_size // 4, 1)
    enc = pc.dictionary_encode(symbols)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    codes = enc.indices.to_numpy(zero_copy_only=False)
    n = len(codes)
    if n == 0:
        return []
    starts = np.flatnonzero(np.diff(codes, prepend=codes[0] - 1) != 0)
    lengths = np.diff(np.append(starts, n))
    out: list[tuple[int, int]] = []
    pend_start, pend_len = 0, 0
    for st, ln in zip(starts.tolist(), lengths.tolist()):
        if ln >= min_rows:
            if pend_len:
                out.append((pend_start, pend_len))
                pend_len = 0
            for off in range(0, ln, row_group_size):
                out.append((st + off, min(row_group_size, ln - off)))
        else:
            if pend_len == 0:
                pend_start = st
            pend_len += ln
            if pend_len >= min_rows:
                out.append((pend_start, pend_len))
                pend_len = 0
    if pend_len:
        out.append((pend_start, pend_len))
    return out


def write_aligned_batches(batches, path: Path, spec: TableSpec, row_group_size: int) -> tuple[int, int, int]:
    """Write tables that follow each other in (symbol, ts) order as one file; returns (rows, min ts, max ts).

    Each batch gets symbol-aligned row groups of its own (batches split at symbol boundaries).
    """
    opts = parquet_options(spec, row_group_size)
    opts.pop("row_group_size")
    n, lo, hi = 0, None, None
    with pq.ParquetWriter(path, storage_schema(spec), **opts) as writer:
        for rows in batches:
            for off, ln in row_group_slices(rows.column("symbol"), row_group_size):
                writer.write_table(rows.slice(off, ln), row_group_size=ln)
            a, b = _ts_range(rows)
            n += rows.num_rows
            lo = a if lo is None else min(lo, a)
            hi = b if hi is None else max(hi, b)
    if n == 0:
        raise ValueError(f"{spec.name}: nothing to write to {path}")
    return n, lo, hi


def write_aligned(rows: pa.Table, path: Path, spec: TableSpec, row_group_size: int) -> None:
    """Write ``rows`` (sorted by symbol) as Parquet with row groups aligned to symbols."""
    opts = parquet_options(spec, row_group_size)
    opts.pop("row_group_size")
    with pq.ParquetWriter(path, rows.schema, **opts) as writer:
        for off, ln in row_group_slices(rows.column("symbol"), row_group_size):
            writer.write_table(rows.slice(off, ln), row_group_size=ln)


def _time_ordered(files: list[FileEntry]) -> bool:
    """Whether each file's rows all come before the next file's (so per-symbol order is global)."""
    return all(a.max_ts < b.min_ts for a, b in zip(files, files[1:]))


def _progress_off(con) -> None:
    """Turn DuckDB's progress bar off. Under Jupyter without ipywidgets DuckDB refuses to
    change the setting at all (it is then never shown), which must not break a query."""
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.InvalidInputException:
        pass


def _sort_codes(col) -> np.ndarray:
    """Integer codes of a string column that sort like the strings."""
    enc = pc.dictionary_encode(col)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    rank = np.argsort(np.argsort(np.asarray(enc.dictionary.to_pylist(), dtype=object)))
    return rank[enc.indices.to_numpy(zero_copy_only=False)]


def _dedupe_sorted(spec: TableSpec, table: pa.Table, stored: bool = False) -> pa.Table:
    """Sort by the key and keep the LAST row of each key (later rows win)."""
    n = table.num_rows
    keys = []
    for k in spec.key:
        col = table.column(k)
        if k == "ts":
            keys.append(col.cast(pa.int64()).to_numpy())
        else:
            keys.append(_sort_codes(col))
    if n > 1:
        # already strictly increasing by key (the usual generated/appended batch): nothing to do
        ahead = np.zeros(n - 1, dtype=bool)
        tie = np.ones(n - 1, dtype=bool)
        for kv in keys:
            ahead |= tie & (kv[1:] > kv[:-1])
            tie &= kv[1:] == kv[:-1]
        if ahead.all():
            return table
    # lexsort: last key is primary; the row number last-breaks ties so later rows sort later
    order = np.lexsort([np.arange(n)] + keys[::-1])
    if n > 1:
        same = np.ones(n - 1, dtype=bool)
        for kv in keys:
            sk = kv[order]
            same &= sk[1:] == sk[:-1]
        if same.any():
            order = order[np.append(~same, True)]
    if np.array_equal(order, np.arange(n)):
        return table
    return table.take(pa.array(order))


def _ts_range(rows: pa.Table) -> tuple[int, int]:
    ts = rows.column("ts").cast(pa.int64())
    return pc.min(ts).as_py(), pc.max(ts).as_py()


def _symbol_batches(spec: TableSpec, paths: list[str], files: list[FileEntry], symbols: list[str],
                    batch_rows: int):
    """The rows of ``files`` in key order, a range of symbols at a time.

    A year of minute bars of many symbols does not fit in memory at once: the symbols are cut
    into ranges of about ``batch_rows`` rows (by the average rows per symbol), and each range
    is read from every file (row groups outside it are skipped by their symbol statistics),
    merged and yielded. Ranges are disjoint and ascending, so the batches follow each other in
    key order.
    """
    syms = sorted(symbols)
    total = sum(f.rows for f in files)
    n_batches = max(1, min(len(syms), -(-total // max(batch_rows, 1))))
    cuts = np.array_split(np.arange(len(syms)), n_batches) if syms else [np.zeros(1, np.int64)]
    schema = storage_schema(spec)
    for i, cut in enumerate(cuts):
        if not len(cut):
            continue
        # open-ended first and last ranges: rows of a symbol missing from the manifest's list
        # (there should be none) are still carried over
        lo = syms[cut[0]] if i > 0 else None  # (no symbols listed: one open range)
        hi = syms[cuts[i + 1][0]] if i < len(cuts) - 1 else None
        parts = [_read_symbol_range(p, schema, lo, hi) for p in paths]
        table = pa.concat_tables([t for t in parts if t.num_rows] or parts[:1])
        if table.num_rows:
            yield _merge_time_ordered(spec, table, files)


def _read_symbol_range(path: str, schema: pa.Schema, lo: str | None, hi: str | None) -> pa.Table:
    """Rows of one file with ``lo <= symbol < hi``, in file order; row groups outside are skipped."""
    pf = pq.ParquetFile(path)
    md = pf.metadata
    col = md.schema.names.index("symbol")
    rgs = []
    for i in range(md.num_row_groups):
        st = md.row_group(i).column(col).statistics
        if st is not None and st.has_min_max and ((hi is not None and st.min >= hi) or
                                                  (lo is not None and st.max < lo)):
            continue
        rgs.append(i)
    table = pf.read_row_groups(rgs).cast(schema)
    mask = None
    if lo is not None:
        mask = pc.greater_equal(table.column("symbol"), lo)
    if hi is not None:
        m = pc.less(table.column("symbol"), hi)
        mask = m if mask is None else pc.and_(mask, m)
    return table if mask is None else table.filter(mask)


def _merge_time_ordered(spec: TableSpec, table: pa.Table, files: list[FileEntry]) -> pa.Table:
    """Rows of ``files`` (concatenated in ``table``) sorted by key, later rows winning.

    When each file is sorted by key and each file's rows all come before the next file's in
    time (month files of a year in order), the (symbol[, factor], ts) order is a stable sort by
    the non-time key columns alone: no row's key repeats and time order is kept per symbol.
    """
    if len(files) < 2 or not _time_ordered(files):
        return _dedupe_sorted(spec, table, stored=True)
    codes = [_sort_codes(table.column(k)) for k in spec.key if k != "ts"]
    order = np.lexsort([np.arange(table.num_rows)] + codes[::-1])
    # the check in _dedupe_sorted (one pass) guards the assumption: rows out of key order
    # would be sorted there rather than written out of order
    return _dedupe_sorted(spec, table.take(pa.array(order)), stored=True)


def _finish(spec: TableSpec, result: pa.Table | None, columns, as_arrow: bool):
    if result is None:
        result = q.empty_result(spec, columns)
    if as_arrow:
        ts = result.column("datetime").cast(pa.timestamp("ns")).cast(pa.int64())
        result = result.drop_columns(["datetime"]).add_column(0, "ts", ts)
        i = result.schema.get_field_index("symbol")
        if pa.types.is_dictionary(result.schema.field(i).type):
            result = result.set_column(i, "symbol", result.column(i).cast(pa.string()))
        return result
    return to_frame(result)
