"""A server-side buffer of live data that the Dash app polls.

The signal-service client (or any adapter: a stream-table subscription, the demo's paper
broker) pushes columnar batches in with the ``on_*`` methods from its own thread; the Dash
callbacks read snapshots out on a ``dcc.Interval``. Keeping the socket out of Dash means a
browser refresh never drops the subscription, and every browser sees the same state.

Ticks are folded into one-minute bars here, per batch and vectorised (a group-by over
``(symbol, minute)``), so the K-line can append the forming bar while the bar engine has not
closed it yet. A ``version`` counter lets callbacks skip redraws when nothing changed.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pyplatform.domain.market_data import Depth
from pyplatform.domain.schemas import to_columns
from pyplatform.plots.downsample import MINUTE_NS

__all__ = ["LiveBuffer", "ConnectionState", "merge_live_bars"]

_BAR_COLS = ["ts", "open", "high", "low", "close", "volume"]


@dataclass(frozen=True)
class ConnectionState:
    """The live feed's connection as the user should see it."""

    state: str = "offline"  # offline | connecting | connected | reconnecting | disconnected
    since_ns: int = 0
    detail: str = ""
    reconnects: int = 0


@dataclass
class _SymbolBars:
    frame: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({c: pd.Series(dtype=np.int64 if c == "ts" else float) for c in _BAR_COLS}))


def _require(cols: dict[str, np.ndarray], names: list[str], what: str) -> None:
    missing = [n for n in names if n not in cols]
    if missing:
        raise ValueError(f"{what} batch is missing column(s) {missing}; got {sorted(cols)}")


class LiveBuffer:
    """Thread-safe store of the latest live state, bounded in memory.

    Parameters
    ----------
    max_bars : int
        One-minute bars kept per symbol.
    max_rows : int
        Rows kept of each event log (signals, orders).
    """

    def __init__(self, max_bars: int = 5000, max_rows: int = 500) -> None:
        self._lock = threading.RLock()
        self._bars: dict[str, pd.DataFrame] = {}
        self._quotes: dict[str, dict] = {}
        self._depth: dict[str, Depth] = {}
        self._signals: deque[dict] = deque(maxlen=max_rows)
        self._orders: dict[str, dict] = {}
        self._order_log: deque[str] = deque(maxlen=max_rows)
        self._positions: dict[str, dict] = {}
        self._pnl: deque[tuple[int, float]] = deque(maxlen=max_bars)
        self._risk: dict = {}
        self._conn = ConnectionState()
        self._max_bars = max_bars
        self.version = 0

    # ----------------------------------------------------------------- ingestion
    def _bump(self) -> None:
        self.version += 1

    def on_ticks(self, batch) -> None:
        """Fold trades (``ts``, ``symbol``, ``price``, ``volume``) into one-minute bars."""
        cols = to_columns(batch)
        _require(cols, ["ts", "symbol", "price", "volume"], "tick")
        if len(cols["ts"]) == 0:
            return
        price = np.asarray(cols["price"], dtype=float)
        if not np.isfinite(price).all():
            bad = int(np.flatnonzero(~np.isfinite(price))[0])
            raise ValueError(f"tick row {bad}: price {float(price[bad])} is not finite")
        f = pd.DataFrame({"minute": np.asarray(cols["ts"], np.int64) // MINUTE_NS * MINUTE_NS,
                          "symbol": cols["symbol"], "price": price,
                          "volume": np.asarray(cols["volume"], float)})
        g = f.groupby(["symbol", "minute"], sort=True)
        bars = g.agg(open=("price", "first"), high=("price", "max"), low=("price", "min"),
                     close=("price", "last"), volume=("volume", "sum")).reset_index()
        bars = bars.rename(columns={"minute": "ts"})
        self._merge_bars(bars)

    def on_bars(self, batch) -> None:
        """Completed bars from the bar engine (``ts``, ``symbol``, OHLCV); they replace forming ones."""
        cols = to_columns(batch)
        _require(cols, ["ts", "symbol"] + _BAR_COLS[1:], "bar")
        bars = pd.DataFrame({c: cols[c] for c in ["symbol"] + _BAR_COLS})
        self._merge_bars(bars, replace=True)

    def _merge_bars(self, bars: pd.DataFrame, replace: bool = False) -> None:
        with self._lock:
            for sym, new in bars.groupby("symbol", sort=False):  # per symbol, not per row
                new = new[_BAR_COLS].reset_index(drop=True)
                old = self._bars.get(sym)
                if old is None or old.empty:
                    merged = new
                elif replace:
                    merged = pd.concat([old[~old["ts"].isin(new["ts"])], new])
                else:
                    both = pd.concat([old, new], ignore_index=True)
                    merged = both.groupby("ts", sort=False).agg(
                        open=("open", "first"), high=("high", "max"), low=("low", "min"),
                        close=("close", "last"), volume=("volume", "sum")).reset_index()
                merged = merged.sort_values("ts", kind="stable").tail(self._max_bars).reset_index(drop=True)
                self._bars[sym] = merged
            self._bump()

    def on_quotes(self, batch, fold_into_bars: bool = True) -> None:
        """Quote snapshots (the ``QUOTES`` schema); the latest per symbol is kept.

        With ``fold_into_bars`` each quote's ``last`` also updates the forming one-minute bar,
        its traded volume being the rise in the quote's cumulative day ``volume`` (the signal
        service publishes quotes, not individual trades).
        """
        cols = to_columns(batch)
        _require(cols, ["ts", "symbol", "last"], "quote")
        frame = pd.DataFrame(cols).sort_values("ts", kind="stable")
        latest = frame.groupby("symbol").tail(1)
        with self._lock:
            if fold_into_bars and len(frame):
                vol = frame["volume"].astype(float) if "volume" in frame else pd.Series(0.0, index=frame.index)
                prev = frame["symbol"].map({s: q.get("volume", np.nan) for s, q in self._quotes.items()})
                step = vol.groupby(frame["symbol"]).diff()
                step = step.fillna(vol - prev.astype(float)).clip(lower=0.0).fillna(0.0)
                self.on_ticks({"ts": frame["ts"].to_numpy(np.int64), "symbol": frame["symbol"].to_numpy(),
                               "price": frame["last"].to_numpy(float), "volume": step.to_numpy(float)})
            for rec in latest.to_dict("records"):
                self._quotes[rec["symbol"]] = rec
            self._bump()

    def on_depth(self, depth: Depth) -> None:
        """An order-book depth snapshot for one symbol."""
        with self._lock:
            self._depth[depth.symbol] = depth
            self._bump()

    def on_signals(self, batch) -> None:
        """Signals (the ``SIGNALS`` schema), newest kept last."""
        cols = to_columns(batch)
        _require(cols, ["ts", "symbol", "direction"], "signal")
        with self._lock:
            self._signals.extend(pd.DataFrame(cols).to_dict("records"))
            self._bump()

    def on_orders(self, records: list[dict]) -> None:
        """Order state updates; each needs ``order_id`` and replaces that order's row."""
        with self._lock:
            for i, rec in enumerate(records):
                if "order_id" not in rec:
                    raise ValueError(f"order update {i} has no 'order_id': {rec!r}")
                if rec["order_id"] not in self._orders:
                    self._order_log.append(rec["order_id"])
                self._orders[rec["order_id"]] = {**self._orders.get(rec["order_id"], {}), **rec}
            self._bump()

    def on_positions(self, records: list[dict]) -> None:
        """Position snapshots keyed by ``symbol``."""
        with self._lock:
            for i, rec in enumerate(records):
                if "symbol" not in rec:
                    raise ValueError(f"position {i} has no 'symbol': {rec!r}")
                self._positions[rec["symbol"]] = rec
            self._bump()

    def on_pnl(self, ts_ns: int, pnl: float) -> None:
        """A point of the account's P&L curve."""
        with self._lock:
            self._pnl.append((int(ts_ns), float(pnl)))
            self._bump()

    def on_risk(self, state: dict) -> None:
        """Risk state: ``limits`` (name -> {used, limit}) and ``kill_switch`` (bool), ..."""
        with self._lock:
            self._risk = dict(state)
            self._bump()

    def set_connection(self, state: str, now_ns: int, detail: str = "") -> None:
        """Record the feed's connection state (adapters call this on connect/drop/retry)."""
        allowed = {"offline", "connecting", "connected", "reconnecting", "disconnected"}
        if state not in allowed:
            raise ValueError(f"connection state {state!r} is not one of {sorted(allowed)}")
        with self._lock:
            prev = self._conn
            reconnects = prev.reconnects + (1 if state == "connected" and prev.state in ("reconnecting", "disconnected") else 0)
            self._conn = ConnectionState(state, int(now_ns), detail, reconnects)
            self._bump()

    # ------------------------------------------------------------------- reading
    @property
    def connection(self) -> ConnectionState:
        return self._conn

    def bars(self, symbol: str) -> pd.DataFrame:
        """Live one-minute bars of a symbol (``ts`` + OHLCV), oldest first."""
        with self._lock:
            f = self._bars.get(symbol)
            return f.copy() if f is not None else pd.DataFrame({c: pd.Series(dtype=np.int64 if c == "ts" else float) for c in _BAR_COLS})

    def quotes(self) -> pd.DataFrame:
        with self._lock:
            return pd.DataFrame(list(self._quotes.values()))

    def depth(self, symbol: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Bids and asks (``price``, ``volume``) of the latest depth snapshot of ``symbol``."""
        with self._lock:
            d = self._depth.get(symbol)
        if d is None:
            empty = pd.DataFrame({"price": [], "volume": []})
            return empty, empty
        side = lambda levels: pd.DataFrame({"price": [lv.price for lv in levels], "volume": [lv.volume for lv in levels]})  # noqa: E731
        return side(d.bids), side(d.asks)

    def signals(self) -> pd.DataFrame:
        with self._lock:
            return pd.DataFrame(list(self._signals))

    def orders(self) -> pd.DataFrame:
        with self._lock:
            return pd.DataFrame([self._orders[o] for o in self._order_log if o in self._orders])

    def positions(self) -> pd.DataFrame:
        with self._lock:
            return pd.DataFrame(list(self._positions.values()))

    def pnl(self) -> pd.Series:
        with self._lock:
            pts = list(self._pnl)
        if not pts:
            return pd.Series(dtype=float)
        ts, v = zip(*pts)
        return pd.Series(v, index=pd.to_datetime(np.asarray(ts, dtype=np.int64)), name="pnl")

    def risk(self) -> dict:
        with self._lock:
            return dict(self._risk)


def merge_live_bars(history: pd.DataFrame, live_1m: pd.DataFrame, tf) -> pd.DataFrame:
    """Append live one-minute bars, re-aggregated to ``tf``, after the historical candles.

    Live rows are bucketed together with the historical candle times, so a live minute that
    falls in the last historical candle's bucket updates it (high/low/close/volume) and new
    buckets line up with the session's grid. Live rows before the last historical candle are
    ignored: history is the record.
    """
    from pyplatform.plots.downsample import aggregate_ohlcv, bucket_keys, reduce_buckets, timeframe

    tf = timeframe(tf) if isinstance(tf, str) else tf
    if live_1m is None or len(live_1m) == 0:
        return history
    if history is None or len(history) == 0:
        return aggregate_ohlcv(live_1m[_BAR_COLS], tf)
    hist = history[_BAR_COLS].reset_index(drop=True)
    last_ts = int(hist["ts"].iloc[-1])
    live = live_1m[_BAR_COLS]
    live = live[live["ts"].to_numpy(np.int64) >= last_ts].reset_index(drop=True)
    if len(live) == 0:
        return history
    # bucket the historical candle starts and the live minutes on one grid
    both_ts = np.r_[hist["ts"].to_numpy(np.int64), live["ts"].to_numpy(np.int64)]
    keys, starts = bucket_keys(both_ts, tf)
    n = len(hist)
    agg = reduce_buckets(live, keys[n:], starts[n:])
    if int(agg["ts"].iloc[0]) == int(starts[n - 1]):
        first = agg.iloc[0]
        hist.loc[n - 1, "high"] = max(hist.loc[n - 1, "high"], first["high"])
        hist.loc[n - 1, "low"] = min(hist.loc[n - 1, "low"], first["low"])
        hist.loc[n - 1, "close"] = first["close"]
        hist.loc[n - 1, "volume"] = hist.loc[n - 1, "volume"] + first["volume"]
        agg = agg.iloc[1:]
    return pd.concat([hist, agg], ignore_index=True)
