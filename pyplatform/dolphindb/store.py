"""The history store answered by SQL on DolphinDB's DFS tables.

``open_store()`` returns this class when the configured backend is ``dolphindb://``. It
takes the same calls as the embedded store and returns the same shapes: pandas frames
indexed by (datetime, symbol) sorted by time then symbol, or Arrow tables with ``ts`` as
int64 nanoseconds. Writes are validated by the same code as the embedded store
(:func:`pyplatform.store.frames.as_canonical`) before anything is sent, and are
idempotent on the server too (TSDB ``keepDuplicates=LAST`` on the table's key).

Instruments (symbol, asset class, sector) are reference data kept by the embedded store
under ``data_dir`` on both backends.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pyplatform.config import Settings, get_settings
from pyplatform.dolphindb import schema
from pyplatform.dolphindb import sql as dsql
from pyplatform.dolphindb.connection import connect, target_from_settings
from pyplatform.dolphindb.render import DeployConfig
from pyplatform.store.frames import as_canonical, symbol_list, to_frame, ts_ns
from pyplatform.store.sql import empty_result, left_table
from pyplatform.store.tables import TABLES, table_spec

__all__ = ["DolphinDBStore", "result_to_arrow", "to_dolphin_frame"]

_WINDOWS = ("1D", "7D", "35D", "400D")


def result_to_arrow(frame: pd.DataFrame, table: str, columns: list[str] | None) -> pa.Table:
    """A query result from the server (``datetime``, ``symbol``, [``factor``], values) as
    Arrow in the store's user-facing types; ``datetime`` as timestamp[ns]."""
    spec = table_spec(table)
    names = columns if columns is not None else spec.value_names
    if frame is None or len(frame) == 0:
        return empty_result(spec, names)
    types = dict(spec.columns)
    dt = pd.to_datetime(frame["datetime"]).to_numpy().astype("datetime64[ns]")
    arrays = {"datetime": pa.array(dt, pa.timestamp("ns")),
              "symbol": pa.array(frame["symbol"].astype(str).to_numpy(), pa.string())}
    if spec.has_factor:
        arrays["factor"] = pa.array(frame["factor"].astype(str).to_numpy(), pa.string())
    for c in names:
        values = frame[c].to_numpy()
        if pa.types.is_integer(types[c]):
            # DolphinDB NULLs of integer columns arrive as NaN in float columns
            values = pd.array(values, dtype="Float64").round().astype(str(types[c]).replace("int", "Int"))
            arrays[c] = pa.array(values, types[c])
        else:
            arrays[c] = pa.array(values, types[c], from_pandas=True)
    return pa.table(arrays)


def to_dolphin_frame(canon: pa.Table, table: str, config: DeployConfig) -> pd.DataFrame:
    """A validated write (the store's canonical Arrow table) as a pandas frame in the DFS
    table's column order and types, keeping the LAST row of each key like the embedded store."""
    spec = table_spec(table)
    _, _, key = schema.DFS[table]
    frame = canon.to_pandas()
    frame = frame.drop_duplicates(subset=list(spec.key), keep="last")
    unit = "datetime64[ms]" if config.time_type == "TIMESTAMP" else "datetime64[ns]"
    frame["ts"] = frame["ts"].to_numpy().astype("datetime64[ns]").astype(unit)
    cast = {"CHAR": np.int8, "INT": np.int32, "DOUBLE": np.float64}
    out = {}
    for col, typ in schema.TABLES[key]:
        values = frame[col]
        if typ in cast:
            values = values.astype(cast[typ])
        out[col] = values.to_numpy()
    return pd.DataFrame(out)


class DolphinDBStore:
    """History store on DolphinDB DFS tables (see module docstring).

    Parameters
    ----------
    settings : Settings, optional
        Configuration (``PYPLATFORM_DOLPHINDB_URI`` and credentials).
    session : dolphindb.Session, optional
        An open session; by default one is opened from ``settings``.
    config : DeployConfig, optional
        The deploy configuration the server was deployed with (object names, time type).
    """

    def __init__(self, settings: Settings | None = None, session=None, config: DeployConfig | None = None,
                 max_partitions_per_query: int = 65_536, **_options) -> None:
        self.settings = settings or get_settings()
        self.config = config or DeployConfig()
        # the server's maxPartitionNumPerQuery (default 65,536; `pyplatform dolphindb status`
        # shows it): a query touching more partitions fails, so fallbacks are bounded by it
        self.max_partitions_per_query = int(max_partitions_per_query)
        self.session = session if session is not None else connect(target_from_settings(self.settings))

    # ------------------------------------------------------------------ writing
    def write(self, table: str, data) -> int:
        """Append rows idempotently (a second write of a key replaces the first).

        Raises
        ------
        ValueError, NormalizationError
            Naming the missing column or each bad row; nothing is sent then.
        """
        import dolphindb as ddb

        canon = as_canonical(table_spec(table), data)
        if canon.num_rows == 0:
            return 0
        frame = to_dolphin_frame(canon, table, self.config)
        db, name, _ = schema.DFS[table]
        appender = ddb.TableAppender(f"dfs://{self.config.prefix}_{db}", name, self.session)
        appender.append(frame)
        return len(frame)

    # ------------------------------------------------------------------ reading
    def _query(self, script: str, table: str, columns) -> pa.Table:
        return result_to_arrow(self.session.run(script), table, columns)

    def _finish(self, table: str, result: pa.Table, as_arrow: bool):
        if as_arrow:
            ts = result.column("datetime").cast(pa.timestamp("ns")).cast(pa.int64())
            return result.drop_columns(["datetime"]).add_column(0, "ts", ts)
        return to_frame(result)

    def read(self, table: str, symbols=None, start=None, end=None, columns=None, as_arrow: bool = False):
        """Rows of ``symbols`` (all if None) with ``start <= ts < end``, by time then symbol.

        A range spanning more daily partitions than one query may touch
        (``maxPartitionNumPerQuery``) is read in consecutive time chunks, in order."""
        syms = symbol_list(symbols)
        parts = [self._query(dsql.read_sql(self.config, table, syms, lo, hi, columns), table, columns)
                 for lo, hi in self._chunks(table, ts_ns(start), ts_ns(end))]
        result = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
        return self._finish(table, result, as_arrow)

    def _chunks(self, table: str, lo: int | None, hi: int | None) -> list[tuple[int | None, int | None]]:
        """``[lo, hi)`` split so that no piece spans more than the widest safe window.

        Open ends are closed with the table's VALUE time partitions (``schema(t).partitionSchema``,
        read only when needed); if those cannot be read the range is queried as one piece."""
        widest = self._widest_window(table)
        if widest is None or (lo is not None and hi is not None and hi - lo <= widest):
            return [(lo, hi)]
        bounds = self._partition_bounds(table)
        if bounds is None:
            return [(lo, hi)]
        first, last = bounds
        # no row lies outside the partitions, so the range can be clipped to them
        a = first if lo is None else max(lo, first)
        b = last if hi is None else min(hi, last)
        if b <= a:
            return [(lo, hi)]
        out = []
        while a < b:
            out.append((a, min(a + widest, b)))
            a += widest
        return out

    def _partition_bounds(self, table: str) -> tuple[int, int] | None:
        """``[first, end)`` in ns covered by the first-level VALUE partitions of a
        time-partitioned table: days (DATE) for ticks and factors, months (MONTH) for
        1-minute bars, each partition ending where the next unit starts."""
        try:
            got = self.session.run(f"schema({dsql.dfs_ref(self.config, table)}).partitionSchema[0]")
        except Exception:  # an older server or a different scheme: read unchunked
            return None
        try:
            arr = np.asarray(got)
            if len(arr) == 0 or not np.issubdtype(arr.dtype, np.datetime64):
                return None
            unit = np.datetime_data(arr.dtype)[0]
            first = arr.min().astype("datetime64[ns]").astype(np.int64)
            end = (arr.max() + np.timedelta64(1, unit)).astype("datetime64[ns]").astype(np.int64)
            return int(first), int(end)
        except (TypeError, ValueError):
            return None

    def cross_section(self, table: str, at=None, day=None, symbols=None, columns=None,
                      as_arrow: bool = False, lookback=None):
        """All symbols at one moment: the last row with ``ts <= at``, or every row of ``day``."""
        if (at is None) == (day is None):
            raise ValueError("cross_section needs exactly one of at= or day=")
        if day is not None:
            d0 = pd.Timestamp(day).normalize()
            return self.read(table, symbols, d0, d0 + pd.Timedelta("1D"), columns, as_arrow)
        t = ts_ns(at)
        syms = symbol_list(symbols)
        windows: list[int | None] = [pd.Timedelta(w).value for w in _WINDOWS] + [self._widest_window(table)]
        if lookback is not None:
            limit = pd.Timedelta(lookback).value
            windows = [w for w in windows if w is not None and w < limit] + [limit]
        widest = windows[-1]
        if syms is not None:
            wanted = set(syms)
        else:  # the symbols present within the widest window, not over all history (maxPartitionNumPerQuery)
            lo = None if widest is None else t - widest + 1
            wanted = {str(x) for x in self.session.run(dsql.symbols_sql(self.config, table, lo, t + 1))["symbol"]}
        result = None
        for w in windows:
            lo = None if w is None else t - w + 1
            result = self._query(dsql.latest_sql(self.config, table, syms, lo, t + 1, columns), table, columns)
            if wanted <= set(result.column("symbol").to_pylist()):
                break
        return self._finish(table, result, as_arrow)

    def _widest_window(self, table: str) -> int | None:
        """The longest look-back (ns) a query of ``table`` may span without exceeding
        ``maxPartitionNumPerQuery``: VALUE time partitions x HASH buckets per partition
        (ticks and factors by day; 1-minute bars by month, counted at 28 days so that a
        window never spans more months than allowed). None for the yearly daily bars and
        the monthly signals, which have no HASH level and never come near the limit."""
        per_day = {"ticks": self.config.tick_hash_buckets, "factors": self.config.factor_hash_buckets}
        day = 86_400_000_000_000
        if table in per_day:
            return max(1, self.max_partitions_per_query // per_day[table] - 1) * day
        if table == "bars_1m":
            # a window of k*28 days touches at most k+1 calendar months
            return max(1, self.max_partitions_per_query // self.config.bar_hash_buckets - 1) * 28 * day
        return None

    def resample(self, source_table: str, freq: str, symbols=None, start=None, end=None, as_arrow: bool = False):
        """OHLCV bars of width ``freq`` from ``ticks`` or finer bars (epoch-aligned, start-stamped)."""
        step = pd.Timedelta(freq).value
        if step <= 0:
            raise ValueError(f"resample freq must be positive, got {freq!r}")
        sql = dsql.resample_sql(self.config, source_table, step, symbol_list(symbols), ts_ns(start), ts_ns(end))
        return self._finish("bars_1m", self._query(sql, "bars_1m", None), as_arrow)

    def asof_join(self, left, right_table: str, columns=None, tolerance=None, as_arrow: bool = False):
        """For each row of ``left``, the last ``right_table`` row of its symbol at or before it."""
        spec = table_spec(right_table)
        lt = left_table(left)
        if lt.num_rows == 0:
            raise ValueError("asof_join: left has no rows")
        cols = dsql._columns(right_table, columns)
        syms = sorted(set(lt.column("symbol").to_pylist()))
        lts = lt.column("ts").cast(pa.int64()).to_numpy()
        tol = None if tolerance is None else pd.Timedelta(tolerance).value
        lo = None if tol is None else int(lts.min()) - tol
        unit = "datetime64[ms]" if self.config.time_type == "TIMESTAMP" else "datetime64[ns]"
        upload = pd.DataFrame({"symbol": lt.column("symbol").to_numpy(zero_copy_only=False),
                               "ts": lts.astype("datetime64[ns]").astype(unit),
                               "pp_row": np.arange(lt.num_rows, dtype=np.int64)})
        self.session.upload({"ppAsofLeft": upload})
        script = dsql.asof_script(self.config, right_table, cols, syms, lo, int(lts.max()) + 1)
        got = self.session.run(script).sort_values("pp_row")
        rts = pd.to_datetime(got["right_ts"]).to_numpy().astype("datetime64[ns]")
        stale = np.zeros(len(got), dtype=bool)
        if tol is not None:
            rns = rts.astype(np.int64)
            stale = np.isnat(rts) | (lts - rns > tol)
            rts = np.where(stale, np.datetime64("NaT"), rts)
        types = dict(spec.columns)
        out = lt.drop_columns(["_row"]).rename_columns(
            ["datetime" if n == "ts" else n for n in lt.drop_columns(["_row"]).schema.names])
        out = out.append_column("right_ts", pa.array(rts, pa.timestamp("ns")))
        for c in cols:
            values = got[c].to_numpy()
            if pa.types.is_floating(types[c]):
                values = np.where(stale, np.nan, values.astype(np.float64))
                out = out.append_column(c, pa.array(values, types[c], from_pandas=True))
            else:
                values = pd.array(values, dtype="Float64")
                values[stale] = pd.NA
                out = out.append_column(c, pa.array(values.round().astype(str(types[c]).replace("int", "Int")),
                                                    types[c]))
        return out if as_arrow else to_frame(out)

    def symbols(self, table: str) -> list[str]:
        """Distinct symbols stored in ``table``, sorted (in time chunks, like :meth:`read`)."""
        out: set[str] = set()
        for lo, hi in self._chunks(table, None, None):
            got = self.session.run(dsql.symbols_sql(self.config, table, lo, hi))
            out.update(str(s) for s in got["symbol"])
        return sorted(out)

    def instruments(self) -> pd.DataFrame:
        """Reference data (symbol, asset_class, sector), kept in the embedded store."""
        from pyplatform.store.embedded import EmbeddedStore

        return EmbeddedStore(self.settings.path("history")).instruments()

    def write_instruments(self, instruments) -> int:
        from pyplatform.store.embedded import EmbeddedStore

        return EmbeddedStore(self.settings.path("history")).write_instruments(instruments)

    def close(self) -> None:
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


assert set(TABLES) <= set(dsql.STORE_COLUMNS), "every history table needs DolphinDB columns"
