"""Queries of the embedded store: DuckDB over the manifest's Parquet files, and the day and symbol files.

Readers take no lock: each query reads one manifest version and files that are never
modified; if a writer deleted one of them meanwhile (after its grace period) the query
re-reads the manifest and runs again. Whole-market reads of one ``bars_1m`` day and "as of"
snapshots are answered from memory-mapped day files (:mod:`.daycache`), one symbol's history
from its symbol file (:mod:`.symbolcache`); both are derived from the Parquet files and
rebuilt after a write changes what they were built from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pyplatform.store import sql as q
from pyplatform.store.daycache import DAY_NS, DayCache, DayView
from pyplatform.store.encoding import select_sql, value_exprs
from pyplatform.store.frames import symbol_list, to_frame, ts_ns
from pyplatform.store.manifest import Manifest, load_manifest, time_ordered
from pyplatform.store.symbolcache import SymbolCache
from pyplatform.store.tables import TABLES, TableSpec, table_spec

__all__ = ["StoreQuery"]


class StoreQuery:
    """Answers the store's read calls over the tables under ``root``.

    Parameters
    ----------
    root : Path
        The store's directory.
    cursor : callable
        Returns this thread's DuckDB cursor.
    days : DayCache
        Memory-mapped ``bars_1m`` day files.
    symbol_files : SymbolCache
        Memory-mapped ``bars_1m`` symbol files.
    """

    def __init__(self, root: Path, cursor: Callable[[], duckdb.DuckDBPyConnection], days: DayCache,
                 symbol_files: SymbolCache) -> None:
        self.root = root
        self._cursor = cursor
        self.days = days
        self.symbol_files = symbol_files

    def table_dir(self, table: str) -> Path:
        table_spec(table)
        return self.root / table

    def manifest(self, table: str) -> Manifest:
        """The current manifest of ``table``."""
        return load_manifest(self.table_dir(table))

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
        """Rows of ``symbols`` with ``start <= ts < end`` (see :meth:`EmbeddedStore.read`)."""
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
            if not spec.has_factor and time_ordered(fs):
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
        """All symbols at one moment or on one day (see :meth:`EmbeddedStore.cross_section`)."""
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

    def _day_view(self, table: str, day0: int, man: Manifest | None = None, build: bool = True,
                  admit: bool = False) -> DayView | None:
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
        return self.days.get(table, day0, sources, from_parquet, admit=admit)

    def full_days(self, table: str, n: int) -> list[int]:
        """Starts (ns) of the newest ``n`` days of ``table`` that hold a full session, newest first.

        A full session day has at least half the rows of the busiest of the table's last eight
        days, so a weekend or holiday with only 24/7 markets (or a day just begun) is passed
        over for the last day the whole market traded. One grouped count over those days.
        """
        files = self.manifest(table).files()
        if n <= 0 or not files:
            return []
        last = max(f.max_ts for f in files)
        lo = last - last % DAY_NS - 7 * DAY_NS

        def build(man: Manifest, files):
            fs = man.files(lo, None)
            if not fs:
                return None
            return (f"SELECT epoch_ns(ts) // {DAY_NS} AS d, count(*) AS n FROM read_parquet({files(fs)}) "
                    f"{q.where(None, lo, None)} GROUP BY d ORDER BY d DESC")

        counts = self._run(table, build, [])
        if counts is None or counts.num_rows == 0:
            return []
        days, rows = counts.column("d").to_numpy(), counts.column("n").to_numpy()
        return [int(d) * DAY_NS for d in days[rows * 2 >= rows.max()][:n]]

    def warm_days(self, table: str, n: int) -> list[int]:
        """Build (or check) the day files of the newest ``n`` full session days of ``table``
        now, so their first whole-market read is served from memory; return the days warmed."""
        if not self._caches(table):
            return []
        return [d0 for d0 in self.full_days(table, min(n, self.days.max_days))
                if self._day_view(table, d0, admit=True) is not None]

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
        """OHLCV bars of width ``freq`` (see :meth:`EmbeddedStore.resample`)."""
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
        """The last ``right_table`` row at or before each left row (see :meth:`EmbeddedStore.asof_join`)."""
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
        """One row per table (see :meth:`EmbeddedStore.info`)."""
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


def _finish(spec: TableSpec, result: pa.Table | None, columns, as_arrow: bool):
    """A query result (or None: no rows) as the caller asked: a (datetime, symbol) frame, or
    Arrow with ``ts`` int64 ns first and plain-string symbols."""
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
