"""DolphinDB SQL for the history-store calls, built from validated values only.

The history store's calls become ``select`` statements over the DFS tables of
``10_databases.dos``. Symbols are checked against a strict pattern before they are
quoted, times are rendered as DolphinDB temporal literals, and every function used is in
the documented-signature table (the tests parse these statements like the scripts).
"""

from __future__ import annotations

import re

import pandas as pd

from pyplatform.dolphindb import schema
from pyplatform.dolphindb.render import DeployConfig

__all__ = [
    "dfs_ref", "symbol_list", "time_literal", "where", "read_sql", "latest_sql", "resample_sql",
    "asof_script", "symbols_sql", "STORE_COLUMNS",
]

_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._$\-]{0,63}")

# history-store table -> user-facing value columns (as in pyplatform.store.tables)
STORE_COLUMNS: dict[str, list[str]] = {
    "ticks": ["price", "volume", "side", "bid", "ask"],
    "bars_1m": ["open", "high", "low", "close", "volume", "vwap", "trades"],
    "bars_1d": ["open", "high", "low", "close", "volume", "vwap", "trades"],
    "factors": ["value"],
}


def dfs_ref(config: DeployConfig, table: str) -> str:
    """``loadTable("dfs://pp_ticks", "ticks")`` for a history-store table name."""
    if table not in schema.DFS or table not in STORE_COLUMNS:
        raise ValueError(f"unknown history table {table!r}: expected one of {sorted(STORE_COLUMNS)}")
    db, name, _ = schema.DFS[table]
    return f'loadTable("dfs://{config.prefix}_{db}", "{name}")'


def symbol_list(symbols: list[str]) -> str:
    """A DolphinDB string vector of validated symbols.

    Raises
    ------
    ValueError
        Naming the first symbol that is not ``CODE.REGION``-like (letters, digits, ``._$-``).
    """
    for i, s in enumerate(symbols):
        if not isinstance(s, str) or not _SYMBOL.fullmatch(s):
            raise ValueError(f"symbols[{i}] = {s!r} is not a valid symbol (letters, digits, '.', '_', '$', '-')")
    return "[" + ", ".join(f'"{s}"' for s in symbols) + "]"


def time_literal(ns: int, config: DeployConfig, round_up: bool = False) -> str:
    """A DolphinDB temporal literal for ``ns`` in the deployed time type.

    With millisecond storage a nanosecond bound is rounded up when ``round_up`` so that
    ``ts >= lo`` and ``ts < hi`` keep exactly the rows the embedded store keeps.
    """
    t = pd.Timestamp(int(ns), unit="ns")
    if config.time_type == "TIMESTAMP":
        ms = -(-int(ns) // 1_000_000) if round_up else int(ns) // 1_000_000
        t = pd.Timestamp(ms, unit="ms")
        return t.strftime("%Y.%m.%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}"
    return t.strftime("%Y.%m.%dT%H:%M:%S.") + f"{t.microsecond * 1000 + t.nanosecond:09d}"


def where(config: DeployConfig, symbols: list[str] | None, lo: int | None, hi: int | None) -> str:
    """``where`` clause for symbols and the half-open range ``lo <= ts < hi`` (ns)."""
    conds = []
    if symbols is not None:
        conds.append("symbol in " + symbol_list(symbols) if symbols else "1 == 0")
    if lo is not None:
        conds.append(f"ts >= {time_literal(lo, config, round_up=True)}")
    if hi is not None:
        conds.append(f"ts < {time_literal(hi, config, round_up=True)}")
    return (" where " + " and ".join(conds)) if conds else ""


def _columns(table: str, columns: list[str] | None) -> list[str]:
    if table not in STORE_COLUMNS:
        raise ValueError(f"unknown history table {table!r}: expected one of {sorted(STORE_COLUMNS)}")
    known = STORE_COLUMNS[table]
    if columns is None:
        return list(known)
    bad = [c for c in columns if c not in known]
    if bad:
        raise ValueError(f"{table}: unknown column(s) {bad}; columns are {known}")
    return list(columns)


def read_sql(config: DeployConfig, table: str, symbols, lo, hi, columns) -> str:
    """Rows in ``[lo, hi)`` ordered by time then symbol (then factor)."""
    cols = _columns(table, columns)
    head = ["ts as datetime", "symbol"] + (["factor"] if table == "factors" else [])
    order = "ts, symbol, factor" if table == "factors" else "ts, symbol"
    return (f"select {', '.join(head + cols)} from {dfs_ref(config, table)}"
            f"{where(config, symbols, lo, hi)} order by {order}")


def latest_sql(config: DeployConfig, table: str, symbols, lo, hi, columns) -> str:
    """Each symbol's (and factor's) last row in ``[lo, hi)``: ``atImax(ts, x)`` picks the
    value at the latest time, like DuckDB's ``arg_max`` in the embedded store."""
    cols = _columns(table, columns)
    group = "symbol, factor" if table == "factors" else "symbol"
    aggs = ", ".join(f"atImax(ts, {c}) as {c}" for c in cols)
    return (f"select max(ts) as datetime, {aggs} from {dfs_ref(config, table)}"
            f"{where(config, symbols, lo, hi)} group by {group} order by {group}")


def resample_sql(config: DeployConfig, table: str, step_ns: int, symbols, lo, hi) -> str:
    """OHLCV buckets of ``step_ns`` aligned to the epoch and stamped with their start."""
    unit = 1_000_000 if config.time_type == "TIMESTAMP" else 1
    if step_ns % unit:
        raise ValueError(f"resample step {step_ns} ns is finer than the deployed time precision ({config.time_type})")
    step = step_ns // unit
    if table == "ticks":
        aggs = ("atImin(ts, price) as open, max(price) as high, min(price) as low, atImax(ts, price) as close, "
                "sum(volume) as volume, wsum(price, volume) / sum(volume) as vwap, count(price) as trades")
    elif table in ("bars_1m", "bars_1d"):
        aggs = ("atImin(ts, open) as open, max(high) as high, min(low) as low, atImax(ts, close) as close, "
                "sum(volume) as volume, wsum(iif(isNull(vwap), close, vwap), volume) / sum(volume) as vwap, "
                "sum(trades) as trades")
    else:
        raise ValueError(f"cannot resample {table!r}: only ticks and bars tables")
    return (f"select {aggs} from {dfs_ref(config, table)}{where(config, symbols, lo, hi)} "
            f"group by bar(ts, {step}) as datetime, symbol order by datetime, symbol")


def asof_script(config: DeployConfig, table: str, columns, symbols: list[str], lo, hi) -> str:
    """As-of join of the uploaded ``ppAsofLeft`` (symbol, ts, pp_row) with ``table``:
    ``aj`` matches each left row with the last right row of its symbol at or before it;
    ``right_ts`` carries the matched row's time."""
    cols = _columns(table, columns)
    right = (f"select symbol, ts, ts as right_ts, {', '.join(cols)} from {dfs_ref(config, table)}"
             f"{where(config, symbols, lo, hi)} order by symbol, ts")
    return (f"ppAsofRight = {right}\n"
            f"select pp_row, right_ts, {', '.join(cols)} from aj(ppAsofLeft, ppAsofRight, `symbol`ts)")


def symbols_sql(config: DeployConfig, table: str, lo: int | None = None, hi: int | None = None) -> str:
    """Distinct symbols of ``table`` (one group per symbol), optionally with ``lo <= ts < hi``."""
    return f"select count(ts) as n from {dfs_ref(config, table)}{where(config, None, lo, hi)} group by symbol"
