"""Memory-mapped day files: the whole market on one day, and "as of" snapshots, at memory speed.

The Parquet layout is symbol-major (rows sorted by (symbol, ts), zstd, delta-packed), which
suits one symbol over years. The other query shape -- every symbol on one day, or every
symbol's last bar at a moment -- then has to decode a row-group run per symbol and re-sort
millions of rows by time. For those, a *day file* holds one UTC day of a table already
decoded and in the order the answer needs:

- rows in (time, symbol) order, the value columns as the exact NumPy arrays the pandas frame
  holds, and the MultiIndex codes (int8/int16, the dtype pandas itself would choose), so a
  day's frame is built from zero-copy views of a memory-mapped Arrow IPC file, with no
  per-column copy;
- a symbol-major permutation and a sorted ``symbol * 2**47 + (ts - day)`` key, so the last
  row of every symbol at or before any time of the day is one vectorised ``searchsorted``
  (a binary search per symbol) and a gather of one row per symbol.

A day file is a cache derived from the Parquet files, never a source of truth. It records
the manifest paths of the files it was built from; files are immutable (a rewrite gets a new
name), so the same list means the same rows. Each read compares that list with the current
manifest and rebuilds on any difference. A file is written under a temporary name and
renamed into place; one that cannot be read (torn, foreign, older format) is rebuilt. The
folder holds at most ``max_days`` day files (least recently used removed first).

Trade-off: a day file is uncompressed (about 30 bytes per row per numeric column set, ~6x the
Parquet bytes), so only recent or recently asked-for days are kept. See ``docs/history.md``.
"""

from __future__ import annotations

import json
import mmap
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["DayView", "DayCache", "DAY_NS", "SPAN"]

DAY_NS = 86_400 * 10**9
SPAN = 1 << 47  # > DAY_NS: room for the time offset under the symbol code in one int64 key
_FORMAT = b"pyplatform-day/1"


class MappedColumns:
    """Where each value column lies in a mapped cache file, to hand out private views of it.

    Frames must be writable and independent of each other (a user may ``df.iloc[0, 0] = x``),
    while the file and the in-process memo are shared. Each frame therefore gets its own
    *copy-on-write* mapping of the file (``mmap.ACCESS_COPY``): no bytes are copied until the
    user writes, and a write lands in private pages of that mapping only. The open file object
    pins the inode, so a rebuild that renames a new file over the path cannot change what an
    older view maps.
    """

    def __init__(self, fh, layout: dict[str, tuple[int, np.dtype, int]]) -> None:
        self.fh = fh
        self.layout = layout

    def private(self, names: list[str], lo: int = 0, hi: int | None = None) -> dict[str, np.ndarray]:
        mm = mmap.mmap(self.fh.fileno(), 0, access=mmap.ACCESS_COPY)
        out = {}
        for n in names:
            off, dt, count = self.layout[n]
            end = count if hi is None else hi
            out[n] = np.frombuffer(mm, dtype=dt, count=max(end - lo, 0), offset=off + lo * dt.itemsize)
        return out


def open_mapped(path: Path):
    """(Arrow table of zero-copy read-only columns, :class:`MappedColumns` of its ``v:`` columns)."""
    fh = open(path, "rb")
    try:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        base = pa.py_buffer(mm)
        table = pa.ipc.open_file(base).read_all()
        layout = {}
        for name in table.schema.names:
            if not name.startswith("v:"):
                continue
            col = table.column(name)
            if col.num_chunks != 1 or col.null_count:
                return table, None
            chunk = col.chunk(0)
            dt = np.dtype(chunk.type.to_pandas_dtype())
            data = chunk.buffers()[1]
            layout[name[2:]] = (data.address - base.address + chunk.offset * dt.itemsize, dt, len(chunk))
        return table, MappedColumns(fh, layout)
    except BaseException:
        fh.close()
        raise


def _code_dtype(n_levels: int) -> np.dtype:
    # the dtype pandas' MultiIndex coerces codes to (so handing it these costs no copy)
    for dt in (np.int8, np.int16, np.int32):
        if n_levels < np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


@dataclass
class DayView:
    """One day of a table, in (time, symbol) order, with a symbol-major index."""

    day0: int
    sources: tuple[str, ...]
    symbols: np.ndarray  # object, sorted
    times: np.ndarray  # int64 ns, sorted distinct times of the day
    tcode: np.ndarray
    scode: np.ndarray
    values: dict[str, np.ndarray]
    perm: np.ndarray  # symbol-major position -> row
    skey: np.ndarray  # int64, symbol-major, ascending
    sym_start: np.ndarray  # int64, n_symbols + 1
    mapped: MappedColumns | None = None  # private views for frames (None: copy the arrays)

    @property
    def rows(self) -> int:
        return len(self.tcode)

    @property
    def key(self) -> int:
        return self.day0

    def frame(self, symbols: list[str] | None = None, columns: list[str] | None = None) -> pd.DataFrame:
        """The day as the store's frame: indexed by (datetime, symbol), sorted by time then symbol."""
        names = list(self.values) if columns is None else list(columns)
        tcode, scode = self.tcode, self.scode
        filtered = symbols is not None
        if filtered:
            vals = {c: self.values[c] for c in names}  # gathered below: copies
        elif self.mapped is not None:
            vals = self.mapped.private(names)
        else:
            vals = {c: self.values[c].copy() for c in names}
        if filtered:
            want = np.asarray(sorted(set(symbols)), dtype=object)
            pos = np.searchsorted(self.symbols, want)
            ok = pos < len(self.symbols)
            pos = pos[ok][self.symbols[pos[ok]] == want[ok]]  # names this day has
            wanted = np.zeros(len(self.symbols), dtype=bool)
            wanted[pos] = True
            rows = np.flatnonzero(wanted[scode])
            tcode, scode = tcode[rows], scode[rows]
            vals = {c: v[rows] for c, v in vals.items()}
        frame = pd.DataFrame(vals, copy=False)
        index = pd.MultiIndex(
            levels=[pd.DatetimeIndex(self.times.view("datetime64[ns]"), name="datetime"),
                    pd.Index(self.symbols, dtype=object)],
            codes=[tcode, scode], names=["datetime", "symbol"], verify_integrity=False)
        frame.index = index.remove_unused_levels() if filtered else index
        return frame

    def last_at(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(symbol codes, rows): each symbol's last row with ts <= ``t`` on this day."""
        off = min(max(int(t) - self.day0, -1), SPAN - 1)
        n = len(self.symbols)
        if off < 0 or n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        keys = np.arange(n, dtype=np.int64) * SPAN + off
        idx = np.searchsorted(self.skey, keys, side="right") - 1
        found = idx >= self.sym_start[:-1]
        return np.flatnonzero(found), self.perm[idx[found]].astype(np.int64)


def view_from_frame(frame: pd.DataFrame, day0: int, sources: tuple[str, ...]) -> DayView | None:
    """A :class:`DayView` of a store frame of one day (None when it cannot be one)."""
    if frame.empty or not all(frame[c].dtype.kind in "fiub" for c in frame.columns):
        return None
    idx = frame.index
    times = idx.levels[0].asi8 if hasattr(idx.levels[0], "asi8") else None
    symbols = np.asarray(idx.levels[1], dtype=object)
    if times is None or not (np.all(times[1:] > times[:-1]) and np.all(symbols[1:] > symbols[:-1])):
        return None
    tcode = np.asarray(idx.codes[0]).astype(_code_dtype(len(times)), copy=False)
    scode = np.asarray(idx.codes[1]).astype(_code_dtype(len(symbols)), copy=False)
    perm = np.argsort(scode, kind="stable").astype(np.int32)  # rows are time-sorted: stays so per symbol
    sc = scode[perm].astype(np.int64)
    skey = sc * SPAN + (times[tcode[perm]] - day0)
    sym_start = np.searchsorted(sc, np.arange(len(symbols) + 1)).astype(np.int64)
    values = {str(c): np.ascontiguousarray(frame[c].to_numpy()) for c in frame.columns}
    return DayView(day0, tuple(sources), symbols, times.astype(np.int64), tcode, scode, values, perm, skey,
                   sym_start)


def _write_view(view: DayView, path: Path) -> None:
    cols = {"tcode": view.tcode, "scode": view.scode, **{f"v:{k}": v for k, v in view.values.items()},
            "perm": view.perm, "skey": view.skey}
    meta = {
        b"format": _FORMAT,
        b"day0": str(view.day0).encode(),
        b"sources": json.dumps(list(view.sources)).encode(),
        b"symbols": json.dumps(view.symbols.tolist()).encode(),
        b"times": view.times.astype("<i8").tobytes(),
        b"sym_start": view.sym_start.astype("<i8").tobytes(),
    }
    table = pa.table({k: pa.array(v) for k, v in cols.items()}).replace_schema_metadata(meta)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    os.replace(tmp, path)  # a cache: no fsync (a torn file after a crash is detected and rebuilt)


def _read_view(path: Path) -> DayView | None:
    try:
        table, mapped = open_mapped(path)
        meta = table.schema.metadata or {}
        if meta.get(b"format") != _FORMAT:
            return None
        col = {n: table.column(n) for n in table.schema.names}

        def np_of(name):
            c = col[name]
            return (c.chunk(0) if c.num_chunks == 1 else c.combine_chunks()).to_numpy(zero_copy_only=True)

        values = {n[2:]: np_of(n) for n in table.schema.names if n.startswith("v:")}
        return DayView(int(meta[b"day0"]), tuple(json.loads(meta[b"sources"])),
                       np.asarray(json.loads(meta[b"symbols"]), dtype=object),
                       np.frombuffer(meta[b"times"], dtype="<i8"), np_of("tcode"), np_of("scode"), values,
                       np_of("perm"), np_of("skey"), np.frombuffer(meta[b"sym_start"], dtype="<i8"), mapped)
    except (OSError, pa.ArrowException, KeyError, ValueError):
        return None


class DayCache:
    """Day files of the tables of one store, with an in-process memo of the mapped views.

    Parameters
    ----------
    root : Path
        The store root; day files go to ``<root>/<table>/_days/<YYYY-MM-DD>.arrow``.
    max_days : int
        Day files kept per table (least recently used removed first); 0 turns caching off.

    A file is built on the second request for its day in this process (``admit_after``), so
    a one-off read costs no more than the Parquet query alone.
    """

    def __init__(self, root: Path, max_days: int = 4) -> None:
        self.root = Path(root)
        self.max_days = int(max_days)
        self._memo: dict[tuple[str, int], DayView] = {}
        self._lock = threading.Lock()
        self._asked: dict[tuple, int] = {}
        self.admit_after = 1  # earlier requests of a key answered without building its file
        self.builds = 0
        self.hits = 0

    def path(self, table: str, day0: int) -> Path:
        day = pd.Timestamp(day0).strftime("%Y-%m-%d")
        return self.root / table / "_days" / f"{day}.arrow"

    def get(self, table: str, day0: int, sources: tuple[str, ...], build, *, build_missing: bool = True,
            admit: bool = False) -> DayView | None:
        """The view of ``table`` on the day starting at ``day0`` built from ``sources``.

        ``build()`` returns ``(frame, sources_after)``: the day read from Parquet and the file
        list after the read; the view is kept only if that list is still ``sources`` (no
        writer replaced a file meanwhile). With ``build_missing=False`` only an existing,
        current day file is used (None otherwise); with ``admit=True`` a missing file is built
        on this first request (the store warming the days it expects to be asked for).
        """
        if self.max_days <= 0 or not sources:
            return None
        key = (table, day0)
        with self._lock:
            view = self._memo.get(key)
        if view is not None and view.sources == sources:
            self.hits += 1
            return view
        path = self.path(table, day0)
        view = self._read(path) if path.exists() else None
        if view is not None and view.sources == sources and view.key == day0:
            self.hits += 1
            self._remember(key, view, path)
            return view
        if not build_missing:
            return None
        with self._lock:
            # admission: build on the second request, so a one-off read (a loop over every
            # symbol once, a single old day) pays the Parquet query only, not a file write too
            asked = self._asked.get(key, 0)
            self._asked[key] = asked + 1
            if len(self._asked) > 100_000:
                self._asked.clear()
        if asked < self.admit_after and not admit:
            return None
        frame, after = build()
        view = self._from_frame(frame, day0, sources)
        if view is None or after != sources:
            return None
        self.builds += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._write(view, path)
            self._evict(path.parent)
            view = self._read(path) or view  # the mapped file (frames get private views of it)
        except OSError:
            pass  # a cache: a full disk costs speed, not answers (frames copy the arrays)
        self._remember(key, view, path)
        return view

    def _remember(self, key, view: DayView, path: Path) -> None:
        try:
            os.utime(path)  # recency for eviction
        except OSError:
            pass
        with self._lock:
            self._memo[key] = view
            while len(self._memo) > max(self.max_days, 1) * 4:
                self._memo.pop(next(iter(self._memo)))

    def _evict(self, folder: Path) -> None:
        files = sorted(folder.glob("*.arrow"), key=lambda p: p.stat().st_mtime)
        for p in files[: max(0, len(files) - self.max_days)]:
            p.unlink(missing_ok=True)
        now = time.time()
        for p in folder.glob(".tmp-*"):  # a crashed builder's leftovers (not one writing now)
            try:
                if now - p.stat().st_mtime > 300:
                    p.unlink(missing_ok=True)
            except OSError:
                pass

    # the file format (a subclass keeps other views: see :mod:`.symbolcache`)
    def _read(self, path: Path):
        return _read_view(path)

    def _write(self, view, path: Path) -> None:
        _write_view(view, path)

    def _from_frame(self, frame: pd.DataFrame, key, sources: tuple[str, ...]):
        return view_from_frame(frame, key, sources)

    def clear(self) -> None:
        with self._lock:
            self._memo.clear()
