"""Writing the embedded store: idempotent appends of validated rows as immutable Parquet files.

A write validates the rows (:func:`~pyplatform.store.frames.as_canonical`), keeps the last
row of each key, splits them by partition (month, or year for ``bars_1d`` and rolled-up
years) and, under the table's writer lock, adds each partition's rows as a new segment when
their keys cannot collide with stored ones, or rewrites the partition merged otherwise. Files
are written under a temporary name, fsynced and renamed, and only then published by an
atomic manifest replace (see :mod:`.manifest`); superseded files are swept after the grace
period by the next writer.

Rows in every file are sorted by (symbol, ts) and cut into row groups aligned to symbols
(:func:`row_group_slices`), which is what lets queries skip row groups by statistics.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pyplatform.store import sql as q
from pyplatform.store.encoding import parquet_options, storage_schema, to_storage
from pyplatform.store.frames import as_canonical
from pyplatform.store.locking import writer_lock
from pyplatform.store.manifest import FileEntry, Manifest, fsync_dir, load_manifest, save_manifest
from pyplatform.store.tables import TABLES, TableSpec, table_spec

__all__ = ["StoreWriter", "row_group_slices", "write_aligned", "write_aligned_batches", "dedupe_sorted",
           "sort_codes", "crash_point"]

_CRASH_ENV = "PYPLATFORM_STORE_CRASH_AT"  # test hook: die at a named point of a write


def crash_point(name: str) -> None:
    """Die here (exit 137, no clean-up) when the test hook names this point of a write."""
    if os.environ.get(_CRASH_ENV) == name:
        os._exit(137)


class StoreWriter:
    """Appends rows to the tables under ``root`` (one writer per table at a time, by lock).

    Parameters
    ----------
    root : Path
        The store's directory (one sub-directory per table).
    cursor : callable
        Returns this thread's DuckDB cursor (for the key semi-join of overlapping writes).
    row_group_size, max_segments, fsync, grace_s
        As for :class:`~pyplatform.store.EmbeddedStore`.
    """

    def __init__(self, root: Path, cursor: Callable[[], duckdb.DuckDBPyConnection], row_group_size: int,
                 max_segments: int, fsync: bool, grace_s: float) -> None:
        self.root = root
        self._cursor = cursor
        self.row_group_size = int(row_group_size)
        self.max_segments = int(max_segments)
        self.fsync = fsync
        self.grace_s = float(grace_s)

    def table_dir(self, table: str) -> Path:
        table_spec(table)
        return self.root / table

    def tables(self) -> list[str]:
        """Tables with a manifest (written at least once)."""
        return [t for t in TABLES if (self.root / t / "_manifest.json").exists()]

    def write(self, table: str, data) -> int:
        """Append rows idempotently (see :meth:`EmbeddedStore.write`); returns the distinct keys written."""
        spec = table_spec(table)
        canon = as_canonical(spec, data)
        if canon.num_rows == 0:
            return 0
        stored = to_storage(spec, dedupe_sorted(spec, canon))
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
            self.sweep(tdir, man)
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
            crash_point("before_manifest")
            save_manifest(tdir, man, fsync=self.fsync)
            crash_point("after_manifest")
        return stored.num_rows

    def _write_partition(self, spec: TableSpec, tdir: Path, man: Manifest, part: str, rows: pa.Table) -> None:
        existing = man.partitions.get(part, [])
        ts = rows.column("ts").cast(pa.int64())
        lo, hi = pc.min(ts).as_py(), pc.max(ts).as_py()
        disjoint = all(f.max_ts < lo or f.min_ts > hi for f in existing)
        if not disjoint:
            disjoint = not self._keys_overlap(spec, tdir, existing, rows)
        if disjoint and len(existing) < self.max_segments:
            man.partitions[part] = existing + [self.write_file(spec, tdir, part, rows)]
            return
        if disjoint and len(existing) > 1:
            # Tiered: fold the small appended segments and the new rows into one segment, and
            # leave the big base file alone, so frequent appends never rewrite a whole month.
            base = max(existing, key=lambda f: f.rows)
            small = [f for f in existing if f is not base]
            tail = pq.read_table([str(tdir / f.path) for f in small], schema=storage_schema(spec))
            merged = dedupe_sorted(spec, pa.concat_tables([tail, rows]), stored=True)
            man.garbage.extend((f.path, time.time()) for f in small)
            man.partitions[part] = [base, self.write_file(spec, tdir, part, merged)]
            return
        old = pq.read_table([str(tdir / f.path) for f in existing], schema=storage_schema(spec)) \
            if len(existing) > 1 else pq.read_table(str(tdir / existing[0].path), schema=storage_schema(spec))
        merged = dedupe_sorted(spec, pa.concat_tables([old, rows]), stored=True)
        entry = self.write_file(spec, tdir, part, merged)
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

    def write_file(self, spec: TableSpec, tdir: Path, part: str, rows) -> FileEntry:
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
        crash_point("after_data")
        os.rename(tmp, pdir / name)
        if self.fsync:
            fsync_dir(pdir)
        return FileEntry(f"{part}/{name}", n, lo, hi)

    def sweep(self, tdir: Path, man: Manifest, grace_s: float | None = None) -> None:
        """Delete superseded files past their grace period and leftovers of crashed writers.

        Runs under the writer lock: no other writer can be creating files now, so any file
        the manifest neither lists nor keeps as garbage is a crashed writer's leftover.
        ``grace_s`` overrides the store's grace period (negative: every superseded file).
        """
        now = time.time()
        grace = self.grace_s if grace_s is None else grace_s
        keep_garbage, drop = [], []
        for path, at in man.garbage:
            (drop if now - at > grace else keep_garbage).append((path, at))
        man.garbage = keep_garbage
        live = {f.path for fs in man.partitions.values() for f in fs} | {p for p, _ in keep_garbage}
        for p in [*tdir.glob("year=*/*.parquet"), *tdir.glob("year=*/.tmp-*"),
                  *tdir.glob("year=*/month=*/*.parquet"), *tdir.glob("year=*/month=*/.tmp-*")]:
            rel = p.relative_to(tdir).as_posix()
            if rel not in live and (p.name.startswith(".tmp-") or p.suffix == ".parquet"):
                p.unlink(missing_ok=True)
        for p in tdir.glob(".*.tmp"):
            p.unlink(missing_ok=True)


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


def sort_codes(col) -> np.ndarray:
    """Integer codes of a string column that sort like the strings."""
    enc = pc.dictionary_encode(col)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    rank = np.argsort(np.argsort(np.asarray(enc.dictionary.to_pylist(), dtype=object)))
    return rank[enc.indices.to_numpy(zero_copy_only=False)]


def dedupe_sorted(spec: TableSpec, table: pa.Table, stored: bool = False) -> pa.Table:
    """Sort by the key and keep the LAST row of each key (later rows win)."""
    n = table.num_rows
    keys = []
    for k in spec.key:
        col = table.column(k)
        if k == "ts":
            keys.append(col.cast(pa.int64()).to_numpy())
        else:
            keys.append(sort_codes(col))
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
