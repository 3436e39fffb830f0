"""Compaction of the embedded store: merging segments, rolling closed years up, freeing space.

Appends add small segments to a partition; :meth:`Compactor.compact` merges each
multi-segment partition into one sorted file and rolls the month files of every closed year
up into one yearly file, a range of symbols at a time so memory stays bounded. Superseded
files stay on disk for the grace period (readers may hold an older manifest);
:meth:`Compactor.collect_garbage` frees them at once, and :meth:`Compactor.disk_usage`
says what is on disk.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pyplatform.store.encoding import storage_schema
from pyplatform.store.locking import writer_lock
from pyplatform.store.manifest import FileEntry, Manifest, load_manifest, save_manifest, time_ordered
from pyplatform.store.tables import TABLES, TableSpec, table_spec
from pyplatform.store.writer import StoreWriter, crash_point, dedupe_sorted, sort_codes

__all__ = ["Compactor", "disk_files"]


class Compactor:
    """Merges, rolls up and frees the files of the tables ``writer`` writes.

    Parameters
    ----------
    writer : StoreWriter
        Writes the merged files (same row groups, fsync policy and sweep as appends).
    rollup_rows : int
        Rows held in memory at a time while a partition is merged or a year rolled up.
    """

    def __init__(self, writer: StoreWriter, rollup_rows: int) -> None:
        self.writer = writer
        self.rollup_rows = int(rollup_rows)

    def compact(self, table: str, roll_up: bool = True) -> int:
        """Merge multi-segment partitions and roll closed years up (see :meth:`EmbeddedStore.compact`)."""
        spec = table_spec(table)
        tdir = self.writer.table_dir(table)
        merged = 0
        with writer_lock(tdir / ".writer.lock"):
            man = load_manifest(tdir)
            self.writer.sweep(tdir, man)
            for part, files in list(man.partitions.items()):
                if len(files) < 2:
                    continue
                # a range of symbols at a time: a rolled-up year with appended segments is big
                entry = self.writer.write_file(spec, tdir, part, _symbol_batches(
                    spec, [str(tdir / f.path) for f in files], files, man.symbols, self.rollup_rows))
                man.garbage.extend((f.path, time.time()) for f in files)
                man.partitions[part] = [entry]
                merged += 1
            if merged:
                man.version += 1
                save_manifest(tdir, man, fsync=self.writer.fsync)
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
            entry = self.writer.write_file(spec, tdir, target, batches)
            now = time.time()
            man.garbage.extend((f.path, now) for f in old_files)
            for p in yparts:
                del man.partitions[p]
            man.partitions[target] = [entry]
            man.version += 1
            crash_point("before_rollup_manifest")
            save_manifest(tdir, man, fsync=self.writer.fsync)
        return len(years)

    def collect_garbage(self, table: str | None = None, grace_s: float | None = 0.0) -> tuple[int, int]:
        """Delete superseded files now; return (files, bytes) freed (see :meth:`EmbeddedStore.collect_garbage`)."""
        files = freed = 0
        for t in [table] if table is not None else self.writer.tables():
            tdir = self.writer.table_dir(t)
            before = disk_files(tdir)
            with writer_lock(tdir / ".writer.lock"):
                man = load_manifest(tdir)
                # grace_s <= 0: everything, including files superseded a moment ago
                grace = None if grace_s is None else float(grace_s) if grace_s > 0 else -1.0
                self.writer.sweep(tdir, man, grace)
                # publish the shorter garbage list (files listed there are gone)
                if man.garbage != load_manifest(tdir).garbage:
                    man.version += 1
                    save_manifest(tdir, man, fsync=self.writer.fsync)
            after = disk_files(tdir)
            gone = set(before) - set(after)
            files += len(gone)
            freed += sum(before[p] for p in gone)
        return files, freed

    def disk_usage(self) -> pd.DataFrame:
        """Bytes on disk per table (see :meth:`EmbeddedStore.disk_usage`)."""
        rows = []
        for t in TABLES:
            tdir = self.writer.root / t
            on_disk = disk_files(tdir) if tdir.exists() else {}
            man = load_manifest(self.writer.table_dir(t))
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


def disk_files(tdir: Path) -> dict[str, int]:
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
            yield _mergetime_ordered(spec, table, files)


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


def _mergetime_ordered(spec: TableSpec, table: pa.Table, files: list[FileEntry]) -> pa.Table:
    """Rows of ``files`` (concatenated in ``table``) sorted by key, later rows winning.

    When each file is sorted by key and each file's rows all come before the next file's in
    time (month files of a year in order), the (symbol[, factor], ts) order is a stable sort by
    the non-time key columns alone: no row's key repeats and time order is kept per symbol.
    """
    if len(files) < 2 or not time_ordered(files):
        return dedupe_sorted(spec, table, stored=True)
    codes = [sort_codes(table.column(k)) for k in spec.key if k != "ts"]
    order = np.lexsort([np.arange(table.num_rows)] + codes[::-1])
    # the check in _dedupe_sorted (one pass) guards the assumption: rows out of key order
    # would be sorted there rather than written out of order
    return dedupe_sorted(spec, table.take(pa.array(order)), stored=True)
