"""From fills to the equity curve, positions and round-trip trades (vectorised).

The equity at a bar's close is the starting capital, plus every cash flow of fills stamped
before the bar ends (price x quantity and fees), plus each held position marked at its
symbol's latest close. Each symbol contributes the *changes* of its marked value on its own
bars, summed onto the common timeline with ``np.add.at``, so nothing is pivoted to a
(time x symbol) matrix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pyplatform.backtest.prices import TickPath

__all__ = ["fills_frame", "equity_frame", "positions_frame", "round_trips"]

_FILL_COLUMNS = ["ts", "symbol", "side", "quantity", "price", "fee", "client_order_id"]


def fills_frame(fills: list[tuple]) -> pd.DataFrame:
    """Fills as a frame: ts (int64 ns), datetime, symbol, side (+1/-1), quantity, price, fee, client_order_id."""
    df = pd.DataFrame(fills, columns=_FILL_COLUMNS)
    df = df.astype({"ts": "int64", "side": "int64", "quantity": "float64", "price": "float64", "fee": "float64"})
    df.insert(1, "datetime", pd.to_datetime(df["ts"].to_numpy(), unit="ns"))
    return df.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)


def equity_frame(path: TickPath, fills: pd.DataFrame, capital: float) -> pd.DataFrame:
    """Per bar close of the common timeline: equity, cash, gross exposure, traded notional."""
    bar_ts = path.ts[::4]
    timeline = np.unique(bar_ts)
    ends = timeline + path.bar_ns
    n = len(timeline)
    cash = np.zeros(n)
    notional = np.zeros(n)
    dvalue = np.zeros(n)
    dgross = np.zeros(n)
    if len(fills):
        fts = fills["ts"].to_numpy(np.int64)
        k = np.minimum(np.searchsorted(ends, fts, side="right"), n - 1)
        signed = fills["side"].to_numpy() * fills["quantity"].to_numpy()
        px = fills["price"].to_numpy()
        np.add.at(cash, k, -signed * px - fills["fee"].to_numpy())
        np.add.at(notional, k, np.abs(signed) * px)
        for sym, g in fills.groupby("symbol", sort=True):
            i = path.index[sym]
            lo, hi = path.start[i], path.end[i]
            sym_ts = path.ts[lo:hi:4]
            close = path.price[lo + 3:hi:4]
            held = np.concatenate([[0.0], np.cumsum(g["side"].to_numpy() * g["quantity"].to_numpy())])
            pos = held[np.searchsorted(g["ts"].to_numpy(np.int64), sym_ts + path.bar_ns, side="left")]
            value = pos * close
            idx = np.searchsorted(timeline, sym_ts)
            np.add.at(dvalue, idx, np.diff(value, prepend=0.0))
            np.add.at(dgross, idx, np.diff(np.abs(value), prepend=0.0))
    cash_c = capital + np.cumsum(cash)
    value_c = np.cumsum(dvalue)
    equity = cash_c + value_c
    return pd.DataFrame({"equity": equity, "cash": cash_c, "market_value": value_c, "gross": np.cumsum(dgross),
                         "traded": notional},
                        index=pd.DatetimeIndex(timeline.astype("datetime64[ns]"), name="datetime"))


def positions_frame(fills: pd.DataFrame) -> pd.DataFrame:
    """Position of each symbol after each fill: datetime, symbol, quantity (signed)."""
    if not len(fills):
        return pd.DataFrame({"datetime": pd.Series(dtype="datetime64[ns]"), "symbol": pd.Series(dtype=str),
                             "quantity": pd.Series(dtype=float)})
    q = (fills["side"] * fills["quantity"]).groupby(fills["symbol"]).cumsum()
    out = pd.DataFrame({"datetime": fills["datetime"], "symbol": fills["symbol"], "quantity": q.round(10)})
    return out.groupby(["datetime", "symbol"], sort=True).last().reset_index()


def round_trips(fills: pd.DataFrame) -> pd.DataFrame:
    """Closed trades (flat -> position -> flat), a fill crossing zero split in two.

    Columns: symbol, direction, entry_ts, exit_ts, quantity (largest held), entry_price and
    exit_price (quantity-weighted), pnl (after fees), return (pnl / entry notional).
    """
    rows = []
    for sym, g in fills.groupby("symbol", sort=True):
        pos, cur = 0.0, None
        for ts, side, qty, px, fee in zip(g["ts"].to_numpy(), g["side"].to_numpy(), g["quantity"].to_numpy(),
                                          g["price"].to_numpy(), g["fee"].to_numpy()):
            left = float(qty)
            while left > 1e-9 * float(qty):  # float dust of a split is not a new trade
                if cur is None:
                    cur = {"symbol": sym, "direction": int(side), "entry_ts": int(ts), "in_q": 0.0, "in_n": 0.0,
                           "out_q": 0.0, "out_n": 0.0, "fees": 0.0, "max_q": 0.0}
                opening = pos == 0 or np.sign(pos) == side
                take = left if opening else min(left, abs(pos))
                share = take / float(qty)
                cur["fees"] += fee * share
                if opening:
                    cur["in_q"] += take
                    cur["in_n"] += take * px
                else:
                    cur["out_q"] += take
                    cur["out_n"] += take * px
                pos += side * take
                cur["max_q"] = max(cur["max_q"], abs(pos))
                left -= take
                if abs(pos) <= 1e-9 * max(1.0, cur["max_q"]) and cur["out_q"] > 0:
                    pos = 0.0
                    d = cur["direction"]
                    entry = cur["in_n"] / cur["in_q"]
                    exit_ = cur["out_n"] / cur["out_q"]
                    pnl = d * (cur["out_n"] - cur["out_q"] / cur["in_q"] * cur["in_n"]) - cur["fees"]
                    rows.append({"symbol": sym, "direction": d, "entry_ts": cur["entry_ts"], "exit_ts": int(ts),
                                 "quantity": cur["max_q"], "entry_price": entry, "exit_price": exit_,
                                 "fees": cur["fees"], "pnl": pnl, "return": pnl / cur["in_n"]})
                    cur = None
    cols = ["symbol", "direction", "entry_ts", "exit_ts", "quantity", "entry_price", "exit_price", "fees", "pnl",
            "return"]
    out = pd.DataFrame(rows, columns=cols)
    out["entry_time"] = pd.to_datetime(out["entry_ts"].astype("int64"), unit="ns")
    out["exit_time"] = pd.to_datetime(out["exit_ts"].astype("int64"), unit="ns")
    return out.sort_values(["exit_ts", "symbol"], kind="stable").reset_index(drop=True)
