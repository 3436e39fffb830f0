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

__all__ = ["fills_frame", "equity_frame", "EquityCurve", "positions_frame", "round_trips"]

_FILL_COLUMNS = ["ts", "symbol", "side", "quantity", "price", "fee", "client_order_id"]


def fills_frame(fills: list[tuple], sort: bool = True) -> pd.DataFrame:
    """Fills as a frame: ts (int64 ns), datetime, symbol, side (+1/-1), quantity, price, fee, client_order_id.

    Sorted by time then symbol (stable: fills of one instant keep their order) unless ``sort``
    is False.
    """
    df = pd.DataFrame(fills, columns=_FILL_COLUMNS)
    df = df.astype({"ts": "int64", "side": "int64", "quantity": "float64", "price": "float64", "fee": "float64"})
    df.insert(1, "datetime", pd.to_datetime(df["ts"].to_numpy(), unit="ns"))
    if not sort:
        return df
    return df.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)


def equity_frame(path: TickPath, fills: pd.DataFrame, capital: float) -> pd.DataFrame:
    """Per bar close of the common timeline: equity, cash, gross exposure, traded notional."""
    curve = EquityCurve(capital, path.bar_ns)
    curve.add(path, fills)
    return curve.frame()


class EquityCurve:
    """The equity curve built window by window (a streamed backtest) or at once.

    Each :meth:`add` turns one window's fills and bars into per-bar *increments* (cash
    flows, traded notional, and the change of each symbol's marked value and of its absolute
    value); positions and marked values carry over to the next window. :meth:`frame` sums
    the increments once over the whole timeline, so a run split into windows gives the
    same numbers as one pass.

    Parameters
    ----------
    capital : float
        Starting equity.
    bar_ns : int
        Bar width.
    """

    def __init__(self, capital: float, bar_ns: int) -> None:
        self.capital = float(capital)
        self.bar_ns = int(bar_ns)
        self._held: dict[str, float] = {}  # symbol -> position after every fill so far
        self._value: dict[str, float] = {}  # symbol -> its value at its last bar so far
        self._parts: list[tuple[np.ndarray, ...]] = []
        self._late = (0.0, 0.0)  # cash and notional of fills after the last bar so far

    def add(self, path: TickPath, fills: pd.DataFrame, lo: int | None = None, hi: int | None = None,
            final: bool = True) -> None:
        """Account one window: the bars of ``path`` starting in ``[lo, hi)`` and ``fills`` (its fills,
        sorted by time then symbol). ``final``: no window follows."""
        bar_ts = path.ts[::4]
        keep = np.ones(len(bar_ts), dtype=bool)
        if lo is not None:
            keep &= bar_ts >= lo
        if hi is not None:
            keep &= bar_ts < hi
        timeline = np.unique(bar_ts[keep])
        n = len(timeline)
        late_cash, late_notional = self._late
        if not n:
            if len(fills):
                signed = fills["side"].to_numpy() * fills["quantity"].to_numpy()
                px = fills["price"].to_numpy()
                late_cash += float(np.sum(-signed * px - fills["fee"].to_numpy()))
                late_notional += float(np.sum(np.abs(signed) * px))
                for sym, g in fills.groupby("symbol", sort=True):
                    self._held[sym] = self._held.get(sym, 0.0) + float(np.sum(g["side"].to_numpy() * g["quantity"].to_numpy()))
            self._late = (late_cash, late_notional)
            return
        ends = timeline + self.bar_ns
        cash = np.zeros(n)
        notional = np.zeros(n)
        dvalue = np.zeros(n)
        dgross = np.zeros(n)
        # fills after the previous window's last bar belong to this window's first bar
        cash[0] += late_cash
        notional[0] += late_notional
        self._late = (0.0, 0.0)
        groups = {}
        if len(fills):
            fts = fills["ts"].to_numpy(np.int64)
            k = np.searchsorted(ends, fts, side="right")
            signed = fills["side"].to_numpy() * fills["quantity"].to_numpy()
            px = fills["price"].to_numpy()
            flow = -signed * px - fills["fee"].to_numpy()
            traded = np.abs(signed) * px
            after = k >= n
            if after.any() and not final:
                # past this window's last bar: the next window's first bar (one pass would put them there)
                self._late = (float(np.sum(flow[after])), float(np.sum(traded[after])))
                k, flow, traded = k[~after], flow[~after], traded[~after]
            k = np.minimum(k, n - 1)
            np.add.at(cash, k, flow)
            np.add.at(notional, k, traded)
            groups = {sym: g for sym, g in fills.groupby("symbol", sort=True)}
        carried = {s for s in self._held if self._held[s] or self._value.get(s)}
        for sym in sorted(set(groups) | carried):
            if sym not in path.index:
                continue  # held, but no bar of it in this window's path: its value stands
            g = groups.get(sym)
            i = path.index[sym]
            a, b = path.start[i], path.end[i]
            sym_ts = path.ts[a:b:4]
            close = path.price[a + 3:b:4]
            m = np.ones(len(sym_ts), dtype=bool)
            if lo is not None:
                m &= sym_ts >= lo
            if hi is not None:
                m &= sym_ts < hi
            sym_ts, close = sym_ts[m], close[m]
            q0 = self._held.get(sym, 0.0)
            if g is not None:
                # one running sum from the carried position: the same additions, in the same
                # order, as one pass over every fill of the symbol
                held = np.cumsum(np.concatenate([[q0], g["side"].to_numpy() * g["quantity"].to_numpy()]))
                pos = held[np.searchsorted(g["ts"].to_numpy(np.int64), sym_ts + self.bar_ns, side="left")]
                self._held[sym] = float(held[-1])
            else:
                pos = np.full(len(sym_ts), q0)
            value = pos * close
            idx = np.searchsorted(timeline, sym_ts)
            v0 = self._value.get(sym, 0.0)
            np.add.at(dvalue, idx, np.diff(value, prepend=v0))
            np.add.at(dgross, idx, np.diff(np.abs(value), prepend=abs(v0)))
            if len(value):
                self._value[sym] = float(value[-1])
        self._parts.append((timeline, cash, notional, dvalue, dgross))

    def frame(self) -> pd.DataFrame:
        """The curve so far: equity, cash, market_value, gross, traded per bar close (index ``datetime``)."""
        if not self._parts:
            empty = np.zeros(0)
            timeline, cash, notional, dvalue, dgross = np.zeros(0, np.int64), empty, empty, empty, empty
        else:
            timeline, cash, notional, dvalue, dgross = (np.concatenate(c) for c in zip(*self._parts))
        if len(cash) and (self._late[0] or self._late[1]):
            cash, notional = cash.copy(), notional.copy()
            cash[-1] += self._late[0]
            notional[-1] += self._late[1]
        cash_c = self.capital + np.cumsum(cash)
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
