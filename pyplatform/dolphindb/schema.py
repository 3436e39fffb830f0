"""Column names and DolphinDB types of the deployed stream and DFS tables.

One source of truth: the scripts are rendered from these lists and the Python side reads
and writes by them. Columns follow ``pyplatform.domain.schemas`` (ticks, bars, signals);
the factor table is long (symbol, ts, factor, value) in the column order the narrow
reactive state engine emits, so its output can be appended to the DFS table as is.
Orders and fills follow ``pyplatform.execution.messages`` (client order id, side,
quantity, price). ``ts`` is ``TIMESTAMP`` (milliseconds) by default: every documented
engine example uses it; ``NANOTIMESTAMP`` is a deploy option (see docs/dolphindb.md).
"""

from __future__ import annotations

from typing import Literal

__all__ = ["TABLES", "TimeType", "columns", "dolphin_names", "dolphin_types", "DFS", "STREAMS"]

TimeType = Literal["TIMESTAMP", "NANOTIMESTAMP"]

# table -> [(column, DolphinDB type)]; "TS" is replaced by the configured time type.
TABLES: dict[str, list[tuple[str, str]]] = {
    "ticks": [("ts", "TS"), ("symbol", "SYMBOL"), ("price", "DOUBLE"), ("volume", "DOUBLE"),
              ("side", "CHAR"), ("bid", "DOUBLE"), ("ask", "DOUBLE")],
    "bars": [("ts", "TS"), ("symbol", "SYMBOL"), ("open", "DOUBLE"), ("high", "DOUBLE"),
             ("low", "DOUBLE"), ("close", "DOUBLE"), ("volume", "DOUBLE"), ("vwap", "DOUBLE"),
             ("trades", "INT")],
    # the narrow engine writes metricNames as STRING (documented example); the DFS copy
    # stores it as SYMBOL for compression (see factors_dfs)
    "factors": [("symbol", "SYMBOL"), ("ts", "TS"), ("factor", "STRING"), ("value", "DOUBLE")],
    "factors_dfs": [("symbol", "SYMBOL"), ("ts", "TS"), ("factor", "SYMBOL"), ("value", "DOUBLE")],
    "signals": [("ts", "TS"), ("symbol", "SYMBOL"), ("strategy", "SYMBOL"), ("direction", "CHAR"),
                ("strength", "DOUBLE"), ("reason", "STRING"), ("factors", "STRING")],
    "orders": [("ts", "TS"), ("client_order_id", "STRING"), ("account", "SYMBOL"),
               ("symbol", "SYMBOL"), ("side", "CHAR"), ("quantity", "DOUBLE"), ("order_type", "SYMBOL"),
               ("price", "DOUBLE"), ("tif", "SYMBOL"), ("status", "SYMBOL"), ("reason", "STRING")],
    "fills": [("ts", "TS"), ("client_order_id", "STRING"), ("exec_id", "STRING"), ("symbol", "SYMBOL"),
              ("side", "CHAR"), ("quantity", "DOUBLE"), ("price", "DOUBLE"), ("fee", "DOUBLE"),
              ("venue", "SYMBOL")],
}

# history-store table -> (DFS database path suffix, DFS table name, schema key)
DFS: dict[str, tuple[str, str, str]] = {
    "ticks": ("ticks", "ticks", "ticks"),
    "bars_1m": ("bars_1m", "bars_1m", "bars"),
    "bars_1d": ("bars_1d", "bars_1d", "bars"),
    "factors": ("factors", "factors", "factors_dfs"),
    "signals": ("signals", "signals", "signals"),
}

# stream table suffix -> schema key
STREAMS: dict[str, str] = {
    "ticks": "ticks", "bars_1m": "bars", "bars_1d": "bars", "factors": "factors",
    "signals": "signals", "orders": "orders", "fills": "fills",
}


def columns(key: str) -> list[str]:
    """Column names of schema ``key``."""
    return [c for c, _ in TABLES[key]]


def dolphin_names(key: str) -> str:
    """Column names as a DolphinDB symbol vector literal: `` `ts`symbol`price ``."""
    return "".join(f"`{c}" for c in columns(key))


def dolphin_types(key: str, time_type: TimeType = "TIMESTAMP") -> str:
    """Column types as a DolphinDB vector literal: ``[TIMESTAMP, SYMBOL, DOUBLE]``."""
    return "[" + ", ".join(time_type if t == "TS" else t for _, t in TABLES[key]) + "]"
