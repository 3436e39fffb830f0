"""Memory-mapped symbol files: one symbol's whole history as a DataFrame without decoding.

The Parquet files are compact (about 10 bytes per 1-minute bar) but decoding 1.2 million rows
of one symbol's twelve years (zstd, delta-packed integers, then dividing by the price
divisor) costs about 0.1 s on a 2-core machine before pandas sees a value -- DuckDB's own scan
into Arrow is most of it. A *symbol file* keeps the decoded result: an uncompressed Arrow IPC
file with ``ts`` and the frame's value columns as the exact float64/int64 arrays, memory-mapped
on read, so the frame (and any time slice of it: a binary search on ``ts``) is built from
zero-copy views.

Like a day file (:mod:`.daycache`) it is a cache and never a source of truth: it records the
manifest paths of every file of the table when it was built (any of them may hold rows of the
symbol), is rebuilt when that list changes (any write to the table), and is bounded (least
recently used removed first). The price is disk: about 64 bytes per bar instead of 10 (75 MB
for twelve years of one stock), so only the symbols last asked for are kept.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa

from pyplatform.store.daycache import DayCache, MappedColumns, _code_dtype, open_mapped

__all__ = ["SymbolView", "SymbolCache"]

_FORMAT = b"pyplatform-symbol/1"


@dataclass
class SymbolView:
    """One symbol's rows of a table, in time order."""

    symbol: str
    sources: tuple[str, ...]
    ts: np.ndarray  # int64 ns, strictly increasing
    values: dict[str, np.ndarray]
    mapped: MappedColumns | None = None  # private views for frames (None: copy the arrays)

    @property
    def key(self) -> str:
        return self.symbol

    def frame(self, start: int | None = None, end: int | None = None, columns: list[str] | None = None
              ) -> pd.DataFrame:
        """Rows with ``start <= ts < end`` as the store's frame (views of the mapped file)."""
        lo = 0 if start is None else int(np.searchsorted(self.ts, start, side="left"))
        hi = len(self.ts) if end is None else int(np.searchsorted(self.ts, end, side="left"))
        hi = max(lo, hi)
        names = list(self.values) if columns is None else list(columns)
        vals = self.mapped.private(names, lo, hi) if self.mapped is not None \
            else {c: self.values[c][lo:hi].copy() for c in names}
        frame = pd.DataFrame(vals, copy=False)
        n = hi - lo
        frame.index = pd.MultiIndex(
            levels=[pd.DatetimeIndex(self.ts[lo:hi].view("datetime64[ns]"), name="datetime"),
                    pd.Index(np.asarray([self.symbol], dtype=object), dtype=object)],
            codes=[np.arange(n, dtype=_code_dtype(n)), np.zeros(n, dtype=np.int8)],
            names=["datetime", "symbol"], verify_integrity=False)
        return frame


def _from_frame(frame: pd.DataFrame, symbol: str, sources: tuple[str, ...]) -> SymbolView | None:
    if frame.empty or not all(frame[c].dtype.kind in "fiub" for c in frame.columns):
        return None
    ts = frame.index.get_level_values("datetime").asi8
    if not np.all(ts[1:] > ts[:-1]):
        return None
    return SymbolView(symbol, tuple(sources), np.ascontiguousarray(ts, dtype=np.int64),
                      {str(c): np.ascontiguousarray(frame[c].to_numpy()) for c in frame.columns})


def _write(view: SymbolView, path: Path) -> None:
    meta = {b"format": _FORMAT, b"symbol": view.symbol.encode(), b"sources": json.dumps(list(view.sources)).encode()}
    table = pa.table({"ts": pa.array(view.ts), **{f"v:{k}": pa.array(v) for k, v in view.values.items()}})
    table = table.replace_schema_metadata(meta)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    os.replace(tmp, path)  # a cache: no fsync (a torn file is detected and rebuilt)


def _read(path: Path) -> SymbolView | None:
    try:
        table, mapped = open_mapped(path)
        meta = table.schema.metadata or {}
        if meta.get(b"format") != _FORMAT:
            return None

        def np_of(name):
            c = table.column(name)
            return (c.chunk(0) if c.num_chunks == 1 else c.combine_chunks()).to_numpy(zero_copy_only=True)

        return SymbolView(meta[b"symbol"].decode(), tuple(json.loads(meta[b"sources"])), np_of("ts"),
                          {n[2:]: np_of(n) for n in table.schema.names if n.startswith("v:")}, mapped)
    except (OSError, pa.ArrowException, KeyError, ValueError):
        return None


class SymbolCache(DayCache):
    """Symbol files of a store's tables (``<root>/<table>/_symbols/<symbol>.arrow``).

    Parameters
    ----------
    root : Path
        The store root.
    max_symbols : int
        Symbol files kept per table (least recently used removed first); 0 turns them off.
    """

    def __init__(self, root: Path, max_symbols: int = 4) -> None:
        super().__init__(root, max_symbols)

    def path(self, table: str, symbol: str) -> Path:
        # symbols are CODE.REGION; quoted anyway so no name can leave the folder
        return self.root / table / "_symbols" / f"{quote(symbol, safe='')}.arrow"

    def _read(self, path: Path):
        return _read(path)

    def _write(self, view, path: Path) -> None:
        _write(view, path)

    def _from_frame(self, frame, key, sources):
        return _from_frame(frame, key, sources)
